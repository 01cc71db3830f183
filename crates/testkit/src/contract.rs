//! The contract every [`Store`] must pass: one suite, run against every implementation.
//!
//! Each check takes a fresh, empty store, exercises one rule through the public interface only,
//! and panics with a message naming the check and what differed. [`run_all`] runs every check,
//! each on a new store from the caller's factory:
//!
//! ```no_run
//! # async fn example() {
//! use nudge_local::SqliteStore;
//! use nudge_testkit::contract;
//! contract::run_all(async || SqliteStore::in_memory().unwrap()).await;
//! # }
//! ```
//!
//! Times used here have whole milliseconds, the precision every store keeps.

use chrono::{DateTime, Duration, TimeZone, Utc};

use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, DeadLetter, SendRecord, SendStatus, Store, StoreError,
};

/// Fails check `$check` unless `$left == $right`.
macro_rules! ensure_eq {
    ($check:expr, $left:expr, $right:expr, $($what:tt)+) => {
        // A match, as in `assert_eq!`, keeps temporaries alive for the comparison.
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    panic!(
                        "store contract `{}` failed: {}\n       got: {:?}\n  expected: {:?}",
                        $check,
                        format_args!($($what)+),
                        left,
                        right,
                    );
                }
            }
        }
    };
}

/// Fails check `$check` unless `$cond` holds.
macro_rules! ensure {
    ($check:expr, $cond:expr, $($what:tt)+) => {{
        if !$cond {
            panic!("store contract `{}` failed: {}", $check, format_args!($($what)+));
        }
    }};
}

/// Runs every check of the contract, each on a new store made by `make`, which must return an
/// empty store each time.
pub async fn run_all<S: Store>(make: impl AsyncFn() -> S) {
    create_then_load(&make().await).await;
    versions_increment(&make().await).await;
    stale_version_conflicts(&make().await).await;
    missing_customer_conflicts(&make().await).await;
    duplicate_event_already_processed(&make().await).await;
    already_processed_wins_over_conflict(&make().await).await;
    event_ids_are_global(&make().await).await;
    concurrent_writers_one_wins(&make().await).await;
    due_orders_and_limits(&make().await).await;
    timer_moves_and_clears(&make().await).await;
    send_log_unique_by_key(&make().await).await;
    send_for_another_customer_is_refused(&make().await).await;
    mark_send_transitions(&make().await).await;
    dead_letters_round_trip(&make().await).await;
    dead_letter_body_truncated(&make().await).await;
    meta_get_set_overwrite(&make().await).await;
    flush_is_repeatable(&make().await).await;
    state_bytes_round_trip(&make().await).await;
}

/// A customer that was never committed loads as `None`; the first commit (expected version 0)
/// creates it at version 1 with exactly the state written. Customer ids are distinct byte
/// strings (case, `#`, non-ASCII).
pub async fn create_then_load<S: Store>(store: &S) {
    const CHECK: &str = "create_then_load";
    ensure_eq!(
        CHECK,
        load(store, CHECK, "c-1").await,
        None,
        "load of a new customer"
    );
    let ids = ["c-1", "C-1", "c#1", "müşteri-1"];
    for id in ids {
        let state = format!("{{\"id\":\"{id}\"}}");
        let outcome = commit(
            store,
            CHECK,
            Commit {
                state: state.as_bytes(),
                ..new(id)
            },
        )
        .await;
        ensure_eq!(
            CHECK,
            outcome,
            CommitOutcome::Committed { version: 1 },
            "first commit of {id}"
        );
    }
    for id in ids {
        let state = format!("{{\"id\":\"{id}\"}}");
        let expected = CustomerRecord {
            version: 1,
            state: state.into_bytes(),
        };
        ensure_eq!(
            CHECK,
            load(store, CHECK, id).await,
            Some(expected),
            "load of {id}"
        );
    }
    ensure_eq!(
        CHECK,
        load(store, CHECK, "c-2").await,
        None,
        "load of a customer never written"
    );
}

/// Every commit at the current version succeeds with the next version and replaces the state.
pub async fn versions_increment<S: Store>(store: &S) {
    const CHECK: &str = "versions_increment";
    for version in 0..5u64 {
        let state = format!("{{\"n\":{version}}}");
        let outcome = commit(
            store,
            CHECK,
            Commit {
                expected_version: version,
                state: state.as_bytes(),
                ..new("c-1")
            },
        )
        .await;
        ensure_eq!(
            CHECK,
            outcome,
            CommitOutcome::Committed {
                version: version + 1
            },
            "commit at version {version}"
        );
        let record = load(store, CHECK, "c-1").await;
        ensure_eq!(
            CHECK,
            record,
            Some(CustomerRecord {
                version: version + 1,
                state: state.into_bytes()
            }),
            "load after the commit at version {version}"
        );
    }
}

