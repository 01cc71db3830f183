//! The store: the contract suite against `SqliteStore` (in memory and on a file, with and
//! without batching), SQLite-specific behaviour (schema, reopening, batches, two connections),
//! a model-based property test, and proof that the contract's checks catch broken stores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, DeadLetter, SendRecord, SendStatus, Store, StoreError,
};
use nudge_local::{Durability, OpenError, SqliteOptions, SqliteStore};
use nudge_testkit::contract;
use proptest::prelude::*;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

use contract::new;

fn send(key: &str, customer_id: &str, workflow: &str) -> SendRecord {
    SendRecord {
        idempotency_key: key.into(),
        customer_id: customer_id.into(),
        workflow: workflow.into(),
        step: "s".into(),
        category: "marketing".into(),
        at: at(1),
    }
}

/// A raw connection to a store file, to look behind the store's back.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn pragma(path: &Path, name: &str) -> String {
    raw(path)
        .pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
}

fn customers_seen_by_another_connection(path: &Path) -> i64 {
    raw(path)
        .query_row("SELECT count(*) FROM customers", [], |row| row.get(0))
        .unwrap()
}

/// Commits and asserts that the commit was applied.
async fn committed(store: &SqliteStore, commit: Commit<'_>) {
    let outcome = store.commit(commit).await.unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Committed { .. }),
        "{outcome:?}"
    );
}

// -- the contract -----------------------------------------------------------------------------

#[tokio::test]
async fn contract_in_memory() {
    contract::run_all(async || SqliteStore::in_memory().unwrap()).await;
}

#[tokio::test]
async fn contract_in_memory_batched() {
    // 3 makes batches end in the middle of checks; 1000 keeps everything in one.
    for n in [3, 1000] {
        contract::run_all(async || {
            SqliteStore::in_memory_with(SqliteOptions::default().batch(n)).unwrap()
        })
        .await;
    }
}

#[tokio::test]
async fn contract_on_file() {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    for batch in [1, 3, 1000] {
        contract::run_all(async || {
            let n = count.fetch_add(1, Ordering::Relaxed);
            let options = SqliteOptions::default().batch(batch);
            SqliteStore::open_with(&dir.path().join(format!("{n}.db")), options).unwrap()
        })
        .await;
    }
}

#[tokio::test]
async fn contract_on_a_scratch_file() {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    for batch in [1, 1000] {
        contract::run_all(async || {
            let n = count.fetch_add(1, Ordering::Relaxed);
            let options = SqliteOptions::default()
                .batch(batch)
                .durability(Durability::Scratch);
            SqliteStore::open_with(&dir.path().join(format!("{n}.db")), options).unwrap()
        })
        .await;
    }
}

/// Generic code can move a store into a spawned task: the trait's futures are `Send`, which a
/// plain `async fn` in a public trait could not promise (and a multi-threaded Lambda runtime
/// needs).
async fn spawn_a_commit<S: Store + 'static>(store: std::sync::Arc<S>) -> CommitOutcome {
    tokio::spawn(async move { store.commit(new("c-1")).await.unwrap() })
        .await
        .unwrap()
}

#[tokio::test]
async fn generic_callers_can_spawn_store_futures() {
    let store = std::sync::Arc::new(SqliteStore::in_memory().unwrap());
    let outcome = spawn_a_commit(store.clone()).await;
    assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 1);
}

// -- schema and files -------------------------------------------------------------------------

