//! What `nudge simulate` shows a marketer and an operator: local times, columns that fit the
//! ids, tags, notices in line order, counts in the right number, skips with their reason, and
//! warnings at run time (with the virtual time, never an address).

use serde_json::{Value, json};

use crate::helpers::{nudge, root};
use crate::scenarios::{Scenario, WELCOME, customer, ev};
use crate::simulate_cli::{simulate_json, write_events};

/// A template that fails at run time: the warning names the workflow, the step, the template
/// and its line, the customer (a guest's address hidden behind a hash) and the virtual time,
/// never the wall clock or an address.
#[test]
fn a_render_error_warns_with_its_place_customer_and_virtual_time() {
    const BROKEN: &str = r#"
category: transactional
trigger: { event: customer.created }
steps:
  - id: thanks
    send_email: { template: broken.html, subject: "Thanks" }
"#;
    let s = Scenario::new(&[("receipt", BROKEN)]);
    let events = [
        ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "guest:ayse@example.com",
            customer("Ayse"),
        ),
        ev(
            "e2",
            "customer.created",
            "2026-03-02T08:30:00Z",
            "c-2",
            customer("Emre"),
        ),
    ];
    let (code, _, err) = simulate_run(&s, &events, "2026-03-03T00:00:00Z", &[]);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    let guest = nudge_core::engine::customer_ref("guest:ayse@example.com");
    for (at, who) in [
        ("2026-03-02T07:00:00Z", guest.as_ref()),
        ("2026-03-02T08:30:00Z", "c-2"),
    ] {
        let line = warnings
            .iter()
            .find(|l| l.contains(&format!("customer={who} ")))
            .unwrap_or_else(|| panic!("no warning for {who}: {err}"));
        // The virtual time leads the line: no wall clock before it.
        let (before, after) = line.split_once(&format!("at={at}")).expect(line);
        assert!(!before.chars().any(|c| c.is_ascii_digit()), "{line}");
        for part in [
            "workflow=receipt",
            "step=thanks",
            "template=broken.html:1",
            "email failed to render",
        ] {
            assert!(after.contains(part), "{part} missing in {line}");
        }
    }
    assert!(!err.contains("ayse@") && !err.contains("Ayse"), "{err}");
}

/// Runs `nudge simulate` on `events` with `s`'s workflows until `until`, with `extra`
/// arguments; returns the exit code, stdout and stderr.
fn simulate_run(
    s: &Scenario,
    events: &[Value],
    until: &str,
    extra: &[&str],
) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    let events = write_events(tmp.path(), &lines);
    let wf = s.workflows_dir();
    let mut args = vec![
        "simulate",
        "--events",
        events.to_str().unwrap(),
        "--workflows",
        wf.to_str().unwrap(),
        "--until",
        until,
    ];
    args.extend_from_slice(extra);
    nudge(tmp.path(), &args, &[])
}

/// Runs `nudge simulate` (text, or `extra` arguments) on `events` with `s`'s workflows until
/// 2026-03-10; returns stdout.
fn simulate_text(s: &Scenario, events: &[Value], extra: &[&str]) -> String {
    let (code, out, err) = simulate_run(s, events, "2026-03-10T00:00:00Z", extra);
    assert_eq!(code, 0, "{err}");
    out
}

/// A customer of the store's zone (Istanbul) and one in New York.
fn two_zones() -> Vec<Value> {
    let mut ny = customer("Ann");
    ny["customer"]["timezone"] = json!("America/New_York");
    vec![
        ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c-ist",
            customer("Ayse"),
        ),
        ev("e2", "customer.created", "2026-03-02T14:00:00Z", "c-ny", ny),
    ]
}

#[test]
fn the_timeline_shows_each_customers_local_time_beside_utc() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let out = simulate_text(&s, &two_zones(), &[]);
    let row = |customer: &str, step: &str| {
        out.lines()
            .find(|l| l.contains(&format!(" {customer} ")) && l.contains(&format!(" {step} ")))
            .unwrap_or_else(|| panic!("no {customer} {step} row in {out}"))
            .to_owned()
    };
    // Istanbul is UTC+3; New York is UTC-5 in early March (EST).
    assert!(
        row("c-ist", "hello").starts_with("2026-03-02T07:00:00Z  2026-03-02 10:00 +03  "),
        "{out}"
    );
    assert!(
        row("c-ny", "hello").starts_with("2026-03-02T14:00:00Z  2026-03-02 09:00 EST  "),
        "{out}"
    );

    // `--timezone` shows every local time in that zone instead.
    let out = simulate_text(&s, &two_zones(), &["--timezone", "Asia/Tokyo"]);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("2026-03-02T07:00:00Z  2026-03-02 16:00 JST  "),
        "{out}"
    );
    assert!(
        out.contains("2026-03-02T14:00:00Z  2026-03-02 23:00 JST  "),
        "{out}"
    );
}