/// A commit at a version other than the stored one is a `Conflict` and writes nothing: not the
/// state, the timer, the sends, nor the event id.
pub async fn stale_version_conflicts<S: Store>(store: &S) {
    const CHECK: &str = "stale_version_conflicts";
    let first = [send("k-1", "c-1", at(1))];
    commit_ok(
        store,
        CHECK,
        Commit {
            next_wake: Some(at(100)),
            event_id: Some("e-1"),
            sends: &first,
            ..new("c-1")
        },
    )
    .await;
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            state: b"{\"v\":2}",
            next_wake: Some(at(200)),
            ..new("c-1")
        },
    )
    .await;
    let before = snapshot(store, CHECK, "c-1", &["e-1", "e-2"]).await;
    let losing = [send("k-2", "c-1", at(2))];
    for expected_version in [0, 1, 3, u64::MAX] {
        let outcome = commit(
            store,
            CHECK,
            Commit {
                expected_version,
                state: b"{\"stale\":true}",
                next_wake: Some(at(50)),
                event_id: Some("e-2"),
                sends: &losing,
                ..new("c-1")
            },
        )
        .await;
        ensure_eq!(
            CHECK,
            outcome,
            CommitOutcome::Conflict,
            "commit at version {expected_version} when the customer is at 2"
        );
        let after = snapshot(store, CHECK, "c-1", &["e-1", "e-2"]).await;
        ensure_eq!(
            CHECK,
            after,
            before,
            "customer after a conflicting commit at version {expected_version}"
        );
    }
}

/// A commit expecting a version of a customer that does not exist is a `Conflict` and creates
/// nothing.
pub async fn missing_customer_conflicts<S: Store>(store: &S) {
    const CHECK: &str = "missing_customer_conflicts";
    let sends = [send("k-1", "c-1", at(1))];
    let outcome = commit(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            next_wake: Some(at(10)),
            event_id: Some("e-1"),
            sends: &sends,
            ..new("c-1")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        outcome,
        CommitOutcome::Conflict,
        "commit at version 1 of a new customer"
    );
    let after = snapshot(store, CHECK, "c-1", &["e-1"]).await;
    ensure_eq!(
        CHECK,
        after,
        Snapshot::empty(&["e-1"]),
        "store after the conflicting commit"
    );
}

/// A commit carrying an event id already processed is `AlreadyProcessed` and writes nothing,
/// even at the right version; a commit without an event id marks none.
pub async fn duplicate_event_already_processed<S: Store>(store: &S) {
    const CHECK: &str = "duplicate_event_already_processed";
    ensure!(
        CHECK,
        !is_processed(store, CHECK, "e-1").await,
        "e-1 processed in an empty store"
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
        is_processed(store, CHECK, "e-1").await,
        "e-1 not processed after its commit"
    );
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            next_wake: Some(at(30)),
            ..new("c-1")
        },
    )
    .await;
    let before = snapshot(store, CHECK, "c-1", &["e-1", "e-2"]).await;
    ensure!(
        CHECK,
        !before.processed[1].1,
        "a commit without an event id marked e-2 processed"
    );
    let sends = [send("k-1", "c-1", at(1))];
    let outcome = commit(
        store,
        CHECK,
        Commit {
            expected_version: 2,
            state: b"{\"again\":true}",
            next_wake: Some(at(5)),
            event_id: Some("e-1"),
            sends: &sends,
            ..new("c-1")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        outcome,
        CommitOutcome::AlreadyProcessed,
        "second commit of event e-1"
    );
    let after = snapshot(store, CHECK, "c-1", &["e-1", "e-2"]).await;
    ensure_eq!(CHECK, after, before, "customer after the duplicate commit");
}

