//! `SqliteStore::due` and `SqliteStore::pending_sends` with arbitrary cursors, shards, limits
//! and times, on an in-memory store holding a few customers with timers and pending sends:
//! a page or `StoreError::InvalidRequest`, never a panic or another error. A page's own cursor
//! gives the next page, whose rows all come after it.
//!
//! Input: byte 0 the call (even `due`, odd `pending_sends`), bytes 1-2 the shard, 3-10 `until`
//! (unix milliseconds), 11-12 the limit, the rest the cursor (empty: none; lossy UTF-8).
#![no_main]

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use nudge_core::store::{Commit, CommitOutcome, SendKind, SendRecord, Store, StoreError};
use nudge_fuzz::block_on;
use nudge_local::SqliteStore;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// The store, built once: customers with timers (some at the same time, odd ids among them)
/// and two pending sends each.
fn store() -> &'static SqliteStore {
    static STORE: OnceLock<SqliteStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let store = SqliteStore::in_memory().unwrap();
        let ids = ["c1", "c2", "c/3", "é", "c\"5", "", "x", "[1]"];
        for (i, id) in ids.iter().enumerate() {
            let when = at(1_000 * (i as i64 % 3));
            let sends: Vec<SendRecord> = (0..2)
                .map(|k| SendRecord {
                    idempotency_key: format!("{id}/k{k}"),
                    customer_id: (*id).to_owned(),
                    workflow: "w".to_owned(),
                    step: "s".to_owned(),
                    kind: SendKind::Email,
                    category: "marketing".to_owned(),
                    tags: Vec::new(),
                    at: when,
                    payload: Vec::new(),
                })
                .collect();
            let outcome = block_on(store.commit(Commit {
                customer_id: id,
                expected_version: 0,
                state: b"{}",
                next_wake: Some(when),
                event_id: None,
                sends: &sends,
                journal: &[],
            }));
            assert!(matches!(outcome.unwrap(), CommitOutcome::Committed { .. }));
        }
        block_on(store.flush()).unwrap();
        store
    })
}

fn allowed(e: &StoreError) {
    assert!(matches!(e, StoreError::InvalidRequest(_)), "{e:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut head = [0u8; 13];
    let n = data.len().min(13);
    head[..n].copy_from_slice(&data[..n]);
    let pending = head[0] % 2 == 1;
    let shard = u16::from_le_bytes([head[1], head[2]]);
    let millis = i64::from_le_bytes(head[3..11].try_into().unwrap());
    let until = DateTime::from_timestamp_millis(millis).unwrap_or(if millis < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    let limit = usize::from(u16::from_le_bytes([head[11], head[12]]));
    let rest = data.get(13..).unwrap_or_default();
    let cursor = String::from_utf8_lossy(rest);
    let cursor = (!rest.is_empty()).then_some(cursor.as_ref());
    let store = store();
    if pending {
        match block_on(store.pending_sends(shard, until, limit, cursor)) {
            Ok(page) => {
                if let Some(next) = page.cursor.as_deref() {
                    let last = page.due.last().unwrap().clone();
                    let more = block_on(store.pending_sends(shard, until, limit, Some(next)))
                        .expect("a page's own cursor");
                    assert!(more.due.iter().all(|row| *row > last));
                }
            }
            Err(e) => allowed(&e),
        }
    } else {
        match block_on(store.due(shard, until, limit, cursor)) {
            Ok(page) => {
                if let Some(next) = page.cursor.as_deref() {
                    let last = page.due.last().unwrap().clone();
                    let more = block_on(store.due(shard, until, limit, Some(next)))
                        .expect("a page's own cursor");
                    assert!(more.due.iter().all(|row| *row > last));
                }
            }
            Err(e) => allowed(&e),
        }
    }
});
