//! The aggregation and the attribution, on hand-built journal entries.

use chrono::{DateTime, Duration, Utc};
use nudge_core::journal::{HARD_BOUNCE, Happened, JournalEntry};
use nudge_core::store::{FeedbackCount, FeedbackKind};
use serde_json::{Map, Value};

use super::*;

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_532_000, 0).unwrap() + Duration::minutes(minutes)
}

fn run(minutes: i64, workflow: &str, what: Happened) -> JournalEntry {
    JournalEntry {
        at: at(minutes),
        workflow: Some(workflow.into()),
        run: Some(format!("{workflow}-run")),
        step: None,
        zone: None,
        what,
    }
}

fn step(minutes: i64, workflow: &str, step: &str, what: Happened) -> JournalEntry {
    JournalEntry {
        step: Some(step.into()),
        ..run(minutes, workflow, what)
    }
}

fn sent(minutes: i64, workflow: &str, step_id: &str) -> JournalEntry {
    let what = Happened::EmailSent {
        key: format!("{workflow}.{step_id}"),
        subject: "Hi".into(),
        tags: vec![],
    };
    step(minutes, workflow, step_id, what)
}

fn skipped(minutes: i64, workflow: &str, step_id: &str, reason: &str) -> JournalEntry {
    let what = Happened::EmailSkipped {
        reason: reason.into(),
        read: Map::new(),
    };
    step(minutes, workflow, step_id, what)
}

fn ended(minutes: i64, workflow: &str, reason: &str) -> JournalEntry {
    run(
        minutes,
        workflow,
        Happened::RunEnded {
            reason: reason.into(),
        },
    )
}

fn received(minutes: i64, event_type: &str) -> JournalEntry {
    JournalEntry {
        at: at(minutes),
        workflow: None,
        run: None,
        step: None,
        zone: None,
        what: Happened::EventReceived {
            event_type: event_type.into(),
            event_id: format!("e-{minutes}"),
            // A bounce here is a hard one; `bounce` makes the others.
            bounce_type: (event_type == "email.bounced").then(|| HARD_BOUNCE.to_owned()),
        },
    }
}

/// An `email.bounced` entry with `bounce_type`.
fn bounce(minutes: i64, bounce_type: Option<&str>) -> JournalEntry {
    let mut entry = received(minutes, "email.bounced");
    if let Happened::EventReceived { bounce_type: b, .. } = &mut entry.what {
        *b = bounce_type.map(str::to_owned);
    }
    entry
}

fn tally(since: Option<DateTime<Utc>>, entries: &[(&str, JournalEntry)]) -> Tally {
    let mut tally = Tally::new(since);
    for (customer, entry) in entries {
        tally.add(customer, entry);
    }
    tally
}

fn workflow<'a>(report: &'a Report, id: &str) -> &'a WorkflowReport {
    report
        .workflows
        .iter()
        .find(|w| w.workflow == id)
        .unwrap_or_else(|| panic!("no workflow {id} in {report:#?}"))
}

fn step_of<'a>(report: &'a Report, wf: &str, id: &str) -> &'a StepReport {
    workflow(report, wf)
        .steps
        .iter()
        .find(|s| s.step == id)
        .unwrap_or_else(|| panic!("no step {wf}/{id} in {report:#?}"))
}