/// When a commit is both stale and a duplicate, it is `AlreadyProcessed`: a duplicate must not
/// be retried.
pub async fn already_processed_wins_over_conflict<S: Store>(store: &S) {
    const CHECK: &str = "already_processed_wins_over_conflict";
    commit_ok(
        store,
        CHECK,
        Commit {
            event_id: Some("e-1"),
            ..new("c-1")
        },
    )
    .await;
    let outcome = commit(
        store,
        CHECK,
        Commit {
            event_id: Some("e-1"),
            ..new("c-1")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        outcome,
        CommitOutcome::AlreadyProcessed,
        "a stale commit of a processed event"
    );
}

/// Event ids are global: an id processed for one customer is processed for every customer.
pub async fn event_ids_are_global<S: Store>(store: &S) {
    const CHECK: &str = "event_ids_are_global";
    commit_ok(
        store,
        CHECK,
        Commit {
            event_id: Some("e-1"),
            ..new("c-1")
        },
    )
    .await;
    let outcome = commit(
        store,
        CHECK,
        Commit {
            event_id: Some("e-1"),
            ..new("c-2")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        outcome,
        CommitOutcome::AlreadyProcessed,
        "event e-1 committed for another customer"
    );
    ensure_eq!(
        CHECK,
        load(store, CHECK, "c-2").await,
        None,
        "c-2 after the duplicate"
    );
    let outcome = commit(
        store,
        CHECK,
        Commit {
            event_id: Some("e-2"),
            ..new("c-2")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        outcome,
        CommitOutcome::Committed { version: 1 },
        "a new event for c-2"
    );
}

/// Of several writers committing at the same version at once, exactly one wins; the state,
/// send and event id of each loser are nowhere.
pub async fn concurrent_writers_one_wins<S: Store>(store: &S) {
    const CHECK: &str = "concurrent_writers_one_wins";
    for expected_version in [0, 1] {
        let states: Vec<String> = (0..4)
            .map(|w| format!("{{\"writer\":{w},\"round\":{expected_version}}}"))
            .collect();
        let events: Vec<String> = (0..4)
            .map(|w| format!("e-{expected_version}-{w}"))
            .collect();
        let sends: Vec<[SendRecord; 1]> = (0..4)
            .map(|w| {
                [send(
                    &format!("k-{expected_version}-{w}"),
                    "c-1",
                    at(w as i64),
                )]
            })
            .collect();
        let writer = |w: usize| Commit {
            expected_version,
            state: states[w].as_bytes(),
            event_id: Some(&events[w]),
            sends: &sends[w],
            next_wake: Some(at(w as i64 + 10)),
            ..new("c-1")
        };
        let (a, b, c, d) = tokio::join!(
            store.commit(writer(0)),
            store.commit(writer(1)),
            store.commit(writer(2)),
            store.commit(writer(3)),
        );
        let outcomes: Vec<CommitOutcome> = [a, b, c, d]
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("store contract `{CHECK}`: commit failed: {e}")))
            .collect();
        let winners: Vec<usize> = (0..4)
            .filter(|&w| {
                outcomes[w]
                    == CommitOutcome::Committed {
                        version: expected_version + 1,
                    }
            })
            .collect();
        ensure_eq!(
            CHECK,
            winners.len(),
            1,
            "winners among 4 writers at version {expected_version} ({outcomes:?})"
        );
        let winner = winners[0];
        for (w, outcome) in outcomes.iter().enumerate().filter(|(w, _)| *w != winner) {
            ensure_eq!(
                CHECK,
                *outcome,
                CommitOutcome::Conflict,
                "writer {w} at version {expected_version}"
            );
        }
        let record = load(store, CHECK, "c-1").await;
        ensure_eq!(
            CHECK,
            record,
            Some(CustomerRecord {
                version: expected_version + 1,
                state: states[winner].clone().into_bytes()
            }),
            "state after writers at version {expected_version}"
        );
        for (w, event) in events.iter().enumerate() {
            ensure_eq!(
                CHECK,
                is_processed(store, CHECK, event).await,
                w == winner,
                "event of writer {w} processed (winner {winner})"
            );
        }
        let due = due(store, CHECK, at(1000), 100).await;
        ensure_eq!(
            CHECK,
            due,
            vec![(at(winner as i64 + 10), "c-1".to_owned())],
            "timer after writers at version {expected_version}"
        );
    }
    let keys: Vec<String> = sends_of(store, CHECK, "c-1")
        .await
        .into_iter()
        .map(|(s, _)| s.idempotency_key)
        .collect();
    ensure_eq!(
        CHECK,
        keys.len(),
        2,
        "send log after two rounds of writers ({keys:?})"
    );
}

/// `due` returns the timers at or before `until` (inclusive, to the millisecond), ordered by
/// time and then customer id, at most `limit` of them; customers without a timer never.
pub async fn due_orders_and_limits<S: Store>(store: &S) {
    const CHECK: &str = "due_orders_and_limits";
    let t20 = at(20) + Duration::milliseconds(250);
    let t30 = at(30) + Duration::milliseconds(5);
    for (id, wake) in [
        ("b", Some(t20)),
        ("a", Some(t20)),
        ("c", Some(at(10))),
        ("d", Some(t30)),
        ("e", None),
        ("B", Some(t20)),
    ] {
        commit_ok(
            store,
            CHECK,
            Commit {
                next_wake: wake,
                ..new(id)
            },
        )
        .await;
    }
    let row = |t: DateTime<Utc>, id: &str| (t, id.to_owned());
    ensure_eq!(
        CHECK,
        due(store, CHECK, t20, 10).await,
        vec![
            row(at(10), "c"),
            row(t20, "B"),
            row(t20, "a"),
            row(t20, "b")
        ],
        "due until 20.250s"
    );
    ensure_eq!(
        CHECK,
        due(store, CHECK, t20 - Duration::milliseconds(1), 10).await,
        vec![row(at(10), "c")],
        "due until 20.249s"
    );
    ensure_eq!(
        CHECK,
        due(store, CHECK, t20, 2).await,
        vec![row(at(10), "c"), row(t20, "B")],
        "due until 20.250s, limit 2"
    );
    ensure_eq!(
        CHECK,
        due(store, CHECK, t20, 0).await,
        vec![],
        "due with limit 0"
    );
    ensure_eq!(
        CHECK,
        due(store, CHECK, at(9), 10).await,
        vec![],
        "due before every timer"
    );
    ensure_eq!(
        CHECK,
        due(store, CHECK, t30, 10).await.last(),
        Some(&row(t30, "d")),
        "due until exactly d's timer (30.005s)"
    );
    ensure_eq!(
        CHECK,
        due(store, CHECK, at(1000), 10).await.len(),
        5,
        "due until after every timer (e has none)"
    );
}

/// A commit replaces the customer's timer: a later time moves it, `None` clears it.
pub async fn timer_moves_and_clears<S: Store>(store: &S) {
    const CHECK: &str = "timer_moves_and_clears";
    commit_ok(
        store,
        CHECK,
        Commit {
            next_wake: Some(at(10)),
            ..new("a")
        },
    )
    .await;
    commit_ok(
        store,
        CHECK,
        Commit {
            next_wake: Some(at(20)),
            ..new("b")
        },
    )
    .await;
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            next_wake: Some(at(30)),
            ..new("a")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        due(store, CHECK, at(100), 10).await,
        vec![(at(20), "b".to_owned()), (at(30), "a".to_owned())],
        "due after moving a's timer from 10s to 30s"
    );
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            ..new("b")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        due(store, CHECK, at(100), 10).await,
        vec![(at(30), "a".to_owned())],
        "due after clearing b's timer"
    );
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 2,
            ..new("a")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        due(store, CHECK, at(100), 10).await,
        vec![],
        "due after clearing both"
    );
}

