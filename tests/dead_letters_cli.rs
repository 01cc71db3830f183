//! `nudge dead-letters list|replay` as an operator runs them on the store `simulate --db`
//! wrote: a rejected line is listed (text without its body, JSON with it); replaying it as it
//! is keeps it (exit 1, same id); a letter whose input is good now (fixed upstream: rejected by
//! an older version, a Shopify delivery kept in the partner-event shape) is applied, removed,
//! and its emails are left pending until the next `simulate --db` delivers them; a changed
//! reason is kept under a new id; an unknown `--id` is an error naming it.

use std::path::Path;

use nudge_core::store::{DeadLetter, SendStatus, Store};
use nudge_local::SqliteStore;
use serde_json::{Value, json};

use crate::helpers::{nudge, root};
use crate::scenarios::{customer, ev};
use crate::simulate_cli::write_events;

/// Runs `nudge` in the repository with `args` (paths as given).
fn run(args: &[&str]) -> (i32, String, String) {
    nudge(&root(), args, &[])
}

/// `dead-letters list --db DB --format json`: its rows (exit 0 asserted).
fn list_json(db: &str) -> Vec<Value> {
    let (code, out, err) = run(&["dead-letters", "list", "--db", db, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Records `letter` in the store at `db` (as an older version, or the functions, would have).
fn record(db: &Path, letter: &DeadLetter) -> String {
    let store = SqliteStore::open(db).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = rt.block_on(store.record_dead_letter(letter)).unwrap();
    rt.block_on(store.flush()).unwrap();
    id
}

/// The statuses of `customer`'s sends in the store at `db`.
fn send_statuses(db: &Path, customer: &str) -> Vec<SendStatus> {
    let store = SqliteStore::open(db).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sends = rt.block_on(store.sends(customer)).unwrap();
    sends.into_iter().map(|s| s.status).collect()
}

/// A dead letter of `body`, as `source` kept it.
fn letter(source: &str, body: &str, reason: &str) -> DeadLetter {
    DeadLetter {
        id: String::new(),
        event_id: None,
        customer_id: nudge_core::event::customer_named(body),
        source: source.to_owned(),
        reason: reason.to_owned(),
        body: body.to_owned(),
        received_at: chrono::DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
            .unwrap()
            .to_utc(),
    }
}

#[test]
fn a_rejected_line_is_listed_and_stays_until_its_input_is_good() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let db_arg = db.to_str().unwrap();
    // Line 2 has a time that is no time; it names its customer.
    let mut bad = ev(
        "e-bad",
        "customer.created",
        "2026-03-01T09:00:00Z",
        "c-bad",
        customer("Bad"),
    );
    bad["time"] = json!("yesterday");
    let good = ev(
        "e-1",
        "customer.created",
        "2026-03-01T08:00:00Z",
        "c-1",
        customer("Ayse"),
    );
    let events = write_events(dir.path(), &[good.to_string(), bad.to_string()]);
    let (code, _, err) = run(&[
        "simulate",
        "--events",
        events.to_str().unwrap(),
        "--db",
        db_arg,
    ]);
    assert_eq!(code, 1, "a rejected line exits 1: {err}");

    let rows = list_json(db_arg);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    let id = row["id"].as_str().unwrap().to_owned();
    assert_eq!(row["event_id"], "e-bad");
    assert_eq!(row["customer_id"], "c-bad");
    assert!(
        row["source"].as_str().unwrap().ends_with("events.jsonl:2"),
        "{row}"
    );
    assert!(row["reason"].as_str().unwrap().contains("time"), "{row}");
    assert_eq!(
        serde_json::from_str::<Value>(row["body"].as_str().unwrap()).unwrap(),
        bad
    );

    // Text: one line, with the reason and the customer, never the body (and its address).
    let (code, text, err) = run(&["dead-letters", "list", "--db", db_arg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&id) && text.contains("customer c-bad"),
        "{text}"
    );
    assert!(
        text.contains("event e-bad") && !text.contains("@example.com"),
        "{text}"
    );
    assert_eq!(err.trim(), "1 dead letter");

    // Replayed as it is: still bad, kept under the same id, exit 1.
    let (code, out, err) = run(&["dead-letters", "replay", "--db", db_arg, "--format", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let replayed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(replayed["outcome"], "still_bad");
    assert_eq!(replayed["kept_as"], id.as_str());
    assert_eq!(list_json(db_arg), rows, "the letter is kept as it was");

    // The same input under an older reason: kept under a new id with today's reason.
    let older = record(
        &db,
        &letter("events.jsonl:7", &bad.to_string(), "an older reason"),
    );
    let (code, out, _) = run(&["dead-letters", "replay", "--db", db_arg, "--id", &older]);
    assert_eq!(code, 1, "{out}");
    let left = list_json(db_arg);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|l| l["id"] != older.as_str()), "{left:?}");
    assert_eq!(left[1]["reason"], rows[0]["reason"]);
    assert!(
        out.contains(&format!("kept as {}", left[1]["id"].as_str().unwrap())),
        "{out}"
    );

    // An unknown id: an error naming it, nothing replayed.
    let (code, _, err) = run(&[
        "dead-letters",
        "replay",
        "--db",
        db_arg,
        "--id",
        "00000000000000000999",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("00000000000000000999"), "{err}");
    assert_eq!(list_json(db_arg).len(), 2);
}

#[test]
fn a_letter_good_now_is_applied_removed_and_delivered_by_the_next_simulate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let db_arg = db.to_str().unwrap();
    let first = ev(
        "e-0",
        "customer.created",
        "2026-03-01T08:00:00Z",
        "c-0",
        customer("Zed"),
    );
    let events = write_events(dir.path(), &[first.to_string()]);
    // The store's clock stops at 08:30: the replay applies at that time.
    let (code, _, err) = run(&[
        "simulate",
        "--events",
        events.to_str().unwrap(),
        "--db",
        db_arg,
        "--until",
        "2026-03-01T08:30:00Z",
    ]);
    assert_eq!(code, 0, "{err}");

    // Rejected by an older version (fixed since): a valid event now.
    let event = ev(
        "e-1",
        "customer.created",
        "2026-03-01T09:00:00Z",
        "c-1",
        customer("Ayse"),
    );
    let canonical = record(
        &db,
        &letter("eventbridge", &event.to_string(), "fixed since"),
    );
    // A Shopify order kept in the partner-event shape (its mapping fixed since).
    let shopify = std::fs::read_to_string(
        root().join("tests/fixtures/shopify/eventbridge-orders-create.json"),
    )
    .unwrap();
    let order = record(&db, &letter("shopify", &shopify, "fixed since"));

    let (code, out, err) = run(&["dead-letters", "replay", "--db", db_arg]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&canonical) && lines[0].contains("applied e-1"),
        "{out}"
    );
    assert!(lines[0].contains("1 left pending"), "{out}");
    assert!(
        lines[1].starts_with(&order) && lines[1].contains("applied shopify:"),
        "{out}"
    );
    assert!(
        err.contains("left for the next `nudge simulate --db` run"),
        "{err}"
    );
    assert_eq!(
        list_json(db_arg),
        Vec::<Value>::new(),
        "applied letters are removed"
    );

    // Explain tells the replayed customer's story; the email waits for delivery.
    let (code, story, err) = run(&[
        "explain",
        "--db",
        db_arg,
        "--customer",
        "c-1",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(story.contains("\"e-1\""), "{story}");
    assert_eq!(send_statuses(&db, "c-1"), vec![SendStatus::Pending]);
    // The order was linked to its customer, as the functions link it.
    let store = SqliteStore::open(&db).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let linked = rt
        .block_on(store.order_customer("820982911946154508"))
        .unwrap();
    assert_eq!(linked.as_deref(), Some("706405506930370084"));
    drop(store);

    // The next simulate --db delivers it.
    let outbox = dir.path().join("outbox");
    let later = ev(
        "e-2",
        "customer.created",
        "2026-03-02T08:00:00Z",
        "c-2",
        customer("Can"),
    );
    let events = write_events(dir.path(), &[later.to_string()]);
    let (code, _, err) = run(&[
        "simulate",
        "--events",
        events.to_str().unwrap(),
        "--db",
        db_arg,
        "--outbox",
        outbox.to_str().unwrap(),
        "--until",
        "2026-03-02T09:00:00Z",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(send_statuses(&db, "c-1"), vec![SendStatus::Sent]);
}