#[test]
fn json_rows_keep_utc_and_add_the_local_time_with_its_offset() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        simulate_text(&s, &two_zones(), &args)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = rows(&[]);
    let ny = all.iter().find(|r| r["customer"] == "c-ny").unwrap();
    assert_eq!(ny["at"], "2026-03-02T14:00:00Z");
    assert_eq!(ny["local"], "2026-03-02T09:00:00-05:00");
    let ist = all.iter().find(|r| r["customer"] == "c-ist").unwrap();
    assert_eq!(ist["local"], "2026-03-02T10:00:00+03:00");
    let tokyo = rows(&["--timezone", "Asia/Tokyo"]);
    assert!(
        tokyo
            .iter()
            .all(|r| r["local"].as_str().unwrap().ends_with("+09:00"))
    );
}

#[test]
fn an_unknown_timezone_is_refused_with_an_example() {
    let (code, _, err) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            "events/sample.jsonl",
            "--timezone",
            "Mars/Base",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`Mars/Base` is not an IANA time zone"),
        "{err}"
    );
    assert!(err.contains("America/New_York"), "{err}");
}

#[test]
fn text_columns_fit_long_workflow_step_and_customer_ids() {
    let long_steps = WELCOME.replace("id: hello", "id: hello-and-welcome-to-the-shop");
    let s = Scenario::new(&[("welcome-series-2026", &long_steps), ("welcome", WELCOME)]);
    let long_customer = "customer-000000123456789";
    let out = simulate_text(
        &s,
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                long_customer,
                customer("A"),
            ),
            ev(
                "e2",
                "customer.created",
                "2026-03-02T08:00:00Z",
                "c1",
                customer("B"),
            ),
        ],
        &[],
    );
    let rows: Vec<&str> = out.lines().take_while(|l| !l.is_empty()).collect();
    assert!(rows.len() >= 8, "{out}");
    let mut action_columns = std::collections::BTreeSet::new();
    for row in &rows {
        // Every column is apart from the next by at least two spaces, however long its id.
        let fields: Vec<&str> = row
            .split("  ")
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        assert!(
            [long_customer, "c1"].contains(&fields[2]),
            "customer column run together: {row}"
        );
        assert!(
            ["welcome-series-2026", "welcome"].contains(&fields[3]),
            "workflow column run together: {row}"
        );
        assert!(
            [
                "-",
                "hello",
                "hello-and-welcome-to-the-shop",
                "pause",
                "story"
            ]
            .contains(&fields[4]),
            "step column run together: {row}"
        );
        action_columns.insert(row.find(fields[5]).unwrap());
    }
    // The widest ids are known before the first row: every action starts in one column.
    assert_eq!(action_columns.len(), 1, "{out}");
}

