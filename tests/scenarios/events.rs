//! Events and timers: profile merges, and timers due before an event firing first, in time
//! order.

use serde_json::Value;
use serde_json::json;

use super::{BIRTHDAY, Scenario, WELCOME, WIN_BACK, customer, ev, has};

#[test]
fn profiles_merge_absent_fields_keep_and_null_clears() {
    let wf = r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: hello
    send_email: { template: t.mjml, subject: "{{ customer.first_name | default('nobody') }} {{ customer.city | default('-') }}" }
"#;
    let s = Scenario::new(&[("merge", wf)]);
    let rows = s.run(
        &[
            ev("e1", "customer.created", "2026-03-02T07:00:00Z", "c1", json!({"customer": {"email": "a@example.com", "first_name": "Ayşe", "city": "İstanbul"}})),
            ev("o1", "order.placed", "2026-03-03T07:00:00Z", "c1", json!({})),
            ev("u1", "customer.updated", "2026-03-04T07:00:00Z", "c1", json!({"customer": {"city": null}})),
            ev("o2", "order.placed", "2026-03-05T07:00:00Z", "c1", json!({})),
        ],
        "2026-03-06T00:00:00Z",
    );
    let subjects: Vec<&String> = rows.iter().filter(|r| r.contains("email.sent")).collect();
    assert_eq!(
        subjects,
        [
            "2026-03-03T07:00:00Z c1 merge/hello email.sent Ayşe İstanbul",
            "2026-03-05T07:00:00Z c1 merge/hello email.sent Ayşe -"
        ]
    );
}

#[test]
fn timers_due_before_an_event_fire_first_and_at_their_own_time() {
    let s = Scenario::new(&[("welcome", WELCOME), ("win-back", WIN_BACK)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "o1",
                "order.placed",
                "2026-03-10T07:00:00Z",
                "c2",
                customer("B"),
            ),
        ],
        "2026-03-10T08:00:00Z",
    );
    let story = rows
        .iter()
        .position(|r| r.contains("welcome/story email.sent"))
        .unwrap();
    let order = rows
        .iter()
        .position(|r| r.contains("c2 win-back/- run.started"))
        .unwrap();
    assert!(rows[story].starts_with("2026-03-04T07:00:00Z"));
    assert!(story < order);
}

#[test]
fn the_timeline_is_in_time_order_however_many_timers_are_due() {
    // 300 customers (more than one batch of due timers), each woken repeatedly.
    let s = Scenario::new(&[("welcome", WELCOME), ("birthday", BIRTHDAY)]);
    let events: Vec<Value> = (0..300)
        .map(|i| {
            let mut c = customer("A");
            c["customer"]["birthday"] = json!(format!("1990-{:02}-{:02}", 1 + i % 12, 1 + i % 28));
            ev(
                &format!("e{i}"),
                "customer.created",
                &format!("2026-03-02T{:02}:{:02}:00Z", 6 + i / 60 % 10, i % 60),
                &format!("c{i}"),
                c,
            )
        })
        .collect();
    let rows = s.run(&events, "2027-06-01T00:00:00Z");
    let times: Vec<&str> = rows.iter().map(|r| &r[..20]).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "rows out of time order");
    for i in 0..300 {
        assert!(
            has(&rows, &format!(" c{i} birthday/gift email.sent")),
            "c{i} got no birthday email"
        );
    }
}
