//! What the checks share: the snapshot of a customer, commit and time builders, and store
//! calls that fail the check with its name instead of returning an error.

use chrono::{DateTime, Duration, TimeZone, Utc};

use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, DeadLetter, DuePage, SendEntry, SendKind, SendPage,
    SendRecord, SendStatus, Settle, Store, all_due,
};

/// What a store holds about one customer, to compare before and after a write that must not
/// change anything.
#[derive(Debug, PartialEq)]
pub(super) struct Snapshot {
    pub(super) record: Option<CustomerRecord>,
    pub(super) timers: Vec<(DateTime<Utc>, String)>,
    pub(super) sends: Vec<SendEntry>,
    pub(super) processed: Vec<(String, bool)>,
}

impl Snapshot {
    /// A customer never written, with `event_ids` not processed.
    pub(super) fn empty(event_ids: &[&str]) -> Self {
        Snapshot {
            record: None,
            timers: vec![],
            sends: vec![],
            processed: event_ids.iter().map(|id| (id.to_string(), false)).collect(),
        }
    }
}

/// What `store` holds about `customer_id`, and whether each of `event_ids` is processed.
pub(super) async fn snapshot<S: Store>(
    store: &S,
    check: &str,
    customer_id: &str,
    event_ids: &[&str],
) -> Snapshot {
    let mut processed = Vec::new();
    for id in event_ids {
        processed.push((id.to_string(), is_processed(store, check, id).await));
    }
    Snapshot {
        record: load(store, check, customer_id).await,
        timers: due_all(store, check, far_future())
            .await
            .into_iter()
            .filter(|(_, id)| id == customer_id)
            .collect(),
        sends: sends_of(store, check, customer_id).await,
        processed,
    }
}

/// The first commit of `customer_id` with state `{}` and nothing else; override with
/// `Commit { .., ..new(id) }`. Public for store tests outside this suite.
pub fn new(customer_id: &str) -> Commit<'_> {
    Commit {
        customer_id,
        expected_version: 0,
        state: b"{}",
        next_wake: None,
        event_id: None,
        sends: &[],
        journal: &[],
    }
}

/// 2026-03-01T00:00:00Z plus `secs` seconds.
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

/// A time after every timer a check sets.
pub(super) fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap()
}

/// A marketing email of `welcome-series` to log for `customer_id` under `key`, with two tags
/// and a payload that is not UTF-8 (a store keeps bytes, not text).
pub(super) fn send(key: &str, customer_id: &str, at: DateTime<Utc>) -> SendRecord {
    let mut payload = format!("Subject: {key}\r\n\r\n").into_bytes();
    payload.extend_from_slice(&[0xff, 0x00, 0xc3]);
    SendRecord {
        idempotency_key: key.to_owned(),
        customer_id: customer_id.to_owned(),
        workflow: "welcome-series".to_owned(),
        step: "hello".to_owned(),
        kind: SendKind::Email,
        category: "marketing".to_owned(),
        tags: vec!["spring".to_owned(), "vip-2".to_owned()],
        at,
        payload,
    }
}

/// `record` as the send log holds it just after a commit logged it.
pub(super) fn logged(record: &SendRecord) -> SendEntry {
    SendEntry {
        record: record.clone(),
        status: SendStatus::Pending,
        attempts: 0,
        retry_at: Some(record.at),
        message_id: None,
        reason: None,
    }
}

/// Commits, failing the check on a store error (an outcome is the check's to judge).
pub(super) async fn commit<S: Store>(store: &S, check: &str, commit: Commit<'_>) -> CommitOutcome {
    let customer = commit.customer_id;
    store
        .commit(commit)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: commit of {customer} failed: {e}"))
}

/// Commits and fails the check unless the commit is applied.
pub(super) async fn commit_ok<S: Store>(store: &S, check: &str, c: Commit<'_>) {
    let (customer, version) = (c.customer_id, c.expected_version);
    let outcome = commit(store, check, c).await;
    ensure_eq!(
        check,
        outcome,
        CommitOutcome::Committed {
            version: version + 1
        },
        "set-up commit of {customer} at version {version}"
    );
}

