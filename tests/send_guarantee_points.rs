//! Crash tests of the send guarantee on `SqliteStore`, at every point of a delivery (after the
//! commit, after the claim, after the send, before the settle): the backend-neutral suite of
//! `nudge-testkit` on each way the store is opened, and the same points with the outbox and
//! `simulate`'s resume, where the outbox's lookup lets even marketing email be delivered after
//! a crash, and never twice.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use nudge_core::engine::Engine;
use nudge_core::links::Signer;
use nudge_core::mail::{Lookup, MailError, Mailer, Receipt};
use nudge_core::runner::Runner;
use nudge_core::store::{
    Commit, CommitOutcome, DUE_SHARDS, SendKind, SendRecord, SendStatus, Store, StoreError,
};
use nudge_local::simulate::resume_sends;
use nudge_local::{Durability, LocalMailer, OutboxMailer, SqliteOptions, SqliteStore};

use crate::helpers::root;

/// Runs `f` with an engine of the shipped workflows (the cases deliver sends they log
/// themselves; the engine is only the runner's).
fn with_engine(f: impl FnOnce(&Engine<'_>)) {
    let project = nudge_core::workflow::load(&root().join("workflows"))
        .unwrap()
        .project
        .unwrap();
    let signer = Signer::development();
    f(&Engine::new(&project, &signer));
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The suite of `nudge-testkit`: in memory, batched, on a file, and without a journal.
#[test]
fn the_send_guarantee_holds_at_every_point_on_sqlite() {
    with_engine(|engine| {
        block_on(async {
            nudge_testkit::guarantee::run_all(async || SqliteStore::in_memory().unwrap(), engine)
                .await;
            nudge_testkit::guarantee::run_all(
                async || SqliteStore::in_memory_with(SqliteOptions::default().batch(50)).unwrap(),
                engine,
            )
            .await;
            let dir = tempfile::tempdir().unwrap();
            let n = AtomicUsize::new(0);
            for options in [
                SqliteOptions::default(),
                SqliteOptions::default().batch(SqliteOptions::SIMULATE_BATCH),
                SqliteOptions::scratch(1),
                SqliteOptions::default().durability(Durability::NoSync),
            ] {
                nudge_testkit::guarantee::run_all(
                    async || {
                        let i = n.fetch_add(1, Ordering::Relaxed);
                        let path = dir.path().join(format!("{i}.db"));
                        SqliteStore::open_with(&path, options).unwrap()
                    },
                    engine,
                )
                .await;
            }
        });
    });
}

/// 2026-03-01T00:00:00Z.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// The send each case logs: an email of `category` to customer `c-1`.
fn logged(category: &str) -> SendRecord {
    SendRecord {
        idempotency_key: "r-1.hello".into(),
        customer_id: "c-1".into(),
        workflow: "w".into(),
        step: "hello".into(),
        kind: SendKind::Email,
        category: category.into(),
        tags: vec!["t".into()],
        at: t0(),
        payload: b"Message-ID: <r-1.hello@shop.example>\r\nTo: a@example.com\r\nSubject: Hi\r\n\r\nHello\r\n"
            .to_vec(),
    }
}

/// Keeps the panics that stand for a stopped process out of the test output.
fn quiet_stops() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let stop = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.starts_with("the process stopped"));
            if !stop {
                default(info);
            }
        }));
    });
}

/// Where the process stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// After the commit that logged the send (durable), before any delivery.
    Committed,
    /// After the claim was made durable, before the file was written.
    Claimed,
    /// After the file was written, before the send was settled.
    Sent,
}

/// The outbox, stopping the process (a panic) before or after it writes.
struct Stopping {
    outbox: OutboxMailer,
    point: Point,
}

impl Mailer for Stopping {
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        if self.point == Point::Claimed {
            panic!("the process stopped after the claim");
        }
        self.outbox.send(send).await?;
        panic!("the process stopped after the send");
    }

    async fn lookup(&self, send: &SendRecord) -> Result<Lookup, MailError> {
        self.outbox.lookup(send).await
    }
}

/// The store as `simulate --db` opens it.
fn open(db: &Path) -> SqliteStore {
    SqliteStore::open_with(
        db,
        SqliteOptions::default().batch(SqliteOptions::SIMULATE_BATCH),
    )
    .unwrap()
}

/// Logs a send of `category`, stops the process at `point`, then resumes as the next
/// `simulate --db` run does; returns the outbox's files and what the store holds.
fn crash_and_resume(engine: &Engine<'_>, category: &str, point: Point, dir: &Path) {
    let db = dir.join("store.db");
    let outbox = dir.join("outbox");
    let what = format!("{category} stopped {point:?}");
    {
        let store = open(&db);
        let sends = [logged(category)];
        let commit = Commit {
            customer_id: "c-1",
            expected_version: 0,
            state: b"{}",
            next_wake: None,
            event_id: Some("e-1"),
            sends: &sends,
            journal: &[],
        };
        block_on(async {
            let outcome = store.commit(commit).await.unwrap();
            assert!(
                matches!(outcome, CommitOutcome::Committed { .. }),
                "{outcome:?}"
            );
            store.flush().await.unwrap();
        });
        if point != Point::Committed {
            let mailer = Stopping {
                outbox: OutboxMailer::new(&outbox).unwrap(),
                point,
            };
            let runner = Runner::new(engine, store, Some(&mailer)).deliver_later();
            quiet_stops();
            let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                block_on(runner.deliver(&[("c-1", "r-1.hello")], t0()))
            }));
            assert!(stopped.is_err(), "{what}: the delivery did not stop");
        }
    }
    // The next run: its store and outbox opened afresh.
    let mailer = LocalMailer::Outbox(OutboxMailer::new(&outbox).unwrap());
    let runner = Runner::new(engine, open(&db), Some(&mailer)).deliver_later();
    let swept = resume_sends(&runner, &mailer).unwrap();
    assert_eq!(swept.len(), 1, "{what}: {swept:?}");
    assert_eq!(swept[0].found, point == Point::Sent, "{what}");
    // Written once, whole, and settled sent: never twice, marketing included, since the
    // outbox knows whether it was written.
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{what}: {files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), logged(category).payload);
    let entries = block_on(runner.store().sends("c-1")).unwrap();
    assert_eq!(entries.len(), 1, "{what}");
    assert_eq!(
        entries[0].status,
        SendStatus::Sent,
        "{what}: {:?}",
        entries[0]
    );
    assert_eq!(
        entries[0].message_id.as_deref(),
        Some("r-1.hello@shop.example"),
        "{what}"
    );
    assert!(nothing_pending(runner.store()).unwrap(), "{what}");
    // A later run finds nothing left.
    assert!(resume_sends(&runner, &mailer).unwrap().is_empty(), "{what}");
}

/// Whether no send of `store` is pending or claimed, at any time.
fn nothing_pending(store: &SqliteStore) -> Result<bool, StoreError> {
    block_on(async {
        for shard in 0..DUE_SHARDS {
            let page = store
                .pending_sends(shard, DateTime::<Utc>::MAX_UTC, 10, None)
                .await?;
            if !page.due.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

#[test]
fn a_simulate_stopped_at_any_point_delivers_each_email_once_when_resumed() {
    with_engine(|engine| {
        for category in ["transactional", "marketing"] {
            for point in [Point::Committed, Point::Claimed, Point::Sent] {
                let dir = tempfile::tempdir().unwrap();
                crash_and_resume(engine, category, point, dir.path());
            }
        }
    });
}