/// The send log holds one entry per idempotency key, `Pending` when logged, ordered by time and
/// key; a key seen again (in the same commit or a later one) changes nothing, whatever its
/// fields, and never resets a status.
pub async fn send_log_unique_by_key<S: Store>(store: &S) {
    const CHECK: &str = "send_log_unique_by_key";
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
    let pending = |records: &[SendRecord]| -> Vec<(SendRecord, SendStatus)> {
        records
            .iter()
            .map(|r| (r.clone(), SendStatus::Pending))
            .collect()
    };
    let expected = pending(&[first[2].clone(), first[1].clone(), first[0].clone()]);
    ensure_eq!(
        CHECK,
        sends_of(store, CHECK, "c-1").await,
        expected,
        "send log after the first commit"
    );

    mark(store, CHECK, "k-1", SendStatus::Sent, Some("m-1")).await;
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
        mark(store, CHECK, "k-1", mark_as, Some("m-1")).await;
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
    mark(store, CHECK, "k-2", SendStatus::Sent, None).await;
    ensure_eq!(
        CHECK,
        status_of("k-2").await,
        Some(SendStatus::Sent),
        "k-2 marked sent without a message id"
    );
    let result = store
        .mark_send("k-404", SendStatus::Sent, Some("m-2"))
        .await;
    ensure!(
        CHECK,
        matches!(result, Err(StoreError::UnknownSend(ref key)) if key == "k-404"),
        "marking an unknown key gave {result:?}, not UnknownSend(\"k-404\")"
    );
}

