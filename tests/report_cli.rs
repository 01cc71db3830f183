//! `nudge report` as a user runs it: `simulate --db` on the report fixture
//! (tests/fixtures/report: workflows `welcome` and `promo`, and an events file whose outcomes
//! are known), then the report in each format, with `--since`, and its usage errors.
//!
//! The fixture's story (store time zone Istanbul, mail at any hour, one marketing email per
//! 16 hours; `welcome`: `hello`, wait 1 day, `tips`, goal `order.placed`; `promo`: `offer` on
//! every order), all customers created 2026-03-02T08:00Z:
//! - c-1 (consent): hello sent; delivered 08:05, opened 09:00, clicked 09:01 (all hello's);
//!   tips sent on 03-03 08:00; run completed.
//! - c-2 (no consent): hello and tips skipped `no_consent`; run completed.
//! - c-3 (consent): hello sent; an order at 10:00 ends the run with `goal` (no tips) and starts
//!   `promo`, whose offer is skipped `frequency_cap` (hello went two hours before); promo
//!   completed.
//! - c-4 (consent): hello sent; a hard bounce at 09:00 (hello's) suppresses them, so tips is
//!   skipped `suppressed`; run completed.
//! - c-5 (consent): hello and tips sent; unsubscribes at 03-03 09:00 (tips's, the last email).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::{nudge, root};
use crate::simulate_cli::simulate_json;

fn fixture() -> PathBuf {
    root().join("tests/fixtures/report")
}

/// A store written by `simulate --db` from the fixture, in `dir`.
fn simulated_store(dir: &Path) -> PathBuf {
    let db = dir.join("store.db");
    let events = fixture().join("events.jsonl");
    let workflows = fixture().join("workflows");
    let (code, _, err) = simulate_json(dir, &events, &workflows, &db, "2026-03-05T00:00:00Z");
    assert_eq!(code, 0, "{err}");
    db
}

/// `nudge report --db DB --workflows FIXTURE EXTRA...` in `dir`.
fn report(dir: &Path, db: &Path, extra: &[&str]) -> (i32, String, String) {
    let workflows = fixture().join("workflows");
    let mut args = vec![
        "report",
        "--db",
        db.to_str().unwrap(),
        "--workflows",
        workflows.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    nudge(dir, &args, &[])
}

fn json_rows(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn row<'a>(rows: &'a [Value], workflow: &str, step: Option<&str>) -> &'a Value {
    rows.iter()
        .find(|r| r["workflow"] == workflow && r["step"] == json!(step))
        .unwrap_or_else(|| panic!("no row {workflow}/{step:?} in {rows:#?}"))
}

/// The fields of `row` named in `expected`, as a JSON object.
fn pick(row: &Value, expected: &Value) -> Value {
    let fields = expected.as_object().unwrap().keys();
    Value::Object(fields.map(|k| (k.clone(), row[k].clone())).collect())
}