#[tokio::test]
async fn a_new_file_gets_the_latest_schema_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(
        pragma(&path, "user_version"),
        SqliteStore::SCHEMA_VERSION.to_string()
    );
    assert_eq!(pragma(&path, "application_id"), 0x4e55_4447.to_string());
    assert_eq!(pragma(&path, "journal_mode"), "wal");
    let tables: Vec<String> = raw(&path)
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in [
        "customers",
        "dead_letters",
        "meta",
        "processed_events",
        "sends",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing from {tables:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_existing_file_is_a_new_store() {
    // What `simulate` opens by default: a scratch file made by tempfile.
    let file = tempfile::NamedTempFile::new().unwrap();
    let store = SqliteStore::open(file.path()).unwrap();
    assert_eq!(
        store.commit(new("c-1")).await.unwrap(),
        CommitOutcome::Committed { version: 1 }
    );
}

#[tokio::test]
async fn opening_twice_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let first = SqliteStore::open(&path).unwrap();
    first.set_meta("k", "v").await.unwrap();
    let second = SqliteStore::open(&path).unwrap();
    assert_eq!(second.get_meta("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::TooNew { found, supported, .. } if found == newer && supported == SqliteStore::SCHEMA_VERSION),
        "got {err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("schema version {newer}")) && message.contains("newer"),
        "{message}"
    );
    assert_eq!(pragma(&path, "user_version"), newer.to_string());
}

#[tokio::test]
async fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    raw(&path)
        .execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::NotAStore { found: 0, .. }),
        "got {err:?}"
    );
    assert!(err.to_string().contains("is not a Nudge store"), "{err}");

    let other = dir.path().join("other-id.db");
    raw(&other)
        .pragma_update(None, "application_id", 42)
        .unwrap();
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(
        matches!(err, OpenError::NotAStore { found: 42, .. }),
        "got {err:?}"
    );

    // Our id with a version no Nudge ever wrote.
    let odd = dir.path().join("odd.db");
    drop(SqliteStore::open(&odd).unwrap());
    raw(&odd).pragma_update(None, "user_version", -1).unwrap();
    let err = SqliteStore::open(&odd).unwrap_err();
    assert!(matches!(err, OpenError::NotAStore { .. }), "got {err:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{\"id\": \"e-1\"}\n".repeat(200)).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Open { .. }), "got {err:?}");
    assert!(err.to_string().contains("events.jsonl"), "{err}");
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let sends = [send("k-1", "c-1", "welcome")];
    let letter = DeadLetter {
        id: 0,
        event_id: Some("e-9".into()),
        source: "events.jsonl:9".into(),
        reason: "bad".into(),
        body: "{".into(),
        received_at: at(9),
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        let commit = Commit {
            state: b"{\"a\":1}",
            next_wake: Some(at(60)),
            event_id: Some("e-1"),
            sends: &sends,
            ..new("c-1")
        };
        assert_eq!(
            store.commit(commit).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        store
            .mark_send("k-1", SendStatus::Sent, Some("m-1"))
            .await
            .unwrap();
        store.record_dead_letter(&letter).await.unwrap();
        store
            .set_meta("clock", "2026-03-01T00:01:00Z")
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.load("c-1").await.unwrap(),
        Some(CustomerRecord {
            version: 1,
            state: b"{\"a\":1}".to_vec()
        })
    );
    assert!(store.is_processed("e-1").await.unwrap());
    assert_eq!(
        store.due(at(60), 10).await.unwrap(),
        vec![(at(60), "c-1".to_owned())]
    );
    assert_eq!(
        store.sends("c-1").await.unwrap(),
        vec![(sends[0].clone(), SendStatus::Sent)]
    );
    assert_eq!(
        store.dead_letters(10).await.unwrap(),
        vec![DeadLetter { id: 1, ..letter }]
    );
    assert_eq!(
        store.get_meta("clock").await.unwrap().as_deref(),
        Some("2026-03-01T00:01:00Z")
    );
}

// -- batches ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_becomes_visible_when_full_or_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(3)).unwrap();
    let ids: Vec<String> = (0..5).map(|i| format!("c-{i}")).collect();
    for id in &ids[..2] {
        committed(&store, new(id)).await;
    }
    // The store reads its own writes; another connection does not see them yet.
    assert!(store.load("c-1").await.unwrap().is_some());
    assert_eq!(customers_seen_by_another_connection(&path), 0);
    // A conflict writes nothing and does not count towards the batch.
    assert_eq!(
        store.commit(new("c-0")).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(customers_seen_by_another_connection(&path), 0);
    committed(&store, new(&ids[2])).await;
    assert_eq!(
        customers_seen_by_another_connection(&path),
        3,
        "a full batch is committed"
    );
    committed(&store, new(&ids[3])).await;
    assert_eq!(customers_seen_by_another_connection(&path), 3);
    store.flush().await.unwrap();
    assert_eq!(
        customers_seen_by_another_connection(&path),
        4,
        "flush commits the batch"
    );
    store.flush().await.unwrap();
    committed(&store, new(&ids[4])).await;
    drop(store);
    assert_eq!(
        customers_seen_by_another_connection(&path),
        5,
        "drop commits the batch"
    );
}

