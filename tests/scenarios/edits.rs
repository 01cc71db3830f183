//! Workflow edits between runs: resuming at the step id, a removed step, a disabled workflow,
//! a wait edited while a run waits.

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

/// `EDIT_V1` with `pause` as `wait: <wait>`.
fn with_pause(wait: &str) -> String {
    EDIT_V1.replace("wait: 5d", &format!("wait: {wait}"))
}

/// Starts a run of `edit` (as `EDIT_V1` with `pause` as `wait`) at `at`, runs until `until`,
/// then edits `pause` to `edited`.
fn wait_then_edit(wait: &str, at: &str, until: &str, edited: &str) -> Scenario {
    let s = Scenario::new(&[("edit", &with_pause(wait))]);
    let order = ev("o1", "order.placed", at, "c1", customer("A"));
    let rows = s.run(&[order], until);
    assert_eq!(count(&rows, "email.sent"), 1, "{rows:#?}");
    s.set_workflows(&[("edit", &with_pause(edited))]);
    s
}

/// The rows of the second email and the end of the run, at `at`.
fn second_at(at: &str) -> [String; 2] {
    [
        format!("{at} c1 edit/second email.sent Second"),
        format!("{at} c1 edit/- run.ended completed"),
    ]
}

#[test]
fn a_shortened_wait_ends_its_new_length_after_the_run_began_to_wait() {
    let s = wait_then_edit("5d", "2026-03-02T07:00:00Z", "2026-03-03T00:00:00Z", "2d");
    let rows = s.run(&[], "2026-03-10T00:00:00Z");
    assert_eq!(rows, second_at("2026-03-04T07:00:00Z"));
}

#[test]
fn a_wait_shortened_to_a_length_already_past_ends_at_once() {
    let s = wait_then_edit("5d", "2026-03-02T07:00:00Z", "2026-03-05T00:00:00Z", "2d");
    let rows = s.run(&[], "2026-03-10T00:00:00Z");
    assert_eq!(rows, second_at("2026-03-05T00:00:00Z"));
}

#[test]
fn a_lengthened_wait_is_postponed() {
    let s = wait_then_edit("5d", "2026-03-02T07:00:00Z", "2026-03-03T00:00:00Z", "8d");
    let rows = s.run(&[], "2026-03-12T00:00:00Z");
    assert_eq!(rows, second_at("2026-03-10T07:00:00Z"));
}

#[test]
fn an_edited_wait_until_takes_the_new_time_of_day() {
    // 11:00 in Istanbul: `until: "10:00"` is tomorrow 07:00Z; edited to 18:00, today 15:00Z.
    let s = wait_then_edit(
        r#"{ until: "10:00" }"#,
        "2026-03-02T08:00:00Z",
        "2026-03-02T12:00:00Z",
        r#"{ until: "18:00" }"#,
    );
    let rows = s.run(&[], "2026-03-05T00:00:00Z");
    assert_eq!(rows, second_at("2026-03-02T15:00:00Z"));
}

#[test]
fn the_engine_re_times_an_edited_wait_on_any_input() {
    use nudge_core::engine::state::{CustomerState, Phase};
    use nudge_core::engine::{Engine, Input};
    use nudge_core::links::Signer;

    let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    let s = Scenario::new(&[("edit", EDIT_V1)]);
    let signer = Signer::new(b"k");
    let load = |s: &Scenario| {
        nudge_core::workflow::load(&s.workflows_dir())
            .unwrap()
            .project
            .unwrap()
    };
    let v1 = load(&s);
    let order = ev(
        "o1",
        "order.placed",
        "2026-03-02T07:00:00Z",
        "c1",
        customer("A"),
    );
    let order = nudge_core::event::parse_event(&order.to_string()).unwrap();
    let started = Engine::new(&v1, &signer)
        .handle(CustomerState::new("c1"), Input::Event(&order), order.time)
        .state;
    assert_eq!(
        started.runs[0].phase,
        Phase::Waiting {
            until: t("2026-03-07T07:00:00Z"),
            since: Some(order.time)
        }
    );
    s.set_workflows(&[("edit", &with_pause("3d"))]);
    let v2 = load(&s);
    let engine = Engine::new(&v2, &signer);
    // The timer a store keeps is read again under the edit...
    assert_eq!(engine.next_wake(&started), Some(t("2026-03-05T07:00:00Z")));
    // ...and any input (here a wake with nothing due) stores the new end.
    let woken = engine.handle(started, Input::Wake, t("2026-03-04T00:00:00Z"));
    assert!(woken.actions.is_empty(), "{:?}", woken.actions);
    assert_eq!(woken.state.next_wake(), Some(t("2026-03-05T07:00:00Z")));
    let done = engine.handle(woken.state, Input::Wake, t("2026-03-05T07:00:00Z"));
    assert_eq!(
        done.actions
            .iter()
            .map(|a| a.kind.name())
            .collect::<Vec<_>>(),
        ["email.sent", "run.ended"]
    );
}

#[test]
fn a_wait_stored_without_its_start_keeps_its_end() {
    let s = wait_then_edit("5d", "2026-03-02T07:00:00Z", "2026-03-03T00:00:00Z", "2d");
    // The state as versions before `since` wrote it.
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let text: String = conn
        .query_row(
            "SELECT CAST(state AS TEXT) FROM customers WHERE customer_id = 'c1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut state: serde_json::Value = serde_json::from_str(&text).unwrap();
    let phase = state["runs"][0]["phase"].as_object_mut().unwrap();
    assert!(phase.remove("since").is_some(), "{phase:?}");
    conn.execute(
        "UPDATE customers SET state = ?1 WHERE customer_id = 'c1'",
        [serde_json::to_vec(&state).unwrap()],
    )
    .unwrap();
    drop(conn);
    let rows = s.run(&[], "2026-03-10T00:00:00Z");
    assert_eq!(rows, second_at("2026-03-07T07:00:00Z"));
}