/// Loads `customer_id`, failing the check on a store error.
pub(super) async fn load<S: Store>(
    store: &S,
    check: &str,
    customer_id: &str,
) -> Option<CustomerRecord> {
    store
        .load(customer_id)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: load of {customer_id} failed: {e}"))
}

/// Whether `event_id` is processed, failing the check on a store error.
pub(super) async fn is_processed<S: Store>(store: &S, check: &str, event_id: &str) -> bool {
    store.is_processed(event_id).await.unwrap_or_else(|e| {
        panic!("store contract `{check}`: is_processed({event_id}) failed: {e}")
    })
}

/// Every timer due until `until`, from every shard, read 3 at a time and ordered by time and
/// customer, failing the check on a store error.
pub(super) async fn due_all<S: Store>(
    store: &S,
    check: &str,
    until: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, String)> {
    all_due(store, until, 3)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: due failed: {e}"))
}

/// One page of shard `shard`'s timers due until `until`, failing the check on a store error.
pub(super) async fn due_page<S: Store>(
    store: &S,
    check: &str,
    shard: u16,
    until: DateTime<Utc>,
    limit: usize,
    cursor: Option<&str>,
) -> DuePage {
    store
        .due(shard, until, limit, cursor)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: due of shard {shard} failed: {e}"))
}

/// The send log of `customer_id`, failing the check on a store error.
pub(super) async fn sends_of<S: Store>(
    store: &S,
    check: &str,
    customer_id: &str,
) -> Vec<SendEntry> {
    store
        .sends(customer_id)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: sends of {customer_id} failed: {e}"))
}

/// The entry `key` of `customer_id`'s send log, failing the check on a store error.
pub(super) async fn entry<S: Store>(
    store: &S,
    check: &str,
    (customer_id, key): (&str, &str),
) -> Option<SendEntry> {
    sends_of(store, check, customer_id)
        .await
        .into_iter()
        .find(|e| e.record.idempotency_key == key)
}

/// Claims the send `key` of `customer_id` at `now` until `lease_until`, failing the check on a
/// store error.
pub(super) async fn claim<S: Store>(
    store: &S,
    check: &str,
    (customer_id, key): (&str, &str),
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Option<SendEntry> {
    store
        .claim_send(customer_id, key, now, lease_until)
        .await
        .unwrap_or_else(|e| {
            panic!("store contract `{check}`: claim_send({customer_id}, {key}) failed: {e}")
        })
}

/// Settles the send `key` of `customer_id`, failing the check on a store error.
pub(super) async fn settle<S: Store>(
    store: &S,
    check: &str,
    (customer_id, key): (&str, &str),
    settle: Settle<'_>,
) -> bool {
    store
        .settle_send(customer_id, key, settle)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "store contract `{check}`: settle_send({customer_id}, {key}, {settle:?}) failed: {e}"
            )
        })
}

/// One page of shard `shard`'s deliverable sends until `until`, failing the check on a store
/// error.
pub(super) async fn sends_page<S: Store>(
    store: &S,
    check: &str,
    shard: u16,
    until: DateTime<Utc>,
    limit: usize,
    cursor: Option<&str>,
) -> SendPage {
    store
        .pending_sends(shard, until, limit, cursor)
        .await
        .unwrap_or_else(|e| {
            panic!("store contract `{check}`: pending_sends of shard {shard} failed: {e}")
        })
}

/// The first `limit` dead letters, failing the check on a store error.
pub(super) async fn dead<S: Store>(store: &S, check: &str, limit: usize) -> Vec<DeadLetter> {
    store
        .dead_letters(limit)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: dead_letters failed: {e}"))
}

/// The metadata `key`, failing the check on a store error.
pub(super) async fn meta<S: Store>(store: &S, check: &str, key: &str) -> Option<String> {
    store
        .get_meta(key)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: get_meta({key}) failed: {e}"))
}
