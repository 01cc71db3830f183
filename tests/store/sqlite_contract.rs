//! The contract suite against `SqliteStore`: in memory and on a file, with and without
//! batching, with every durability; and generic callers spawning store futures.

use std::sync::atomic::{AtomicUsize, Ordering};

use nudge_core::store::{CommitOutcome, Store};
use nudge_local::{Durability, SqliteOptions, SqliteStore};
use nudge_testkit::contract;
use nudge_testkit::contract::new;

#[tokio::test]
async fn contract_in_memory() {
    contract::run_all(async || SqliteStore::in_memory().unwrap()).await;
}

#[tokio::test]
async fn contract_in_memory_batched() {
    // 3 makes batches end in the middle of checks; 1000 keeps everything in one.
    for n in [3, 1000] {
        contract::run_all(async || {
            SqliteStore::in_memory_with(SqliteOptions::default().batch(n)).unwrap()
        })
        .await;
    }
}

#[tokio::test]
async fn contract_on_file() {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    for batch in [1, 3, 1000] {
        contract::run_all(async || {
            let n = count.fetch_add(1, Ordering::Relaxed);
            let options = SqliteOptions::default().batch(batch);
            SqliteStore::open_with(&dir.path().join(format!("{n}.db")), options).unwrap()
        })
        .await;
    }
}

/// The durabilities other than the default change what a crash may cost, never what the
/// store does.
#[tokio::test]
async fn contract_on_a_file_without_fsync_or_journal() {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    for durability in [Durability::NoSync, Durability::Scratch] {
        for batch in [1, 1000] {
            contract::run_all(async || {
                let n = count.fetch_add(1, Ordering::Relaxed);
                let options = SqliteOptions::default().batch(batch).durability(durability);
                SqliteStore::open_with(&dir.path().join(format!("{n}.db")), options).unwrap()
            })
            .await;
        }
    }
}

/// Generic code can move a store into a spawned task: the trait's futures are `Send`, which a
/// plain `async fn` in a public trait could not promise (and a multi-threaded Lambda runtime
/// needs).
async fn spawn_a_commit<S: Store + 'static>(store: std::sync::Arc<S>) -> CommitOutcome {
    tokio::spawn(async move { store.commit(new("c-1")).await.unwrap() })
        .await
        .unwrap()
}

#[tokio::test]
async fn generic_callers_can_spawn_store_futures() {
    let store = std::sync::Arc::new(SqliteStore::in_memory().unwrap());
    let outcome = spawn_a_commit(store.clone()).await;
    assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 1);
}
