//! Run keys: a goal's or a wait's own key, keys compared as text, triggers whose key gives
//! nothing, and the shipped abandoned-checkout workflow end to end.

use serde_json::{Value, json};

use super::{Scenario, count, customer, ev, has};
use crate::helpers::{copy_dir, nudge, root};

/// The shipped abandoned-checkout workflow with its templates, in a scenario of its own.
fn abandoned_checkout() -> Scenario {
    let s = Scenario::new(&[]);
    let shipped = root().join("workflows");
    let dir = s.workflows_dir();
    std::fs::copy(
        shipped.join("abandoned-checkout.yaml"),
        dir.join("abandoned-checkout.yaml"),
    )
    .unwrap();
    copy_dir(
        &shipped.join("templates/abandoned-checkout"),
        &dir.join("templates/abandoned-checkout"),
    );
    s
}

/// A checkout.started event of a consenting customer for checkout `id`.
fn checkout(event: &str, time: &str, id: Value) -> Value {
    let mut d = customer("Ayşe");
    d["checkout"] = json!({
        "id": id, "url": "https://shop.example.com/checkouts/abc", "total": 1040.0, "currency": "TRY",
        "items": [{"title": "Ethiopia Yirgacheffe, 250 g", "quantity": 2, "price": 520.0}]
    });
    ev(event, "checkout.started", time, "c1", d)
}

/// An order.placed event paying checkout `checkout_id` (as the store sends it: a number or
/// text).
fn paid(event: &str, time: &str, checkout_id: Value) -> Value {
    let mut d = customer("Ayşe");
    d["order"] =
        json!({"id": "o-1", "total": 1040.0, "currency": "TRY", "checkout_id": checkout_id});
    ev(event, "order.placed", time, "c1", d)
}

const REMINDER: &str = "abandoned-checkout/reminder email.sent";
const LAST: &str = "abandoned-checkout/last-reminder email.sent";

#[test]
fn a_checkout_paid_after_the_first_reminder_gets_no_discount_email() {
    let s = abandoned_checkout();
    let rows = s.run(
        &[
            checkout("k1", "2026-03-02T07:00:00Z", json!("chk-1")),
            paid("p1", "2026-03-02T12:00:00Z", json!("chk-1")),
        ],
        "2026-03-05T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 abandoned-checkout/- run.started",
            "2026-03-02T08:00:00Z c1 abandoned-checkout/reminder email.sent Ayşe, your coffee is still in the cart",
            "2026-03-02T12:00:00Z c1 abandoned-checkout/- run.ended goal",
        ]
    );
}

#[test]
fn a_checkout_never_paid_gets_both_reminders() {
    let s = abandoned_checkout();
    let rows = s.run(
        &[checkout("k1", "2026-03-02T07:00:00Z", json!("chk-1"))],
        "2026-03-05T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 abandoned-checkout/- run.started",
            "2026-03-02T08:00:00Z c1 abandoned-checkout/reminder email.sent Ayşe, your coffee is still in the cart",
            "2026-03-03T07:00:00Z c1 abandoned-checkout/last-reminder email.sent 10% off the coffee in your cart",
            "2026-03-03T07:00:00Z c1 abandoned-checkout/- run.ended completed",
        ]
    );
}

#[test]
fn an_updated_checkout_keeps_its_one_run_and_its_schedule() {
    let s = abandoned_checkout();
    // The store sends every change of a checkout as checkout.started with the same id.
    let rows = s.run(
        &[
            checkout("k1", "2026-03-02T07:00:00Z", json!("chk-1")),
            checkout("k2", "2026-03-02T07:20:00Z", json!("chk-1")),
            checkout("k3", "2026-03-02T09:00:00Z", json!("chk-1")),
        ],
        "2026-03-05T00:00:00Z",
    );
    assert_eq!(count(&rows, "run.started"), 1, "{rows:#?}");
    assert!(!has(&rows, "restarted"), "{rows:#?}");
    assert!(has(&rows, &format!("2026-03-02T08:00:00Z c1 {REMINDER}")));
    assert!(has(&rows, &format!("2026-03-03T07:00:00Z c1 {LAST}")));
}

