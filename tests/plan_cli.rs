//! `nudge plan` as a user runs it: definition changes of an edit, its formats and exit codes,
//! and the plan against reality: what `plan --db` says an edit does to the runs in flight is
//! what `simulate --db` then does with the edited workflows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nudge_core::engine::state::{CustomerState, Phase};
use nudge_core::store::Store;
use nudge_local::SqliteStore;
use serde_json::Value;

use crate::helpers::{copy_dir, nudge, root};

/// When the first simulation stops and the plan is made.
const T: &str = "2026-03-15T00:00:00Z";

/// Replaces `old` (which must be there) by `new` in `path`.
fn edit(path: &Path, old: &str, new: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(old), "{} has no {old:?}", path.display());
    std::fs::write(path, text.replacen(old, new, 1)).unwrap();
}

/// The shipped workflows copied to `dir/edited`, then edited as a marketer might: a step
/// where runs wait removed, two waits shortened, two subjects changed, a template file
/// edited and a workflow disabled.
fn edited_workflows(dir: &Path) -> PathBuf {
    let edited = dir.join("edited");
    copy_dir(&root().join("workflows"), &edited);
    let review = edited.join("review-request.yaml");
    edit(&review, "  - id: wait-3d\n    wait: 3d\n", "");
    edit(&review, "    wait: 5d", "    wait: 2d");
    edit(
        &review,
        "subject: \"Still brewing? We'd love your thoughts\"",
        "subject: \"Still brewing? One line is plenty\"",
    );
    edit(
        &edited.join("welcome-series.yaml"),
        "    wait: 2d",
        "    wait: 1d",
    );
    edit(
        &edited.join("abandoned-checkout.yaml"),
        "enabled: true",
        "enabled: false",
    );
    edit(
        &edited.join("win-back.yaml"),
        "subject: \"We miss you, {{",
        "subject: \"Come back, {{",
    );
    edit(
        &edited.join("templates/win-back/last-call.mjml"),
        "</mjml>",
        "<!-- edited -->\n</mjml>",
    );
    edited
}

