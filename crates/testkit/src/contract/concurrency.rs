//! Writers racing on one customer: exactly one commit wins.

use nudge_core::store::{Commit, CommitOutcome, CustomerRecord, SendRecord, Store};

use super::helpers::{at, due_all, is_processed, load, new, send, sends_of};

const CHECK: &str = "concurrent_writers_one_wins";

/// How many writers race in each round.
const WRITERS: usize = 4;

/// Of several writers committing at the same version at once, exactly one wins; the state,
/// send and event id of each loser are nowhere.
pub async fn concurrent_writers_one_wins<S: Store>(store: &S) {
    for expected_version in [0, 1] {
        let round = Round::new(expected_version);
        let outcomes = race(store, &round).await;
        let winner = the_one_winner(&round, &outcomes);
        ensure_only_the_winner_written(store, &round, winner).await;
    }
    let keys: Vec<String> = sends_of(store, CHECK, "c-1")
        .await
        .into_iter()
        .map(|e| e.record.idempotency_key)
        .collect();
    ensure_eq!(
        CHECK,
        keys.len(),
        2,
        "send log after two rounds of writers ({keys:?})"
    );
}

/// What each writer of one round commits to `c-1`, all at the same expected version: its own
/// state, event id, send and timer, so that whatever of a loser's shows up is seen.
struct Round {
    expected_version: u64,
    states: Vec<String>,
    events: Vec<String>,
    sends: Vec<[SendRecord; 1]>,
}

impl Round {
    fn new(expected_version: u64) -> Self {
        let states = (0..WRITERS)
            .map(|w| format!("{{\"writer\":{w},\"round\":{expected_version}}}"))
            .collect();
        let events = (0..WRITERS)
            .map(|w| format!("e-{expected_version}-{w}"))
            .collect();
        let sends = (0..WRITERS)
            .map(|w| {
                [send(
                    &format!("k-{expected_version}-{w}"),
                    "c-1",
                    at(w as i64),
                )]
            })
            .collect();
        Round {
            expected_version,
            states,
            events,
            sends,
        }
    }

    /// The commit of writer `w`; its timer is at `w + 10` seconds.
    fn commit(&self, w: usize) -> Commit<'_> {
        Commit {
            expected_version: self.expected_version,
            state: self.states[w].as_bytes(),
            event_id: Some(&self.events[w]),
            sends: &self.sends[w],
            next_wake: Some(at(w as i64 + 10)),
            ..new("c-1")
        }
    }
}

/// Commits every writer of `round` at once; their outcomes, in writer order.
async fn race<S: Store>(store: &S, round: &Round) -> Vec<CommitOutcome> {
    let (a, b, c, d) = tokio::join!(
        store.commit(round.commit(0)),
        store.commit(round.commit(1)),
        store.commit(round.commit(2)),
        store.commit(round.commit(3)),
    );
    [a, b, c, d]
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("store contract `{CHECK}`: commit failed: {e}")))
        .collect()
}

/// The writer that won; fails the check unless exactly one did and every other conflicted.
fn the_one_winner(round: &Round, outcomes: &[CommitOutcome]) -> usize {
    let expected_version = round.expected_version;
    let winners: Vec<usize> = (0..WRITERS)
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
    winner
}

/// Fails the check unless the store holds the winner's state, event id and timer, and none of
/// a loser's.
async fn ensure_only_the_winner_written<S: Store>(store: &S, round: &Round, winner: usize) {
    let expected_version = round.expected_version;
    let record = load(store, CHECK, "c-1").await;
    ensure_eq!(
        CHECK,
        record,
        Some(CustomerRecord {
            version: expected_version + 1,
            state: round.states[winner].clone().into_bytes()
        }),
        "state after writers at version {expected_version}"
    );
    for (w, event) in round.events.iter().enumerate() {
        ensure_eq!(
            CHECK,
            is_processed(store, CHECK, event).await,
            w == winner,
            "event of writer {w} processed (winner {winner})"
        );
    }
    let due = due_all(store, CHECK, at(1000)).await;
    ensure_eq!(
        CHECK,
        due,
        vec![(at(winner as i64 + 10), "c-1".to_owned())],
        "timer after writers at version {expected_version}"
    );
}
