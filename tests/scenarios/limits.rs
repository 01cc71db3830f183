//! The limits on one customer: the active-run limit (`run.refused`), and what happens to the
//! inputs of a customer whose stored state cannot be read.

use chrono::{DateTime, Duration, Utc};
use nudge_core::engine::MAX_ACTIVE_RUNS;
use serde_json::{Value, json};

use super::{SHIPMENT, Scenario, count, ev, has, order};

/// Thanks the customer by name when an order arrives.
const DELIVERED: &str = r#"
category: transactional
trigger: { event: order.delivered }
key: "event.order.id"
steps:
  - id: thanks
    send_email: { template: t.mjml, subject: "Thanks {{ customer.first_name }}" }
"#;

fn at(minutes: usize) -> String {
    let t0: DateTime<Utc> = "2026-03-02T07:00:00Z".parse().unwrap();
    (t0 + Duration::minutes(minutes as i64))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn shipped(i: usize, detail: Value) -> Value {
    ev(&format!("s{i}"), "order.shipped", &at(i), "c1", detail)
}

#[test]
fn a_trigger_beyond_the_active_run_limit_is_refused_and_its_event_still_applies() {
    let s = Scenario::new(&[("ship", SHIPMENT), ("delivered", DELIVERED)]);
    let n = MAX_ACTIVE_RUNS;
    let mut events: Vec<Value> = (0..n)
        .map(|i| shipped(i, order(&format!("o-{i}"))))
        .collect();
    // One more order, from a customer who changed their name: the run is refused, the
    // profile still changes.
    let mut renamed = order(&format!("o-{n}"));
    renamed["customer"]["first_name"] = json!("Beyza");
    events.push(shipped(n, renamed));
    // A delivery still moves its run on (which ends it), and the trigger it fires starts.
    let delivery = json!({"order": {"id": "o-0"}});
    events.push(ev("d0", "order.delivered", &at(n + 1), "c1", delivery));
    // A slot is free again.
    let next = n + 2;
    events.push(shipped(next, order(&format!("o-{next}"))));
    let report = s.run_reporting(&events, "2026-03-03T00:00:00Z", None);
    let rows = &report.rows;
    assert_eq!(count(rows, "ship/- run.started"), n + 1, "{rows:#?}");
    assert_eq!(count(rows, "run.refused"), 1);
    let refused = format!("{} c1 ship/- run.refused too_many_runs", at(n));
    assert_eq!(rows[2 * n], refused, "{rows:#?}");
    let after: Vec<&str> = rows[2 * n + 1..].iter().map(String::as_str).collect();
    let (d, o) = (at(n + 1), at(next));
    assert_eq!(
        after,
        [
            format!("{d} c1 ship/delivered email.sent Order o-0 delivered"),
            format!("{d} c1 ship/- run.ended completed"),
            format!("{d} c1 delivered/- run.started"),
            format!("{d} c1 delivered/thanks email.sent Thanks Beyza"),
            format!("{d} c1 delivered/- run.ended completed"),
            format!("{o} c1 ship/- run.started"),
            format!("{o} c1 ship/shipped email.sent Order o-{next} shipped"),
        ]
    );
    assert!(!has(rows, &format!("Order o-{n} shipped")));
    assert_eq!(report.summary.workflows["ship"].runs_refused, 1);
    assert_eq!(report.summary.rejected, 0);
}
