//! Runs from start to end, duplicate events, and the entry policies (once, single, restart,
//! every).

use serde_json::Value;
use serde_json::json;

use super::{Scenario, WELCOME, count, customer, ev, has};

#[test]
fn a_welcome_series_runs_start_to_end() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("Ayşe"),
        )],
        "2026-03-10T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 welcome/- run.started",
            "2026-03-02T07:00:00Z c1 welcome/hello email.sent Welcome Ayşe",
            "2026-03-04T07:00:00Z c1 welcome/story email.sent Our story",
            "2026-03-04T07:00:00Z c1 welcome/- run.ended completed",
        ]
    );
}

#[test]
fn duplicate_event_ids_have_the_effect_of_one() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let e = ev(
        "e1",
        "customer.created",
        "2026-03-02T07:00:00Z",
        "c1",
        customer("Ayşe"),
    );
    let mut other_body = e.clone();
    other_body["detail"]["customer"]["first_name"] = json!("Someone else");
    let rows = s.run(&[e.clone(), e, other_body], "2026-03-03T00:00:00Z");
    assert_eq!(count(&rows, "email.sent"), 1, "{rows:#?}");
    assert_eq!(count(&rows, "run.started"), 1);
    // The first body wins: the duplicate did not rename the customer.
    assert!(has(&rows, "Welcome Ayşe"));
    // And a later run on the same store still knows the id: only the pending wait fires.
    let again = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-05T07:00:00Z",
            "c1",
            customer("Ayşe"),
        )],
        "2026-03-06T00:00:00Z",
    );
    assert_eq!(
        again,
        [
            "2026-03-04T07:00:00Z c1 welcome/story email.sent Our story",
            "2026-03-04T07:00:00Z c1 welcome/- run.ended completed"
        ]
    );
}

#[test]
fn entry_once_starts_a_customer_at_most_once() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
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
                "e2",
                "customer.created",
                "2026-03-20T07:00:00Z",
                "c1",
                customer("A"),
            ),
        ],
        "2026-04-01T00:00:00Z",
    );
    assert_eq!(count(&rows, "run.started"), 1, "{rows:#?}");
}

/// Two emails ten days apart after an order, with entry policy `entry`.
fn policy_workflow(entry: &str) -> String {
    format!(
        r#"
category: transactional
trigger: {{ event: order.placed }}
entry: {entry}
steps:
  - id: thanks
    send_email: {{ template: t.mjml, subject: "Thanks" }}
  - id: pause
    wait: 10d
  - id: follow-up
    send_email: {{ template: t.mjml, subject: "Follow-up" }}
"#
    )
}

/// Three orders of one customer: the second while the run the first starts is active (it lasts
/// ten days), the third after that run ended.
fn three_orders() -> Vec<Value> {
    vec![
        ev(
            "o1",
            "order.placed",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        ),
        ev(
            "o2",
            "order.placed",
            "2026-03-05T07:00:00Z",
            "c1",
            customer("A"),
        ),
        ev(
            "o3",
            "order.placed",
            "2026-03-20T07:00:00Z",
            "c1",
            customer("A"),
        ),
    ]
}

#[test]
fn entry_single_ignores_triggers_while_a_run_is_active() {
    let s = Scenario::new(&[("policy", &policy_workflow("single"))]);
    let rows = s.run(&three_orders(), "2026-04-30T00:00:00Z");
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 policy/- run.started",
            "2026-03-02T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-12T07:00:00Z c1 policy/follow-up email.sent Follow-up",
            "2026-03-12T07:00:00Z c1 policy/- run.ended completed",
            "2026-03-20T07:00:00Z c1 policy/- run.started",
            "2026-03-20T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-30T07:00:00Z c1 policy/follow-up email.sent Follow-up",
            "2026-03-30T07:00:00Z c1 policy/- run.ended completed",
        ]
    );
}

#[test]
fn entry_restart_ends_the_active_run_and_starts_afresh() {
    let s = Scenario::new(&[("policy", &policy_workflow("restart"))]);
    let rows = s.run(&three_orders()[..2], "2026-04-30T00:00:00Z");
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 policy/- run.started",
            "2026-03-02T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-05T07:00:00Z c1 policy/- run.ended restarted",
            "2026-03-05T07:00:00Z c1 policy/- run.started",
            "2026-03-05T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-15T07:00:00Z c1 policy/follow-up email.sent Follow-up",
            "2026-03-15T07:00:00Z c1 policy/- run.ended completed",
        ]
    );
}

#[test]
fn entry_every_allows_one_start_per_period() {
    let wf = r#"
category: transactional
trigger: { event: order.placed }
entry: { every: 7d }
steps:
  - id: thanks
    send_email: { template: t.mjml, subject: "Thanks" }
"#;
    let s = Scenario::new(&[("weekly", wf)]);
    let rows = s.run(
        &[
            ev(
                "o1",
                "order.placed",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "o2",
                "order.placed",
                "2026-03-08T07:00:00Z",
                "c1",
                customer("A"),
            ), // 6 days: no
            ev(
                "o3",
                "order.placed",
                "2026-03-09T07:00:00Z",
                "c1",
                customer("A"),
            ), // 7 days: yes
        ],
        "2026-04-01T00:00:00Z",
    );
    let starts: Vec<&String> = rows.iter().filter(|r| r.contains("run.started")).collect();
    assert_eq!(
        starts,
        [
            "2026-03-02T07:00:00Z c1 weekly/- run.started",
            "2026-03-09T07:00:00Z c1 weekly/- run.started"
        ]
    );
}
