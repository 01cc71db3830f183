//! The send log: one entry per idempotency key, its customer, and its status moves.

use nudge_core::store::{Commit, SendRecord, SendStatus, Store, StoreError};

use super::helpers::{Snapshot, at, commit_ok, mark, new, send, sends_of, snapshot};

/// The send log holds one entry per idempotency key, `Pending` when logged, ordered by time and
/// key; a key seen again (in the same commit or a later one) changes nothing, whatever its
/// fields, and never resets a status.
pub async fn send_log_unique_by_key<S: Store>(store: &S) {
    let first = log_with_a_key_twice(store).await;
    log_keys_again(store, &first).await;
    log_for_another_customer(store).await;
}

const UNIQUE_BY_KEY: &str = "send_log_unique_by_key";

/// The first commit of `c-1` logs k-2, k-1, k-3 and k-1 again with other fields; the log holds
/// the first three, in time then key order. Returns the records committed.
async fn log_with_a_key_twice<S: Store>(store: &S) -> [SendRecord; 4] {
    const CHECK: &str = UNIQUE_BY_KEY;
    let mut dup = send("k-1", "c-1", at(9));
    dup.workflow = "other".into();
    let first = [
        send("k-2", "c-1", at(5)),
        send("k-1", "c-1", at(5)),
        send("k-3", "c-1", at(1)),
        dup,
    ];
    commit_ok(
        store,
        CHECK,
        Commit {
            sends: &first,
            ..new("c-1")
        },
    )
    .await;
    let expected = pending(&[first[2].clone(), first[1].clone(), first[0].clone()]);
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await,
        expected,
        "send log after the first commit"
    );
    first
}

/// With k-1 marked sent, a second commit logs k-2 (changed), k-1 and the new k-4: only k-4 is
/// added, and k-1 stays sent.
async fn log_keys_again<S: Store>(store: &S, first: &[SendRecord; 4]) {
    const CHECK: &str = UNIQUE_BY_KEY;
    mark(store, CHECK, ("c-1", "k-1"), SendStatus::Sent, Some("m-1")).await;
    let mut again = send("k-2", "c-1", at(0));
    again.step = "changed".into();
    let second = [again, send("k-1", "c-1", at(5)), send("k-4", "c-1", at(7))];
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            sends: &second,
            ..new("c-1")
        },
    )
    .await;
    let expected = vec![
        (first[2].clone(), SendStatus::Pending),
        (first[1].clone(), SendStatus::Sent),
        (first[0].clone(), SendStatus::Pending),
        (second[2].clone(), SendStatus::Pending),
    ];
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await,
        expected,
        "send log after logging k-1 and k-2 again"
    );
}

/// Each customer's log is its own: c-2's send is in c-2's log only, and a customer never
/// written has none.
async fn log_for_another_customer<S: Store>(store: &S) {
    const CHECK: &str = UNIQUE_BY_KEY;
    let other = [send("k-5", "c-2", at(1))];
    commit_ok(
        store,
        CHECK,
        Commit {
            sends: &other,
            ..new("c-2")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-2").await,
        pending(&other),
        "send log of c-2"
    );
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await.len(),
        4,
        "send log of c-1 after c-2's commit"
    );
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-3").await,
        vec![],
        "send log of a customer never written"
    );
}

/// `records` as the send log lists them just after they are logged.
fn pending(records: &[SendRecord]) -> Vec<(SendRecord, SendStatus)> {
    records
        .iter()
        .map(|r| (r.clone(), SendStatus::Pending))
        .collect()
}

/// A commit that logs an email for another customer is refused with
/// [`StoreError::InvalidCommit`] and writes nothing.
pub async fn send_for_another_customer_is_refused<S: Store>(store: &S) {
    const CHECK: &str = "send_for_another_customer_is_refused";
    let sends = [send("k-1", "c-1", at(1)), send("k-2", "c-2", at(1))];
    let result = store
        .commit(Commit {
            event_id: Some("e-1"),
            sends: &sends,
            ..new("c-1")
        })
        .await;
    ensure!(
        CHECK,
        matches!(result, Err(StoreError::InvalidCommit { .. })),
        "a send for c-2 in a commit of c-1 gave {result:?}, not InvalidCommit"
    );
    let after = snapshot(store, CHECK, "c-1", &["e-1"]).await;
    ensure_eq!(
        CHECK,
        after,
        Snapshot::empty(&["e-1"]),
        "c-1 after the refused commit"
    );
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-2").await,
        vec![],
        "send log of c-2"
    );
}