#[test]
fn a_keyed_runs_later_emails_show_the_latest_event_of_its_key() {
    let wf = r#"
category: transactional
trigger: { event: checkout.started }
key: "event.checkout.id"
steps:
  - id: wait
    wait: 1h
  - id: cart
    send_email: { template: b.mjml, subject: "{{ event.checkout.total }} {{ event.checkout.items | length }}" }
"#;
    let s = Scenario::new(&[("cart", wf)]);
    let cart = |id: &str, time: &str, checkout: &str, total: f64, items: usize| {
        let mut d = customer("Ayşe");
        d["checkout"] =
            json!({"id": checkout, "total": total, "items": vec![json!({"sku": "B"}); items]});
        ev(id, "checkout.started", time, "c1", d)
    };
    let rows = s.run(
        &[
            cart("k1", "2026-03-02T07:00:00Z", "chk-1", 10.0, 1),
            // The customer adds a bag: the same checkout, sent again.
            cart("k2", "2026-03-02T07:20:00Z", "chk-1", 25.5, 2),
            // Another checkout's news does not touch this run.
            cart("k3", "2026-03-02T07:30:00Z", "chk-2", 99.0, 5),
        ],
        "2026-03-03T00:00:00Z",
    );
    assert!(
        has(&rows, "2026-03-02T08:00:00Z c1 cart/cart email.sent 25.5 2"),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "2026-03-02T08:30:00Z c1 cart/cart email.sent 99.0 5"),
        "{rows:#?}"
    );
    assert_eq!(count(&rows, "run.started"), 2, "{rows:#?}");
}

#[test]
fn a_numeric_checkout_id_pays_the_checkout_of_the_same_text() {
    let s = abandoned_checkout();
    let rows = s.run(
        &[
            checkout("k1", "2026-03-02T07:00:00Z", json!("1001")),
            checkout("k2", "2026-03-02T07:00:00Z", json!(1002)),
            // Shopify's numbers; one as a float without a fraction.
            paid("p1", "2026-03-02T12:00:00Z", json!(1001)),
            paid("p2", "2026-03-02T12:00:00Z", json!(1002.0)),
        ],
        "2026-03-05T00:00:00Z",
    );
    assert_eq!(count(&rows, "run.ended goal"), 2, "{rows:#?}");
    assert!(!has(&rows, LAST), "{rows:#?}");
}

#[test]
fn a_paid_checkout_updated_afterwards_gets_no_new_series() {
    let s = abandoned_checkout();
    // Stores send a checkout's changes after it was paid too (Shopify's checkouts/update when
    // it completes), as checkout.started with the same id.
    let rows = s.run(
        &[
            checkout("k1", "2026-03-02T07:00:00Z", json!("chk-1")),
            paid("p1", "2026-03-02T07:30:00Z", json!("chk-1")),
            checkout("k2", "2026-03-02T07:31:00Z", json!("chk-1")),
        ],
        "2026-03-05T00:00:00Z",
    );
    assert_eq!(count(&rows, "run.started"), 1, "{rows:#?}");
    assert!(!has(&rows, "email.sent"), "{rows:#?}");
    // After 30 days the checkout is forgotten (the state keeps no entry for it forever): the
    // same id, started again, is a new series.
    let later = s.run(
        &[checkout("k3", "2026-04-02T07:00:00Z", json!("chk-1"))],
        "2026-04-03T00:00:00Z",
    );
    assert_eq!(count(&later, "run.started"), 1, "{later:#?}");
}

#[test]
fn another_checkouts_order_does_not_end_the_run() {
    let s = abandoned_checkout();
    let rows = s.run(
        &[
            checkout("k1", "2026-03-02T07:00:00Z", json!("chk-1")),
            paid("p1", "2026-03-02T12:00:00Z", json!("chk-2")),
        ],
        "2026-03-05T00:00:00Z",
    );
    assert!(!has(&rows, "run.ended goal"), "{rows:#?}");
    assert!(has(&rows, LAST), "{rows:#?}");
}