/// Installs a trigger that makes any send of workflow `boom` fail, after the customer row of
/// its commit was written.
fn arm_failing_sends(path: &Path) {
    raw(path)
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON sends WHEN NEW.workflow = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .unwrap();
}

#[tokio::test]
async fn a_failing_write_loses_its_batch_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    arm_failing_sends(&path);
    let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(100)).unwrap();

    committed(&store, new("c-1")).await;
    store.flush().await.unwrap();
    let bad = [send("k-1", "c-1", "fine"), send("k-2", "c-1", "boom")];
    // Staged in the batch: reported done, and read back by this store...
    let failing = Commit {
        expected_version: 1,
        state: b"{\"failed\":true}",
        next_wake: Some(at(5)),
        event_id: Some("e-1"),
        sends: &bad,
        ..new("c-1")
    };
    committed(&store, failing).await;
    committed(
        &store,
        Commit {
            event_id: Some("e-2"),
            ..new("c-2")
        },
    )
    .await;
    assert!(store.is_processed("e-1").await.unwrap());
    // ...until the batch is written: SQLite refuses a row, and the whole batch is rolled back
    // and reported, with the number of writes lost.
    let err = store.flush().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WritesLost {
                lost: 2,
                source: Some(_)
            }
        ),
        "got {err:?}"
    );
    // The store reads what is durable again, and goes on.
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 1);
    assert_eq!(store.load("c-2").await.unwrap(), None);
    assert!(!store.is_processed("e-1").await.unwrap());
    let ok = [send("k-ok", "c-1", "fine")];
    let next = Commit {
        expected_version: 1,
        event_id: Some("e-1"),
        sends: &ok,
        ..new("c-1")
    };
    assert_eq!(
        store.commit(next).await.unwrap(),
        CommitOutcome::Committed { version: 2 }
    );
    store.flush().await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 2);
    assert_eq!(store.load("c-2").await.unwrap(), None);
    assert!(store.is_processed("e-1").await.unwrap());
    assert!(!store.is_processed("e-2").await.unwrap());
    assert_eq!(store.due(at(100), 10).await.unwrap(), vec![]);
    let keys: Vec<String> = store
        .sends("c-1")
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s.idempotency_key)
        .collect();
    assert_eq!(keys, vec!["k-ok".to_owned()]);
}

#[tokio::test]
async fn without_batching_a_failing_commit_is_lost_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    arm_failing_sends(&path);
    let store = SqliteStore::open(&path).unwrap();
    committed(&store, new("c-1")).await;
    let bad = [send("k-2", "c-1", "boom")];
    let err = store
        .commit(Commit {
            expected_version: 1,
            event_id: Some("e-1"),
            sends: &bad,
            ..new("c-1")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WritesLost {
                lost: 1,
                source: Some(_)
            }
        ),
        "got {err:?}"
    );
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 1);
    assert!(!store.is_processed("e-1").await.unwrap());
    assert_eq!(
        store
            .commit(Commit {
                expected_version: 1,
                ..new("c-1")
            })
            .await
            .unwrap(),
        CommitOutcome::Committed { version: 2 }
    );
}

/// A send logged in an open batch and marked before the batch is written keeps its mark; a
/// key that was already stored is marked in the database, not in the batch.
#[tokio::test]
async fn marks_of_sends_in_an_open_batch_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(100)).unwrap();
    let first = [send("k-old", "c-1", "w")];
    committed(
        &store,
        Commit {
            sends: &first,
            ..new("c-1")
        },
    )
    .await;
    store.flush().await.unwrap();
    let again = [send("k-old", "c-1", "w"), send("k-new", "c-1", "w")];
    committed(
        &store,
        Commit {
            expected_version: 1,
            sends: &again,
            ..new("c-1")
        },
    )
    .await;
    store
        .mark_send("k-old", SendStatus::Sent, Some("m-old"))
        .await
        .unwrap();
    store
        .mark_send("k-new", SendStatus::Sent, Some("m-new"))
        .await
        .unwrap();
    store
        .mark_send("k-new", SendStatus::Failed, None)
        .await
        .unwrap();
    store.flush().await.unwrap();
    drop(store);
    let rows: Vec<(String, String, Option<String>)> = raw(&path)
        .prepare("SELECT idempotency_key, status, message_id FROM sends ORDER BY 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            ("k-new".into(), "sent".into(), Some("m-new".into())),
            ("k-old".into(), "sent".into(), Some("m-old".into())),
        ]
    );
}

