//! Counted order facts: `orders_count`, `total_spent`, `first_order_at` and `last_order_at`
//! kept by Nudge from the orders it sees, for stores that send no counters.

use serde_json::{Value, json};

use super::{Scenario, ev};

/// A transactional probe: every `probe` event sends an email whose subject shows the facts.
const PROBE: &str = r#"
category: transactional
trigger: { event: probe }
entry: { every: 1m }
steps:
  - id: facts
    send_email:
      template: t.mjml
      subject: "{{ customer.orders_count }}|{{ customer.total_spent }}|{{ customer.first_order_at }}|{{ customer.last_order_at }}"
"#;

fn order(id: &str, time: &str, order: Value) -> Value {
    ev(
        id,
        "order.placed",
        time,
        "c1",
        json!({"customer": {"email": "a@example.com"}, "order": order}),
    )
}

fn cancel(id: &str, time: &str, order_id: &str) -> Value {
    ev(
        id,
        "order.cancelled",
        time,
        "c1",
        json!({"order": {"id": order_id}}),
    )
}

fn probe(id: &str, time: &str) -> Value {
    ev(
        id,
        "probe",
        time,
        "c1",
        json!({"customer": {"email": "a@example.com"}}),
    )
}

/// The subjects of the probe's emails, in order.
fn facts(settings: Option<&str>, events: &[Value]) -> Vec<String> {
    let s = match settings {
        Some(extra) => Scenario::with_settings(
            &format!("{}{extra}\n", super::SETTINGS),
            &[("probe", PROBE)],
        ),
        None => Scenario::new(&[("probe", PROBE)]),
    };
    s.run(events, "2026-04-01T00:00:00Z")
        .into_iter()
        .filter(|r| r.contains("email.sent"))
        .map(|r| r.rsplit(" email.sent ").next().unwrap().to_owned())
        .collect()
}

#[test]
fn a_store_that_never_sends_a_counter_gets_its_orders_counted() {
    let got = facts(
        None,
        &[
            probe("p0", "2026-03-01T08:00:00Z"),
            order(
                "o1",
                "2026-03-02T08:00:00Z",
                json!({"id": "o-1", "total": 59.90, "currency": "TRY"}),
            ),
            probe("p1", "2026-03-02T09:00:00Z"),
            order(
                "o2",
                "2026-03-03T08:00:00Z",
                json!({"id": 1002, "total": "29.95", "currency": "TRY"}),
            ),
            probe("p2", "2026-03-03T09:00:00Z"),
        ],
    );
    assert_eq!(
        got,
        [
            "|||",
            "1|59.9|2026-03-02T08:00:00Z|2026-03-02T08:00:00Z",
            "2|89.85|2026-03-02T08:00:00Z|2026-03-03T08:00:00Z",
        ]
    );
}

#[test]
fn an_order_is_counted_once_whatever_the_event_id() {
    let got = facts(
        None,
        &[
            order(
                "o1",
                "2026-03-02T08:00:00Z",
                json!({"id": "o-1", "total": 10}),
            ),
            // The same order delivered again under another event id (another subscription).
            order(
                "o1-again",
                "2026-03-02T08:05:00Z",
                json!({"id": "o-1", "total": 10}),
            ),
            probe("p1", "2026-03-02T09:00:00Z"),
        ],
    );
    assert_eq!(got, ["1|10.0|2026-03-02T08:00:00Z|2026-03-02T08:00:00Z"]);
}

#[test]
fn a_cancelled_order_is_taken_back_out() {
    let got = facts(
        None,
        &[
            order(
                "o1",
                "2026-03-02T08:00:00Z",
                json!({"id": "o-1", "total": 10}),
            ),
            order(
                "o2",
                "2026-03-05T08:00:00Z",
                json!({"id": "o-2", "total": 25.5}),
            ),
            cancel("c2", "2026-03-06T08:00:00Z", "o-2"),
            probe("p1", "2026-03-06T09:00:00Z"),
            // Cancelled again, or the order re-delivered: nothing changes.
            cancel("c2-again", "2026-03-07T08:00:00Z", "o-2"),
            order(
                "o2-again",
                "2026-03-07T08:01:00Z",
                json!({"id": "o-2", "total": 25.5}),
            ),
            probe("p2", "2026-03-07T09:00:00Z"),
            cancel("c1", "2026-03-08T08:00:00Z", "o-1"),
            probe("p3", "2026-03-08T09:00:00Z"),
        ],
    );
    assert_eq!(
        got,
        [
            "1|10.0|2026-03-02T08:00:00Z|2026-03-02T08:00:00Z",
            "1|10.0|2026-03-02T08:00:00Z|2026-03-02T08:00:00Z",
            "0|0.0||",
        ]
    );
}

