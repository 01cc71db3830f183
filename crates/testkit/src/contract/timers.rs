//! Timers: what `due` returns, and how a commit moves or clears a customer's timer.

use chrono::{DateTime, Duration, Utc};

use nudge_core::store::{Commit, Store};

use super::helpers::{at, commit_ok, due, new};

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
