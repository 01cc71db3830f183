//! Tests of what only this store's insides show: pragmas, the remembered version, lost
//! batches, durability modes.

use super::*;
use nudge_core::store::{SendKind, SendRecord, SendStatus, due_shard};

fn commit<'a>(customer_id: &'a str, expected_version: u64) -> Commit<'a> {
    Commit {
        customer_id,
        expected_version,
        state: b"{}",
        next_wake: None,
        event_id: None,
        sends: &[],
        journal: &[],
    }
}

/// The value of `PRAGMA name` on the store's connection.
fn pragma<T: rusqlite::types::FromSql>(store: &SqliteStore, name: &str) -> T {
    let inner = store.inner.lock().unwrap();
    inner
        .conn
        .pragma_query_value(None, name, |r| r.get::<_, T>(0))
        .unwrap()
}

/// Runs `sql` on the store's connection, behind its back.
fn execute(store: &SqliteStore, sql: &str) {
    store.inner.lock().unwrap().conn.execute_batch(sql).unwrap();
}

/// Whether the store's connection has no transaction open.
fn is_autocommit(store: &SqliteStore) -> bool {
    store.inner.lock().unwrap().conn.is_autocommit()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn the_page_cache_is_24_mib_unless_set() {
    let store = SqliteStore::in_memory().unwrap();
    assert_eq!(pragma::<i64>(&store, "cache_size"), -24 * 1024);
    let store = SqliteStore::in_memory_with(SqliteOptions::default().cache_kib(12 * 1024));
    assert_eq!(pragma::<i64>(&store.unwrap(), "cache_size"), -12 * 1024);
    // Shared by the stores of one process.
    let store = SqliteStore::in_memory_with(SqliteOptions::scratch(4)).unwrap();
    assert_eq!(pragma::<i64>(&store, "cache_size"), -6 * 1024);
}

/// A commit right after its load in the open batch skips reading the version again; the
/// version it remembers is only ever that customer's, and only from inside the batch.
#[test]
fn the_version_remembered_from_a_load_is_only_used_for_its_customer_and_batch() {
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(10)).unwrap();
        for id in ["a", "b"] {
            assert!(matches!(
                store.commit(commit(id, 0)).await.unwrap(),
                CommitOutcome::Committed { .. }
            ));
        }
        store.flush().await.unwrap();
        // In a batch: the load of `a` is remembered; `c` does not exist.
        assert!(matches!(
            store.commit(commit("b", 1)).await.unwrap(),
            CommitOutcome::Committed { .. }
        ));
        assert_eq!(store.load("a").await.unwrap().unwrap().version, 1);
        assert_eq!(
            store.commit(commit("c", 1)).await.unwrap(),
            CommitOutcome::Conflict
        );
        assert_eq!(store.load("a").await.unwrap().unwrap().version, 1);
        assert_eq!(
            store.commit(commit("a", 1)).await.unwrap(),
            CommitOutcome::Committed { version: 2 }
        );
        assert_eq!(
            store.commit(commit("a", 1)).await.unwrap(),
            CommitOutcome::Conflict
        );
        store.flush().await.unwrap();

        // Outside a batch, another connection may write between a load and a commit.
        assert_eq!(store.load("a").await.unwrap().unwrap().version, 2);
        let other = SqliteStore::open(&path).unwrap();
        assert!(matches!(
            other.commit(commit("a", 2)).await.unwrap(),
            CommitOutcome::Committed { version: 3 }
        ));
        drop(other);
        assert_eq!(
            store.commit(commit("a", 2)).await.unwrap(),
            CommitOutcome::Conflict
        );
    });
}

#[test]
fn a_batch_rolled_back_by_sqlite_is_reported_not_hidden() {
    block_on(async {
        let store = SqliteStore::in_memory_with(SqliteOptions::default().batch(10)).unwrap();
        for id in ["a", "b"] {
            let outcome = store.commit(commit(id, 0)).await.unwrap();
            assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
        }
        // What SQLite does after some I/O errors: the whole transaction is gone.
        execute(&store, "ROLLBACK");
        let err = store.commit(commit("c", 0)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::WritesLost { lost: 2, .. }),
            "got {err:?}"
        );
        // Reported once; the store goes on.
        assert_eq!(
            store.commit(commit("c", 0)).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        store.flush().await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), None);
    });
}