/// The report fixture's workflows (`welcome`: hello, wait-1d, tips; `promo`: offer).
fn project() -> Project {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/report/workflows");
    let loaded = nudge_core::workflow::load(&dir).unwrap();
    loaded
        .project
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

#[test]
fn runs_sends_skips_deferrals_and_goals_are_counted_per_workflow_and_step() {
    let deferred = Happened::EmailDeferred { until: at(600) };
    let refused = Happened::RunRefused {
        reason: "too_many_runs".into(),
    };
    let entries = [
        ("c-1", run(0, "welcome", Happened::RunStarted)),
        ("c-2", run(1, "welcome", Happened::RunStarted)),
        ("c-1", sent(2, "welcome", "hello")),
        ("c-2", skipped(3, "welcome", "hello", "no_consent")),
        ("c-3", run(4, "welcome", Happened::RunStarted)),
        ("c-3", step(5, "welcome", "hello", deferred)),
        ("c-3", sent(600, "welcome", "hello")),
        ("c-1", skipped(700, "welcome", "tips", "frequency_cap")),
        ("c-2", skipped(701, "welcome", "tips", "no_consent")),
        ("c-1", ended(800, "welcome", "completed")),
        ("c-2", ended(801, "welcome", "goal")),
        ("c-3", run(802, "welcome", refused)),
        ("c-1", run(803, "promo", Happened::RunStarted)),
    ];
    let report = tally(None, &entries).finish(&[], None);

    let welcome = workflow(&report, "welcome");
    assert_eq!(welcome.runs_started, 3);
    assert_eq!(welcome.goals(), 1);
    assert_eq!(welcome.conversion_rate(), Some(1.0 / 3.0));
    assert_eq!(
        welcome.runs_ended,
        BTreeMap::from([("completed".into(), 1), ("goal".into(), 1)])
    );
    assert_eq!(
        welcome.runs_refused,
        BTreeMap::from([("too_many_runs".into(), 1)])
    );
    let hello = step_of(&report, "welcome", "hello");
    assert_eq!(
        (hello.sent, hello.deferred, hello.skipped_total()),
        (2, 1, 1)
    );
    let tips = step_of(&report, "welcome", "tips");
    assert_eq!(tips.sent, 0);
    assert_eq!(
        tips.skipped,
        BTreeMap::from([("frequency_cap".into(), 1), ("no_consent".into(), 1)])
    );
    let totals = welcome.totals();
    assert_eq!((totals.sent, totals.skipped_total()), (2, 3));

    let promo = workflow(&report, "promo");
    assert_eq!((promo.runs_started, promo.goals()), (1, 0));
    assert!(promo.steps.is_empty());
    assert_eq!(report.journal.entries, 13);
    assert_eq!(report.journal.customers, 3);
    assert_eq!(report.journal.first, Some(at(0)));
    assert_eq!(report.journal.last, Some(at(803)));
}

#[test]
fn feedback_goes_to_the_customers_most_recent_email_before_it() {
    let entries = [
        ("c-1", sent(0, "welcome", "hello")),
        ("c-2", sent(1, "promo", "offer")),
        // c-1's bounce is about hello (tips comes after it).
        ("c-1", received(5, "email.bounced")),
        ("c-1", sent(10, "welcome", "tips")),
        ("c-1", received(11, "email.opened")),
        ("c-1", received(12, "email.clicked")),
        ("c-1", received(12, "customer.unsubscribed")),
        ("c-2", received(13, "email.delivered")),
        ("c-2", received(14, "email.complained")),
        // c-3 never got an email: unattributed.
        ("c-3", received(15, "customer.unsubscribed")),
        // Not feedback: ignored.
        ("c-3", received(16, "order.placed")),
    ];
    let report = tally(None, &entries).finish(&[], None);

    let hello = step_of(&report, "welcome", "hello");
    assert_eq!(hello.feedback.get(FeedbackKind::Bounced), 1);
    assert_eq!(hello.feedback.get(FeedbackKind::Opened), 0);
    let tips = step_of(&report, "welcome", "tips");
    assert_eq!(tips.feedback.get(FeedbackKind::Opened), 1);
    assert_eq!(tips.feedback.get(FeedbackKind::Clicked), 1);
    assert_eq!(tips.feedback.get(FeedbackKind::Unsubscribed), 1);
    assert_eq!(tips.feedback.get(FeedbackKind::Bounced), 0);
    let offer = step_of(&report, "promo", "offer");
    assert_eq!(offer.feedback.get(FeedbackKind::Delivered), 1);
    assert_eq!(offer.feedback.get(FeedbackKind::Complained), 1);
    let mut expected = FeedbackTally::default();
    expected.add(FeedbackKind::Unsubscribed, 1);
    assert_eq!(report.unattributed, expected);
}

#[test]
fn an_email_at_the_same_time_as_the_feedback_counts_only_when_it_came_first() {
    let entries = [
        ("c-1", sent(0, "welcome", "hello")),
        ("c-1", received(10, "email.bounced")),
        ("c-1", sent(10, "welcome", "tips")),
        ("c-1", received(10, "email.opened")),
    ];
    let report = tally(None, &entries).finish(&[], None);
    let hello = step_of(&report, "welcome", "hello");
    let tips = step_of(&report, "welcome", "tips");
    assert_eq!(hello.feedback.get(FeedbackKind::Bounced), 1);
    assert_eq!(tips.feedback.get(FeedbackKind::Bounced), 0);
    assert_eq!(tips.feedback.get(FeedbackKind::Opened), 1);
}

#[test]
fn since_counts_what_came_after_it_and_attributes_across_it() {
    let entries = [
        ("c-1", run(0, "welcome", Happened::RunStarted)),
        ("c-1", sent(1, "welcome", "hello")),
        ("c-1", received(2, "email.opened")),
        ("c-2", run(20, "welcome", Happened::RunStarted)),
        ("c-1", received(21, "email.clicked")),
        ("c-1", ended(22, "welcome", "goal")),
        ("c-2", skipped(23, "welcome", "hello", "no_consent")),
    ];
    let report = tally(Some(at(10)), &entries).finish(&[], None);
    let welcome = workflow(&report, "welcome");
    assert_eq!((welcome.runs_started, welcome.goals()), (1, 1));
    let hello = step_of(&report, "welcome", "hello");
    assert_eq!(hello.sent, 0, "sent before --since");
    assert_eq!(hello.skipped_total(), 1);
    assert_eq!(hello.feedback.get(FeedbackKind::Opened), 0);
    assert_eq!(
        hello.feedback.get(FeedbackKind::Clicked),
        1,
        "a click after --since is attributed to the email before it"
    );
    assert_eq!(report.journal.entries, 7, "the window counts what was read");
}

#[test]
fn the_stores_feedback_counts_are_added_and_said_to_be_all_time_with_since() {
    let entries = [
        ("c-1", sent(0, "welcome", "hello")),
        ("c-1", received(1, "email.bounced")),
    ];
    let counts = [
        FeedbackCount {
            workflow: "welcome".into(),
            step: "hello".into(),
            kind: FeedbackKind::Bounced,
            count: 2,
        },
        FeedbackCount {
            workflow: "welcome".into(),
            step: "hello".into(),
            kind: FeedbackKind::Delivered,
            count: 7,
        },
        FeedbackCount {
            workflow: "gone".into(),
            step: "old".into(),
            kind: FeedbackKind::Opened,
            count: 1,
        },
    ];
    let report = tally(None, &entries).finish(&counts, None);
    let hello = step_of(&report, "welcome", "hello");
    assert_eq!(hello.feedback.get(FeedbackKind::Bounced), 3);
    assert_eq!(hello.feedback.get(FeedbackKind::Delivered), 7);
    assert_eq!(
        step_of(&report, "gone", "old")
            .feedback
            .get(FeedbackKind::Opened),
        1
    );
    assert!(report.store_feedback);
    assert!(!report.feedback_is_all_time(), "no --since");

    let since = tally(Some(at(0)), &entries).finish(&counts, None);
    assert!(since.feedback_is_all_time());
    let without = tally(Some(at(0)), &entries).finish(&[], None);
    assert!(!without.feedback_is_all_time(), "nothing from the store");
}

#[test]
fn definitions_order_the_steps_and_mark_what_they_lack() {
    let entries = [
        ("c-1", sent(0, "welcome", "tips")),
        ("c-1", sent(1, "welcome", "removed-step")),
        ("c-1", run(2, "old-workflow", Happened::RunStarted)),
    ];
    let project = project();
    let report = tally(None, &entries).finish(&[], Some(&project));
    let ids: Vec<(&str, bool)> = report
        .workflows
        .iter()
        .map(|w| (w.workflow.as_str(), w.defined))
        .collect();
    assert_eq!(
        ids,
        [("promo", true), ("welcome", true), ("old-workflow", false)]
    );
    let welcome = workflow(&report, "welcome");
    assert_eq!(welcome.name.as_deref(), Some("Welcome"));
    let steps: Vec<(&str, bool, u64)> = welcome
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.defined, s.sent))
        .collect();
    assert_eq!(
        steps,
        [
            ("hello", true, 0),
            ("tips", true, 1),
            ("removed-step", false, 1)
        ],
        "send_email steps in definition order (no wait step), then the others"
    );
    let offer = &workflow(&report, "promo").steps;
    assert_eq!(offer.len(), 1);
    assert_eq!((offer[0].step.as_str(), offer[0].sent), ("offer", 0));

    let bare = tally(None, &entries).finish(&[], None);
    let names: Vec<&str> = bare.workflows.iter().map(|w| w.workflow.as_str()).collect();
    assert_eq!(names, ["old-workflow", "welcome"]);
    let steps: Vec<&str> = workflow(&bare, "welcome")
        .steps
        .iter()
        .map(|s| s.step.as_str())
        .collect();
    assert_eq!(steps, ["removed-step", "tips"], "by id without definitions");
}