#[test]
fn the_fixtures_outcomes_are_counted_per_workflow_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_store(dir.path());
    let (code, out, err) = report(dir.path(), &db, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_rows(&out);
    let order: Vec<(String, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["workflow"].as_str().unwrap().to_owned(),
                r["step"].clone(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("promo".to_owned(), Value::Null),
            ("promo".to_owned(), json!("offer")),
            ("welcome".to_owned(), Value::Null),
            ("welcome".to_owned(), json!("hello")),
            ("welcome".to_owned(), json!("tips")),
        ]
    );

    let welcome = json!({
        "name": "Welcome", "defined": true,
        "runs_started": 5, "runs_refused": 0, "runs_ended": 5,
        "runs_ended_by_reason": {"completed": 4, "goal": 1},
        "goals": 1, "conversion_rate": 0.2,
        "sent": 6, "deferred": 0, "skipped": 3,
        "skipped_by_reason": {"no_consent": 2, "suppressed": 1},
        "delivered": 1, "opened": 1, "clicked": 1, "bounced": 1, "complained": 0,
        "unsubscribed": 1,
    });
    let got = row(&rows, "welcome", None);
    assert_eq!(pick(got, &welcome), welcome);

    let hello = json!({
        "sent": 4, "skipped": 1, "skipped_by_reason": {"no_consent": 1},
        "delivered": 1, "opened": 1, "clicked": 1, "bounced": 1, "complained": 0,
        "unsubscribed": 0,
        "open_rate": 1.0, "click_rate": 1.0, "bounce_rate": 0.25, "unsubscribe_rate": 0.0,
    });
    let got = row(&rows, "welcome", Some("hello"));
    assert_eq!(pick(got, &hello), hello);

    let tips = json!({
        "sent": 2, "skipped": 2, "skipped_by_reason": {"no_consent": 1, "suppressed": 1},
        "delivered": 0, "opened": 0, "bounced": 0, "unsubscribed": 1,
        "open_rate": null, "bounce_rate": 0.0,
    });
    let got = row(&rows, "welcome", Some("tips"));
    assert_eq!(pick(got, &tips), tips);

    let promo = json!({
        "runs_started": 1, "runs_ended_by_reason": {"completed": 1}, "goals": 0,
        "conversion_rate": null, "sent": 0,
    });
    assert_eq!(pick(row(&rows, "promo", None), &promo), promo);
    let offer = json!({"sent": 0, "skipped_by_reason": {"frequency_cap": 1}});
    assert_eq!(pick(row(&rows, "promo", Some("offer")), &offer), offer);

    assert!(
        err.contains("note: Counted from the store's journal"),
        "{err}"
    );
    assert!(err.contains("last 100 commits"), "{err}");
}

#[test]
fn since_counts_only_what_came_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_store(dir.path());
    let args = ["--format", "json", "--since", "2026-03-03T00:00:00Z"];
    let (code, out, err) = report(dir.path(), &db, &args);
    assert_eq!(code, 0, "{err}");
    let rows = json_rows(&out);
    // On 03-03: the four welcome runs left end (completed), tips is sent or skipped, and c-5
    // unsubscribes; nothing of promo.
    let welcome = json!({
        "runs_started": 0, "runs_ended_by_reason": {"completed": 4}, "goals": 0,
        "conversion_rate": null, "sent": 2, "skipped": 2, "unsubscribed": 1, "opened": 0,
    });
    assert_eq!(pick(row(&rows, "welcome", None), &welcome), welcome);
    assert_eq!(row(&rows, "welcome", Some("hello"))["sent"], 0);
    let promo = json!({"runs_started": 0, "runs_ended": 0, "skipped": 0});
    assert_eq!(pick(row(&rows, "promo", None), &promo), promo);
    assert!(
        err.contains("Only what happened at or after 2026-03-03T00:00:00Z is counted."),
        "{err}"
    );
    assert!(
        !err.contains("all-time"),
        "no SES counts in a simulated store: {err}"
    );
}

#[test]
fn text_and_markdown_show_the_same_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_store(dir.path());
    let (code, text, err) = report(dir.path(), &db, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("welcome — Welcome\n"), "{text}");
    assert!(
        text.contains("  Runs: 5 started, 5 ended (completed 4, goal 1)\n"),
        "{text}"
    );
    assert!(
        text.contains("  Goals reached: 1, conversion 20.0% (goals / runs started)\n"),
        "{text}"
    );
    let hello: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("hello "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        hello,
        [
            "hello", "4", "0", "1", "1", "1", "1", "1", "0", "0", "100.0%", "100.0%", "25.0%",
            "0.0%"
        ],
        "{text}"
    );
    assert!(
        text.contains(
            "  Skipped by reason: hello: no_consent 1; tips: no_consent 1, suppressed 1\n"
        ),
        "{text}"
    );

    let (code, md, err) = report(dir.path(), &db, &["--format", "markdown"]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("### welcome — Welcome\n"), "{md}");
    assert!(
        md.contains(
            "| hello | 4 | 0 | 1 | 1 | 1 | 1 | 1 | 0 | 0 | 100.0% | 100.0% | 25.0% | 0.0% |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| tips | 2 | 0 | 2 | 0 | 0 | 0 | 0 | 0 | 1 | – | – | 0.0% | – |"),
        "{md}"
    );
    assert!(md.contains("| all steps | 6 | 0 | 3 |"), "{md}");
}