/// SQLite rolls the open transaction back on its own after some failures (I/O, a full disk,
/// out of memory; here a trigger's `RAISE(ROLLBACK)`): the call that failed says at once that
/// the batch's writes were lost, instead of a retryable error that hides them.
#[test]
fn a_failure_that_rolls_the_batch_back_reports_the_lost_writes_at_once() {
    block_on(async {
        let store = SqliteStore::in_memory_with(SqliteOptions::default().batch(10)).unwrap();
        execute(
            &store,
            "CREATE TRIGGER boom BEFORE INSERT ON meta WHEN NEW.key = 'boom'
             BEGIN SELECT RAISE(ROLLBACK, 'boom'); END",
        );
        for id in ["a", "b"] {
            let outcome = store.commit(commit(id, 0)).await.unwrap();
            assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
        }
        store.set_meta("k", "v").await.unwrap();
        let err = store.set_meta("boom", "v").await.unwrap_err();
        assert!(
            matches!(err, StoreError::WritesLost { lost: 3, .. }),
            "got {err:?}"
        );
        assert!(!err.is_retryable());
        let cause = std::error::Error::source(&err).expect("the failure is the cause");
        assert!(cause.to_string().contains("boom"), "{cause}");
        // Reported once; the store goes on from what is durable.
        store.flush().await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), None);
        assert_eq!(store.get_meta("k").await.unwrap(), None);
    });
}

/// A scratch store cannot roll back, so after its batch is lost it refuses all use.
#[test]
fn a_scratch_store_that_lost_a_batch_refuses_all_use() {
    block_on(async {
        let options = SqliteOptions::default()
            .batch(10)
            .durability(Durability::Scratch);
        let store = SqliteStore::in_memory_with(options).unwrap();
        execute(
            &store,
            "CREATE TRIGGER boom BEFORE INSERT ON meta WHEN NEW.key = 'boom'
             BEGIN SELECT RAISE(ROLLBACK, 'boom'); END",
        );
        let outcome = store.commit(commit("a", 0)).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
        let err = store.set_meta("boom", "v").await.unwrap_err();
        assert!(
            matches!(err, StoreError::WritesLost { lost: 1, .. }),
            "{err:?}"
        );
        let err = store.load("a").await.unwrap_err();
        assert!(matches!(err, StoreError::Unusable(_)), "{err:?}");
    });
}

#[test]
fn flush_reports_a_lost_batch() {
    block_on(async {
        let store = SqliteStore::in_memory_with(SqliteOptions::default().batch(10)).unwrap();
        store.set_meta("k", "v").await.unwrap();
        execute(&store, "ROLLBACK");
        let err = store.flush().await.unwrap_err();
        assert!(
            matches!(err, StoreError::WritesLost { lost: 1, .. }),
            "got {err:?}"
        );
        store.flush().await.unwrap();
    });
}

#[test]
fn each_durability_sets_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str, durability| {
        let options = SqliteOptions::default().durability(durability);
        SqliteStore::open_with(&dir.path().join(name), options).unwrap()
    };
    let normal = open("normal.db", Durability::Normal);
    assert_eq!(pragma::<i64>(&normal, "synchronous"), 1, "NORMAL");
    assert_eq!(pragma::<String>(&normal, "journal_mode"), "wal");
    let no_sync = open("no-sync.db", Durability::NoSync);
    assert_eq!(pragma::<i64>(&no_sync, "synchronous"), 0, "OFF");
    assert_eq!(pragma::<String>(&no_sync, "journal_mode"), "wal");
    let scratch = open("scratch.db", Durability::Scratch);
    assert_eq!(pragma::<i64>(&scratch, "synchronous"), 0, "OFF");
    assert_eq!(pragma::<String>(&scratch, "journal_mode"), "off");
}

/// An option SQLite cannot apply fails the open; the store never runs without it.
#[test]
fn a_scratch_store_that_cannot_drop_its_journal_is_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::open(&path).unwrap());
    // Another connection holding the database open in WAL mode: the journal mode cannot
    // change while it reads.
    let reader = Connection::open(&path).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM customers;")
        .unwrap();
    let options = SqliteOptions::default().durability(Durability::Scratch);
    let err = SqliteStore::open_with(&path, options).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Setting {
                what: "turn its journal off",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("s.db"), "{err}");
}

