//! Two connections to one file racing for a customer's version.

use nudge_core::store::{Commit, CommitOutcome, Store};
use nudge_local::SqliteStore;
use nudge_testkit::contract::new;

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