// -- two connections --------------------------------------------------------------------------

#[test]
fn two_connections_racing_for_a_version_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let stores = [
        SqliteStore::open(&path).unwrap(),
        SqliteStore::open(&path).unwrap(),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for round in 0..50u64 {
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<CommitOutcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(w, store)| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .build()
                            .unwrap();
                        let state = format!("{{\"writer\":{w}}}");
                        let event = format!("e-{round}-{w}");
                        barrier.wait();
                        rt.block_on(store.commit(Commit {
                            expected_version: round,
                            state: state.as_bytes(),
                            event_id: Some(&event),
                            ..new("c-1")
                        }))
                        .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = outcomes
            .iter()
            .filter(|o| **o == CommitOutcome::Committed { version: round + 1 })
            .count();
        assert_eq!(won, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.contains(&CommitOutcome::Conflict),
            "round {round}: {outcomes:?}"
        );
        let record = rt.block_on(stores[0].load("c-1")).unwrap().unwrap();
        assert_eq!(record.version, round + 1);
    }
}

// -- a model ----------------------------------------------------------------------------------

/// One step of a property test.
#[derive(Debug, Clone)]
enum Op {
    Commit {
        customer: u8,
        /// Added to the model's version, so that most commits are current and some stale.
        version_skew: i8,
        event: Option<u8>,
        wake: Option<i64>,
        sends: Vec<u8>,
        /// One of the sends fails inside SQLite (see `arm_failing_sends`).
        fail: bool,
    },
    Mark {
        key: u8,
        status: SendStatus,
    },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    let status = prop_oneof![
        Just(SendStatus::Pending),
        Just(SendStatus::Sent),
        Just(SendStatus::Failed)
    ];
    prop_oneof![
        6 => (
            0..3u8,
            prop_oneof![8 => Just(0i8), 1 => -1..=1i8],
            proptest::option::of(0..8u8),
            proptest::option::of(0..6i64),
            proptest::collection::vec(0..8u8, 0..3),
            proptest::bool::weighted(0.1),
        )
            .prop_map(|(customer, version_skew, event, wake, sends, fail)| Op::Commit {
                customer,
                version_skew,
                event,
                wake,
                sends,
                fail,
            }),
        2 => (0..9u8, status).prop_map(|(key, status)| Op::Mark { key, status }),
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
    /// key -> (customer, status, record)
    sends: HashMap<String, (String, SendStatus, SendRecord)>,
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

    async fn apply(&mut self, store: &SqliteStore, step: usize, op: &Op) {
        match op {
            Op::Commit {
                customer,
                version_skew,
                event,
                wake,
                sends,
                fail,
            } => {
                let customer = format!("c-{customer}");
                let current = self.current.customers.get(&customer).map_or(0, |c| c.0);
                let expected_version = current.saturating_add_signed(i64::from(*version_skew));
                let state = format!("{{\"step\":{step}}}").into_bytes();
                let event = event.map(|e| format!("e-{e}"));
                let wake = wake.map(at);
                let mut records: Vec<SendRecord> = sends
                    .iter()
                    .map(|k| SendRecord {
                        at: at(i64::from(*k)),
                        ..send(&format!("k-{k}"), &customer, "w")
                    })
                    .collect();
                if *fail {
                    records.push(send(&format!("k-boom-{step}"), &customer, "boom"));
                }
                let result = store
                    .commit(Commit {
                        customer_id: &customer,
                        expected_version,
                        state: &state,
                        next_wake: wake,
                        event_id: event.as_deref(),
                        sends: &records,
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
                    let held = &mut self.current;
                    held.customers
                        .insert(customer.clone(), (current + 1, state, wake));
                    if let Some(e) = event {
                        held.processed.insert(e);
                    }
                    for r in records {
                        held.sends.entry(r.idempotency_key.clone()).or_insert((
                            customer.clone(),
                            SendStatus::Pending,
                            r,
                        ));
                    }
                    self.wrote(*fail)
                } else {
                    None
                };
                match (result, lost) {
                    (Ok(got), None) => assert_eq!(got, outcome, "step {step}: {op:?}"),
                    (Err(StoreError::WritesLost { lost: got, .. }), Some(lost)) => {
                        assert_eq!(got, lost, "step {step}: {op:?}")
                    }
                    (got, lost) => {
                        panic!(
                            "step {step}: {op:?}: got {got:?}, expected {outcome:?}, lost {lost:?}"
                        )
                    }
                }
            }
            Op::Mark { key, status } => {
                let key = format!("k-{key}");
                let result = store.mark_send(&key, *status, None).await;
                match self.current.sends.get_mut(&key) {
                    None => assert!(
                        matches!(result, Err(StoreError::UnknownSend(_))),
                        "step {step}: {op:?}: {result:?}"
                    ),
                    Some(entry) => {
                        let lost = if entry.1 != SendStatus::Sent {
                            entry.1 = *status;
                            self.wrote(false)
                        } else {
                            None
                        };
                        match (result, lost) {
                            (Ok(()), None) => {}
                            (Err(StoreError::WritesLost { lost: got, .. }), Some(lost)) => {
                                assert_eq!(got, lost, "step {step}: {op:?}")
                            }
                            (got, lost) => {
                                panic!("step {step}: {op:?}: got {got:?}, lost {lost:?}")
                            }
                        }
                    }
                }
            }
            Op::Flush => self.flush(store, step).await,
        }
    }

    async fn flush(&mut self, store: &SqliteStore, step: usize) {
        let result = store.flush().await;
        match (result, self.end_batch()) {
            (Ok(()), None) => {}
            (Err(StoreError::WritesLost { lost: got, .. }), Some(lost)) => {
                assert_eq!(got, lost, "step {step}: flush")
            }
            (got, lost) => panic!("step {step}: flush: got {got:?}, lost {lost:?}"),
        }
    }

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
            let mut sends: Vec<(SendRecord, SendStatus)> = held
                .sends
                .values()
                .filter(|(customer, ..)| *customer == id)
                .map(|(_, status, record)| (record.clone(), *status))
                .collect();
            sends.sort_by(|a, b| {
                (a.0.at, &a.0.idempotency_key).cmp(&(b.0.at, &b.0.idempotency_key))
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
            store.due(at(1000), 100).await.unwrap(),
            due,
            "{when}: timers"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any sequence of commits, marks and flushes, in batches of any size, leaves the store as
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

// -- the contract can fail --------------------------------------------------------------------

/// A way to break a store, each against one rule of the contract.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Commits whatever the version.
    IgnoreVersion,
    /// Never marks events processed.
    ForgetEvents,
    /// Checks the version before the event id.
    ConflictBeforeDuplicate,
    /// Loads one version too low.
    LoadStaleVersion,
    /// Keeps only the first 32 KiB of a state.
    TruncateState,
    /// Returns due timers newest first.
    DueReversed,
    /// Treats `until` as exclusive.
    DueExclusive,
    /// Ignores the limit of `due`.
    DueUnlimited,
    /// Keeps the old timer when a commit clears it.
    KeepTimer,
    /// Lists every send twice.
    SendsTwice,
    /// Drops sends for other customers instead of refusing the commit.
    DropForeignSends,
    /// Ignores `mark_send`.
    MarkIgnored,
    /// Accepts marks of unknown keys.
    MarkUnknownOk,
    /// Returns every dead letter id as 0.
    DeadLetterIdZero,
    /// Lists dead letters newest first.
    DeadLettersReversed,
    /// Keeps less of a dead letter's body than allowed.
    BodyCutShort,
    /// Never overwrites metadata.
    MetaNotOverwritten,
    /// Flush fails.
    FlushFails,
}

/// `SqliteStore` with one fault.
struct Faulty {
    inner: SqliteStore,
    fault: Fault,
}

impl Store for Faulty {
    async fn load(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        let record = self.inner.load(customer_id).await?;
        Ok(match self.fault {
            Fault::LoadStaleVersion => record.map(|r| CustomerRecord {
                version: r.version - 1,
                ..r
            }),
            _ => record,
        })
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let current = self
            .inner
            .load(commit.customer_id)
            .await?
            .map(|r| r.version);
        let foreign_dropped: Vec<SendRecord>;
        let mut commit = commit;
        match self.fault {
            Fault::IgnoreVersion => commit.expected_version = current.unwrap_or(0),
            Fault::ForgetEvents => commit.event_id = None,
            Fault::ConflictBeforeDuplicate if current.unwrap_or(0) != commit.expected_version => {
                return Ok(CommitOutcome::Conflict);
            }
            Fault::TruncateState => {
                commit.state = &commit.state[..commit.state.len().min(32 * 1024)];
            }
            Fault::KeepTimer if commit.next_wake.is_none() => {
                let far = at(100_000_000);
                commit.next_wake = self
                    .inner
                    .due(far, 10_000)
                    .await?
                    .into_iter()
                    .find(|(_, id)| id == commit.customer_id)
                    .map(|(t, _)| t);
            }
            Fault::DropForeignSends => {
                foreign_dropped = commit
                    .sends
                    .iter()
                    .filter(|s| s.customer_id == commit.customer_id)
                    .cloned()
                    .collect();
                commit.sends = &foreign_dropped;
            }
            _ => {}
        }
        self.inner.commit(commit).await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.inner.is_processed(event_id).await
    }

    async fn due(
        &self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
        match self.fault {
            Fault::DueReversed => {
                let mut due = self.inner.due(until, limit).await?;
                due.reverse();
                Ok(due)
            }
            Fault::DueExclusive => {
                self.inner
                    .due(until - Duration::milliseconds(1), limit)
                    .await
            }
            Fault::DueUnlimited => self.inner.due(until, usize::MAX).await,
            _ => self.inner.due(until, limit).await,
        }
    }

    async fn mark_send(
        &self,
        key: &str,
        status: SendStatus,
        message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        match self.fault {
            Fault::MarkIgnored => Ok(()),
            Fault::MarkUnknownOk => match self.inner.mark_send(key, status, message_id).await {
                Err(StoreError::UnknownSend(_)) => Ok(()),
                other => other,
            },
            _ => self.inner.mark_send(key, status, message_id).await,
        }
    }

    async fn sends(&self, customer_id: &str) -> Result<Vec<(SendRecord, SendStatus)>, StoreError> {
        let sends = self.inner.sends(customer_id).await?;
        Ok(match self.fault {
            Fault::SendsTwice => sends.iter().flat_map(|s| [s.clone(), s.clone()]).collect(),
            _ => sends,
        })
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<u64, StoreError> {
        match self.fault {
            Fault::DeadLetterIdZero => self.inner.record_dead_letter(letter).await.map(|_| 0),
            Fault::BodyCutShort => {
                let body: String = letter.body.chars().take(1000).collect();
                self.inner
                    .record_dead_letter(&DeadLetter {
                        body,
                        ..letter.clone()
                    })
                    .await
            }
            _ => self.inner.record_dead_letter(letter).await,
        }
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        match self.fault {
            Fault::DeadLettersReversed => {
                let mut all = self.inner.dead_letters(usize::MAX).await?;
                all.reverse();
                all.truncate(limit);
                Ok(all)
            }
            _ => self.inner.dead_letters(limit).await,
        }
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_meta(key).await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        match self.fault {
            Fault::MetaNotOverwritten if self.inner.get_meta(key).await?.is_some() => Ok(()),
            _ => self.inner.set_meta(key, value).await,
        }
    }

    async fn flush(&self) -> Result<(), StoreError> {
        match self.fault {
            Fault::FlushFails => Err(StoreError::Corrupt("flush broken on purpose".into())),
            _ => self.inner.flush().await,
        }
    }
}

/// Runs the contract check `check` against a store with `fault`; returns its panic message, or
/// `None` if it passed.
fn failure_of(check: &str, fault: Fault) -> Option<String> {
    let store = Faulty {
        inner: SqliteStore::in_memory().unwrap(),
        fault,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let run = std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            match check {
                "create_then_load" => contract::create_then_load(&store).await,
                "versions_increment" => contract::versions_increment(&store).await,
                "stale_version_conflicts" => contract::stale_version_conflicts(&store).await,
                "missing_customer_conflicts" => contract::missing_customer_conflicts(&store).await,
                "duplicate_event_already_processed" => {
                    contract::duplicate_event_already_processed(&store).await
                }
                "already_processed_wins_over_conflict" => {
                    contract::already_processed_wins_over_conflict(&store).await
                }
                "event_ids_are_global" => contract::event_ids_are_global(&store).await,
                "concurrent_writers_one_wins" => {
                    contract::concurrent_writers_one_wins(&store).await
                }
                "due_orders_and_limits" => contract::due_orders_and_limits(&store).await,
                "timer_moves_and_clears" => contract::timer_moves_and_clears(&store).await,
                "send_log_unique_by_key" => contract::send_log_unique_by_key(&store).await,
                "send_for_another_customer_is_refused" => {
                    contract::send_for_another_customer_is_refused(&store).await
                }
                "mark_send_transitions" => contract::mark_send_transitions(&store).await,
                "dead_letters_round_trip" => contract::dead_letters_round_trip(&store).await,
                "dead_letter_body_truncated" => contract::dead_letter_body_truncated(&store).await,
                "meta_get_set_overwrite" => contract::meta_get_set_overwrite(&store).await,
                "flush_is_repeatable" => contract::flush_is_repeatable(&store).await,
                "state_bytes_round_trip" => contract::state_bytes_round_trip(&store).await,
                other => panic!("no contract check named {other}"),
            }
        })
    });
    std::panic::catch_unwind(run).err().map(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Keeps the expected panics of `contract_checks_catch_broken_stores` out of the test output.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = std::thread::current()
                .name()
                .is_some_and(|n| n.contains("contract_checks_catch_broken_stores"));
            if !expected {
                default(info);
            }
        }));
    });
}