#[test]
fn a_scratch_store_writes_without_a_journal_and_stops_after_a_failed_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let options = SqliteOptions::default()
        .batch(10)
        .durability(Durability::Scratch);
    let store = SqliteStore::open_with(&path, options).unwrap();
    assert_eq!(pragma::<String>(&store, "journal_mode"), "off");
    execute(
        &store,
        "CREATE TRIGGER boom BEFORE INSERT ON sends WHEN NEW.workflow = 'boom'
         BEGIN SELECT RAISE(ABORT, 'boom'); END",
    );
    block_on(async {
        let outcome = store.commit(commit("a", 0)).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
        store.flush().await.unwrap();
        let seen: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 1, "a flushed batch is in the file");

        let boom = [SendRecord {
            idempotency_key: "k".into(),
            customer_id: "a".into(),
            workflow: "boom".into(),
            step: "s".into(),
            kind: SendKind::Email,
            category: "marketing".into(),
            tags: vec![],
            at: DateTime::from_timestamp(0, 0).unwrap(),
            payload: b"mime".to_vec(),
        }];
        let failing = Commit {
            sends: &boom,
            ..commit("a", 1)
        };
        assert_eq!(
            store.commit(failing).await.unwrap(),
            CommitOutcome::Committed { version: 2 }
        );
        let err = store.flush().await.unwrap_err();
        assert!(
            matches!(err, StoreError::WritesLost { lost: 1, .. }),
            "{err:?}"
        );
        // Nothing was rolled back, so nothing may be trusted any more.
        let err = store.load("a").await.unwrap_err();
        assert!(matches!(err, StoreError::Unusable(_)), "{err:?}");
        let err = store.commit(commit("b", 0)).await.unwrap_err();
        assert!(matches!(err, StoreError::Unusable(_)), "{err:?}");
    });
}

#[test]
fn no_transaction_stays_open_without_a_write() {
    let store = SqliteStore::in_memory_with(SqliteOptions::default().batch(10)).unwrap();
    block_on(async {
        let outcome = store.commit(commit("a", 0)).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
        assert!(!is_autocommit(&store));
        store.flush().await.unwrap();
        assert!(is_autocommit(&store));
        // A conflict writes nothing, so it leaves no transaction open.
        assert_eq!(
            store.commit(commit("a", 0)).await.unwrap(),
            CommitOutcome::Conflict
        );
        assert!(is_autocommit(&store));
    });
}

/// A store file of schema version 1 (before due shards), with three customers, two of them
/// with a timer.
fn version_1_file(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "application_id", 0x4e55_4447)
        .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute_batch(
        "INSERT INTO customers VALUES ('c1', 1, x'7b7d', 1000, 0);
         INSERT INTO customers VALUES ('c2', 1, x'7b7d', 2000, 0);
         INSERT INTO customers VALUES ('customer-42', 3, x'7b7d', NULL, 0);",
    )
    .unwrap();
}

#[test]
fn a_version_1_file_is_migrated_and_its_timers_are_found_in_their_shards() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    version_1_file(&path);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        pragma::<i64>(&store, "user_version"),
        SqliteStore::SCHEMA_VERSION
    );
    let t = |ms| from_millis(ms).unwrap();
    for shard in 0..DUE_SHARDS {
        let page = block_on(store.due(shard, t(5000), 10, None)).unwrap();
        let mut expected = Vec::new();
        for (id, at) in [("c1", 1000), ("c2", 2000)] {
            if due_shard(id) == shard {
                expected.push((t(at), id.to_owned()));
            }
        }
        assert_eq!(page.due, expected, "shard {shard}");
    }
    // Stored customers keep their state and version; a new commit of one keeps its shard.
    assert_eq!(
        block_on(store.load("customer-42"))
            .unwrap()
            .unwrap()
            .version,
        3
    );
    let shard_of = |id: &str| -> i64 {
        let inner = store.inner.lock().unwrap();
        inner
            .conn
            .query_row(
                "SELECT shard FROM customers WHERE customer_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(shard_of("customer-42"), i64::from(due_shard("customer-42")));
    let outcome = block_on(store.commit(commit("c1", 1))).unwrap();
    assert_eq!(outcome, CommitOutcome::Committed { version: 2 });
    assert_eq!(shard_of("c1"), i64::from(due_shard("c1")));
    drop(store);
    // Opened again: nothing more to migrate.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        pragma::<i64>(&store, "user_version"),
        SqliteStore::SCHEMA_VERSION
    );
}