#[test]
fn rates_divide_by_what_a_marketer_expects_and_are_none_on_zero() {
    let mut step = StepReport::new("s", true);
    assert_eq!(step.open_rate(), None);
    assert_eq!(step.bounce_rate(), None);
    step.sent = 10;
    step.feedback.add(FeedbackKind::Delivered, 8);
    step.feedback.add(FeedbackKind::Opened, 4);
    step.feedback.add(FeedbackKind::Clicked, 2);
    step.feedback.add(FeedbackKind::Bounced, 2);
    step.feedback.add(FeedbackKind::Complained, 1);
    step.feedback.add(FeedbackKind::Unsubscribed, 1);
    assert_eq!(step.open_rate(), Some(0.5));
    assert_eq!(step.click_rate(), Some(0.25));
    assert_eq!(step.bounce_rate(), Some(0.2));
    assert_eq!(step.complaint_rate(), Some(0.125));
    assert_eq!(step.unsubscribe_rate(), Some(0.125));
}

#[test]
fn only_hard_bounces_count_as_bounced() {
    let entries = [
        ("c-1", sent(0, "welcome", "hello")),
        ("c-1", bounce(1, Some("soft"))),
        ("c-1", bounce(2, None)),
        ("c-1", bounce(3, Some("Hard"))),
        ("c-1", bounce(4, Some(HARD_BOUNCE))),
        ("c-2", bounce(5, Some("soft"))),
    ];
    let report = tally(None, &entries).finish(&[], None);
    let hello = step_of(&report, "welcome", "hello");
    assert_eq!(hello.feedback.get(FeedbackKind::Bounced), 1);
    assert!(report.unattributed.is_empty(), "{:?}", report.unattributed);
}

