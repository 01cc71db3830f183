//! A model-based property test: any sequence of commits, claims and settles of sends, and
//! flushes leaves the store as a simple model says.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, SendEntry, SendRecord, SendStatus, Settle, Store,
    StoreError, all_due,
};
use nudge_local::{SqliteOptions, SqliteStore};
use proptest::prelude::*;

use super::{arm_failing_sends, at, send};

/// One step of a property test.
#[derive(Debug, Clone)]
enum Op {
    Commit(CommitOp),
    /// Claims `k-<key>` at `now` seconds until `lease` seconds later, as its owner or (with
    /// `stranger`) as another customer.
    Claim {
        key: u8,
        now: i64,
        lease: i64,
        stranger: bool,
    },
    /// Settles `k-<key>`: 0 sent, 1 retry at `at` seconds, 2 failed, 3 unknown; tied to the
    /// send's current claim, or (`stale`) to a claim that no longer holds it.
    Settle {
        key: u8,
        how: u8,
        at: i64,
        stranger: bool,
        stale: bool,
    },
    Flush,
}

/// A commit of one step, in the small numbers the strategy draws.
#[derive(Debug, Clone)]
struct CommitOp {
    customer: u8,
    /// Added to the model's version, so that most commits are current and some stale.
    version_skew: i8,
    event: Option<u8>,
    wake: Option<i64>,
    sends: Vec<u8>,
    /// One of the sends fails inside SQLite (see `arm_failing_sends`).
    fail: bool,
}

impl CommitOp {
    /// The sends to log for `customer`, `k-<n>` at `n` seconds, and with `fail` one of
    /// workflow `boom`, unique to `step`.
    fn records(&self, step: usize, customer: &str) -> Vec<SendRecord> {
        let mut records: Vec<SendRecord> = self
            .sends
            .iter()
            .map(|k| SendRecord {
                at: at(i64::from(*k)),
                ..send(&format!("k-{k}"), customer, "w")
            })
            .collect();
        if self.fail {
            records.push(send(&format!("k-boom-{step}"), customer, "boom"));
        }
        records
    }
}

fn op() -> impl Strategy<Value = Op> {
    let stranger = proptest::bool::weighted(0.1);
    prop_oneof![
        6 => (
            0..3u8,
            prop_oneof![8 => Just(0i8), 1 => -1..=1i8],
            proptest::option::of(0..8u8),
            proptest::option::of(0..6i64),
            proptest::collection::vec(0..8u8, 0..3),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(customer, version_skew, event, wake, sends, fail)| Op::Commit(CommitOp {
                customer,
                version_skew,
                event,
                wake,
                sends,
                fail,
            })),
        2 => (0..9u8, 0..12i64, 1..6i64, stranger).prop_map(
            |(key, now, lease, stranger)| Op::Claim { key, now, lease, stranger }
        ),
        2 => (0..9u8, 0..4u8, 0..12i64, stranger, proptest::bool::weighted(0.25)).prop_map(
            |(key, how, at, stranger, stale)| Op::Settle { key, how, at, stranger, stale }
        ),
        1 => Just(Op::Flush),
    ]
}

/// A customer in the model: version, state, timer.
type ModelCustomer = (u64, Vec<u8>, Option<DateTime<Utc>>);

/// What a store holds.
#[derive(Default, Clone)]
struct Held {
    /// customer -> (version, state, timer)
    customers: BTreeMap<String, ModelCustomer>,
    processed: HashSet<String>,
    /// key -> entry
    sends: HashMap<String, SendEntry>,
}

impl Held {
    /// Holds a commit of `customer` that was applied: its record, its event id, and the sends
    /// whose keys are new.
    fn hold(
        &mut self,
        customer: &str,
        record: ModelCustomer,
        event: Option<String>,
        records: Vec<SendRecord>,
    ) {
        self.customers.insert(customer.to_owned(), record);
        if let Some(e) = event {
            self.processed.insert(e);
        }
        for r in records {
            self.sends
                .entry(r.idempotency_key.clone())
                .or_insert_with(|| SendEntry {
                    status: SendStatus::Pending,
                    attempts: 0,
                    retry_at: Some(r.at),
                    message_id: None,
                    reason: None,
                    record: r,
                });
        }
    }
}