#[test]
fn json_email_rows_carry_the_steps_tags() {
    let tagged = WELCOME.replace(
        r#"subject: "Our story" }"#,
        r#"subject: "Our story", tags: [story, welcome_2] }"#,
    );
    let s = Scenario::new(&[("welcome", &tagged)]);
    let rows: Vec<Value> = simulate_text(&s, &two_zones()[..1], &["--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "email.sent")
        .collect();
    assert_eq!(sent.len(), 2, "{rows:?}");
    assert_eq!(sent[0]["tags"], json!([]));
    assert_eq!(sent[1]["tags"], json!(["story", "welcome_2"]));
    // Only email rows have tags.
    assert!(
        rows.iter()
            .filter(|r| r["action"] != "email.sent")
            .all(|r| r.get("tags").is_none())
    );
}

/// Bad lines whose times are out of file order are still reported in line order, with the
/// duplicates, after the run.
#[test]
fn line_notices_come_in_file_line_order_whatever_the_times() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let created = |id: &str, time: &str, who: &str| {
        ev(id, "customer.created", time, who, customer("A")).to_string()
    };
    let mut late_bad = ev(
        "bad-1",
        "customer.created",
        "2026-03-05T07:00:00Z",
        "c3",
        customer("A"),
    );
    late_bad["detail"]["customer"]["accepts_marketing"] = json!("yes");
    let mut early_bad = ev(
        "bad-2",
        "customer.created",
        "2026-03-01T07:00:00Z",
        "c4",
        customer("A"),
    );
    early_bad["detail"]["customer"]["accepts_marketing"] = json!("no");
    let lines = [
        created("e1", "2026-03-04T07:00:00Z", "c1"),
        late_bad.to_string(),
        created("e1", "2026-03-03T07:00:00Z", "c2"),
        early_bad.to_string(),
    ];
    let events = write_events(tmp.path(), &lines);
    let db = tmp.path().join("store.db");
    let (code, _, err) = simulate_json(
        tmp.path(),
        &events,
        &s.workflows_dir(),
        &db,
        "2026-03-06T00:00:00Z",
    );
    assert_eq!(code, 1, "{err}");
    let numbers: Vec<u32> = err
        .lines()
        .filter(|l| l.contains("events.jsonl:"))
        .map(|l| l.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    // Line 1 repeats e1 of line 3, which happens earlier: line 1 is the duplicate. In time
    // order the notices would be about lines 4, 1, 2.
    assert_eq!(numbers, [1, 2, 4], "{err}");
}

#[test]
fn the_summary_counts_in_the_right_number() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let one = simulate_text(&s, &two_zones()[..1], &[]);
    assert!(
        one.contains("Summary: 1 event applied (0 duplicates, 0 rejected), 1 timer fired, "),
        "{one}"
    );
    let two = simulate_text(&s, &two_zones(), &[]);
    assert!(
        two.contains("Summary: 2 events applied (0 duplicates, 0 rejected), 2 timers fired, "),
        "{two}"
    );
}

/// The frequency cap skips an email with its reason, on the timeline and in the workflow's
/// summary, and the run goes on to its end (`completed`).
#[test]
fn a_frequency_cap_skip_is_reported_with_its_reason_and_the_run_goes_on() {
    const NEWS: &str = r#"
category: marketing
trigger: { event: customer.created }
steps:
  - id: news
    send_email: { template: b.mjml, subject: "News" }
  - id: after
    wait: 1h
"#;
    let s = Scenario::new(&[("a-welcome", WELCOME), ("b-news", NEWS)]);
    let out = simulate_text(&s, &two_zones()[..1], &[]);
    let skipped = out
        .lines()
        .find(|l| l.contains(" email.skipped "))
        .unwrap_or_else(|| panic!("no skip: {out}"));
    assert!(
        skipped.contains(" b-news ") && skipped.contains(" news "),
        "{skipped}"
    );
    assert!(skipped.ends_with(" frequency_cap"), "{skipped}");
    let news = out.split("\nb-news\n").nth(1).unwrap();
    assert!(news.contains("  skipped  frequency_cap 1\n"), "{out}");
    assert!(news.contains("ended: 1 completed"), "{out}");
}

/// A subject that fails to render is named as the step's `subject`, with its line.
#[test]
fn a_subject_render_error_names_the_subject() {
    const BROKEN_SUBJECT: &str = r#"
category: transactional
trigger: { event: customer.created }
steps:
  - id: thanks
    send_email: { template: b.mjml, subject: "Thanks {{ 1 / 0 }}" }
"#;
    let s = Scenario::new(&[("receipt", BROKEN_SUBJECT)]);
    let event = ev(
        "e1",
        "customer.created",
        "2026-03-02T07:00:00Z",
        "c-1",
        customer("A"),
    );
    let (code, _, err) = simulate_run(&s, &[event], "2026-03-03T00:00:00Z", &[]);
    assert_eq!(code, 0, "{err}");
    let line = err.lines().find(|l| l.contains("WARN")).expect(&err);
    assert!(
        line.contains(
            "at=2026-03-02T07:00:00Z workflow=receipt step=thanks template=subject:1 customer=c-1 "
        ),
        "{line}"
    );
}

/// A profile value or a webhook body string that fails to render is not silent either: the
/// warning names the workflow, the step and the value (`set.<attribute>`, `body`) with its
/// line.
#[test]
fn profile_values_and_webhook_bodies_that_fail_to_render_warn() {
    const BROKEN_VALUES: &str = r#"
category: transactional
trigger: { event: customer.created }
steps:
  - id: mark
    update_profile: { set: { vip_since: "{{ 1 / 0 }}" } }
  - id: notify
    webhook: { url: "https://hooks.example.com/x", body: { note: "{{ 1 / 0 }}" } }
"#;
    let s = Scenario::new(&[("marker", BROKEN_VALUES)]);
    let event = ev(
        "e1",
        "customer.created",
        "2026-03-02T07:00:00Z",
        "c-1",
        customer("A"),
    );
    let (code, _, err) = simulate_run(&s, &[event], "2026-03-03T00:00:00Z", &[]);
    assert_eq!(code, 0, "{err}");
    for place in [
        "workflow=marker step=mark template=set.vip_since:1 customer=c-1 ",
        "workflow=marker step=notify template=body:1 customer=c-1 ",
    ] {
        let found = err.lines().any(|l| l.contains("WARN") && l.contains(place));
        assert!(found, "no warning with {place}:\n{err}");
    }
}
