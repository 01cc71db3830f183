//! The store: the contract suite against `SqliteStore` (in memory and on a file, with and
//! without batching), SQLite-specific behaviour (schema, reopening, batches, two connections),
//! a model-based property test, and proof that the contract's checks catch broken stores.

mod batches;
mod faults;
mod files;
mod model;
mod now;
mod sqlite_contract;
mod two_connections;

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use nudge_core::store::{Commit, CommitOutcome, SendKind, SendRecord, Store};
use nudge_local::SqliteStore;

/// 2026-03-01T00:00:00Z plus `secs` seconds.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::seconds(secs)
}

/// An email of `workflow` to log for `customer_id` under `key`, at 1 s.
fn send(key: &str, customer_id: &str, workflow: &str) -> SendRecord {
    SendRecord {
        idempotency_key: key.into(),
        customer_id: customer_id.into(),
        workflow: workflow.into(),
        step: "s".into(),
        kind: SendKind::Email,
        category: "marketing".into(),
        tags: vec!["t".into()],
        at: at(1),
        payload: format!("MIME of {key}").into_bytes(),
    }
}

/// A raw connection to a store file, to look behind the store's back.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// Commits and asserts that the commit was applied.
async fn committed(store: &SqliteStore, commit: Commit<'_>) {
    let outcome = store.commit(commit).await.unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Committed { .. }),
        "{outcome:?}"
    );
}

/// Installs a trigger that makes any send of workflow `boom` fail, after the customer row of
/// its commit was written.
fn arm_failing_sends(path: &Path) {
    raw(path)
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON sends WHEN NEW.workflow = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
        )
        .unwrap();
}