#[test]
fn without_workflows_the_store_alone_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = simulated_store(dir.path());
    // No --workflows, and no workflows/ in the working directory.
    let args = ["report", "--db", db.to_str().unwrap(), "--format", "json"];
    let (code, out, err) = nudge(dir.path(), &args, &[]);
    assert_eq!(code, 0, "{err}");
    let rows = json_rows(&out);
    let welcome = row(&rows, "welcome", None);
    assert_eq!(welcome["defined"], Value::Null);
    assert_eq!(welcome["name"], Value::Null);
    assert_eq!(welcome["sent"], 6);
    // promo's offer was only skipped; hello and tips by id.
    let steps: Vec<&str> = rows.iter().filter_map(|r| r["step"].as_str()).collect();
    assert_eq!(steps, ["offer", "hello", "tips"]);
}

#[test]
fn usage_errors_exit_2_and_workflows_with_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.db");
    let (code, out, err) = report(dir.path(), &missing, &[]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(err.contains("no store at"), "{err}");
    assert!(!missing.exists(), "a report never creates a store");

    let db = simulated_store(dir.path());
    let (code, _, err) = report(dir.path(), &db, &["--since", "yesterday"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an RFC 3339 time"), "{err}");
    let (code, _, err) = report(dir.path(), &db, &["--format", "csv"]);
    assert_eq!(code, 2, "{err}");

    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(
        fixture().join("workflows/settings.yaml"),
        broken.join("settings.yaml"),
    )
    .unwrap();
    std::fs::write(broken.join("bad.yaml"), "id: bad\nsteps: 3\n").unwrap();
    let args = [
        "report",
        "--db",
        db.to_str().unwrap(),
        "--workflows",
        broken.to_str().unwrap(),
    ];
    let (code, out, err) = nudge(dir.path(), &args, &[]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("bad.yaml"), "{err}");
}

#[test]
fn only_hard_bounces_are_counted_as_bounced() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture (c-4's hard bounce of hello) and soft bounces of hello for c-1 and c-3 and
    // one without a type for c-5: none of those suppresses, and none counts.
    let mut events = std::fs::read_to_string(fixture().join("events.jsonl")).unwrap();
    for (id, customer, bounce_type) in [
        ("soft-1", "c-1", json!("soft")),
        ("soft-3", "c-3", json!("soft")),
        ("untyped-5", "c-5", Value::Null),
    ] {
        let mut detail = json!({"customer": {"id": customer}});
        if !bounce_type.is_null() {
            detail["bounce_type"] = bounce_type;
        }
        let event = json!({"version": "0", "id": id, "detail-type": "email.bounced",
            "source": "store", "time": "2026-03-02T08:30:00Z", "detail": detail});
        events.push_str(&format!("{event}\n"));
    }
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, events).unwrap();
    let db = dir.path().join("store.db");
    let workflows = fixture().join("workflows");
    let (code, timeline, err) =
        simulate_json(dir.path(), &file, &workflows, &db, "2026-03-05T00:00:00Z");
    assert_eq!(code, 0, "{err}");
    assert_eq!(timeline.matches("\"reason\":\"suppressed\"").count(), 1);
    let (code, out, err) = report(dir.path(), &db, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_rows(&out);
    for (step, sent) in [(None, 6), (Some("hello"), 4)] {
        let got = row(&rows, "welcome", step);
        let expected = json!({"sent": sent, "bounced": 1});
        assert_eq!(pick(got, &expected), expected, "{step:?}");
    }
    assert_eq!(row(&rows, "welcome", Some("hello"))["bounce_rate"], 0.25);
}