/// Dead letters come back in the order recorded with the ids `record_dead_letter` returned
/// (distinct, increasing, never 0) and every field as recorded.
pub async fn dead_letters_round_trip<S: Store>(store: &S) {
    const CHECK: &str = "dead_letters_round_trip";
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 10).await,
        vec![],
        "dead letters of an empty store"
    );
    let mut letters = vec![
        DeadLetter {
            id: 999,
            event_id: Some("e-1".into()),
            source: "events.jsonl:12".into(),
            reason: "detail.customer.id is missing".into(),
            body: "{\"id\":\"e-1\",\"detail\":{}}".into(),
            received_at: at(1) + Duration::milliseconds(7),
        },
        DeadLetter {
            id: 0,
            event_id: None,
            source: "eventbridge".into(),
            reason: "not JSON".into(),
            body: "{ not json ş".into(),
            received_at: at(2),
        },
        DeadLetter {
            id: 0,
            event_id: Some("e-3".into()),
            source: "events.jsonl:14".into(),
            reason: String::new(),
            body: String::new(),
            received_at: at(3),
        },
    ];
    let mut last = 0;
    for letter in &mut letters {
        let id = store.record_dead_letter(letter).await.unwrap_or_else(|e| {
            panic!("store contract `{CHECK}`: recording a dead letter failed: {e}")
        });
        ensure!(CHECK, id > last, "dead letter id {id} after id {last}");
        last = id;
        letter.id = id;
    }
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 10).await,
        letters,
        "dead letters read back"
    );
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 2).await,
        letters[..2].to_vec(),
        "dead letters, limit 2"
    );
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 0).await,
        vec![],
        "dead letters, limit 0"
    );
}

/// A dead letter's body is kept up to [`DeadLetter::MAX_BODY_BYTES`], cut at a character
/// boundary.
pub async fn dead_letter_body_truncated<S: Store>(store: &S) {
    const CHECK: &str = "dead_letter_body_truncated";
    // "ş" is two bytes and starts at every odd offset, so the limit (even) falls inside one.
    let body = format!("a{}", "ş".repeat(DeadLetter::MAX_BODY_BYTES / 2 + 10));
    let letter = DeadLetter {
        id: 0,
        event_id: None,
        source: "events.jsonl:1".into(),
        reason: "too large".into(),
        body,
        received_at: at(1),
    };
    store.record_dead_letter(&letter).await.unwrap_or_else(|e| {
        panic!("store contract `{CHECK}`: recording a dead letter failed: {e}")
    });
    let stored = dead(store, CHECK, 1).await;
    ensure_eq!(CHECK, stored.len(), 1, "dead letters after recording one");
    let kept = &stored[0].body;
    ensure_eq!(
        CHECK,
        kept.len(),
        DeadLetter::MAX_BODY_BYTES - 1,
        "length of the body kept"
    );
    ensure!(
        CHECK,
        letter.body.starts_with(kept.as_str()),
        "the body kept is not a prefix of the body"
    );
}

/// Metadata: absent keys are `None`; `set_meta` creates and replaces; keys are independent.
pub async fn meta_get_set_overwrite<S: Store>(store: &S) {
    const CHECK: &str = "meta_get_set_overwrite";
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "clock").await,
        None,
        "clock in an empty store"
    );
    for (key, value) in [
        ("clock", "2026-03-01T10:00:00Z"),
        ("clock", "2026-03-02T10:00:00Z"),
        ("other", ""),
        ("ş", "ğ"),
    ] {
        store
            .set_meta(key, value)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: set_meta failed: {e}"));
        ensure_eq!(
            CHECK,
            meta(store, CHECK, key).await.as_deref(),
            Some(value),
            "{key} after setting it"
        );
    }
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "clock").await.as_deref(),
        Some("2026-03-02T10:00:00Z"),
        "clock after setting other keys"
    );
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "Clock").await,
        None,
        "a key differing in case"
    );
}

/// `flush` can be called on an empty store, repeatedly, and between writes, which go on and
/// stay readable.
pub async fn flush_is_repeatable<S: Store>(store: &S) {
    const CHECK: &str = "flush_is_repeatable";
    let flush = async || {
        store
            .flush()
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: flush failed: {e}"))
    };
    flush().await;
    flush().await;
    commit_ok(store, CHECK, new("c-1")).await;
    flush().await;
    flush().await;
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            ..new("c-1")
        },
    )
    .await;
    store
        .set_meta("k", "v")
        .await
        .unwrap_or_else(|e| panic!("store contract `{CHECK}`: set_meta failed: {e}"));
    flush().await;
    ensure_eq!(
        CHECK,
        load(store, CHECK, "c-1").await.map(|r| r.version),
        Some(2),
        "version after flushes"
    );
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "k").await.as_deref(),
        Some("v"),
        "meta after flushes"
    );
}

