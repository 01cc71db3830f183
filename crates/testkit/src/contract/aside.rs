//! What a store keeps beside the customers' state and send log: feedback counts per workflow
//! step, inputs parked until their order is seen, and the erasure of a customer.

use chrono::{DateTime, Utc};
use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, DeadLetter, Erased, Feedback, FeedbackCount,
    FeedbackKind, Parked, Settle, Store, StoreError, all_due,
};

use super::helpers::{
    at, claim, commit, commit_ok, dead, far_future, is_processed, load, new, send, sends_of,
    settle, snapshot,
};

/// Counts `event_id` for (`workflow`, `step`, `kind`), failing the check on a store error.
async fn record<S: Store>(
    store: &S,
    check: &str,
    event_id: &str,
    (workflow, step, kind): (&str, &str, FeedbackKind),
) -> bool {
    let feedback = Feedback {
        event_id,
        workflow,
        step,
        kind,
        at: at(1),
    };
    store.record_feedback(&feedback).await.unwrap_or_else(|e| {
        panic!("store contract `{check}`: record_feedback({event_id}) failed: {e}")
    })
}

/// Every feedback count, failing the check on a store error.
async fn counts<S: Store>(store: &S, check: &str) -> Vec<FeedbackCount> {
    store
        .feedback_counts()
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: feedback_counts failed: {e}"))
}

/// A count as [`Store::feedback_counts`] lists it.
fn count(workflow: &str, step: &str, kind: FeedbackKind, count: u64) -> FeedbackCount {
    FeedbackCount {
        workflow: workflow.to_owned(),
        step: step.to_owned(),
        kind,
        count,
    }
}

/// A feedback event is counted once, however often it is recorded: the first record says it
/// counted, a second (even for another step or kind) says it did not and changes nothing.
/// Feedback event ids are not processed event ids: neither marks the other.
pub async fn feedback_is_counted_once<S: Store>(store: &S) {
    const CHECK: &str = "feedback_is_counted_once";
    ensure_eq!(CHECK, counts(store, CHECK).await, vec![], "a new store");
    let hello = ("welcome-series", "hello", FeedbackKind::Delivered);
    ensure!(
        CHECK,
        record(store, CHECK, "f-1", hello).await,
        "the first record of f-1 did not count"
    );
    ensure!(
        CHECK,
        !record(store, CHECK, "f-1", hello).await,
        "a second record of f-1 counted"
    );
    ensure!(
        CHECK,
        !record(
            store,
            CHECK,
            "f-1",
            ("welcome-series", "hello", FeedbackKind::Opened)
        )
        .await,
        "f-1 recorded again as another kind counted"
    );
    ensure!(
        CHECK,
        record(store, CHECK, "f-2", hello).await,
        "f-2 did not count"
    );
    ensure_eq!(
        CHECK,
        counts(store, CHECK).await,
        vec![count("welcome-series", "hello", FeedbackKind::Delivered, 2)],
        "after f-1 three times and f-2 once"
    );
    ensure!(
        CHECK,
        !is_processed(store, CHECK, "f-1").await,
        "a feedback event id is a processed event id"
    );
    commit_ok(
        store,
        CHECK,
        Commit {
            event_id: Some("e-1"),
            ..new("c-1")
        },
    )
    .await;
    ensure!(
        CHECK,
        record(store, CHECK, "e-1", hello).await,
        "a feedback event with a processed event's id did not count"
    );
}