/// What the store should hold: what it reads back (`current`), what is committed to the file
/// (`durable`), and the open batch: how many writes it holds and whether one of them fails when
/// the batch is written (then the whole batch is lost, and the call that ends it says so).
struct Model {
    batch: usize,
    current: Held,
    durable: Held,
    pending: usize,
    failing: bool,
}

impl Model {
    fn new(batch: usize) -> Self {
        Model {
            batch,
            current: Held::default(),
            durable: Held::default(),
            pending: 0,
            failing: false,
        }
    }

    /// Counts a write; returns the number of writes lost if it ended a failing batch.
    fn wrote(&mut self, fails: bool) -> Option<usize> {
        self.pending += 1;
        self.failing |= fails;
        if self.pending >= self.batch {
            self.end_batch()
        } else {
            None
        }
    }

    /// Ends the open batch; returns the number of writes lost if it failed.
    fn end_batch(&mut self) -> Option<usize> {
        let lost = std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.failing) {
            self.current = self.durable.clone();
            Some(lost)
        } else {
            self.durable = self.current.clone();
            None
        }
    }

    /// Applies `op` to the store and to the model, and asserts that the store answered as the
    /// model says.
    async fn apply(&mut self, store: &SqliteStore, step: usize, op: &Op) {
        match op {
            Op::Commit(c) => self.commit(store, step, c).await,
            Op::Claim {
                key,
                now,
                lease,
                stranger,
            } => {
                let (now, lease) = (at(*now), at(*now + *lease));
                self.claim(store, step, *key, (now, lease), *stranger).await
            }
            Op::Settle {
                key,
                how,
                at: when,
                stranger,
                stale,
            } => {
                // The lease of the claim that holds the send now, or one that never held it.
                let held = self
                    .current
                    .sends
                    .get(&format!("k-{key}"))
                    .and_then(|e| e.retry_at)
                    .unwrap_or(at(0));
                let lease = if *stale { at(99) } else { held };
                let settle = match how {
                    0 => Settle::Sent {
                        message_id: Some("m-1"),
                    },
                    1 => Settle::Retry {
                        at: at(*when),
                        reason: "later",
                        lease,
                    },
                    2 => Settle::Failed {
                        reason: "refused",
                        lease,
                    },
                    _ => Settle::Unknown {
                        reason: "lost",
                        lease,
                    },
                };
                self.settle(store, step, *key, settle, *stranger).await
            }
            Op::Flush => self.flush(store, step).await,
        }
    }

    /// Commits `c`; the outcome expected is `AlreadyProcessed` for a processed event id, then
    /// `Conflict` for a version other than the model's.
    async fn commit(&mut self, store: &SqliteStore, step: usize, c: &CommitOp) {
        let customer = format!("c-{}", c.customer);
        let current = self
            .current
            .customers
            .get(&customer)
            .map_or(0, |held| held.0);
        let expected_version = current.saturating_add_signed(i64::from(c.version_skew));
        let state = format!("{{\"step\":{step}}}").into_bytes();
        let event = c.event.map(|e| format!("e-{e}"));
        let wake = c.wake.map(at);
        let records = c.records(step, &customer);
        let result = store
            .commit(Commit {
                customer_id: &customer,
                expected_version,
                state: &state,
                next_wake: wake,
                event_id: event.as_deref(),
                sends: &records,
                journal: &[],
            })
            .await;
        let outcome = if event
            .as_ref()
            .is_some_and(|e| self.current.processed.contains(e))
        {
            CommitOutcome::AlreadyProcessed
        } else if expected_version != current {
            CommitOutcome::Conflict
        } else {
            CommitOutcome::Committed {
                version: current + 1,
            }
        };
        let lost = if let CommitOutcome::Committed { .. } = outcome {
            self.current
                .hold(&customer, (current + 1, state, wake), event, records);
            self.wrote(c.fail)
        } else {
            None
        };
        assert_answer(&format!("step {step}: {c:?}"), result, outcome, lost);
    }

    /// The customer a call about `k-<key>` names: the one that logged it (any for an unknown
    /// key), or with `stranger` another one.
    fn owner(&self, key: &str, stranger: bool) -> String {
        let owner = self
            .current
            .sends
            .get(key)
            .map_or("c-0", |e| e.record.customer_id.as_str());
        match (stranger, owner) {
            (false, owner) => owner.to_owned(),
            (true, "c-0") => "c-1".to_owned(),
            (true, _) => "c-0".to_owned(),
        }
    }

    /// What a send-log call must answer before anything else: it writes the batch's staged
    /// sends into the open transaction first, so a batch that fails to be written is lost
    /// whole, and the call says so. `None` when the batch holds nothing that fails.
    fn spill(&mut self) -> Option<usize> {
        match self.failing && self.pending > 0 {
            true => self.end_batch(),
            false => None,
        }
    }

    /// Claims the send `k-<key>` (see [`Op::Claim`]).
    async fn claim(
        &mut self,
        store: &SqliteStore,
        step: usize,
        key: u8,
        (now, lease): (DateTime<Utc>, DateTime<Utc>),
        stranger: bool,
    ) {
        let what = format!("step {step}: claim k-{key} at {now} (stranger: {stranger})");
        let key = format!("k-{key}");
        let owner = self.owner(&key, stranger);
        let result = store.claim_send(&owner, &key, now, lease).await;
        if let Some(lost) = self.spill() {
            return assert_answer(&what, result, None, Some(lost));
        }
        let entry = match self.current.sends.get_mut(&key) {
            Some(entry) if entry.record.customer_id == owner => entry,
            _ => {
                return assert!(
                    matches!(result, Err(StoreError::UnknownSend(_))),
                    "{what}: {result:?}"
                );
            }
        };
        let claimable = !entry.status.is_final() && entry.retry_at.is_some_and(|t| t <= now);
        if !claimable {
            return assert_answer(&what, result, None, None);
        }
        let before = entry.clone();
        entry.status = SendStatus::Sending;
        entry.retry_at = Some(lease);
        entry.attempts += 1;
        let lost = self.wrote(false);
        assert_answer(&what, result, Some(before), lost);
    }

    /// Settles the send `k-<key>` (see [`Op::Settle`]).
    async fn settle(
        &mut self,
        store: &SqliteStore,
        step: usize,
        key: u8,
        settle: Settle<'_>,
        stranger: bool,
    ) {
        let what = format!("step {step}: settle k-{key} {settle:?} (stranger: {stranger})");
        let key = format!("k-{key}");
        let owner = self.owner(&key, stranger);
        let result = store.settle_send(&owner, &key, settle).await;
        if let Some(lost) = self.spill() {
            return assert_answer(&what, result, false, Some(lost));
        }
        let entry = match self.current.sends.get_mut(&key) {
            Some(entry) if entry.record.customer_id == owner => entry,
            _ => {
                return assert!(
                    matches!(result, Err(StoreError::UnknownSend(_))),
                    "{what}: {result:?}"
                );
            }
        };
        let applies = match settle.lease() {
            None => entry.status != SendStatus::Sent,
            Some(lease) => entry.status == SendStatus::Sending && entry.retry_at == Some(lease),
        };
        if !applies {
            return assert_answer(&what, result, false, None);
        }
        entry.status = settle.status();
        match settle {
            Settle::Sent { message_id } => {
                entry.retry_at = None;
                if entry.message_id.is_none() {
                    entry.message_id = message_id.map(str::to_owned);
                }
            }
            Settle::Retry { at, reason, .. } => {
                entry.retry_at = Some(at);
                entry.reason = Some(reason.to_owned());
            }
            Settle::Failed { reason, .. } | Settle::Unknown { reason, .. } => {
                entry.retry_at = None;
                entry.reason = Some(reason.to_owned());
            }
        }
        let lost = self.wrote(false);
        assert_answer(&what, result, true, lost);
    }

    /// Flushes, which ends the open batch.
    async fn flush(&mut self, store: &SqliteStore, step: usize) {
        let result = store.flush().await;
        assert_answer(&format!("step {step}: flush"), result, (), self.end_batch());
    }

    /// Asserts that the store reads back what the model holds: records, send logs, event ids
    /// and timers.
    async fn check(&self, store: &SqliteStore, when: &str) {
        let held = &self.current;
        for c in 0..3 {
            let id = format!("c-{c}");
            let expected = held
                .customers
                .get(&id)
                .map(|(version, state, _)| CustomerRecord {
                    version: *version,
                    state: state.clone(),
                });
            assert_eq!(store.load(&id).await.unwrap(), expected, "{when}: {id}");
            let mut sends: Vec<SendEntry> = held
                .sends
                .values()
                .filter(|e| e.record.customer_id == id)
                .cloned()
                .collect();
            sends.sort_by(|a, b| {
                (a.record.at, &a.record.idempotency_key)
                    .cmp(&(b.record.at, &b.record.idempotency_key))
            });
            assert_eq!(
                store.sends(&id).await.unwrap(),
                sends,
                "{when}: sends of {id}"
            );
        }
        for e in 0..8 {
            let e = format!("e-{e}");
            assert_eq!(
                store.is_processed(&e).await.unwrap(),
                held.processed.contains(&e),
                "{when}: {e}"
            );
        }
        let mut due: Vec<(DateTime<Utc>, String)> = held
            .customers
            .iter()
            .filter_map(|(id, (_, _, wake))| wake.map(|w| (w, id.clone())))
            .collect();
        due.sort();
        assert_eq!(
            all_due(store, at(1000), 100).await.unwrap(),
            due,
            "{when}: timers"
        );
    }
}

