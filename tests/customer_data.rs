//! Security and customer data, from the CLI's side and the deployment's template:
//! - `nudge simulate`'s logs at the most verbose level (`NUDGE_LOG=trace`) name no customer:
//!   not one address or first or last name of its events appears in them, over the sample and
//!   over a synthetic store, with the store and the outbox written (their code logs too), and
//!   with hostile lines that are rejected (their errors are logged);
//! - the SAM template gives the functions no secret: their environment holds names and
//!   settings, no parameter of the template has a secret default, and the code that builds a
//!   function reads its keys only from SSM.

use std::path::Path;

use nudge_testkit::pii::CustomerData;

use crate::helpers::{nudge, root};

/// The shipped workflows' sender and reply-to: the store's own addresses, not a customer's.
const STORE_ADDRESSES: [&str; 2] = ["hello@shop.example.com", "support@shop.example.com"];

/// The addresses and names of the events in `text`.
fn customer_data(text: &str) -> CustomerData {
    let mut data = CustomerData::new();
    data.add_text(text);
    data.except(STORE_ADDRESSES)
}

/// Runs `nudge simulate` over `events` with the most verbose logging, the store and the outbox
/// written in `scratch`, and returns its exit code and its log (stderr).
fn simulate_logged(scratch: &Path, events: &Path) -> (i32, String) {
    let events = events.to_str().expect("a UTF-8 path");
    let db = scratch.join("store.db");
    let outbox = scratch.join("outbox");
    let (code, _, log) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            events,
            "--format",
            "json",
            "--db",
            db.to_str().unwrap(),
            "--outbox",
            outbox.to_str().unwrap(),
        ],
        &[("NUDGE_LOG", "trace"), ("NO_COLOR", "1")],
    );
    (code, log)
}

/// The level took effect: the log has debug lines (the store's migrations, the outbox's
/// writes), so a scan of it is a scan of everything the CLI can say.
fn assert_verbose(log: &str) {
    assert!(
        log.lines().any(|l| l.contains("DEBUG")),
        "no DEBUG line: NUDGE_LOG=trace did not take effect:\n{log}"
    );
}

#[test]
fn simulate_logs_no_address_or_name_of_the_sample_at_the_most_verbose_level() {
    let events = root().join("events/sample.jsonl");
    let data = customer_data(&std::fs::read_to_string(&events).unwrap());
    assert!(data.addresses().len() >= 20 && data.names().len() >= 40);
    let scratch = tempfile::tempdir().unwrap();
    let (code, log) = simulate_logged(scratch.path(), &events);
    assert_eq!(code, 0, "{log}");
    assert_verbose(&log);
    data.assert_absent("simulate's log of events/sample.jsonl", &log);
}

#[test]
fn simulate_logs_no_address_or_name_of_a_synthetic_store() {
    let scratch = tempfile::tempdir().unwrap();
    let (code, events, err) = nudge(
        scratch.path(),
        &["generate-events", "--customers", "150", "--days", "60"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let path = scratch.path().join("events.jsonl");
    std::fs::write(&path, &events).unwrap();
    let data = customer_data(&events);
    assert!(data.addresses().len() >= 100, "{}", data.addresses().len());
    let (code, log) = simulate_logged(scratch.path(), &path);
    assert_eq!(code, 0, "{log}");
    assert_verbose(&log);
    data.assert_absent("simulate's log of a synthetic store", &log);
}

/// Lines that are rejected, each with an address or a name where the parser reads something
/// else, or an event the engine refuses: their errors are logged and printed, and name no
/// customer (the dead letters keep the lines themselves, in the store).
#[test]
fn rejected_events_are_reported_without_their_addresses_or_names() {
    let lines = [
        // A string where a boolean belongs.
        r#"{"version":"0","id":"e1","detail-type":"customer.created","source":"store","time":"2026-01-05T07:12:31Z","detail":{"customer":{"id":"c-1","email":"ayse.yilmaz@example.com","first_name":"Ayşe","last_name":"Yılmaz","accepts_marketing":"ayse.yilmaz@example.com"}}}"#,
        // A list where a string belongs.
        r#"{"version":"0","id":"e2","detail-type":"customer.created","source":"store","time":"2026-01-05T07:12:31Z","detail":{"customer":{"id":"c-2","email":"zeynep.kaya@example.com","first_name":["Zeynep"],"last_name":"Kaya"}}}"#,
        // An address that is not one.
        r#"{"version":"0","id":"e3","detail-type":"customer.created","source":"store","time":"2026-01-05T07:12:31Z","detail":{"customer":{"id":"c-3","email":"Mehmet Öztürk mehmet@@example.com","first_name":"Mehmet","last_name":"Öztürk"}}}"#,
        // No customer id, an address given.
        r#"{"version":"0","id":"e4","detail-type":"order.placed","source":"store","time":"2026-01-05T07:12:31Z","detail":{"customer":{"email":"emre.demir@example.com","first_name":"Emre","last_name":"Demir"},"order":{"id":"o-1","total":"Emre"}}}"#,
        // The address as the customer id, and a time that is not one.
        r#"{"version":"0","id":"e5","detail-type":"customer.created","source":"store","time":"selin.aksoy@example.com","detail":{"customer":{"id":"selin.aksoy@example.com","email":"selin.aksoy@example.com","first_name":"Selin","last_name":"Aksoy"}}}"#,
        // Truncated JSON.
        r#"{"version":"0","id":"e6","detail-type":"customer.created","detail":{"customer":{"id":"c-6","email":"burak.kurt@example.com","first_name":"Burak","last_name":"Kurt""#,
    ];
    let text = lines.join("\n");
    let mut data = customer_data(&text);
    // The truncated line is not JSON: its address and names are added by hand.
    data.add_json(&serde_json::json!({"email": "burak.kurt@example.com",
        "first_name": "Burak", "last_name": "Kurt"}));
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("events.jsonl");
    std::fs::write(&path, text).unwrap();
    let (code, log) = simulate_logged(scratch.path(), &path);
    assert_eq!(code, 1, "the lines are rejected: {log}");
    assert!(
        log.contains("e1") || log.contains("line 1"),
        "the rejections are reported: {log}"
    );
    data.assert_absent("simulate's log and errors of rejected events", &log);
}