/// A store file of schema version `version` (1 or 2) whose send log holds one send in each
/// status of that version, for customer `c1`.
fn old_file_with_sends(path: &Path, version: usize) {
    let conn = Connection::open(path).unwrap();
    for sql in &MIGRATIONS[..version] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "application_id", 0x4e55_4447)
        .unwrap();
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn.execute_batch(
        "INSERT INTO customers (customer_id, version, state, next_wake, updated_at)
             VALUES ('c1', 1, x'7b7d', NULL, 0);
         INSERT INTO sends VALUES ('r-1.a', 'c1', 'w', 'a', 'marketing', 1000, 'pending', NULL);
         INSERT INTO sends VALUES ('r-1.b', 'c1', 'w', 'b', 'transactional', 2000, 'sent', 'm-b');
         INSERT INTO sends VALUES ('r-1.c', 'c1', 'w', 'c', 'transactional', 3000, 'failed', NULL);",
    )
    .unwrap();
}

/// Sends of versions 1 and 2 kept no message: a pending one cannot be delivered now, and
/// becomes `unknown` (it may or may not have left), a failed one stays failed, both saying
/// why; a sent one stays sent with its id. None is left for a sweep.
#[test]
fn old_send_logs_are_migrated_to_final_statuses_that_say_why() {
    for version in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        old_file_with_sends(&path, version);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            pragma::<i64>(&store, "user_version"),
            SqliteStore::SCHEMA_VERSION
        );
        let sends = block_on(store.sends("c1")).unwrap();
        let statuses: Vec<_> = sends
            .iter()
            .map(|e| (e.record.step.as_str(), e.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("a", SendStatus::Unknown),
                ("b", SendStatus::Sent),
                ("c", SendStatus::Failed)
            ],
            "version {version}"
        );
        let a = &sends[0];
        assert!(
            a.reason.as_deref().unwrap().contains("kept no message"),
            "{a:?}"
        );
        assert_eq!(a.record.kind, SendKind::Email);
        assert!(a.record.payload.is_empty() && a.record.tags.is_empty());
        assert_eq!((a.attempts, a.retry_at), (0, None));
        assert_eq!(sends[1].message_id.as_deref(), Some("m-b"));
        assert_eq!(sends[1].reason, None);
        assert!(
            sends[2]
                .reason
                .as_deref()
                .unwrap()
                .contains("cannot be retried")
        );
        let until = DateTime::<Utc>::MAX_UTC;
        for shard in 0..DUE_SHARDS {
            let page = block_on(store.pending_sends(shard, until, 10, None)).unwrap();
            assert!(page.due.is_empty(), "version {version}, shard {shard}");
        }
        // The send log takes new sends, kept whole.
        let send = SendRecord {
            idempotency_key: "r-2.a".into(),
            customer_id: "c1".into(),
            workflow: "w".into(),
            step: "a".into(),
            kind: SendKind::Webhook,
            category: "webhook".into(),
            tags: vec!["t-1".into(), "t_2".into()],
            at: from_millis(5000).unwrap(),
            payload: vec![0, 159, 146, 150],
        };
        let next = Commit {
            sends: std::slice::from_ref(&send),
            ..commit("c1", 1)
        };
        let outcome = block_on(store.commit(next)).unwrap();
        assert_eq!(outcome, CommitOutcome::Committed { version: 2 });
        let sends = block_on(store.sends("c1")).unwrap();
        assert_eq!(sends[3].record, send);
        let shard = due_shard("c1");
        let page = block_on(store.pending_sends(shard, from_millis(5000).unwrap(), 10, None));
        assert_eq!(page.unwrap().due.len(), 1);
    }
}

