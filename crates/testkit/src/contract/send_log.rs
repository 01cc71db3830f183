//! The send log, the outbox of the send guarantee: one entry per idempotency key, its
//! customer, claims and their leases, and how a send is settled.

use nudge_core::store::{
    Commit, SendEntry, SendKind, SendRecord, SendStatus, Settle, Store, StoreError,
};

use super::helpers::{
    Snapshot, at, claim, commit_ok, entry, logged, new, send, sends_of, settle, snapshot,
};

/// The send log holds one entry per idempotency key, `Pending` when logged (deliverable at its
/// time, no attempts), every field and the payload's bytes as logged, ordered by time and key;
/// a key seen again (in the same commit or a later one) changes nothing, whatever its fields,
/// and never resets a status.
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

/// With k-1 sent, a second commit logs k-2 (changed), k-1 and the new k-4, a webhook call:
/// only k-4 is added, and k-1 stays sent.
async fn log_keys_again<S: Store>(store: &S, first: &[SendRecord; 4]) {
    const CHECK: &str = UNIQUE_BY_KEY;
    claim(store, CHECK, ("c-1", "k-1"), at(5), at(65)).await;
    let sent = Settle::Sent {
        message_id: Some("m-1"),
    };
    settle(store, CHECK, ("c-1", "k-1"), sent).await;
    let mut again = send("k-2", "c-1", at(0));
    again.step = "changed".into();
    let mut webhook = send("k-4", "c-1", at(7));
    webhook.kind = SendKind::Webhook;
    webhook.category = "webhook".into();
    webhook.tags = vec![];
    webhook.payload = br#"{"url":"https://example.com/hook"}"#.to_vec();
    let second = [again, send("k-1", "c-1", at(5)), webhook];
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
        logged(&first[2]),
        SendEntry {
            status: SendStatus::Sent,
            attempts: 1,
            retry_at: None,
            message_id: Some("m-1".into()),
            ..logged(&first[1])
        },
        logged(&first[0]),
        logged(&second[2]),
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
fn pending(records: &[SendRecord]) -> Vec<SendEntry> {
    records.iter().map(logged).collect()
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

/// A claim takes a send that is pending and due, or whose claim's lease ended, and returns it
/// as it was; it counts the attempt and holds the send until the lease ends. A send claimed
/// and held, not yet due, or settled is not claimed again; an unknown key (or another
/// customer's) is [`StoreError::UnknownSend`].
pub async fn claims_are_exclusive_and_leased<S: Store>(store: &S) {
    const CHECK: &str = "claims_are_exclusive_and_leased";
    let records = [send("k-1", "c-1", at(10)), send("k-2", "c-2", at(10))];
    for (customer, record) in [("c-1", &records[..1]), ("c-2", &records[1..])] {
        let sends = record;
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
    let k1 = ("c-1", "k-1");
    let early = claim(store, CHECK, k1, at(9), at(69)).await;
    ensure_eq!(CHECK, early, None, "a claim before the send's time");
    let first = claim(store, CHECK, k1, at(10), at(70)).await;
    ensure_eq!(
        CHECK,
        first,
        Some(logged(&records[0])),
        "the first claim, at the send's time"
    );
    let held = SendEntry {
        status: SendStatus::Sending,
        attempts: 1,
        retry_at: Some(at(70)),
        ..logged(&records[0])
    };
    ensure_eq!(
        CHECK,
        entry(store, CHECK, k1).await,
        Some(held.clone()),
        "k-1 once claimed"
    );
    let second = claim(store, CHECK, k1, at(69), at(129)).await;
    ensure_eq!(CHECK, second, None, "a second claim within the lease");
    ensure_eq!(
        CHECK,
        entry(store, CHECK, k1).await,
        Some(held.clone()),
        "k-1 after a refused claim"
    );
    let taken_over = claim(store, CHECK, k1, at(70), at(130)).await;
    ensure_eq!(CHECK, taken_over, Some(held), "a claim when the lease ends");
    ensure_eq!(
        CHECK,
        entry(store, CHECK, k1)
            .await
            .map(|e| (e.status, e.attempts, e.retry_at)),
        Some((SendStatus::Sending, 2, Some(at(130)))),
        "k-1 after it was taken over"
    );
    let sent = Settle::Sent { message_id: None };
    settle(store, CHECK, k1, sent).await;
    let after = claim(store, CHECK, k1, at(1000), at(1060)).await;
    ensure_eq!(CHECK, after, None, "a claim of a sent email");
    for (customer, key) in [("c-1", "k-404"), ("c-1", "k-2")] {
        let result = store.claim_send(customer, key, at(10), at(70)).await;
        ensure!(
            CHECK,
            matches!(result, Err(StoreError::UnknownSend(ref k)) if k == key),
            "claiming {key} as {customer}'s gave {result:?}, not UnknownSend"
        );
    }
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-2").await,
        vec![logged(&records[1])],
        "c-2's log after a claim of its key as c-1's"
    );
}

/// How each [`Settle`] applies: a retry puts a claimed send back to pending at its time, a
/// failure or an unknown outcome is final; a sent settles from every status but sent (mail
/// left, whatever the log said), keeping the first message id; a settle that does not apply
/// returns false and changes nothing; an unknown key is [`StoreError::UnknownSend`].
pub async fn settles_move_a_send_as_documented<S: Store>(store: &S) {
    const CHECK: &str = "settles_move_a_send_as_documented";
    let records: Vec<SendRecord> = (1..=4)
        .map(|i| send(&format!("k-{i}"), "c-1", at(1)))
        .collect();
    commit_ok(
        store,
        CHECK,
        Commit {
            sends: &records,
            ..new("c-1")
        },
    )
    .await;
    let state = async |key: &str| {
        entry(store, CHECK, ("c-1", key))
            .await
            .map(|e| (e.status, e.retry_at, e.message_id, e.reason))
    };
    let k1 = ("c-1", "k-1");
    // Not claimed: only a sent applies.
    let retry = Settle::Retry {
        at: at(100),
        reason: "busy",
        lease: at(61),
    };
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, retry).await,
        false,
        "a retry of a pending send"
    );
    let failed = Settle::Failed {
        reason: "refused",
        lease: at(160),
    };
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, failed).await,
        false,
        "a failure of a pending send"
    );
    ensure_eq!(
        CHECK,
        state("k-1").await,
        Some((SendStatus::Pending, Some(at(1)), None, None)),
        "k-1 untouched"
    );
    // Claimed, then a retry: pending at the retry's time, not claimable before.
    claim(store, CHECK, k1, at(1), at(61)).await;
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, retry).await,
        true,
        "a retry of a claimed send"
    );
    ensure_eq!(
        CHECK,
        state("k-1").await,
        Some((
            SendStatus::Pending,
            Some(at(100)),
            None,
            Some("busy".into())
        )),
        "k-1 after a retry"
    );
    ensure_eq!(
        CHECK,
        claim(store, CHECK, k1, at(99), at(159)).await,
        None,
        "a claim before the retry's time"
    );
    ensure!(
        CHECK,
        claim(store, CHECK, k1, at(100), at(160)).await.is_some(),
        "a claim at the retry's time"
    );
    // A settle of an earlier claim (its lease ended and the send was claimed again) does not
    // apply: the send's new holder settles it.
    let stale = Settle::Failed {
        reason: "late",
        lease: at(61),
    };
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, stale).await,
        false,
        "a failure under the earlier claim"
    );
    let stale_retry = Settle::Retry {
        at: at(200),
        reason: "late",
        lease: at(61),
    };
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, stale_retry).await,
        false,
        "a retry under the earlier claim"
    );
    ensure_eq!(
        CHECK,
        state("k-1").await.map(|s| (s.0, s.1)),
        Some((SendStatus::Sending, Some(at(160)))),
        "k-1 still held by the later claim"
    );
    // Failed: final, but a late sent still applies (the mail left).
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, failed).await,
        true,
        "a failure of a claimed send"
    );
    ensure_eq!(
        CHECK,
        state("k-1").await,
        Some((SendStatus::Failed, None, None, Some("refused".into()))),
        "k-1 failed"
    );
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, retry).await,
        false,
        "a retry of a failed send"
    );
    let sent = |id| Settle::Sent {
        message_id: Some(id),
    };
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, sent("m-1")).await,
        true,
        "a sent of a failed send"
    );
    ensure_eq!(
        CHECK,
        state("k-1").await.map(|s| (s.0, s.1, s.2)),
        Some((SendStatus::Sent, None, Some("m-1".into()))),
        "k-1 sent"
    );
    // Sent is final; the first id stays.
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, sent("m-2")).await,
        false,
        "a second sent"
    );
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k1, failed).await,
        false,
        "a failure of a sent send"
    );
    ensure_eq!(
        CHECK,
        state("k-1").await.map(|s| (s.0, s.2)),
        Some((SendStatus::Sent, Some("m-1".into()))),
        "k-1 after later settles"
    );
    // Unknown: final; a sent still applies.
    let k2 = ("c-1", "k-2");
    claim(store, CHECK, k2, at(1), at(61)).await;
    let unknown = Settle::Unknown {
        reason: "stopped",
        lease: at(61),
    };
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k2, unknown).await,
        true,
        "an unknown of a claimed send"
    );
    ensure_eq!(
        CHECK,
        state("k-2").await,
        Some((SendStatus::Unknown, None, None, Some("stopped".into()))),
        "k-2 unknown"
    );
    ensure_eq!(
        CHECK,
        claim(store, CHECK, k2, at(1000), at(1060)).await,
        None,
        "a claim of an unknown send"
    );
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k2, sent("m-3")).await,
        true,
        "a sent of an unknown send"
    );
    // Sent straight from pending, without a message id.
    let k3 = ("c-1", "k-3");
    ensure_eq!(
        CHECK,
        settle(store, CHECK, k3, Settle::Sent { message_id: None }).await,
        true,
        "a sent of a pending send"
    );
    ensure_eq!(
        CHECK,
        state("k-3").await,
        Some((SendStatus::Sent, None, None, None)),
        "k-3 sent without an id"
    );
    ensure_eq!(
        CHECK,
        state("k-4").await,
        Some((SendStatus::Pending, Some(at(1)), None, None)),
        "k-4, never settled"
    );
    let result = store.settle_send("c-2", "k-4", sent("m-4")).await;
    ensure!(
        CHECK,
        matches!(result, Err(StoreError::UnknownSend(ref k)) if k == "k-4"),
        "settling c-1's k-4 as c-2's gave {result:?}, not UnknownSend"
    );
    ensure_eq!(
        CHECK,
        state("k-4").await,
        Some((SendStatus::Pending, Some(at(1)), None, None)),
        "k-4 after a settle under c-2"
    );
}

/// Of several senders claiming one send at once, exactly one gets it.
pub async fn concurrent_claims_one_wins<S: Store>(store: &S) {
    const CHECK: &str = "concurrent_claims_one_wins";
    let records = [send("k-1", "c-1", at(1))];
    commit_ok(
        store,
        CHECK,
        Commit {
            sends: &records,
            ..new("c-1")
        },
    )
    .await;
    let one = || store.claim_send("c-1", "k-1", at(1), at(61));
    let (a, b, c, d) = tokio::join!(one(), one(), one(), one());
    let won = [a, b, c, d]
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("store contract `{CHECK}`: claim failed: {e}")))
        .filter(Option::is_some)
        .count();
    ensure_eq!(CHECK, won, 1, "claims won among 4 at once");
}