/// Asserts the store's answer to a write: `expected` when no batch failed, and otherwise
/// `WritesLost` with as many writes as the model lost.
fn assert_answer<T: PartialEq + std::fmt::Debug>(
    what: &str,
    result: Result<T, StoreError>,
    expected: T,
    lost: Option<usize>,
) {
    match (result, lost) {
        (Ok(got), None) => assert_eq!(got, expected, "{what}"),
        (Err(StoreError::WritesLost { lost: got, .. }), Some(lost)) => {
            assert_eq!(got, lost, "{what}")
        }
        (got, lost) => panic!("{what}: got {got:?}, expected {expected:?}, lost {lost:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any sequence of commits, claims, settles and flushes, in batches of any size, leaves the store as
    /// a simple model says, before and after reopening; a batch that fails to be written is
    /// lost whole and reported by the call that ended it.
    #[test]
    fn sqlite_store_matches_the_model(
        ops in proptest::collection::vec(op(), 1..60),
        batch in prop_oneof![Just(1usize), Just(4), Just(1000)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(SqliteStore::open(&path).unwrap());
        arm_failing_sends(&path);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut model = Model::new(batch);
            let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(batch)).unwrap();
            for (step, op) in ops.iter().enumerate() {
                model.apply(&store, step, op).await;
            }
            // Reading sends and timers writes the open batch first: end it here, so that a
            // failing one is seen by a flush.
            model.flush(&store, ops.len()).await;
            model.check(&store, "before reopening").await;
            drop(store);
            let store = SqliteStore::open(&path).unwrap();
            model.check(&store, "after reopening").await;
        });
    }
}
