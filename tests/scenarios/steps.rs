//! Step kinds: A/B splits and holdouts, conditions and render errors, profile updates,
//! webhooks and exits.

use serde_json::Value;

use super::{Scenario, count, customer, ev, has, order};

#[test]
fn ab_split_is_deterministic_and_holdouts_get_nothing() {
    let wf = r#"
category: marketing
trigger: { event: customer.created }
steps:
  - id: test
    ab_split:
      - weight: 1
        steps:
          - id: a
            send_email: { template: t.mjml, subject: "A" }
      - weight: 1
        steps: []
"#;
    let s = Scenario::new(&[("split", wf)]);
    let events: Vec<Value> = (0..40)
        .map(|i| {
            ev(
                &format!("e{i}"),
                "customer.created",
                "2026-03-02T07:00:00Z",
                &format!("c{i}"),
                customer("A"),
            )
        })
        .collect();
    let rows = s.run(&events, "2026-03-03T00:00:00Z");
    let sent: Vec<usize> = (0..40)
        .filter(|i| has(&rows, &format!(" c{i} split/a email.sent")))
        .collect();
    let expected: Vec<usize> = (0..40)
        .filter(|i| {
            nudge_core::engine::split_branch("split", "test", &format!("c{i}"), &[1, 1]) == 0
        })
        .collect();
    assert_eq!(sent, expected);
    assert!(
        (10..30).contains(&sent.len()),
        "{} of 40 in branch A",
        sent.len()
    );
    assert_eq!(count(&rows, "run.ended completed"), 40);
}

#[test]
fn conditions_that_fail_are_false_and_render_errors_skip_the_email() {
    let wf = r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: vip
    if: "customer.vip_level > 2"
    then:
      - id: vip-mail
        send_email: { template: t.mjml, subject: "VIP" }
    else:
      - id: broken
        send_email: { template: broken.html, subject: "Broken" }
  - id: after
    send_email: { template: t.mjml, subject: "After" }
"#;
    let s = Scenario::new(&[("cond", wf)]);
    let rows = s.run(
        &[ev(
            "o1",
            "order.placed",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        )],
        "2026-03-03T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 cond/- run.started",
            "2026-03-02T07:00:00Z c1 cond/broken email.skipped render_error",
            "2026-03-02T07:00:00Z c1 cond/after email.sent After",
            "2026-03-02T07:00:00Z c1 cond/- run.ended completed",
        ]
    );
}

#[test]
fn update_profile_webhook_and_exit() {
    let wf = r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: tag
    update_profile: { set: { last_order: "{{ event.order.id }}" }, add_tags: [buyer] }
  - id: crm
    webhook: { url: "https://crm.example.com/hook", body: { order: "{{ event.order.id }}" } }
  - exit
"#;
    let s = Scenario::new(&[("side", wf)]);
    let rows = s.run(
        &[ev(
            "o1",
            "order.placed",
            "2026-03-02T07:00:00Z",
            "c1",
            order("o-9"),
        )],
        "2026-03-03T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 side/- run.started",
            r#"2026-03-02T07:00:00Z c1 side/tag profile.updated {"last_order":"o-9","tags":["buyer"]}"#,
            r#"2026-03-02T07:00:00Z c1 side/crm webhook.called POST https://crm.example.com/hook {"order":"o-9"}"#,
            "2026-03-02T07:00:00Z c1 side/- run.ended exited",
        ]
    );
}