#[test]
fn a_cancellation_that_comes_before_its_order_keeps_the_order_out() {
    let got = facts(
        None,
        &[
            cancel("c1", "2026-03-02T08:00:00Z", "o-1"),
            order(
                "o1",
                "2026-03-02T08:01:00Z",
                json!({"id": "o-1", "total": 10}),
            ),
            probe("p1", "2026-03-02T09:00:00Z"),
        ],
    );
    assert_eq!(got, ["|||"]);
}

#[test]
fn a_value_the_store_sends_replaces_the_counted_one_and_is_the_base_after() {
    let got = facts(
        None,
        &[
            // An older API version: the order's customer carries the store's counter, which
            // includes this order.
            ev(
                "o1",
                "order.placed",
                "2026-03-02T08:00:00Z",
                "c1",
                json!({"customer": {"orders_count": 7}, "order": {"id": "o-7", "total": 10}}),
            ),
            probe("p1", "2026-03-02T09:00:00Z"),
            order(
                "o2",
                "2026-03-03T08:00:00Z",
                json!({"id": "o-8", "total": 5}),
            ),
            probe("p2", "2026-03-03T09:00:00Z"),
        ],
    );
    assert_eq!(
        got,
        [
            "7|10.0|2026-03-02T08:00:00Z|2026-03-02T08:00:00Z",
            "8|15.0|2026-03-02T08:00:00Z|2026-03-03T08:00:00Z",
        ]
    );
}

#[test]
fn total_spent_adds_only_the_stores_currency_when_it_is_set() {
    let events = [
        order(
            "o1",
            "2026-03-02T08:00:00Z",
            json!({"id": "o-1", "total": 100, "currency": "TRY"}),
        ),
        order(
            "o2",
            "2026-03-03T08:00:00Z",
            json!({"id": "o-2", "total": 20, "currency": "EUR"}),
        ),
        order(
            "o3",
            "2026-03-04T08:00:00Z",
            json!({"id": "o-3", "total": 50}),
        ),
        probe("p1", "2026-03-04T09:00:00Z"),
    ];
    assert_eq!(
        facts(Some("currency: try"), &events),
        ["3|150.0|2026-03-02T08:00:00Z|2026-03-04T08:00:00Z"]
    );
    assert_eq!(
        facts(None, &events),
        ["3|170.0|2026-03-02T08:00:00Z|2026-03-04T08:00:00Z"]
    );
}

#[test]
fn more_than_one_previous_order_works_without_store_counters() {
    let wf = r#"
category: transactional
trigger: { event: order.placed, when: "customer.orders_count > 1" }
entry: { every: 1m }
steps:
  - id: thanks-again
    send_email: { template: t.mjml, subject: "Order {{ customer.orders_count }}" }
"#;
    let s = Scenario::new(&[("repeat", wf)]);
    let rows = s.run(
        &[
            order("o1", "2026-03-02T08:00:00Z", json!({"id": "o-1"})),
            order("o2", "2026-03-03T08:00:00Z", json!({"id": "o-2"})),
        ],
        "2026-03-04T00:00:00Z",
    );
    let sent: Vec<&String> = rows.iter().filter(|r| r.contains("email.sent")).collect();
    assert_eq!(
        sent,
        ["2026-03-03T08:00:00Z c1 repeat/thanks-again email.sent Order 2"]
    );
}

#[test]
fn a_large_total_the_store_sent_is_added_to_not_reset() {
    // 150 billion: a lifetime in a currency of small units (VND, IDR), above any one order.
    let got = facts(
        None,
        &[
            ev(
                "c",
                "customer.updated",
                "2026-03-01T08:00:00Z",
                "c1",
                json!({"customer": {"email": "a@example.com", "total_spent": 150_000_000_000_i64}}),
            ),
            order(
                "o1",
                "2026-03-02T08:00:00Z",
                json!({"id": "o-1", "total": 10}),
            ),
            order(
                "o2",
                "2026-03-03T08:00:00Z",
                json!({"id": "o-2", "total": 5}),
            ),
            probe("p1", "2026-03-03T09:00:00Z"),
        ],
    );
    assert_eq!(
        got,
        ["2|150000000015.0|2026-03-02T08:00:00Z|2026-03-03T08:00:00Z"]
    );
}

#[test]
fn a_huge_counter_the_store_sent_does_not_overflow() {
    let got = facts(
        None,
        &[
            ev(
                "c",
                "customer.updated",
                "2026-03-01T08:00:00Z",
                "c1",
                json!({"customer": {"email": "a@example.com", "orders_count": u64::MAX}}),
            ),
            order(
                "o1",
                "2026-03-02T08:00:00Z",
                json!({"id": "o-1", "total": 10}),
            ),
            probe("p1", "2026-03-02T09:00:00Z"),
        ],
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with(&format!("{}|", u64::MAX)), "{got:?}");
}
