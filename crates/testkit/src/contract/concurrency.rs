//! Writers racing on one customer: exactly one commit wins.

use nudge_core::store::{Commit, CommitOutcome, CustomerRecord, SendRecord, Store};

use super::helpers::{at, due, is_processed, load, new, send, sends_of};

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
