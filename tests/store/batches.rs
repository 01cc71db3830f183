//! Batches: when writes become visible to another connection, and what a failing write loses.

use std::path::Path;

use nudge_core::store::{Commit, CommitOutcome, SendStatus, Settle, Store, StoreError, all_due};
use nudge_local::{SqliteOptions, SqliteStore};
use nudge_testkit::contract::new;

use super::{arm_failing_sends, at, committed, raw, send};

#[tokio::test]
async fn a_batch_becomes_visible_when_full_or_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(3)).unwrap();
    let ids: Vec<String> = (0..5).map(|i| format!("c-{i}")).collect();
    for id in &ids[..2] {
        committed(&store, new(id)).await;
    }
    // The store reads its own writes; another connection does not see them yet.
    assert!(store.load("c-1").await.unwrap().is_some());
    assert_eq!(customers_seen_by_another_connection(&path), 0);
    // A conflict writes nothing and does not count towards the batch.
    assert_eq!(
        store.commit(new("c-0")).await.unwrap(),
        CommitOutcome::Conflict
    );
    assert_eq!(customers_seen_by_another_connection(&path), 0);
    committed(&store, new(&ids[2])).await;
    assert_eq!(
        customers_seen_by_another_connection(&path),
        3,
        "a full batch is committed"
    );
    committed(&store, new(&ids[3])).await;
    assert_eq!(customers_seen_by_another_connection(&path), 3);
    store.flush().await.unwrap();
    assert_eq!(
        customers_seen_by_another_connection(&path),
        4,
        "flush commits the batch"
    );
    store.flush().await.unwrap();
    committed(&store, new(&ids[4])).await;
    drop(store);
    assert_eq!(
        customers_seen_by_another_connection(&path),
        5,
        "drop commits the batch"
    );
}

#[tokio::test]
async fn a_failing_write_loses_its_batch_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    arm_failing_sends(&path);
    let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(100)).unwrap();

    committed(&store, new("c-1")).await;
    store.flush().await.unwrap();
    let bad = [send("k-1", "c-1", "fine"), send("k-2", "c-1", "boom")];
    // Staged in the batch: reported done, and read back by this store...
    let failing = Commit {
        expected_version: 1,
        state: b"{\"failed\":true}",
        next_wake: Some(at(5)),
        event_id: Some("e-1"),
        sends: &bad,
        ..new("c-1")
    };
    committed(&store, failing).await;
    committed(
        &store,
        Commit {
            event_id: Some("e-2"),
            ..new("c-2")
        },
    )
    .await;
    assert!(store.is_processed("e-1").await.unwrap());
    // ...until the batch is written: SQLite refuses a row, and the whole batch is rolled back
    // and reported, with the number of writes lost.
    let err = store.flush().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WritesLost {
                lost: 2,
                source: Some(_)
            }
        ),
        "got {err:?}"
    );
    // The store reads what is durable again, and goes on.
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 1);
    assert_eq!(store.load("c-2").await.unwrap(), None);
    assert!(!store.is_processed("e-1").await.unwrap());
    let ok = [send("k-ok", "c-1", "fine")];
    let next = Commit {
        expected_version: 1,
        event_id: Some("e-1"),
        sends: &ok,
        ..new("c-1")
    };
    assert_eq!(
        store.commit(next).await.unwrap(),
        CommitOutcome::Committed { version: 2 }
    );
    store.flush().await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 2);
    assert_eq!(store.load("c-2").await.unwrap(), None);
    assert!(store.is_processed("e-1").await.unwrap());
    assert!(!store.is_processed("e-2").await.unwrap());
    assert_eq!(all_due(&store, at(100), 10).await.unwrap(), vec![]);
    let keys: Vec<String> = store
        .sends("c-1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.record.idempotency_key)
        .collect();
    assert_eq!(keys, vec!["k-ok".to_owned()]);
}

#[tokio::test]
async fn without_batching_a_failing_commit_is_lost_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    arm_failing_sends(&path);
    let store = SqliteStore::open(&path).unwrap();
    committed(&store, new("c-1")).await;
    let bad = [send("k-2", "c-1", "boom")];
    let err = store
        .commit(Commit {
            expected_version: 1,
            event_id: Some("e-1"),
            sends: &bad,
            ..new("c-1")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::WritesLost {
                lost: 1,
                source: Some(_)
            }
        ),
        "got {err:?}"
    );
    assert_eq!(store.load("c-1").await.unwrap().unwrap().version, 1);
    assert!(!store.is_processed("e-1").await.unwrap());
    assert_eq!(
        store
            .commit(Commit {
                expected_version: 1,
                ..new("c-1")
            })
            .await
            .unwrap(),
        CommitOutcome::Committed { version: 2 }
    );
}

/// A send logged in an open batch and claimed and settled before the batch is written keeps
/// what became of it; a key that was already stored is settled in the database, and a key
/// logged again in the batch changes nothing.
#[tokio::test]
async fn claims_and_settles_of_sends_in_an_open_batch_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(100)).unwrap();
    let first = [send("k-old", "c-1", "w")];
    committed(
        &store,
        Commit {
            sends: &first,
            ..new("c-1")
        },
    )
    .await;
    store.flush().await.unwrap();
    let again = [send("k-old", "c-1", "w"), send("k-new", "c-1", "w")];
    committed(
        &store,
        Commit {
            expected_version: 1,
            sends: &again,
            ..new("c-1")
        },
    )
    .await;
    for key in ["k-old", "k-new"] {
        let claimed = store.claim_send("c-1", key, at(1), at(300)).await.unwrap();
        assert_eq!(claimed.unwrap().status, SendStatus::Pending, "{key}");
    }
    let sent = Settle::Sent {
        message_id: Some("m-old"),
    };
    assert!(store.settle_send("c-1", "k-old", sent).await.unwrap());
    let retry = Settle::Retry {
        at: at(60),
        reason: "busy",
        lease: at(300),
    };
    assert!(store.settle_send("c-1", "k-new", retry).await.unwrap());
    // Failed applies only to a claimed send: this one waits for its retry.
    let failed = Settle::Failed {
        reason: "no",
        lease: at(300),
    };
    assert!(!store.settle_send("c-1", "k-new", failed).await.unwrap());
    store.flush().await.unwrap();
    drop(store);
    assert_eq!(
        send_rows(&path),
        vec![
            (
                "k-new".into(),
                "pending".into(),
                1,
                Some(at(60).timestamp_millis()),
                None,
                Some("busy".into())
            ),
            (
                "k-old".into(),
                "sent".into(),
                1,
                None,
                Some("m-old".into()),
                None
            ),
        ]
    );
}

/// A send-log row as another connection reads it.
type SendRow = (
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The send log of the file at `path`: key, status, attempts, retry time, message id and
/// reason, by key.
fn send_rows(path: &Path) -> Vec<SendRow> {
    raw(path)
        .prepare(
            "SELECT idempotency_key, status, attempts, retry_at, message_id, reason FROM sends
             ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// How many customers a connection other than the store's sees in the file.
fn customers_seen_by_another_connection(path: &Path) -> i64 {
    raw(path)
        .query_row("SELECT count(*) FROM customers", [], |row| row.get(0))
        .unwrap()
}