/// The state is opaque bytes: any bytes, up to 64 KiB here, come back exactly.
pub async fn state_bytes_round_trip<S: Store>(store: &S) {
    const CHECK: &str = "state_bytes_round_trip";
    let large: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let json = "{\"name\":\"Ayşe\",\"tags\":[\"☕\"],\"nul\":\"\\u0000\"}".as_bytes();
    for (version, state) in [json, large.as_slice(), b"{}"].into_iter().enumerate() {
        commit_ok(
            store,
            CHECK,
            Commit {
                expected_version: version as u64,
                state,
                ..new("c-1")
            },
        )
        .await;
        let record = load(store, CHECK, "c-1").await;
        ensure!(
            CHECK,
            record.as_ref().is_some_and(|r| r.state == state),
            "state of {} bytes did not come back as written",
            state.len()
        );
    }
}

// -- helpers ----------------------------------------------------------------------------------

/// What a store holds about one customer, to compare before and after a write that must not
/// change anything.
#[derive(Debug, PartialEq)]
struct Snapshot {
    record: Option<CustomerRecord>,
    timers: Vec<(DateTime<Utc>, String)>,
    sends: Vec<(SendRecord, SendStatus)>,
    processed: Vec<(String, bool)>,
}

impl Snapshot {
    /// A customer never written, with `event_ids` not processed.
    fn empty(event_ids: &[&str]) -> Self {
        Snapshot {
            record: None,
            timers: vec![],
            sends: vec![],
            processed: event_ids.iter().map(|id| (id.to_string(), false)).collect(),
        }
    }
}

async fn snapshot<S: Store>(
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
        timers: due(store, check, far_future(), 10_000)
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
    }
}

/// 2026-03-01T00:00:00Z plus `secs` seconds.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap()
}

fn send(key: &str, customer_id: &str, at: DateTime<Utc>) -> SendRecord {
    SendRecord {
        idempotency_key: key.to_owned(),
        customer_id: customer_id.to_owned(),
        workflow: "welcome-series".to_owned(),
        step: "hello".to_owned(),
        category: "marketing".to_owned(),
        at,
    }
}

async fn commit<S: Store>(store: &S, check: &str, commit: Commit<'_>) -> CommitOutcome {
    let customer = commit.customer_id;
    store
        .commit(commit)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: commit of {customer} failed: {e}"))
}

/// Commits and fails the check unless the commit is applied.
async fn commit_ok<S: Store>(store: &S, check: &str, c: Commit<'_>) {
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

async fn load<S: Store>(store: &S, check: &str, customer_id: &str) -> Option<CustomerRecord> {
    store
        .load(customer_id)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: load of {customer_id} failed: {e}"))
}

async fn is_processed<S: Store>(store: &S, check: &str, event_id: &str) -> bool {
    store.is_processed(event_id).await.unwrap_or_else(|e| {
        panic!("store contract `{check}`: is_processed({event_id}) failed: {e}")
    })
}

async fn due<S: Store>(
    store: &S,
    check: &str,
    until: DateTime<Utc>,
    limit: usize,
) -> Vec<(DateTime<Utc>, String)> {
    store
        .due(until, limit)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: due failed: {e}"))
}

async fn sends_of<S: Store>(
    store: &S,
    check: &str,
    customer_id: &str,
) -> Vec<(SendRecord, SendStatus)> {
    store
        .sends(customer_id)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: sends of {customer_id} failed: {e}"))
}

async fn mark<S: Store>(
    store: &S,
    check: &str,
    key: &str,
    status: SendStatus,
    message_id: Option<&str>,
) {
    store
        .mark_send(key, status, message_id)
        .await
        .unwrap_or_else(|e| {
            panic!("store contract `{check}`: mark_send({key}, {status:?}) failed: {e}")
        })
}

async fn dead<S: Store>(store: &S, check: &str, limit: usize) -> Vec<DeadLetter> {
    store
        .dead_letters(limit)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: dead_letters failed: {e}"))
}

async fn meta<S: Store>(store: &S, check: &str, key: &str) -> Option<String> {
    store
        .get_meta(key)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: get_meta({key}) failed: {e}"))
}