#[test]
fn feedback_event_types_map_to_their_kinds() {
    assert_eq!(
        feedback_kind_of("email.bounced", Some(HARD_BOUNCE)),
        Some(FeedbackKind::Bounced)
    );
    assert_eq!(feedback_kind_of("email.bounced", Some("soft")), None);
    assert_eq!(feedback_kind_of("email.bounced", None), None);
    assert_eq!(
        feedback_kind_of("customer.unsubscribed", None),
        Some(FeedbackKind::Unsubscribed)
    );
    assert_eq!(feedback_kind_of("order.placed", None), None);
    let kinds: Vec<FeedbackKind> = FEEDBACK_EVENT_TYPES.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds, FeedbackKind::ALL, "every kind has its event");
}

/// A small report: welcome with two steps (one sent and opened, skips), a goal.
fn sample() -> Report {
    let entries = [
        ("c-1", run(0, "welcome", Happened::RunStarted)),
        ("c-2", run(0, "welcome", Happened::RunStarted)),
        ("c-1", sent(1, "welcome", "hello")),
        ("c-1", received(2, "email.delivered")),
        ("c-1", received(3, "email.opened")),
        ("c-2", skipped(1, "welcome", "hello", "no_consent")),
        ("c-2", skipped(2, "welcome", "tips", "frequency_cap")),
        ("c-1", ended(5, "welcome", "goal")),
        ("c-9", received(6, "email.complained")),
    ];
    tally(None, &entries).finish(&[], Some(&project()))
}