#[test]
fn contract_checks_catch_broken_stores() {
    quiet_expected_panics();
    let cases = [
        ("stale_version_conflicts", Fault::IgnoreVersion),
        ("missing_customer_conflicts", Fault::IgnoreVersion),
        ("concurrent_writers_one_wins", Fault::IgnoreVersion),
        ("duplicate_event_already_processed", Fault::ForgetEvents),
        ("event_ids_are_global", Fault::ForgetEvents),
        (
            "already_processed_wins_over_conflict",
            Fault::ConflictBeforeDuplicate,
        ),
        ("create_then_load", Fault::LoadStaleVersion),
        ("versions_increment", Fault::LoadStaleVersion),
        ("state_bytes_round_trip", Fault::TruncateState),
        ("due_orders_and_limits", Fault::DueReversed),
        ("due_orders_and_limits", Fault::DueExclusive),
        ("due_orders_and_limits", Fault::DueUnlimited),
        ("timer_moves_and_clears", Fault::KeepTimer),
        ("send_log_unique_by_key", Fault::SendsTwice),
        (
            "send_for_another_customer_is_refused",
            Fault::DropForeignSends,
        ),
        ("mark_send_transitions", Fault::MarkIgnored),
        ("mark_send_transitions", Fault::MarkUnknownOk),
        ("dead_letters_round_trip", Fault::DeadLetterIdZero),
        ("dead_letters_round_trip", Fault::DeadLettersReversed),
        ("dead_letter_body_truncated", Fault::BodyCutShort),
        ("meta_get_set_overwrite", Fault::MetaNotOverwritten),
        ("flush_is_repeatable", Fault::FlushFails),
    ];
    let mut missed = Vec::new();
    for (check, fault) in cases {
        match failure_of(check, fault) {
            Some(message) => assert!(
                message.contains(&format!("store contract `{check}`")),
                "{check} with {fault:?} failed without naming itself: {message}"
            ),
            None => missed.push(format!("{check} passed a store with {fault:?}")),
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}