/// A keyed workflow that waits for its checkout's order by the order's own key.
const WAIT_FOR_ORDER: &str = r#"
category: transactional
trigger: { event: checkout.started }
key: "event.checkout.id"
steps:
  - id: paid
    wait_for: { event: order.placed, key: "event.order.checkout_id", timeout: 1d }
  - id: check
    if: "waited.matched"
    then:
      - id: thanks
        send_email: { template: b.mjml, subject: "Thanks for paying" }
    else:
      - id: nudge
        send_email: { template: b.mjml, subject: "Still there?" }
"#;

#[test]
fn a_wait_for_hears_its_event_by_its_own_key() {
    let s = Scenario::new(&[("pay", WAIT_FOR_ORDER)]);
    let rows = s.run(
        &[
            checkout("k1", "2026-03-02T07:00:00Z", json!("chk-1")),
            checkout("k2", "2026-03-02T07:00:00Z", json!("chk-2")),
            paid("p1", "2026-03-02T08:00:00Z", json!("chk-2")),
        ],
        "2026-03-04T00:00:00Z",
    );
    assert_eq!(count(&rows, "pay/thanks email.sent"), 1, "{rows:#?}");
    assert_eq!(count(&rows, "pay/nudge email.sent"), 1, "{rows:#?}");
    assert!(has(&rows, "2026-03-02T08:00:00Z c1 pay/thanks email.sent"));
}

/// A keyed workflow whose key the trigger event may lack.
const KEYED: &str = r#"
category: transactional
trigger: { event: checkout.started }
key: "event.checkout.id"
steps:
  - id: hello
    send_email: { template: b.mjml, subject: "Your checkout" }
"#;

#[test]
fn a_trigger_without_its_key_starts_no_run() {
    let s = Scenario::new(&[("keyed", KEYED)]);
    let no_checkout = ev(
        "k1",
        "checkout.started",
        "2026-03-02T07:00:00Z",
        "c1",
        customer("A"),
    );
    let rows = s.run(
        &[
            no_checkout,
            checkout("k2", "2026-03-02T07:00:00Z", Value::Null),
            checkout("k3", "2026-03-02T07:00:00Z", json!("")),
            checkout("k4", "2026-03-02T07:00:00Z", json!("chk-4")),
        ],
        "2026-03-03T00:00:00Z",
    );
    // Only the checkout with an id starts a run: the others would all share one empty key.
    assert_eq!(count(&rows, "run.started"), 1, "{rows:#?}");
    assert_eq!(count(&rows, "keyed/hello email.sent"), 1, "{rows:#?}");
}

#[test]
fn a_trigger_without_its_key_is_a_warning_naming_the_workflow_and_event() {
    let s = Scenario::new(&[("keyed", KEYED)]);
    let events = s.workflows_dir().parent().unwrap().join("events.jsonl");
    let no_checkout = ev(
        "evt-no-key",
        "checkout.started",
        "2026-03-02T07:00:00Z",
        "c1",
        customer("Ayşe"),
    );
    std::fs::write(&events, format!("{no_checkout}\n")).unwrap();
    let dir = s.workflows_dir();
    let (code, out, err) = nudge(
        dir.parent().unwrap(),
        &["simulate", "--events", "events.jsonl"],
        &[("NUDGE_SIGNING_KEY", "")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("run.started"), "{out}");
    let warning = err
        .lines()
        .find(|l| l.contains("gives no key"))
        .unwrap_or_else(|| panic!("no warning in:\n{err}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("keyed"), "{warning}");
    assert!(warning.contains("evt-no-key"), "{warning}");
    // Logs never show who the customer is.
    assert!(
        !err.contains("ayse@example.com") && !err.contains("Ayşe"),
        "{err}"
    );
}
