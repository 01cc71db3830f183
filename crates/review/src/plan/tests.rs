//! The definition diff, change kind by change kind, and what the tally says of runs, on small
//! projects written here.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_core::engine::state::{CustomerState, Phase, Run};
use nudge_core::links::Signer;
use nudge_core::workflow::Project;

use super::flight::Tally;
use super::render::row_line;
use super::{ChangeKind, Row, changed_templates, diff};

const SETTINGS: &str = r#"
store: { name: "Shop", url: "https://shop.example.com", postal_address: "Street 1" }
from: "Shop <hello@shop.example.com>"
timezone: Europe/Istanbul
send_window: { start: "09:00", end: "21:00" }
frequency_cap: { max: 3, per: 1d }
unsubscribe_url: "https://shop.example.com/unsubscribe"
"#;

const TEMPLATE: &str = "<mjml><mj-body><mj-section><mj-column><mj-text>Hi {{ customer.first_name }} <a href=\"{{ links.unsubscribe }}\">unsubscribe</a> {{ store.postal_address }}</mj-text></mj-column></mj-section></mj-body></mjml>\n";

/// The workflow `w` as the tests start from.
const W: &str = r#"
id: w
category: marketing
enabled: true
trigger: { event: customer.created }
entry: once
exit_when:
  - event: order.placed
steps:
  - id: hello
    send_email: { template: w/hello.mjml, subject: "Hello" }
  - id: pause
    wait: 2d
  - id: check
    if: "customer.orders_count | default(0) == 0"
    then:
      - id: nudge
        send_email: { template: w/hello.mjml, subject: "Nudge" }
    else:
      - id: thanks
        send_email: { template: w/hello.mjml, subject: "Thanks" }
  - id: split
    ab_split:
      - weight: 50
        steps:
          - id: side-a
            update_profile: { add_tags: [a] }
      - weight: 50
        steps: []
  - id: last
    wait: 1d
"#;

/// A project in `dir` with `settings.yaml`, the template and these workflow files.
fn project(dir: &Path, workflows: &[(&str, &str)], template: &str) -> Project {
    std::fs::create_dir_all(dir.join("templates/w")).unwrap();
    std::fs::write(dir.join("settings.yaml"), SETTINGS).unwrap();
    std::fs::write(dir.join("templates/w/hello.mjml"), template).unwrap();
    for (name, text) in workflows {
        std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
    }
    let report = nudge_core::workflow::load(dir).unwrap();
    report
        .project
        .unwrap_or_else(|| panic!("{:#?}", report.diagnostics))
}

/// The rows of `base` → `head` (both variants of `W`, or other files), as lines.
fn changes(base: &[(&str, &str)], head: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let b = project(&dir.path().join("base"), base, TEMPLATE);
    let h = project(&dir.path().join("head"), head, TEMPLATE);
    let templates = changed_templates(&b, &h).unwrap();
    diff(&b, &h, &templates).iter().map(row_line).collect()
}

fn edit(old: &str, new: &str) -> String {
    assert!(W.contains(old), "{old}");
    W.replacen(old, new, 1)
}

fn one_edit(old: &str, new: &str) -> Vec<String> {
    changes(&[("w", W)], &[("w", &edit(old, new))])
}

#[test]
fn the_same_workflows_laid_out_otherwise_have_no_change() {
    let reflowed = W.replace("exit_when:\n", "# goals\nexit_when:\n");
    assert_eq!(
        changes(&[("w", W)], &[("w", &reflowed)]),
        Vec::<String>::new()
    );
}

#[test]
fn workflows_added_removed_enabled_and_disabled() {
    let other = W.replace("id: w\n", "id: v\n");
    assert_eq!(
        changes(&[("w", W)], &[("w", W), ("v", &other)]),
        ["v workflow_added -: v (enabled, event customer.created, 8 steps) [0]"]
    );
    assert_eq!(
        changes(&[("w", W), ("v", &other)], &[("w", W)]),
        ["v workflow_removed -: v (8 steps) [0]"]
    );
    let off = edit("enabled: true", "enabled: false");
    assert_eq!(
        changes(&[("w", W)], &[("w", &off)]),
        ["w workflow_disabled -: enabled: false [0]"]
    );
    assert_eq!(
        changes(&[("w", &off)], &[("w", W)]),
        ["w workflow_enabled -: enabled: true [0]"]
    );
}