#[test]
fn text_aligns_each_column_and_says_what_it_covers() {
    let out = text(&sample());
    let promo = "promo — Promotion\n  Runs: 0 started, 0 ended (none)\n  \
                 Goals: none defined (no exit_when)\n";
    assert!(out.starts_with(promo), "{out}");
    assert!(out.contains("welcome — Welcome\n"), "{out}");
    assert!(
        out.contains("  Runs: 2 started, 1 ended (goal 1)\n"),
        "{out}"
    );
    assert!(
        out.contains("  Goals reached: 1, conversion 50.0% (goals / runs started)\n"),
        "{out}"
    );
    assert!(
        out.contains("  Skipped by reason: hello: no_consent 1; tips: frequency_cap 1\n"),
        "{out}"
    );
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("welcome"))
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with(char::is_uppercase))
        .collect();
    assert_eq!(table.len(), 4, "header, two steps, totals: {out}");
    assert!(table[1].trim_start().starts_with("hello "), "{out}");
    assert!(table[3].trim_start().starts_with("all steps "), "{out}");
    // Right-aligned: every column's cells end where its header ends.
    let header = table[0];
    for name in ["sent", "skipped", "opened", "open rate", "unsub. rate"] {
        let end = header[..header.find(name).unwrap()].chars().count() + name.chars().count();
        for row in &table[1..] {
            let chars: Vec<char> = row.chars().collect();
            assert_ne!(chars[end - 1], ' ', "column {name} in {row:?}\n{out}");
            assert!(chars.len() == end || chars[end] == ' ', "{row:?}");
        }
    }
    let hello = table[1].split_whitespace().collect::<Vec<_>>();
    assert_eq!(
        hello,
        [
            "hello", "1", "0", "1", "1", "1", "0", "0", "0", "0", "100.0%", "0.0%", "0.0%", "0.0%"
        ]
    );
    assert!(out.contains("journal (9 entries of 3 customers"), "{out}");
    assert!(out.contains("last 100 commits"), "{out}");
    assert!(out.contains("in no step: complained 1."), "{out}");
    assert!(!out.contains("all-time"), "{out}");
}

#[test]
fn markdown_has_a_table_per_workflow() {
    let out = markdown(&sample());
    assert!(
        out.starts_with("## Nudge report\n\n### promo — Promotion\n"),
        "{out}"
    );
    let header = "| step | sent | deferred | skipped | delivered | opened | clicked | bounced \
                  | complained | unsubscribed | open rate | click rate | bounce rate | unsub. rate |";
    assert_eq!(out.matches(header).count(), 2, "{out}");
    assert!(out.contains("\n|:--|--:|"), "{out}");
    assert!(
        out.contains("| hello | 1 | 0 | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 100.0% | 0.0% | 0.0% | 0.0% |"),
        "{out}"
    );
    assert!(
        out.contains("| tips | 0 | 0 | 1 | 0 | 0 | 0 | 0 | 0 | 0 | – | – | – | – |"),
        "{out}"
    );
    assert!(out.contains("- skipped at hello: no_consent 1\n"), "{out}");
    assert!(
        out.contains("\n> - Counted from the store's journal"),
        "{out}"
    );
}

#[test]
fn markdown_and_text_escape_what_the_store_holds() {
    let entries = [("c-1", sent(0, "evil|wf\n# heading", "st\x1b[31mep"))];
    let report = tally(None, &entries).finish(&[], None);
    let md = markdown(&report);
    assert!(md.contains("### evil\\|wf\\n# heading\n"), "{md}");
    assert!(md.contains("| st\\u{1b}[31mep |"), "{md}");
    let txt = text(&report);
    assert!(txt.starts_with("evil|wf\\n# heading\n"), "{txt}");
    assert!(!txt.contains('\x1b'), "{txt}");
}

#[test]
fn json_rows_give_each_workflow_then_its_steps() {
    let rows: Vec<Value> = json_rows(&sample())
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<(String, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["workflow"].as_str().unwrap().to_owned(),
                r["step"].clone(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("promo".into(), Value::Null),
            ("promo".into(), "offer".into()),
            ("welcome".into(), Value::Null),
            ("welcome".into(), "hello".into()),
            ("welcome".into(), "tips".into()),
        ]
    );
    let welcome = &rows[2];
    assert_eq!(welcome["name"], "Welcome");
    assert_eq!(welcome["defined"], true);
    assert_eq!(welcome["runs_started"], 2);
    assert_eq!(welcome["runs_ended"], 1);
    assert_eq!(
        welcome["runs_ended_by_reason"],
        serde_json::json!({"goal": 1})
    );
    assert_eq!(welcome["runs_refused"], 0);
    assert_eq!(welcome["goals"], 1);
    assert_eq!(welcome["conversion_rate"], 0.5);
    assert_eq!(rows[0]["conversion_rate"], Value::Null, "promo has no goal");
    assert_eq!(welcome["skipped"], 2);
    assert_eq!(
        welcome["skipped_by_reason"],
        serde_json::json!({"frequency_cap": 1, "no_consent": 1})
    );
    let hello = &rows[3];
    assert_eq!(hello["sent"], 1);
    assert_eq!(hello["delivered"], 1);
    assert_eq!(hello["opened"], 1);
    assert_eq!(hello["open_rate"], 1.0);
    assert_eq!(hello["click_rate"], 0.0);
    assert_eq!(hello["bounce_rate"], 0.0);
    let tips = &rows[4];
    assert_eq!(tips["open_rate"], Value::Null);
    assert!(
        tips.get("runs_started").is_none(),
        "run counts are on the workflow's row"
    );
    let fields: Vec<&str> = tips
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields.len(), 18, "{fields:?}");
}

