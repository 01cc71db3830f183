//! A store's file: the schema it gets, files it refuses, and reopening.

use std::path::Path;

use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, DeadLetter, SendEntry, SendStatus, Settle, Store,
    all_due,
};
use nudge_local::{OpenError, SqliteStore};
use nudge_testkit::contract::new;

use super::{at, raw, send};

#[tokio::test]
async fn a_new_file_gets_the_latest_schema_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(
        pragma(&path, "user_version"),
        SqliteStore::SCHEMA_VERSION.to_string()
    );
    assert_eq!(pragma(&path, "application_id"), 0x4e55_4447.to_string());
    assert_eq!(pragma(&path, "journal_mode"), "wal");
    let tables: Vec<String> = raw(&path)
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in [
        "customers",
        "dead_letters",
        "meta",
        "processed_events",
        "sends",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing from {tables:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_existing_file_is_a_new_store() {
    // What `simulate` opens by default: a scratch file made by tempfile.
    let file = tempfile::NamedTempFile::new().unwrap();
    let store = SqliteStore::open(file.path()).unwrap();
    assert_eq!(
        store.commit(new("c-1")).await.unwrap(),
        CommitOutcome::Committed { version: 1 }
    );
}

#[tokio::test]
async fn opening_twice_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let first = SqliteStore::open(&path).unwrap();
    first.set_meta("k", "v").await.unwrap();
    let second = SqliteStore::open(&path).unwrap();
    assert_eq!(second.get_meta("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let newer = SqliteStore::SCHEMA_VERSION + 1;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::TooNew { found, supported, .. } if found == newer && supported == SqliteStore::SCHEMA_VERSION),
        "got {err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("schema version {newer}")) && message.contains("newer"),
        "{message}"
    );
    assert_eq!(pragma(&path, "user_version"), newer.to_string());
}

#[tokio::test]
async fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    raw(&path)
        .execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::NotAStore { found: 0, .. }),
        "got {err:?}"
    );
    assert!(err.to_string().contains("is not a Nudge store"), "{err}");

    let other = dir.path().join("other-id.db");
    raw(&other)
        .pragma_update(None, "application_id", 42)
        .unwrap();
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(
        matches!(err, OpenError::NotAStore { found: 42, .. }),
        "got {err:?}"
    );

    // Our id with a version no Nudge ever wrote.
    let odd = dir.path().join("odd.db");
    drop(SqliteStore::open(&odd).unwrap());
    raw(&odd).pragma_update(None, "user_version", -1).unwrap();
    let err = SqliteStore::open(&odd).unwrap_err();
    assert!(matches!(err, OpenError::NotAStore { .. }), "got {err:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{\"id\": \"e-1\"}\n".repeat(200)).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Open { .. }), "got {err:?}");
    assert!(err.to_string().contains("events.jsonl"), "{err}");
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let sends = [send("k-1", "c-1", "welcome")];
    let letter = DeadLetter {
        id: String::new(),
        event_id: Some("e-9".into()),
        customer_id: Some("c-9".into()),
        source: "events.jsonl:9".into(),
        reason: "bad".into(),
        body: "{".into(),
        received_at: at(9),
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        let commit = Commit {
            state: b"{\"a\":1}",
            next_wake: Some(at(60)),
            event_id: Some("e-1"),
            sends: &sends,
            ..new("c-1")
        };
        assert_eq!(
            store.commit(commit).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        let claimed = store
            .claim_send("c-1", "k-1", at(1), at(301))
            .await
            .unwrap();
        assert!(claimed.is_some());
        let sent = Settle::Sent {
            message_id: Some("m-1"),
        };
        assert!(store.settle_send("c-1", "k-1", sent).await.unwrap());
        store.record_dead_letter(&letter).await.unwrap();
        store
            .set_meta("clock", "2026-03-01T00:01:00Z")
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.load("c-1").await.unwrap(),
        Some(CustomerRecord {
            version: 1,
            state: b"{\"a\":1}".to_vec()
        })
    );
    assert!(store.is_processed("e-1").await.unwrap());
    assert_eq!(
        all_due(&store, at(60), 10).await.unwrap(),
        vec![(at(60), "c-1".to_owned())]
    );
    assert_eq!(
        store.sends("c-1").await.unwrap(),
        vec![SendEntry {
            record: sends[0].clone(),
            status: SendStatus::Sent,
            attempts: 1,
            retry_at: None,
            message_id: Some("m-1".into()),
            reason: None,
        }]
    );

    assert_eq!(
        store.dead_letters(10).await.unwrap(),
        vec![DeadLetter {
            id: "00000000000000000001".to_owned(),
            ..letter
        }]
    );
    assert_eq!(
        store.get_meta("clock").await.unwrap().as_deref(),
        Some("2026-03-01T00:01:00Z")
    );
}

/// Order links and suppressions are kept in the file, batched or not.
#[tokio::test]
async fn reopening_keeps_orders_and_suppressions() {
    let dir = tempfile::tempdir().unwrap();
    for batch in [1, 100] {
        let path = dir.path().join(format!("store-{batch}.db"));
        {
            let options = nudge_local::SqliteOptions::default().batch(batch);
            let store = SqliteStore::open_with(&path, options).unwrap();
            store.link_order("o-1", "c-1").await.unwrap();
            store.suppress("a-key", "bounce", at(5)).await.unwrap();
            store.flush().await.unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.order_customer("o-1").await.unwrap().as_deref(),
            Some("c-1")
        );
        assert_eq!(
            store.suppression("a-key").await.unwrap(),
            Some(("bounce".to_owned(), at(5)))
        );
    }
}

/// The value of pragma `name` of the file, as text.
fn pragma(path: &Path, name: &str) -> String {
    raw(path)
        .pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
        .map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
}