#[test]
fn trigger_entry_goal_and_settings() {
    assert_eq!(
        one_edit("event: customer.created", "event: order.placed"),
        ["w trigger_changed -: event customer.created → event order.placed [0]"]
    );
    assert_eq!(
        one_edit("entry: once", "entry: { every: 30d }"),
        ["w entry_changed -: once → every 30d [0]"]
    );
    assert_eq!(
        one_edit(
            "  - event: order.placed\n",
            "  - event: order.placed\n    when: \"event.order.total > 10\"\n"
        ),
        ["w goal_changed -: order.placed → order.placed when `event.order.total > 10` [0]"]
    );
    assert_eq!(
        one_edit(
            "category: marketing",
            "category: transactional\nname: Hello"
        ),
        ["w settings_changed -: name \"w\" → \"Hello\"; category marketing → transactional [0]"]
    );
    let dir = tempfile::tempdir().unwrap();
    let b = project(&dir.path().join("base"), &[("w", W)], TEMPLATE);
    let h = project(&dir.path().join("head"), &[("w", W)], TEMPLATE);
    let mut h = h;
    h.settings.frequency_cap.max = 1;
    let rows: Vec<String> = diff(&b, &h, &BTreeSet::new())
        .iter()
        .map(row_line)
        .collect();
    assert_eq!(
        rows,
        ["settings settings_changed -: frequency_cap 3 per 1d → 1 per 1d [0]"]
    );
}

#[test]
fn steps_added_removed_and_changed_say_what_changed() {
    assert_eq!(
        one_edit("  - id: last\n    wait: 1d\n", ""),
        ["w step_removed last: wait 1d [0]"]
    );
    assert_eq!(
        one_edit(
            "  - id: last\n",
            "  - id: bye\n    send_email: { template: w/hello.mjml, subject: \"Bye\" }\n  - id: last\n"
        ),
        ["w step_added bye: send_email w/hello.mjml \"Bye\" [0]"]
    );
    assert_eq!(
        one_edit(
            "subject: \"Hello\"",
            "subject: \"Hi\", preheader: \"Read me\""
        ),
        ["w step_changed hello: subject \"Hello\" → \"Hi\"; preheader none → \"Read me\" [0]"]
    );
    assert_eq!(
        one_edit("    wait: 2d", "    wait: { until: \"09:00\" }"),
        ["w step_changed pause: wait 2d → until 09:00 [0]"]
    );
    assert_eq!(
        one_edit("default(0) == 0", "default(0) < 2"),
        [
            "w step_changed check: condition `customer.orders_count | default(0) == 0` → `customer.orders_count | default(0) < 2` [0]"
        ]
    );
    assert_eq!(
        one_edit(
            "      - weight: 50\n        steps: []",
            "      - weight: 10\n        steps: []"
        ),
        ["w step_changed split: weights 50/50 → 50/10 [0]"]
    );
    assert_eq!(
        one_edit("    wait: 1d", "    update_profile: { add_tags: [done] }"),
        ["w step_changed last: kind wait 1d → update_profile profile [0]"]
    );
}

#[test]
fn an_edited_template_file_changes_every_step_that_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = project(&dir.path().join("base"), &[("w", W)], TEMPLATE);
    let edited = TEMPLATE.replace("Hi ", "Hello ");
    let h = project(&dir.path().join("head"), &[("w", W)], &edited);
    let templates = changed_templates(&b, &h).unwrap();
    assert_eq!(templates, BTreeSet::from(["w/hello.mjml".to_owned()]));
    let rows: Vec<String> = diff(&b, &h, &templates).iter().map(row_line).collect();
    let file = "template w/hello.mjml (file edited) [0]";
    assert_eq!(
        rows,
        [
            format!("w step_changed hello: {file}"),
            format!("w step_changed nudge: {file}"),
            format!("w step_changed thanks: {file}"),
        ]
    );
}