/// `feedback_counts` lists one count per (workflow, step, kind) counted, ordered by workflow,
/// step (byte order) and kind ([`FeedbackKind::ALL`]'s order, not the names'), whatever the
/// order they were counted in.
pub async fn feedback_counts_are_ordered<S: Store>(store: &S) {
    const CHECK: &str = "feedback_counts_are_ordered";
    let recorded = [
        ("winback", "offer", FeedbackKind::Unsubscribed),
        ("welcome-series", "hello", FeedbackKind::Opened),
        ("winback", "offer", FeedbackKind::Bounced),
        ("welcome-series", "hello", FeedbackKind::Delivered),
        ("welcome-series", "Hello", FeedbackKind::Clicked),
        ("welcome-series", "hello", FeedbackKind::Opened),
        ("welcome-series", "follow-up", FeedbackKind::Complained),
        ("welcome-series", "hello", FeedbackKind::Opened),
    ];
    for (i, feedback) in recorded.into_iter().enumerate() {
        ensure!(
            CHECK,
            record(store, CHECK, &format!("f-{i}"), feedback).await,
            "f-{i} did not count"
        );
    }
    ensure_eq!(
        CHECK,
        counts(store, CHECK).await,
        vec![
            count("welcome-series", "Hello", FeedbackKind::Clicked, 1),
            count("welcome-series", "follow-up", FeedbackKind::Complained, 1),
            count("welcome-series", "hello", FeedbackKind::Delivered, 1),
            count("welcome-series", "hello", FeedbackKind::Opened, 3),
            count("winback", "offer", FeedbackKind::Bounced, 1),
            count("winback", "offer", FeedbackKind::Unsubscribed, 1),
        ],
        "every count, in order"
    );
}

/// Recorded at once, one feedback event counts once (one record says so), and distinct
/// events of one step each count.
pub async fn concurrent_feedback_is_counted_once<S: Store>(store: &S) {
    const CHECK: &str = "concurrent_feedback_is_counted_once";
    let step = ("welcome-series", "hello", FeedbackKind::Opened);
    let same = tokio::join!(
        record(store, CHECK, "f-1", step),
        record(store, CHECK, "f-1", step),
        record(store, CHECK, "f-1", step),
        record(store, CHECK, "f-1", step),
    );
    let counted = [same.0, same.1, same.2, same.3];
    ensure_eq!(
        CHECK,
        counted.iter().filter(|c| **c).count(),
        1,
        "records of f-1 that counted ({counted:?})"
    );
    let distinct = tokio::join!(
        record(store, CHECK, "f-2", step),
        record(store, CHECK, "f-3", step),
        record(store, CHECK, "f-4", step),
        record(store, CHECK, "f-5", step),
    );
    ensure_eq!(
        CHECK,
        [distinct.0, distinct.1, distinct.2, distinct.3],
        [true; 4],
        "distinct events recorded at once"
    );
    ensure_eq!(
        CHECK,
        counts(store, CHECK).await,
        vec![count("welcome-series", "hello", FeedbackKind::Opened, 5)],
        "after five distinct events, one of them four times"
    );
}

/// An input parked for `order` under `event_id`, expiring at `expires_at`.
fn parked(order: &str, event_id: &str, body: &str, expires_at: DateTime<Utc>) -> Parked {
    Parked {
        order_id: order.to_owned(),
        event_id: event_id.to_owned(),
        body: body.to_owned(),
        expires_at,
    }
}