#[test]
fn truncated_commits_are_counted_and_said() {
    let truncated = run(1, "welcome", Happened::JournalTruncated { dropped: 3 });
    let entries = [
        ("c-1", sent(0, "welcome", "hello")),
        ("c-1", truncated.clone()),
        ("c-2", truncated),
    ];
    let report = tally(None, &entries).finish(&[], None);
    assert_eq!(report.journal.truncated_commits, 2);
    assert_eq!(report.journal.dropped_entries, 6);
    assert_eq!(step_of(&report, "welcome", "hello").sent, 1);
    let out = text(&report);
    assert!(
        out.contains("2 commits had more journal than the store keeps per commit: 6 of their"),
        "{out}"
    );
    let clean = tally(None, &entries[..1]).finish(&[], None);
    assert!(!text(&clean).contains("more journal"));
}

/// Commits `commits` (each a customer's entries) to `store`, one version after the other.
async fn commit_all(store: &nudge_local::SqliteStore, commits: &[(&str, Vec<JournalEntry>)]) {
    use nudge_core::store::{Commit, CommitOutcome};
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (customer, journal) in commits {
        let version = versions.entry((*customer).to_owned()).or_default();
        let commit = Commit {
            customer_id: customer,
            expected_version: *version,
            state: b"{}",
            next_wake: None,
            event_id: None,
            sends: &[],
            journal,
        };
        let outcome = store.commit(commit).await.unwrap();
        assert!(
            matches!(outcome, CommitOutcome::Committed { .. }),
            "{outcome:?}"
        );
        *version += 1;
    }
}

#[tokio::test]
async fn the_store_is_read_page_by_page_with_its_feedback_counts() {
    use nudge_core::store::Feedback;
    let store = nudge_local::SqliteStore::in_memory().unwrap();
    let commits = [
        (
            "c-1",
            vec![
                run(0, "welcome", Happened::RunStarted),
                sent(0, "welcome", "hello"),
            ],
        ),
        (
            "c-2",
            vec![
                run(1, "welcome", Happened::RunStarted),
                skipped(1, "welcome", "hello", "no_consent"),
            ],
        ),
        ("c-1", vec![received(5, "email.opened")]),
        (
            "c-1",
            vec![received(6, "order.placed"), ended(6, "welcome", "goal")],
        ),
    ];
    commit_all(&store, &commits).await;
    let feedback = Feedback {
        event_id: "ses:1",
        workflow: "welcome",
        step: "hello",
        kind: FeedbackKind::Delivered,
        at: at(2),
    };
    assert!(store.record_feedback(&feedback).await.unwrap());

    // One commit a page: the cursor is followed to the end.
    let paged = read(&store, None, None, 1).await.unwrap();
    let whole = report(&store, None, None).await.unwrap();
    assert_eq!(paged, whole);
    assert_eq!(paged.journal.entries, 7);
    let welcome = workflow(&paged, "welcome");
    assert_eq!((welcome.runs_started, welcome.goals()), (2, 1));
    let hello = step_of(&paged, "welcome", "hello");
    assert_eq!((hello.sent, hello.skipped_total()), (1, 1));
    assert_eq!(hello.feedback.get(FeedbackKind::Opened), 1);
    assert_eq!(hello.feedback.get(FeedbackKind::Delivered), 1);
    assert!(paged.store_feedback);
}