#[test]
fn steps_moved_to_another_branch_or_out_of_order_but_not_by_a_neighbour_s_removal() {
    // `pause` and `hello` swap: one of them is out of the common order.
    let swapped = W.replace(
        "  - id: hello\n    send_email: { template: w/hello.mjml, subject: \"Hello\" }\n  - id: pause\n    wait: 2d\n",
        "  - id: pause\n    wait: 2d\n  - id: hello\n    send_email: { template: w/hello.mjml, subject: \"Hello\" }\n",
    );
    assert_eq!(
        changes(&[("w", W)], &[("w", &swapped)]),
        ["w step_moved hello: reordered within the workflow's steps [0]"]
    );
    // `nudge` moves from `then` to `else`.
    let moved = W
        .replace(
            "    then:\n      - id: nudge\n        send_email: { template: w/hello.mjml, subject: \"Nudge\" }\n    else:\n",
            "    then: []\n    else:\n      - id: nudge\n        send_email: { template: w/hello.mjml, subject: \"Nudge\" }\n",
        );
    assert_eq!(
        changes(&[("w", W)], &[("w", &moved)]),
        ["w step_moved nudge: from branch 1 of `check` to branch 2 of `check` [0]"]
    );
    // Removing `pause` moves neither `hello` nor `check`.
    assert_eq!(
        one_edit("  - id: pause\n    wait: 2d\n", ""),
        ["w step_removed pause: wait 2d [0]"]
    );
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn run(id: &str, workflow: &str, step: &str, phase: Phase) -> Run {
    Run {
        id: id.to_owned(),
        workflow: workflow.to_owned(),
        key: None,
        started_at: t("2026-03-01T00:00:00Z"),
        trigger: None,
        step: step.to_owned(),
        phase,
        waited: None,
        done: Vec::new(),
    }
}

/// The tally of `runs` (one customer each) for `base` → `head`, at `now`.
fn tally(
    base: &[(&str, &str)],
    head: &[(&str, &str)],
    runs: Vec<Run>,
    now: DateTime<Utc>,
) -> (Vec<Row>, super::Flight) {
    let dir = tempfile::tempdir().unwrap();
    let b = project(&dir.path().join("base"), base, TEMPLATE);
    let h = project(&dir.path().join("head"), head, TEMPLATE);
    let templates = changed_templates(&b, &h).unwrap();
    let mut rows = diff(&b, &h, &templates);
    let signer = Signer::development();
    let mut tally = Tally::new(&b, &h, &signer, &rows, &templates, now);
    for (i, run) in runs.into_iter().enumerate() {
        let mut state = CustomerState::new(format!("c-{i}"));
        state.runs.push(run);
        tally.add(&state);
    }
    let flight = tally.finish(&mut rows);
    (rows, flight)
}

#[test]
fn runs_at_a_removed_step_end_at_their_own_time_and_a_disabled_workflow_s_at_the_next_input() {
    let now = t("2026-03-05T00:00:00Z");
    let waiting = |until: &str| Phase::Waiting {
        until: t(until),
        since: Some(t(until) - TimeDelta::days(1)),
    };
    let runs = vec![
        run("r-1", "w", "last", waiting("2026-03-06T00:00:00Z")),
        run("r-2", "w", "pause", waiting("2026-03-07T00:00:00Z")),
        run("r-3", "w", "ghost", waiting("2026-03-08T00:00:00Z")),
    ];
    let head = edit("  - id: last\n    wait: 1d\n", "");
    let (rows, flight) = tally(&[("w", W)], &[("w", &head)], runs.clone(), now);
    let lines: Vec<String> = rows.iter().map(row_line).collect();
    assert_eq!(
        lines,
        [
            "w step_removed last: wait 1d [1]",
            "w step_removed ghost: not in the workflow before this change either [1]",
        ]
    );
    let ends: Vec<_> = flight
        .ending
        .iter()
        .map(|e| (e.run.as_str(), e.reason, e.at))
        .collect();
    assert_eq!(
        ends,
        [
            ("r-3", ChangeKind::StepRemoved, t("2026-03-08T00:00:00Z")),
            ("r-1", ChangeKind::StepRemoved, t("2026-03-06T00:00:00Z")),
        ]
    );
    let other = W.replace("id: w\n", "id: v\n");
    let (rows, flight) = tally(&[("w", W)], &[("v", &other)], runs.clone(), now);
    assert_eq!(
        rows.iter().map(row_line).collect::<Vec<_>>(),
        [
            "v workflow_added -: v (enabled, event customer.created, 8 steps) [0]",
            "w workflow_removed -: w (8 steps) [3]",
        ]
    );
    // At the customer's next input: each customer here has one run, so its own time.
    let mut times: Vec<_> = flight.ending.iter().map(|e| e.at).collect();
    times.sort();
    assert_eq!(
        times,
        [
            t("2026-03-06T00:00:00Z"),
            t("2026-03-07T00:00:00Z"),
            t("2026-03-08T00:00:00Z"),
        ]
    );
    let off = edit("enabled: true", "enabled: false");
    let (rows, flight) = tally(&[("w", W)], &[("w", &off)], runs, now);
    assert_eq!(
        rows.iter().map(row_line).collect::<Vec<_>>(),
        ["w workflow_disabled -: enabled: false [3]"]
    );
    assert!(
        flight
            .ending
            .iter()
            .all(|e| e.reason == ChangeKind::WorkflowDisabled)
    );
    assert_eq!(flight.at_step.len(), 3);
}

#[test]
fn edited_waits_move_from_when_the_run_began_to_wait_and_not_before_now() {
    let now = t("2026-03-05T12:00:00Z");
    let since = |s: &str| Phase::Waiting {
        until: t(s) + TimeDelta::days(2),
        since: Some(t(s)),
    };
    let runs = vec![
        run("r-1", "w", "pause", since("2026-03-05T00:00:00Z")),
        run("r-2", "w", "pause", since("2026-03-04T00:00:00Z")),
        // Written before `since` was kept: it keeps its end.
        run(
            "r-3",
            "w",
            "pause",
            Phase::Waiting {
                until: t("2026-03-06T00:00:00Z"),
                since: None,
            },
        ),
    ];
    let head = edit("    wait: 2d", "    wait: 1d");
    let (rows, flight) = tally(&[("w", W)], &[("w", &head)], runs, now);
    assert_eq!(
        rows.iter().map(row_line).collect::<Vec<_>>(),
        ["w step_changed pause: wait 2d → 1d [3]"]
    );
    let moved: Vec<_> = flight
        .moved
        .iter()
        .map(|m| (m.run.as_str(), m.old, m.new))
        .collect();
    assert_eq!(
        moved,
        [
            ("r-1", t("2026-03-07T00:00:00Z"), t("2026-03-06T00:00:00Z")),
            ("r-2", t("2026-03-06T00:00:00Z"), now),
        ]
    );
}

#[test]
fn changed_mail_counts_the_runs_that_will_still_reach_it() {
    let now = t("2026-03-05T00:00:00Z");
    let waiting = Phase::Waiting {
        until: t("2026-03-06T00:00:00Z"),
        since: Some(t("2026-03-04T00:00:00Z")),
    };
    let mut done = run("r-3", "w", "pause", waiting);
    done.done.push("nudge".to_owned());
    let runs = vec![
        // Before `hello`'s deferred retry: it is sent again with the new subject.
        run(
            "r-1",
            "w",
            "hello",
            Phase::Deferred {
                until: t("2026-03-05T06:00:00Z"),
            },
        ),
        // Past `hello`, before `nudge` (behind an `if`: counted).
        run("r-2", "w", "pause", waiting),
        // `nudge` already sent for this run: never again.
        done,
        // Past everything that changed.
        run("r-4", "w", "last", waiting),
    ];
    let head = edit("subject: \"Hello\"", "subject: \"Hi\"").replacen(
        "subject: \"Nudge\"",
        "subject: \"Psst\"",
        1,
    );
    let (rows, flight) = tally(&[("w", W)], &[("w", &head)], runs, now);
    assert_eq!(
        rows.iter().map(row_line).collect::<Vec<_>>(),
        [
            "w step_changed hello: subject \"Hello\" → \"Hi\" [1]",
            // r-1 (after its retry) and r-2.
            "w step_changed nudge: subject \"Nudge\" → \"Psst\" [2]",
        ]
    );
    assert_eq!(flight.runs_with_different_mail, 2);
    assert_eq!(
        flight.different_mail,
        [
            ("w".to_owned(), "hello".to_owned(), 1),
            ("w".to_owned(), "nudge".to_owned(), 2),
        ]
    );
}

#[test]
fn a_split_counts_only_the_customer_s_side() {
    let now = t("2026-03-05T00:00:00Z");
    let waiting = Phase::Waiting {
        until: t("2026-03-06T00:00:00Z"),
        since: Some(t("2026-03-04T00:00:00Z")),
    };
    let runs: Vec<Run> = (0..40)
        .map(|i| run(&format!("r-{i}"), "w", "pause", waiting))
        .collect();
    let head = edit("add_tags: [a]", "add_tags: [b]");
    let (rows, _) = tally(&[("w", W)], &[("w", &head)], runs, now);
    let expected = (0..40)
        .filter(|i| {
            nudge_core::engine::split_branch("w", "split", &format!("c-{i}"), &[50, 50]) == 0
        })
        .count();
    assert!(0 < expected && expected < 40);
    assert_eq!(
        rows.iter().map(row_line).collect::<Vec<_>>(),
        [format!(
            "w step_changed side-a: update_profile set [] add_tags [a] remove_tags [] → set [] add_tags [b] remove_tags [] [{expected}]"
        )]
    );
}

#[test]
fn settings_touch_every_run_and_a_goal_the_workflow_s_runs() {
    let now = t("2026-03-05T00:00:00Z");
    let waiting = Phase::Waiting {
        until: t("2026-03-06T00:00:00Z"),
        since: Some(t("2026-03-04T00:00:00Z")),
    };
    let other = W.replace("id: w\n", "id: v\n");
    let goal = edit("  - event: order.placed\n", "  - event: review.submitted\n");
    let dir = tempfile::tempdir().unwrap();
    let b = project(
        &dir.path().join("base"),
        &[("w", W), ("v", &other)],
        TEMPLATE,
    );
    let mut h = project(
        &dir.path().join("head"),
        &[("w", &goal), ("v", &other)],
        TEMPLATE,
    );
    h.settings.frequency_cap.max = 1;
    let templates = changed_templates(&b, &h).unwrap();
    let mut rows = diff(&b, &h, &templates);
    let signer = Signer::development();
    let mut tally = Tally::new(&b, &h, &signer, &rows, &templates, now);
    let mut state = CustomerState::new("c-1");
    state.runs.push(run("r-1", "w", "pause", waiting));
    state.runs.push(run("r-2", "v", "pause", waiting));
    tally.add(&state);
    let flight = tally.finish(&mut rows);
    assert_eq!(
        rows.iter().map(row_line).collect::<Vec<_>>(),
        [
            "settings settings_changed -: frequency_cap 3 per 1d → 1 per 1d [2]",
            "w goal_changed -: order.placed → review.submitted [1]",
        ]
    );
    assert_eq!((flight.customers, flight.runs), (1, 2));
}

#[test]
fn a_disabled_workflow_s_run_ends_when_any_timer_of_its_customer_fires() {
    let now = t("2026-03-05T00:00:00Z");
    let waiting = |until: &str| Phase::Waiting {
        until: t(until),
        since: Some(t(until) - TimeDelta::days(2)),
    };
    let other = W.replace("id: w\n", "id: v\n");
    let off = edit("enabled: true", "enabled: false");
    let dir = tempfile::tempdir().unwrap();
    let b = project(
        &dir.path().join("base"),
        &[("w", W), ("v", &other)],
        TEMPLATE,
    );
    let h = project(
        &dir.path().join("head"),
        &[("w", &off), ("v", &other)],
        TEMPLATE,
    );
    let templates = changed_templates(&b, &h).unwrap();
    let mut rows = diff(&b, &h, &templates);
    let signer = Signer::development();
    let mut tally = Tally::new(&b, &h, &signer, &rows, &templates, now);
    let mut state = CustomerState::new("c-1");
    state
        .runs
        .push(run("r-late", "w", "pause", waiting("2026-03-20T00:00:00Z")));
    state
        .runs
        .push(run("r-soon", "v", "pause", waiting("2026-03-06T00:00:00Z")));
    tally.add(&state);
    let flight = tally.finish(&mut rows);
    let ends: Vec<_> = flight
        .ending
        .iter()
        .map(|e| (e.run.as_str(), e.at))
        .collect();
    assert_eq!(ends, [("r-late", t("2026-03-06T00:00:00Z"))]);
}