/// A claim and a settle join the open batch like a commit: another connection sees them only
/// once the batch is committed, and they see the sends the batch logged.
#[test]
fn claims_and_settles_join_the_batch_and_see_its_sends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = SqliteStore::open_with(&path, SqliteOptions::default().batch(100)).unwrap();
    let send = SendRecord {
        idempotency_key: "r-1.a".into(),
        customer_id: "c1".into(),
        workflow: "w".into(),
        step: "a".into(),
        kind: SendKind::Email,
        category: "transactional".into(),
        tags: vec![],
        at: from_millis(1000).unwrap(),
        payload: b"mime".to_vec(),
    };
    let status = || -> Option<String> {
        Connection::open(&path)
            .unwrap()
            .query_row("SELECT status FROM sends", [], |r| r.get(0))
            .optional()
            .unwrap()
    };
    block_on(async {
        let first = Commit {
            sends: std::slice::from_ref(&send),
            ..commit("c1", 0)
        };
        let outcome = store.commit(first).await.unwrap();
        assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
        let t = |ms| from_millis(ms).unwrap();
        let claimed = store.claim_send("c1", "r-1.a", t(1000), t(2000)).await;
        assert_eq!(claimed.unwrap().unwrap().status, SendStatus::Pending);
        assert_eq!(status(), None, "nothing is durable before the flush");
        store.flush().await.unwrap();
        assert_eq!(status().as_deref(), Some("sending"));
        let settled = store.settle_send(
            "c1",
            "r-1.a",
            Settle::Sent {
                message_id: Some("m"),
            },
        );
        assert!(settled.await.unwrap());
        assert_eq!(status().as_deref(), Some("sending"));
        store.flush().await.unwrap();
        assert_eq!(status().as_deref(), Some("sent"));
    });
}