/// Inputs parked for an order are listed by event id until they are unparked or expire (an
/// input expires at its `expires_at`); parking one again keeps the first; other orders' are
/// apart; unparking one that is not there is not an error.
pub async fn parked_inputs_wait_for_their_order<S: Store>(store: &S) {
    const CHECK: &str = "parked_inputs_wait_for_their_order";
    let park = async |p: &Parked| {
        store.park(p).await.unwrap_or_else(|e| {
            panic!("store contract `{CHECK}`: park({}) failed: {e}", p.event_id)
        })
    };
    let list = async |order: &str, now: DateTime<Utc>| {
        store
            .parked(order, now)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: parked({order}) failed: {e}"))
    };
    let unpark = async |order: &str, event: &str| {
        store.unpark(order, event).await.unwrap_or_else(|e| {
            panic!("store contract `{CHECK}`: unpark({order}, {event}) failed: {e}")
        })
    };
    ensure_eq!(
        CHECK,
        list("1001", at(0)).await,
        vec![],
        "an order never seen"
    );
    // An order linked to a customer keeps its link beside its parked inputs.
    store
        .link_order("1001", "c-1")
        .await
        .unwrap_or_else(|e| panic!("store contract `{CHECK}`: link_order failed: {e}"));
    ensure_eq!(CHECK, list("1001", at(0)).await, vec![], "a linked order");
    // A body as Shopify sends it: JSON with non-ASCII text.
    let b = parked("1001", "e-b", r#"{"note":"Ayşe's order ✓"}"#, at(100));
    let a = parked("1001", "e-a", "{}", at(10));
    let c = parked("1001", "e-c", "[1]", at(200));
    let other = parked("1002", "e-a", "{\"other\":true}", at(100));
    for p in [&b, &a, &c, &other] {
        park(p).await;
    }
    park(&parked("1001", "e-b", "{\"second\":true}", at(500))).await;
    ensure_eq!(
        CHECK,
        list("1001", at(9)).await,
        vec![a.clone(), b.clone(), c.clone()],
        "order 1001 before any expiry (the second park of e-b keeps the first)"
    );
    ensure_eq!(
        CHECK,
        list("1001", at(10)).await,
        vec![b.clone(), c.clone()],
        "order 1001 when e-a expires"
    );
    ensure_eq!(
        CHECK,
        list("1002", at(9)).await,
        vec![other.clone()],
        "order 1002"
    );
    unpark("1001", "e-b").await;
    unpark("1001", "e-missing").await;
    unpark("1003", "e-a").await;
    ensure_eq!(
        CHECK,
        list("1001", at(9)).await,
        vec![a.clone(), c.clone()],
        "order 1001 after e-b is unparked"
    );
    ensure_eq!(
        CHECK,
        list("1001", at(200)).await,
        vec![],
        "order 1001 after every expiry"
    );
    ensure_eq!(
        CHECK,
        list("1002", at(9)).await,
        vec![other],
        "order 1002 after 1001's unpark"
    );
    let linked = store
        .order_customer("1001")
        .await
        .unwrap_or_else(|e| panic!("store contract `{CHECK}`: order_customer failed: {e}"));
    ensure_eq!(
        CHECK,
        linked,
        Some("c-1".to_owned()),
        "order 1001's customer after parking"
    );
    // Parked at once with different bodies: one is kept, whole.
    let first = parked("1005", "e-1", "{\"writer\":1}", at(100));
    let second = parked("1005", "e-1", "{\"writer\":2}", at(100));
    let (a, b) = tokio::join!(store.park(&first), store.park(&second));
    for result in [a, b] {
        result.unwrap_or_else(|e| panic!("store contract `{CHECK}`: a racing park failed: {e}"));
    }
    let kept = list("1005", at(0)).await;
    ensure!(
        CHECK,
        kept == vec![first.clone()] || kept == vec![second.clone()],
        "two parks at once of one input kept {kept:?}"
    );
}

/// Erasing a customer removes their state, timer, send log (every status), order links and the
/// dead letters naming them, and
/// nothing of another customer's (an order linked to them before and to another customer since
/// stays the other's); the processed event ids stay processed, so a redelivered event is a
/// duplicate; the customer can start again at version 0; erasing again, or erasing a customer
/// never seen, erases nothing.
pub async fn erasure_removes_one_customer<S: Store>(store: &S) {
    const CHECK: &str = "erasure_removes_one_customer";
    for c in ["c-1", "c-2"] {
        let sends = [
            send(&format!("{c}.a"), c, at(1)),
            send(&format!("{c}.b"), c, at(2)),
            send(&format!("{c}.c"), c, at(3)),
        ];
        let event = format!("e-{c}");
        commit_ok(
            store,
            CHECK,
            Commit {
                next_wake: Some(at(50)),
                event_id: Some(&event),
                sends: &sends,
                ..new(c)
            },
        )
        .await;
        // One send sent, one claimed, one pending.
        let key_a = format!("{c}.a");
        let key_b = format!("{c}.b");
        claim(store, CHECK, (c, &key_a), at(5), at(65)).await;
        settle(
            store,
            CHECK,
            (c, &key_a),
            Settle::Sent {
                message_id: Some("m-1"),
            },
        )
        .await;
        claim(store, CHECK, (c, &key_b), at(5), at(65)).await;
    }
    let link = async |order: &str, customer: &str| {
        store
            .link_order(order, customer)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: link_order failed: {e}"))
    };
    let order_of = async |order: &str| {
        store
            .order_customer(order)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: order_customer failed: {e}"))
    };
    link("1001", "c-1").await;
    link("1002", "c-1").await;
    link("1003", "c-1").await;
    link("1003", "c-2").await;
    link("1004", "c-2").await;
    for (i, customer) in [Some("c-1"), Some("c-2"), None, Some("c-1")]
        .into_iter()
        .enumerate()
    {
        let letter = DeadLetter {
            id: String::new(),
            event_id: Some(format!("bad-{i}")),
            customer_id: customer.map(str::to_owned),
            source: "eventbridge".to_owned(),
            reason: "rejected".to_owned(),
            body: "{}".to_owned(),
            received_at: at(i as i64),
        };
        store
            .record_dead_letter(&letter)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: record_dead_letter failed: {e}"));
    }
    let before = snapshot(store, CHECK, "c-2", &["e-c-2"]).await;
    let erase = async |customer: &str| {
        store.erase_customer(customer).await.unwrap_or_else(|e| {
            panic!("store contract `{CHECK}`: erase_customer({customer}) failed: {e}")
        })
    };
    ensure_eq!(
        CHECK,
        erase("c-1").await,
        Erased {
            state: true,
            sends: 3,
            orders: 2,
            journal_commits: 0,
            dead_letters: 2,
        },
        "what erasing c-1 removed"
    );
    let letters_left: Vec<_> = dead(store, CHECK, 10)
        .await
        .into_iter()
        .map(|l| (l.event_id, l.customer_id))
        .collect();
    ensure_eq!(
        CHECK,
        letters_left,
        vec![
            (Some("bad-1".to_owned()), Some("c-2".to_owned())),
            (Some("bad-2".to_owned()), None)
        ],
        "the dead letters left after erasing c-1"
    );
    ensure_eq!(CHECK, load(store, CHECK, "c-1").await, None, "c-1's state");
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await,
        vec![],
        "c-1's sends"
    );
    let claimed = store.claim_send("c-1", "c-1.c", at(5), at(65)).await;
    ensure!(
        CHECK,
        matches!(claimed, Err(StoreError::UnknownSend(_))),
        "a claim of an erased send: {claimed:?}"
    );
    let timers = all_due(store, far_future(), 10)
        .await
        .unwrap_or_else(|e| panic!("store contract `{CHECK}`: due failed: {e}"));
    ensure_eq!(
        CHECK,
        timers,
        vec![(at(50), "c-2".to_owned())],
        "every timer after erasing c-1"
    );
    let mut live = Vec::new();
    for shard in 0..nudge_core::store::DUE_SHARDS {
        let page = store
            .pending_sends(shard, far_future(), 100, None)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: pending_sends failed: {e}"));
        live.extend(page.due.into_iter().map(|(_, c, k)| (c, k)));
    }
    live.sort();
    ensure_eq!(
        CHECK,
        live,
        vec![
            ("c-2".to_owned(), "c-2.b".to_owned()),
            ("c-2".to_owned(), "c-2.c".to_owned())
        ],
        "the sends left to deliver after erasing c-1"
    );
    for (order, customer) in [
        ("1001", None),
        ("1002", None),
        ("1003", Some("c-2")),
        ("1004", Some("c-2")),
    ] {
        ensure_eq!(
            CHECK,
            order_of(order).await,
            customer.map(str::to_owned),
            "order {order}'s customer after erasing c-1"
        );
    }
    ensure_eq!(
        CHECK,
        snapshot(store, CHECK, "c-2", &["e-c-2"]).await,
        before,
        "c-2 after erasing c-1"
    );
    ensure!(
        CHECK,
        is_processed(store, CHECK, "e-c-1").await,
        "c-1's processed event is no longer processed"
    );
    let again = Commit {
        event_id: Some("e-c-1"),
        ..new("c-1")
    };
    ensure_eq!(
        CHECK,
        commit(store, CHECK, again).await,
        CommitOutcome::AlreadyProcessed,
        "c-1's old event delivered again"
    );
    ensure_eq!(
        CHECK,
        erase("c-1").await,
        Erased::default(),
        "erasing c-1 again"
    );
    ensure_eq!(
        CHECK,
        erase("c-9").await,
        Erased::default(),
        "erasing a stranger"
    );
    commit_ok(
        store,
        CHECK,
        Commit {
            event_id: Some("e-c-1-new"),
            state: b"{\"again\":true}",
            ..new("c-1")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        load(store, CHECK, "c-1").await,
        Some(CustomerRecord {
            version: 1,
            state: b"{\"again\":true}".to_vec()
        }),
        "c-1 starting again after the erasure"
    );
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await,
        vec![],
        "c-1's send log starting again"
    );
}
