//! `nudge erase` as an operator runs it on the store `simulate --db` wrote: one customer's
//! state, sends, history (the journal) and the dead letters naming them are removed and said
//! so; `explain` then knows no such customer; other customers are untouched; erasing again
//! erases nothing.

use std::path::{Path, PathBuf};

use nudge_core::store::Store;
use nudge_local::SqliteStore;
use serde_json::{Value, json};

use crate::helpers::{nudge, root};
use crate::scenarios::{customer, ev};
use crate::simulate_cli::write_events;

/// The store `simulate --db` writes in `dir` from three lines: customers c-1 and c-2 created,
/// and a line of c-1 rejected (its time is not a time: a dead letter naming c-1).
fn simulated_store(dir: &Path) -> PathBuf {
    let db = dir.join("store.db");
    let mut bad = ev(
        "e-bad",
        "customer.updated",
        "2026-03-01T10:00:00Z",
        "c-1",
        customer("Ayse"),
    );
    bad["time"] = json!("not a time");
    let lines = [
        ev(
            "e-1",
            "customer.created",
            "2026-03-01T08:00:00Z",
            "c-1",
            customer("Ayse"),
        ),
        ev(
            "e-2",
            "customer.created",
            "2026-03-01T08:30:00Z",
            "c-2",
            customer("Can"),
        ),
        bad,
    ];
    let events = write_events(dir, &lines.map(|l| l.to_string()));
    let (code, _, err) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            events.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--until",
            "2026-03-10T00:00:00Z",
        ],
        &[],
    );
    assert_eq!(code, 1, "the bad line is rejected: {err}");
    db
}

#[test]
fn erase_removes_everything_kept_about_one_customer() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_store(dir.path());
    let db_arg = db.to_str().unwrap();
    let run = |args: &[&str]| nudge(&root(), args, &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (sends, journal) = {
        let store = SqliteStore::open(&db).unwrap();
        let sends = rt.block_on(store.sends("c-1")).unwrap().len();
        let journal = rt.block_on(store.journal("c-1")).unwrap().len();
        (sends, journal)
    };
    assert!(
        sends >= 2 && journal > 0,
        "{sends} sends, {journal} entries"
    );

    let (code, out, err) = run(&[
        "erase",
        "--db",
        db_arg,
        "--customer",
        "c-1",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let erased: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(erased["customer"], "c-1");
    assert_eq!(erased["state"], true);
    assert_eq!(erased["sends"], sends);
    assert_eq!(erased["orders"], 0);
    assert_eq!(erased["dead_letters"], 1);
    // Each commit of the customer that kept entries: at least the created event's.
    assert!(erased["journal_commits"].as_u64().unwrap() >= 1, "{erased}");

    let (code, _, err) = run(&["explain", "--db", db_arg, "--customer", "c-1"]);
    assert_eq!(code, 1, "explain knows no such customer any more: {err}");
    {
        let store = SqliteStore::open(&db).unwrap();
        assert!(rt.block_on(store.sends("c-1")).unwrap().is_empty());
        assert!(rt.block_on(store.journal("c-1")).unwrap().is_empty());
        assert!(rt.block_on(store.dead_letters(10)).unwrap().is_empty());
        // The other customer is untouched; the erased customer's events stay processed.
        assert!(rt.block_on(store.load("c-2")).unwrap().is_some());
        assert!(!rt.block_on(store.sends("c-2")).unwrap().is_empty());
        assert!(rt.block_on(store.is_processed("e-1")).unwrap());
    }

    let (code, out, _) = run(&["erase", "--db", db_arg, "--customer", "c-1"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        "The store kept nothing about customer `c-1`: nothing erased."
    );
    let (code, out, _) = run(&["erase", "--db", db_arg, "--customer", "c-2"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("state and timer: removed") && out.contains("dead letters naming them: 0"),
        "{out}"
    );
    // No store at that path: never created.
    let absent = dir.path().join("absent.db");
    let (code, _, err) = run(&[
        "erase",
        "--db",
        absent.to_str().unwrap(),
        "--customer",
        "c-1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(!absent.exists());
}

/// `erase` and `dead-letters replay` write the store, so, like `simulate --db`, they lock it:
/// while another process holds `<db>.lock` they are refused at once (exit 2, saying so) and
/// change nothing; `dead-letters list` and `explain` only read, and still answer.
#[test]
fn the_writing_commands_are_refused_while_another_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_store(dir.path());
    let db_arg = db.to_str().unwrap();
    let run = |args: &[&str]| nudge(&root(), args, &[]);

    // Another process's lock (this test's: a lock is per process).
    let lock = std::fs::File::create(dir.path().join("store.db.lock")).unwrap();
    lock.try_lock().expect("the store is free");
    let refused = |args: &[&str]| {
        let started = std::time::Instant::now();
        let (code, out, err) = run(args);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "refused at once"
        );
        assert_eq!(code, 2, "{args:?} is refused: {out}{err}");
        assert!(
            err.contains("store.db is in use by another nudge process"),
            "{err}"
        );
    };
    refused(&["erase", "--db", db_arg, "--customer", "c-1"]);
    let letters = {
        let (code, out, err) = run(&["dead-letters", "list", "--db", db_arg, "--format", "json"]);
        assert_eq!(code, 0, "list reads a held store: {err}");
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(letters.len(), 1, "{letters:?}");
    let id = letters[0].as_str().unwrap();
    refused(&["dead-letters", "replay", "--db", db_arg, "--id", id]);
    let (code, _, err) = run(&["explain", "--db", db_arg, "--customer", "c-1"]);
    assert_eq!(code, 0, "explain reads a held store: {err}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    {
        let store = SqliteStore::open(&db).unwrap();
        assert!(
            rt.block_on(store.load("c-1")).unwrap().is_some(),
            "not erased"
        );
        assert_eq!(rt.block_on(store.dead_letters(10)).unwrap().len(), 1);
    }

    // Released: the same commands run.
    drop(lock);
    let (code, _, err) = run(&["erase", "--db", db_arg, "--customer", "c-1"]);
    assert_eq!(code, 0, "{err}");
    let store = SqliteStore::open(&db).unwrap();
    assert!(rt.block_on(store.load("c-1")).unwrap().is_none(), "erased");
}