/// A page of deliverable sends reads the partial index of pending and claimed sends, from
/// its cursor: sends that are settled are never read.
#[test]
fn a_pending_sends_page_is_a_range_of_the_partial_index_never_a_scan() {
    let store = SqliteStore::in_memory().unwrap();
    let plan = |sql: &str| -> String {
        let inner = store.inner.lock().unwrap();
        let mut stmt = inner
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params![1, 2, 3, "c", "k", 5], |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    for sql in [sends::PENDING_FIRST, sends::PENDING_AFTER] {
        let plan = plan(sql);
        assert!(
            plan.contains("SEARCH sends USING INDEX sends_pending (shard=?")
                || plan.contains("SEARCH sends USING COVERING INDEX sends_pending (shard=?"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
    let after = plan(sends::PENDING_AFTER);
    assert!(
        after.contains("(retry_at,customer_id,idempotency_key)>(?,?,?)"),
        "{after}"
    );
}

#[test]
fn dead_letter_ids_are_the_row_id_padded_so_that_byte_order_is_recording_order() {
    let store = SqliteStore::in_memory().unwrap();
    let letter = DeadLetter {
        id: String::new(),
        event_id: None,
        customer_id: None,
        source: "s".into(),
        reason: "r".into(),
        body: String::new(),
        received_at: from_millis(0).unwrap(),
    };
    let ids: Vec<String> = (0..11)
        .map(|_| block_on(store.record_dead_letter(&letter)).unwrap())
        .collect();
    assert_eq!(ids[0], "00000000000000000001");
    assert_eq!(ids[10], "00000000000000000011");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[test]
fn a_due_page_is_a_range_of_the_shard_index_never_a_scan() {
    let store = SqliteStore::in_memory().unwrap();
    let plan = |sql: &str| -> String {
        let inner = store.inner.lock().unwrap();
        let mut stmt = inner
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params![1, 2, 3, "c", 5], |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    for sql in [DUE_FIRST, DUE_AFTER] {
        let plan = plan(sql);
        assert!(
            plan.contains("SEARCH customers USING COVERING INDEX customers_due (shard=?"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
    // A later page starts at the cursor in the index.
    let after = plan(DUE_AFTER);
    assert!(after.contains("(next_wake,customer_id)>(?,?)"), "{after}");
}

/// A store file of schema version 3, with a customer, an event they consumed and two orders
/// linked to them: migrated to 4, the orders are found by the erasure (through the new index),
/// and the new tables take feedback and parked inputs.
#[test]
fn a_version_3_file_is_migrated_and_its_customers_can_be_erased() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    {
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "application_id", 0x4e55_4447)
            .unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO customers (customer_id, version, state, next_wake, updated_at, shard)
                 VALUES ('guest:ayse@example.com', 2, x'7b7d', 5000, 0, 0);
             INSERT INTO processed_events VALUES ('e-1', 'guest:ayse@example.com', 0);
             INSERT INTO processed_events VALUES ('e-2', 'c-2', 0);
             INSERT INTO orders VALUES ('1001', 'guest:ayse@example.com');
             INSERT INTO orders VALUES ('1002', 'guest:ayse@example.com');
             INSERT INTO orders VALUES ('1003', 'c-2');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        pragma::<i64>(&store, "user_version"),
        SqliteStore::SCHEMA_VERSION
    );
    let erased = block_on(store.erase_customer("guest:ayse@example.com")).unwrap();
    assert_eq!(
        erased,
        Erased {
            state: true,
            sends: 0,
            orders: 2,
            journal_commits: 0,
            dead_letters: 0,
        }
    );
    assert_eq!(
        block_on(store.order_customer("1003")).unwrap().as_deref(),
        Some("c-2")
    );
    // The event stays processed, without the customer's id (a guest id holds an address).
    assert!(block_on(store.is_processed("e-1")).unwrap());
    let holders: Vec<String> = {
        let inner = store.inner.lock().unwrap();
        let mut stmt = inner
            .conn
            .prepare("SELECT customer_id FROM processed_events ORDER BY event_id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(holders, ["", "c-2"]);
    let feedback = Feedback {
        event_id: "f-1",
        workflow: "w",
        step: "s",
        kind: nudge_core::store::FeedbackKind::Bounced,
        at: from_millis(1000).unwrap(),
    };
    assert!(block_on(store.record_feedback(&feedback)).unwrap());
    let parked = Parked {
        order_id: "1004".into(),
        event_id: "e-9".into(),
        body: "{}".into(),
        expires_at: from_millis(9000).unwrap(),
    };
    block_on(store.park(&parked)).unwrap();
    assert_eq!(
        block_on(store.parked("1004", from_millis(0).unwrap())).unwrap(),
        [parked]
    );
}

/// In a batch, an erasure sees the customer's staged commit and sends, a version remembered
/// from a load is forgotten (the customer starts again at 0), and a feedback event counted
/// earlier in the batch is a duplicate.
#[test]
fn an_erasure_and_feedback_in_an_open_batch_see_the_batch() {
    let store = SqliteStore::in_memory_with(SqliteOptions::default().batch(100)).unwrap();
    block_on(async {
        let send = SendRecord {
            idempotency_key: "r-1.a".into(),
            customer_id: "c1".into(),
            workflow: "w".into(),
            step: "a".into(),
            kind: SendKind::Email,
            category: "marketing".into(),
            tags: vec![],
            at: from_millis(0).unwrap(),
            payload: b"m".to_vec(),
        };
        let sends = [send];
        let first = Commit {
            sends: &sends,
            next_wake: Some(from_millis(10).unwrap()),
            ..commit("c1", 0)
        };
        assert_eq!(
            store.commit(first).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        assert_eq!(store.load("c1").await.unwrap().unwrap().version, 1);
        assert!(!is_autocommit(&store), "the batch is open");
        let erased = store.erase_customer("c1").await.unwrap();
        assert_eq!(
            erased,
            Erased {
                state: true,
                sends: 1,
                orders: 0,
                journal_commits: 0,
                dead_letters: 0,
            }
        );
        assert_eq!(
            store.commit(commit("c1", 1)).await.unwrap(),
            CommitOutcome::Conflict,
            "the version loaded before the erasure is gone"
        );
        assert_eq!(
            store.commit(commit("c1", 0)).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        let feedback = Feedback {
            event_id: "f-1",
            workflow: "w",
            step: "a",
            kind: nudge_core::store::FeedbackKind::Delivered,
            at: from_millis(0).unwrap(),
        };
        assert!(store.record_feedback(&feedback).await.unwrap());
        assert!(!store.record_feedback(&feedback).await.unwrap());
        store.flush().await.unwrap();
        assert_eq!(store.feedback_counts().await.unwrap()[0].count, 1);
    });
}