/// `mark_send` moves a logged email between `Pending` and `Failed` freely and to `Sent`, which
/// is final; an unknown key is [`StoreError::UnknownSend`].
pub async fn mark_send_transitions<S: Store>(store: &S) {
    const CHECK: &str = "mark_send_transitions";
    let sends = [send("k-1", "c-1", at(1)), send("k-2", "c-1", at(2))];
    commit_ok(
        store,
        CHECK,
        Commit {
            sends: &sends,
            ..new("c-1")
        },
    )
    .await;
    let status_of = async |key: &str| {
        sends_of(store, CHECK, "c-1")
            .await
            .into_iter()
            .find(|(s, _)| s.idempotency_key == key)
            .map(|(_, status)| status)
    };
    let steps = [
        (SendStatus::Failed, SendStatus::Failed),
        (SendStatus::Pending, SendStatus::Pending),
        (SendStatus::Failed, SendStatus::Failed),
        (SendStatus::Sent, SendStatus::Sent),
        (SendStatus::Failed, SendStatus::Sent),
        (SendStatus::Pending, SendStatus::Sent),
        (SendStatus::Sent, SendStatus::Sent),
    ];
    for (i, (mark_as, expected)) in steps.into_iter().enumerate() {
        mark(store, CHECK, ("c-1", "k-1"), mark_as, Some("m-1")).await;
        ensure_eq!(
            CHECK,
            status_of("k-1").await,
            Some(expected),
            "k-1 after mark {} ({mark_as:?})",
            i + 1
        );
    }
    ensure_eq!(
        CHECK,
        status_of("k-2").await,
        Some(SendStatus::Pending),
        "k-2 after marking k-1"
    );
    mark(store, CHECK, ("c-1", "k-2"), SendStatus::Sent, None).await;
    ensure_eq!(
        CHECK,
        status_of("k-2").await,
        Some(SendStatus::Sent),
        "k-2 marked sent without a message id"
    );
    let result = store
        .mark_send("c-1", "k-404", SendStatus::Sent, Some("m-2"))
        .await;
    ensure!(
        CHECK,
        matches!(result, Err(StoreError::UnknownSend(ref key)) if key == "k-404"),
        "marking an unknown key gave {result:?}, not UnknownSend(\"k-404\")"
    );
}

/// `mark_send` reaches only the named customer's log: another customer's key is
/// [`StoreError::UnknownSend`] and changes nothing, and marking one customer's email leaves
/// every other customer's log as it was.
pub async fn mark_send_is_per_customer<S: Store>(store: &S) {
    const CHECK: &str = "mark_send_is_per_customer";
    let first = [send("k-1", "c-1", at(1))];
    let second = [send("k-2", "c-2", at(1))];
    for (customer, sends) in [("c-1", &first), ("c-2", &second)] {
        commit_ok(
            store,
            CHECK,
            Commit {
                sends,
                ..new(customer)
            },
        )
        .await;
    }
    let result = store
        .mark_send("c-2", "k-1", SendStatus::Sent, Some("m-1"))
        .await;
    ensure!(
        CHECK,
        matches!(result, Err(StoreError::UnknownSend(ref key)) if key == "k-1"),
        "marking c-1's key as c-2's gave {result:?}, not UnknownSend(\"k-1\")"
    );
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await,
        pending(&first),
        "c-1's log after a mark of its key under c-2"
    );
    mark(store, CHECK, ("c-1", "k-1"), SendStatus::Sent, Some("m-1")).await;
    mark(store, CHECK, ("c-2", "k-2"), SendStatus::Failed, None).await;
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await,
        vec![(first[0].clone(), SendStatus::Sent)],
        "c-1's log after marking c-1's k-1 sent and c-2's k-2 failed"
    );
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-2").await,
        vec![(second[0].clone(), SendStatus::Failed)],
        "c-2's log after marking c-1's k-1 sent and c-2's k-2 failed"
    );
}