/// `nudge plan --base workflows/ --workflows EDITED [extra]`.
fn plan(cwd: &Path, edited: &Path, extra: &[&str]) -> (i32, String, String) {
    let base = root().join("workflows");
    let mut args = vec![
        "plan",
        "--base",
        base.to_str().unwrap(),
        "--workflows",
        edited.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    nudge(cwd, &args, &[])
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// `(workflow, change, step) → runs` of plan's JSON rows.
fn by_change(rows: &[Value]) -> BTreeMap<(String, String, String), u64> {
    rows.iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
            (
                (text("workflow"), text("change"), text("step")),
                r["runs"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn key(workflow: &str, change: &str, step: &str) -> (String, String, String) {
    (workflow.to_owned(), change.to_owned(), step.to_owned())
}

#[test]
fn the_definition_changes_of_an_edit_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let edited = edited_workflows(dir.path());
    let (code, out, err) = plan(dir.path(), &edited, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    for row in &rows {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5, "{row}");
        assert_eq!(row["runs"], 0, "no store, no runs: {row}");
    }
    // The fields in the contract's order.
    assert!(
        out.lines()
            .all(|l| l.starts_with("{\"workflow\":") && l.contains("\"change\":")),
        "{out}"
    );
    let changes: BTreeSet<_> = by_change(&rows).into_keys().collect();
    let expected: BTreeSet<_> = [
        key("abandoned-checkout", "workflow_disabled", "-"),
        key("review-request", "step_removed", "wait-3d"),
        key("review-request", "step_changed", "wait-5d"),
        key("review-request", "step_changed", "review-reminder"),
        key("welcome-series", "step_changed", "wait-2d"),
        key("win-back", "step_changed", "miss-you"),
        key("win-back", "step_changed", "last-call"),
    ]
    .into();
    assert_eq!(changes, expected);
    let detail = |step: &str| {
        rows.iter()
            .find(|r| r["step"] == step)
            .and_then(|r| r["detail"].as_str())
            .unwrap()
            .to_owned()
    };
    assert_eq!(detail("wait-5d"), "wait 5d → 2d");
    assert_eq!(
        detail("last-call"),
        "template win-back/last-call.mjml (file edited)"
    );
    assert!(detail("review-reminder").starts_with("subject \"Still brewing? We'd love"));
}

#[test]
fn the_markdown_is_a_pull_request_comment() {
    let dir = tempfile::tempdir().unwrap();
    let edited = edited_workflows(dir.path());
    let (code, out, err) = plan(dir.path(), &edited, &["--format", "markdown"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("<!-- nudge-plan -->\n## Nudge plan\n"),
        "{out}"
    );
    insta::assert_snapshot!("plan_markdown_definitions", out);
}

#[test]
fn no_change_is_said_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = root().join("workflows");
    let (code, out, err) = plan(dir.path(), &workflows, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "No definition changes.\n");
    let (code, out, _) = plan(dir.path(), &workflows, &["--format", "json"]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn workflows_with_errors_exit_1_and_bad_arguments_2() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken");
    copy_dir(&root().join("workflows"), &broken);
    edit(
        &broken.join("win-back.yaml"),
        "wait: 90d",
        "wait: ninety days",
    );
    let (code, out, err) = plan(dir.path(), &broken, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("win-back.yaml:"),
        "diagnostics on stderr: {err}"
    );
    assert!(err.contains("have errors"), "{err}");
    let workflows = root().join("workflows");
    for extra in [
        &["--at", "yesterday"][..],
        &["--db", "dynamodb://a"],
        &["--format", "html"],
    ] {
        let (code, _, err) = plan(dir.path(), &workflows, extra);
        assert_eq!(code, 2, "{extra:?}: {err}");
    }
    let missing = dir.path().join("absent.db");
    let (code, _, err) = plan(dir.path(), &workflows, &["--db", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no store at"), "{err}");
    assert!(!missing.exists());
    // A file given for a folder (a typo in CI) is refused, not planned as "everything removed".
    let (code, out, err) = plan(dir.path(), &workflows.join("settings.yaml"), &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("is not a folder"), "{err}");
    assert!(!out.contains("workflow_removed"), "{out}");
}

/// Every customer's state in the store at `db`.
fn states(db: &Path) -> Vec<CustomerState> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = SqliteStore::open(db).unwrap();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = rt.block_on(store.customers(cursor.as_deref(), 7)).unwrap();
        for (_, record) in page.customers {
            out.push(serde_json::from_slice(&record.state).unwrap());
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// `1 run`, `2 runs`, as the text form counts.
fn counted_runs(n: usize) -> String {
    if n == 1 {
        "1 run".to_owned()
    } else {
        format!("{n} runs")
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `simulate --db` with `workflows` on `events` until `until`: its JSON rows.
fn simulate(cwd: &Path, events: &Path, workflows: &Path, db: &Path, until: &str) -> Vec<Value> {
    let (code, out, err) = crate::simulate_cli::simulate_json(cwd, events, workflows, db, until);
    assert_eq!(code, 0, "{err}");
    json_lines(&out)
}

/// The ids of the runs the rows end with `reason` (in `workflow`).
fn ended(rows: &[Value], reason: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        if r["action"] == "run.ended" && r["reason"] == reason {
            out.entry(r["workflow"].as_str().unwrap().to_owned())
                .or_default()
                .insert(r["run"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// THE test of the contract's promise: the sample runs until `T` under the shipped
/// workflows; `plan --db` is made for an edit; the same store then goes on under the edited
/// workflows, past every due time, with no new event. The runs that end with `step_removed`
/// and `workflow_disabled` are exactly the runs the store had at the removed step and in the
/// disabled workflow, as many as the plan says, at the times it says; no other run ends so;
/// the runs at an edited wait first move at the new end the plan gives.
#[test]
fn the_plan_is_what_the_store_then_does() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let edited = edited_workflows(cwd);
    let db = cwd.join("store.db");
    let base = root().join("workflows");
    simulate(cwd, &root().join("events/sample.jsonl"), &base, &db, T);

    // What the store holds at T, read independently of the plan.
    let clock = time(T);
    let mut at_removed = BTreeSet::new();
    let mut disabled = BTreeSet::new();
    let mut moved: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for state in states(&db) {
        for run in &state.runs {
            match (run.workflow.as_str(), run.step.as_str(), run.phase) {
                ("review-request", "wait-3d", _) => {
                    at_removed.insert(run.id.clone());
                }
                ("abandoned-checkout", _, _) => {
                    disabled.insert(run.id.clone());
                }
                ("review-request", "wait-5d", Phase::Waiting { since, .. }) => {
                    let new = since.unwrap() + chrono::TimeDelta::days(2);
                    moved.insert(run.id.clone(), new.max(clock));
                }
                ("welcome-series", "wait-2d", Phase::Waiting { since, .. }) => {
                    let new = since.unwrap() + chrono::TimeDelta::days(1);
                    moved.insert(run.id.clone(), new.max(clock));
                }
                _ => {}
            }
        }
    }
    assert!(
        !at_removed.is_empty() && !disabled.is_empty() && moved.len() >= 3,
        "the sample at {T} must have runs where the edit touches them"
    );

    let db_arg = db.to_str().unwrap();
    let (code, out, err) = plan(cwd, &edited, &["--db", db_arg, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let runs = by_change(&json_lines(&out));
    assert_eq!(
        runs[&key("review-request", "step_removed", "wait-3d")],
        at_removed.len() as u64
    );
    assert_eq!(
        runs[&key("abandoned-checkout", "workflow_disabled", "-")],
        disabled.len() as u64
    );
    assert_eq!(
        runs[&key("review-request", "step_changed", "wait-5d")]
            + runs[&key("welcome-series", "step_changed", "wait-2d")],
        moved.len() as u64
    );
    assert_eq!(
        runs[&key("review-request", "runs_at_step", "wait-3d")],
        at_removed.len() as u64
    );
    // Every win-back run waits for `miss-you`, whose subject changed.
    assert_eq!(
        runs[&key("win-back", "step_changed", "miss-you")],
        runs[&key("win-back", "runs_at_step", "wait-90")]
    );
    let (_, text, _) = plan(cwd, &edited, &["--db", db_arg]);
    let (_, markdown, _) = plan(cwd, &edited, &["--db", db_arg, "--format", "markdown"]);
    insta::assert_snapshot!("plan_markdown_runs_in_flight", markdown);

    // The same store goes on under the edited workflows, with no new event.
    let empty = cwd.join("none.jsonl");
    std::fs::write(&empty, "").unwrap();
    let rows = simulate(cwd, &empty, &edited, &db, "2026-09-01T00:00:00Z");
    let removed = ended(&rows, "step_removed");
    assert_eq!(
        removed,
        BTreeMap::from([("review-request".to_owned(), at_removed.clone())]),
        "exactly the runs at the removed step end with step_removed"
    );
    let ended_disabled = ended(&rows, "workflow_disabled");
    assert_eq!(
        ended_disabled,
        BTreeMap::from([("abandoned-checkout".to_owned(), disabled.clone())])
    );
    // They end at the times the plan gives.
    let end_times = |ids: &BTreeSet<String>| {
        let mut times: Vec<String> = rows
            .iter()
            .filter(|r| r["action"] == "run.ended" && ids.contains(r["run"].as_str().unwrap()))
            .map(|r| r["at"].as_str().unwrap().to_owned())
            .collect();
        times.sort();
        match (times.first(), times.last()) {
            (Some(a), Some(b)) if a == b => a.clone(),
            (Some(a), Some(b)) => format!("{a} … {b}"),
            _ => panic!("no end"),
        }
    };
    assert!(
        text.contains(&format!(
            "review-request wait-3d: {} ending with step_removed when their step's time comes ({})",
            counted_runs(at_removed.len()),
            end_times(&at_removed)
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "abandoned-checkout: {} ending with workflow_disabled at their customer's next input ({})",
            counted_runs(disabled.len()),
            end_times(&disabled)
        )),
        "{text}"
    );
    // A run at an edited wait first moves at the wait's new end.
    for (run, new) in &moved {
        let first = rows
            .iter()
            .find(|r| r["run"] == run.as_str())
            .unwrap_or_else(|| panic!("run {run} never moved"));
        assert_eq!(first["at"], rfc3339(*new), "run {run}: {first}");
    }
    for (workflow, step) in [("review-request", "wait-5d"), ("welcome-series", "wait-2d")] {
        let line = text
            .lines()
            .find(|l| {
                l.trim_start().starts_with(&format!("{workflow} {step}: ")) && l.contains("→ now")
            })
            .unwrap_or_else(|| panic!("no moved wait line for {step}: {text}"));
        let first_new = moved
            .iter()
            .filter(|(run, _)| {
                rows.iter()
                    .any(|r| r["run"] == run.as_str() && r["workflow"] == workflow)
            })
            .map(|(_, t)| *t)
            .min()
            .unwrap();
        assert!(
            line.contains(&format!("→ now {}", rfc3339(first_new))),
            "{line}"
        );
    }
}

/// What "unless an event ends them first" means: a run at a removed step is not ended by any
/// input of its customer, only when its own time comes; a goal of its workflow before then
/// ends it with `goal` instead.
#[test]
fn a_run_at_a_removed_step_ends_at_its_time_unless_a_goal_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let edited = edited_workflows(cwd);
    let db = cwd.join("store.db");
    simulate(
        cwd,
        &root().join("events/sample.jsonl"),
        &root().join("workflows"),
        &db,
        T,
    );
    let mut at_removed: Vec<(String, String, Option<String>, DateTime<Utc>)> = states(&db)
        .iter()
        .flat_map(|s| s.runs.iter().map(move |r| (s, r)))
        .filter(|(_, r)| r.workflow == "review-request" && r.step == "wait-3d")
        .map(|(s, r)| (s.id.clone(), r.id.clone(), r.key.clone(), r.phase.until()))
        .collect();
    at_removed.sort_by_key(|r| r.3);
    let [
        (goal_customer, goal_run, Some(order), _),
        (other_customer, other_run, _, other_end),
    ] = &at_removed[..]
    else {
        panic!("two runs at wait-3d expected: {at_removed:?}");
    };
    // Before either run's time: the first customer reviews the order (the workflow's goal),
    // the second changes their profile (an input that moves no run).
    let events = [
        format!(
            r#"{{"version": "0", "id": "ev-goal", "detail-type": "review.submitted", "source": "store", "time": "2026-03-15T01:00:00Z", "detail": {{"customer": {{"id": "{goal_customer}"}}, "order": {{"id": "{order}"}}, "review": {{"sku": "MUG-1", "rating": 5}}}}}}"#
        ),
        format!(
            r#"{{"version": "0", "id": "ev-profile", "detail-type": "customer.updated", "source": "store", "time": "2026-03-15T01:00:00Z", "detail": {{"customer": {{"id": "{other_customer}", "first_name": "Deniz"}}}}}}"#
        ),
    ];
    let file = crate::simulate_cli::write_events(cwd, &events);
    let rows = simulate(cwd, &file, &edited, &db, "2026-09-01T00:00:00Z");
    let end = |run: &str| {
        rows.iter()
            .find(|r| r["action"] == "run.ended" && r["run"] == run)
            .map(|r| (r["reason"].clone(), r["at"].clone()))
            .unwrap_or_else(|| panic!("run {run} did not end"))
    };
    assert_eq!(
        end(goal_run),
        (Value::from("goal"), Value::from("2026-03-15T01:00:00Z"))
    );
    assert_eq!(
        end(other_run),
        (
            Value::from("step_removed"),
            Value::from(rfc3339(*other_end))
        )
    );
}
