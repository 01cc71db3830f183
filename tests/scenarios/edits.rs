//! Workflow edits between runs: resuming at the step id, a removed step, a disabled workflow.

use super::{Scenario, count, customer, ev};

/// Two emails five days apart, the first version of the workflow the edits change.
const EDIT_V1: &str = r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: first
    send_email: { template: t.mjml, subject: "First" }
  - id: pause
    wait: 5d
  - id: second
    send_email: { template: t.mjml, subject: "Second" }
"#;

#[test]
fn an_edit_mid_run_resumes_at_the_step_id() {
    let s = Scenario::new(&[("edit", EDIT_V1)]);
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
    assert_eq!(count(&rows, "email.sent"), 1);
    // v2 moves `first` after the wait and adds a step: nothing is re-sent, new steps run.
    s.set_workflows(&[(
        "edit",
        r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: pause
    wait: 5d
  - id: first
    send_email: { template: t.mjml, subject: "First again?" }
  - id: added
    send_email: { template: t.mjml, subject: "Added" }
"#,
    )]);
    let rows = s.run(&[], "2026-03-10T00:00:00Z");
    assert_eq!(
        rows,
        [
            "2026-03-07T07:00:00Z c1 edit/added email.sent Added",
            "2026-03-07T07:00:00Z c1 edit/- run.ended completed",
        ]
    );
}

#[test]
fn an_edit_that_removes_the_current_step_ends_the_run() {
    let s = Scenario::new(&[("edit", EDIT_V1)]);
    s.run(
        &[ev(
            "o1",
            "order.placed",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        )],
        "2026-03-03T00:00:00Z",
    );
    s.set_workflows(&[(
        "edit",
        r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: first
    send_email: { template: t.mjml, subject: "First" }
  - id: second
    send_email: { template: t.mjml, subject: "Second" }
"#,
    )]);
    let rows = s.run(&[], "2026-03-10T00:00:00Z");
    assert_eq!(
        rows,
        ["2026-03-07T07:00:00Z c1 edit/- run.ended step_removed"]
    );
}

#[test]
fn a_disabled_workflow_starts_nothing_and_ends_its_runs() {
    let s = Scenario::new(&[("edit", EDIT_V1)]);
    s.run(
        &[ev(
            "o1",
            "order.placed",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        )],
        "2026-03-03T00:00:00Z",
    );
    s.set_workflows(&[("edit", &format!("enabled: false\n{EDIT_V1}"))]);
    let rows = s.run(
        &[ev(
            "o2",
            "order.placed",
            "2026-03-04T07:00:00Z",
            "c2",
            customer("B"),
        )],
        "2026-03-10T00:00:00Z",
    );
    assert_eq!(
        rows,
        ["2026-03-07T07:00:00Z c1 edit/- run.ended workflow_disabled"]
    );
}
