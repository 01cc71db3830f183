//! Commits: versions, conflicts, duplicate events, and the state kept as written.

use nudge_core::store::{Commit, CommitOutcome, CustomerRecord, Store};

use super::helpers::{Snapshot, at, commit, commit_ok, is_processed, load, new, send, snapshot};

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
