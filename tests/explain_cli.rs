//! `nudge explain` as a user runs it: on the store `simulate --db` wrote, its `email.*` and
//! `run.*` rows are the ones `simulate` printed, customer by customer; skips say what their
//! rule read, conditions what they read; the journal keeps the last `JOURNAL_COMMITS` commits;
//! the journal keeps no address; an unknown customer exits 1.

use std::collections::BTreeMap;
use std::path::Path;

use nudge_core::journal::JOURNAL_COMMITS;
use serde_json::{Value, json};

use crate::helpers::{nudge, root};
use crate::scenarios::ev;
use crate::simulate_cli::write_events;

/// `simulate --events EVENTS --db DB --format json [extra]` (exit 0 asserted); its stdout.
fn simulate(events: &Path, db: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "simulate",
        "--events",
        events.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = nudge(&root(), &args, &[]);
    assert_eq!(code, 0, "{err}");
    out
}

/// `simulate --db DB --format json` on the sample; its stdout.
fn simulate_sample(db: &Path) -> String {
    simulate(Path::new("events/sample.jsonl"), db, &[])
}

/// `explain --db DB --customer C --format json [extra]`: its rows (exit 0 asserted).
fn explain_json(db: &Path, customer: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "explain",
        "--db",
        db.to_str().unwrap(),
        "--customer",
        customer,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = nudge(&root(), &args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Whether a row is one the contract says `simulate` printed too: every `email.*` and `run.*`
/// row, with no exception (explain's own rows must be named otherwise).
fn shared(action: &str) -> bool {
    action.starts_with("email.") || action.starts_with("run.")
}

#[test]
fn every_customers_email_and_run_rows_are_the_ones_simulate_printed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let simulated = simulate_sample(&db);
    let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in simulated.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        if shared(row["action"].as_str().unwrap()) {
            let customer = row["customer"].as_str().unwrap().to_owned();
            by_customer
                .entry(customer)
                .or_default()
                .push(line.to_owned());
        }
    }
    assert!(by_customer.len() >= 40, "{}", by_customer.len());
    let mut explain_only = 0;
    for (customer, expected) in &by_customer {
        let args = [
            "explain",
            "--db",
            db.to_str().unwrap(),
            "--customer",
            customer,
            "--format",
            "json",
        ];
        let (code, out, err) = nudge(&root(), &args, &[]);
        assert_eq!(code, 0, "{err}");
        // Byte for byte: the same fields, in the same order, with the same values.
        let got: Vec<&str> = out
            .lines()
            .filter(|l| {
                let row: Value = serde_json::from_str(l).unwrap();
                shared(row["action"].as_str().unwrap())
            })
            .collect();
        assert_eq!(&got, expected, "customer {customer}");
        explain_only += out.lines().count() - got.len();
    }
    // Explain printed rows of its own (the "now" rows among them), none of them named as
    // simulate's are.
    assert!(explain_only > 0);
    // What the sample covers, so that the comparison above means something.
    let reasons: Vec<&str> = ["no_consent", "suppressed", "unsubscribed", "frequency_cap"]
        .into_iter()
        .filter(|r| simulated.contains(&format!("\"reason\":\"{r}\"")))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(simulated.contains("\"reason\":\"goal\""));
    assert!(simulated.contains("\"action\":\"email.deferred\""));
}

#[test]
fn skips_say_what_their_rule_read_and_conditions_what_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    simulate_sample(&db);
    // c-1008 never consented; win-back's `regular` condition is false for one order.
    let rows = explain_json(&db, "c-1008", &[]);
    let rule = rows
        .iter()
        .position(|r| r["action"] == "rule.checked")
        .expect("a rule.checked row");
    assert_eq!(rows[rule]["reason"], "no_consent");
    assert_eq!(rows[rule]["read"], json!({"accepts_marketing": false}));
    // The skip it explains follows it, for the same step.
    assert_eq!(rows[rule + 1]["action"], "email.skipped");
    assert_eq!(rows[rule + 1]["step"], rows[rule]["step"]);
    let condition = rows
        .iter()
        .find(|r| r["action"] == "condition.checked" && r["step"] == "regular")
        .expect("win-back's condition");
    assert_eq!(condition["condition"], "customer.orders_count >= 3");
    assert_eq!(condition["result"], false);
    assert_eq!(condition["read"], json!({"customer.orders_count": 1}));
    let events = rows
        .iter()
        .filter(|r| r["action"] == "event.received")
        .count();
    assert!(events >= 4, "{events}");
    assert!(
        rows.iter()
            .any(|r| r["action"] == "wait.started" && r["event"] == "order.delivered")
    );
    // The frequency cap reads the count and the cap.
    let rows = explain_json(&db, "c-1018", &[]);
    let cap = rows
        .iter()
        .find(|r| r["action"] == "rule.checked" && r["reason"] == "frequency_cap")
        .expect("the cap's reading");
    assert!(
        cap["read"]["sent"].as_u64().unwrap() >= cap["read"]["cap"].as_u64().unwrap(),
        "{cap}"
    );
    // The suppression says which.
    let rows = explain_json(&db, "c-1010", &[]);
    assert!(rows.iter().any(|r| r["action"] == "rule.checked"
        && r["reason"] == "suppressed"
        && r["read"]["suppressed"].is_string()));
}

#[test]
fn the_text_story_reads_and_a_workflow_filter_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    simulate_sample(&db);
    let (code, out, err) = nudge(
        &root(),
        &[
            "explain",
            "--db",
            db.to_str().unwrap(),
            "--customer",
            "c-1008",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Customer c-1008\n"), "{out}");
    assert!(
        out.contains("win-back/regular: condition `customer.orders_count >= 3` was false (read customer.orders_count = 1)"),
        "{out}"
    );
    assert!(
        out.contains("welcome-series/welcome: the rule no_consent read accepts_marketing = false"),
        "{out}"
    );
    assert!(out.contains("\nNow:\n"), "{out}");
    let rows = explain_json(&db, "c-1008", &["--workflow", "win-back"]);
    assert!(!rows.is_empty());
    for row in &rows {
        match row["action"].as_str().unwrap() {
            "event.received" => {}
            _ => assert_eq!(row["workflow"], "win-back", "{row}"),
        }
    }
    // The order that started win-back is kept with it; the customer's creation is not.
    let events: Vec<_> = rows
        .iter()
        .filter(|r| r["action"] == "event.received")
        .map(|r| r["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["order.placed"]);
}

#[test]
fn active_runs_say_where_they_stand_and_what_they_wait_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    // A shipment that is never delivered, stopped a day in: its run waits for the delivery.
    let events = write_events(
        dir.path(),
        &[ev(
            "e-1",
            "order.shipped",
            "2026-03-02T09:00:00Z",
            "c-1",
            json!({"customer": {"email": "ayse@example.com", "accepts_marketing": true},
                   "order": {"id": "o-1", "name": "#1001"}}),
        )
        .to_string()],
    );
    simulate(&events, &db, &["--until", "2026-03-03T09:00:00Z"]);
    let rows = explain_json(&db, "c-1", &[]);
    let active = rows
        .iter()
        .find(|r| r["action"] == "state.run")
        .expect("the shipment's run");
    // As of the store's clock (where `simulate` stopped), not the last thing that happened.
    assert_eq!(active["at"], "2026-03-03T09:00:00Z");
    assert_eq!(active["workflow"], "shipment-updates");
    assert_eq!(active["reason"], "wait_for");
    assert_eq!(active["event"], "order.delivered");
    assert_eq!(active["until"], "2026-03-16T09:00:00Z");
    let wake = rows.last().unwrap();
    assert_eq!(wake["action"], "state.wake");
    assert_eq!(wake["until"], "2026-03-16T09:00:00Z");
    assert_eq!(wake["at"], "2026-03-03T09:00:00Z");
    // No row of explain's own is named as simulate's are.
    assert!(rows.iter().all(|r| {
        let action = r["action"].as_str().unwrap();
        !action.starts_with("run.active") && !action.starts_with("wake.")
    }));
}

#[test]
fn the_journal_keeps_the_last_commits_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let extra = 7;
    let total = JOURNAL_COMMITS as usize + extra;
    // One commit per event: updates no workflow wants.
    let lines: Vec<String> = (0..total)
        .map(|i| {
            ev(
                &format!("e-{i:03}"),
                "customer.updated",
                &format!("2026-03-02T09:{:02}:{:02}Z", i / 60, i % 60),
                "c-1",
                json!({"customer": {"accepts_marketing": false}}),
            )
            .to_string()
        })
        .collect();
    let events = write_events(dir.path(), &lines);
    simulate(&events, &db, &["--until", "2026-03-03T00:00:00Z"]);
    let ids: Vec<String> = explain_json(&db, "c-1", &[])
        .iter()
        .filter(|r| r["action"] == "event.received")
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (extra..total).map(|i| format!("e-{i:03}")).collect();
    assert_eq!(ids, expected);
}

#[test]
fn an_unknown_customer_exits_1_without_naming_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    simulate_sample(&db);
    let args = [
        "explain",
        "--db",
        db.to_str().unwrap(),
        "--customer",
        "guest:nobody@example.com",
    ];
    let (code, out, err) = nudge(&root(), &args, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("knows no customer guest:"), "{err}");
    assert!(!err.contains("nobody"), "{err}");
    // A store that is not there: exit 2, and no file is made.
    let missing = dir.path().join("absent.db");
    let args = [
        "explain",
        "--db",
        missing.to_str().unwrap(),
        "--customer",
        "c-1",
    ];
    let (code, _, err) = nudge(&root(), &args, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(!missing.exists());
}

/// A workflow that checks a condition, splits (all but 1 in 10,001 to the holdout) and waits for
/// an order.
const DECIDING: &str = r#"
category: marketing
trigger: { event: customer.created }
steps:
  - id: loyal
    if: "customer.orders_count | default(0) > 2 and customer.first_name == 'Ayşe' or customer.email == 'vip@example.com'"
    then:
      - id: hi-loyal
        send_email: { template: t.mjml, subject: "Loyal" }
    else:
      - id: hi
        send_email: { template: t.mjml, subject: "Hi {{ customer.first_name }}" }
  - id: test
    ab_split:
      - { weight: 10000, steps: [] }
      - weight: 1
        steps:
          - id: mark
            update_profile: { add_tags: [tested] }
  - id: wait-order
    wait_for: { event: order.placed, timeout: 2d }
"#;

#[test]
fn the_engine_journals_each_action_and_decision_in_order() {
    use nudge_core::engine::state::CustomerState;
    use nudge_core::engine::{Engine, Input};
    use nudge_core::journal::Happened;
    use nudge_core::links::Signer;

    let s = crate::scenarios::Scenario::new(&[("deciding", DECIDING)]);
    let project = nudge_core::workflow::load(&s.workflows_dir())
        .unwrap()
        .project
        .unwrap();
    let signer = Signer::new(b"k");
    let engine = Engine::new(&project, &signer);
    let event = nudge_core::event::parse_event(
        &ev(
            "e1",
            "customer.created",
            "2026-03-02T09:00:00Z",
            "c1",
            json!({"customer": {"email": "ayse@example.com", "first_name": "Ayşe",
                                 "accepts_marketing": true, "orders_count": 1}}),
        )
        .to_string(),
    )
    .unwrap();
    let now = event.time;
    let outcome = engine.handle(CustomerState::new("c1"), Input::Event(&event), now);
    let names: Vec<&str> = outcome.journal.iter().map(|e| e.what.name()).collect();
    assert_eq!(
        names,
        [
            "run.started",
            "condition.checked",
            "email.sent",
            "split.chosen",
            "wait.started"
        ]
    );
    // Every action has its entry, in the actions' order.
    let of_actions: Vec<Happened> = outcome
        .actions
        .iter()
        .map(|a| Happened::of_action(&a.kind))
        .collect();
    let action_entries: Vec<Happened> = outcome
        .journal
        .iter()
        .map(|e| e.what.clone())
        .filter(|w| of_actions.contains(w))
        .collect();
    assert_eq!(action_entries, of_actions);
    assert_eq!(
        outcome.journal[1].what,
        Happened::ConditionChecked {
            condition: "customer.orders_count | default(0) > 2 and customer.first_name == 'Ayşe' or customer.email == 'vip@example.com'"
                .into(),
            result: false,
            // An address read is not kept: only that there was one.
            read: serde_json::Map::from_iter([
                ("customer.email".into(), json!("(an address: not kept)")),
                ("customer.first_name".into(), json!("Ayşe")),
                ("customer.orders_count".into(), json!(1)),
            ]),
        }
    );
    assert_eq!(outcome.journal[1].step.as_deref(), Some("loyal"));
    match &outcome.journal[2].what {
        Happened::EmailSent { key, subject, tags } => {
            assert!(key.ends_with(".hi"), "{key}");
            assert_eq!(subject, "Hi Ayşe");
            assert!(tags.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        outcome.journal[3].what,
        Happened::SplitChosen {
            branch: "holdout".into()
        }
    );
    assert_eq!(
        outcome.journal[4].what,
        Happened::WaitStarted {
            until: now + chrono::TimeDelta::days(2),
            event: Some("order.placed".into())
        }
    );
    for entry in &outcome.journal {
        assert_eq!(entry.at, now);
        assert_eq!(entry.workflow.as_deref(), Some("deciding"));
        assert!(entry.zone.is_some());
        // No address in the journal.
        let json = serde_json::to_string(entry).unwrap();
        assert!(!json.contains("ayse@example.com"), "{json}");
    }
}

#[test]
fn workflows_are_read_as_simulate_reads_them_and_a_workflow_filter_must_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    simulate_sample(&db);
    let db = db.to_str().unwrap();
    // From the repository (its workflows/ is the default): a misspelt id is a usage error
    // with the closest id suggested, and prints nothing.
    let args = [
        "explain",
        "--db",
        db,
        "--customer",
        "c-1008",
        "--workflow",
        "win-bak",
    ];
    let (code, out, err) = nudge(&root(), &args, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("no workflow `win-bak`"), "{err}");
    assert!(err.contains("did you mean `win-back`?"), "{err}");
    // A workflow defined but never met by the customer: known, and nothing to tell of it.
    let s = crate::scenarios::Scenario::new(&[("deciding", DECIDING)]);
    let workflows = s.workflows_dir();
    let workflows = workflows.to_str().unwrap();
    let args = [
        "explain",
        "--db",
        db,
        "--customer",
        "c-1008",
        "--workflows",
        workflows,
        "--workflow",
        "deciding",
        "--format",
        "json",
    ];
    let (code, out, err) = nudge(&root(), &args, &[]);
    assert_eq!(code, 0, "{err}");
    // The definitions' warnings are on stderr, as `simulate` prints them.
    assert!(err.contains("warning:"), "{err}");
    assert!(!out.contains("win-back"), "{out}");
    // Without the definitions (no workflows/ where it runs), the story's own ids still do.
    let elsewhere = tempfile::tempdir().unwrap();
    let args = [
        "explain",
        "--db",
        db,
        "--customer",
        "c-1008",
        "--workflow",
        "win-back",
    ];
    let (code, out, err) = nudge(elsewhere.path(), &args, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("win-back/regular"), "{out}");
    let args = [
        "explain",
        "--db",
        db,
        "--customer",
        "c-1008",
        "--workflow",
        "deciding",
    ];
    let (code, _, err) = nudge(elsewhere.path(), &args, &[]);
    assert_eq!(code, 2, "{err}");
    // Workflows with errors are refused as simulate refuses them.
    s.set_workflows(&[("deciding", "category: marketing\nsteps: []\n")]);
    let args = [
        "explain",
        "--db",
        db,
        "--customer",
        "c-1008",
        "--workflows",
        workflows,
    ];
    let (code, out, err) = nudge(&root(), &args, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("deciding.yaml"), "{err}");
    assert!(err.contains("the workflows have errors"), "{err}");
}

/// A workflow whose condition reads the whole customer and whose subject interpolates the
/// address.
const READS_THE_ADDRESS: &str = r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: known
    if: "customer | length > 0 and 'x' in customer['email']"
    then:
      - id: receipt
        send_email: { template: t.mjml, subject: "Receipt for {{ customer.email }}" }
"#;

/// Every journal entry the SQLite store at `db` holds, decoded, as JSON text.
fn stored_journal(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut select = conn.prepare("SELECT entries FROM journal").unwrap();
    let blobs: Vec<Vec<u8>> = select
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    blobs
        .iter()
        .flat_map(|b| nudge_core::journal::decode(b).unwrap())
        .map(|e| serde_json::to_string(&e).unwrap())
        .collect()
}

#[test]
fn the_journal_keeps_no_address_and_explain_still_shows_simulates_subject() {
    let s = crate::scenarios::Scenario::new(&[("receipt", READS_THE_ADDRESS)]);
    let dir = tempfile::tempdir().unwrap();
    let address = "ayse.yilmaz@example.com";
    let events = write_events(
        dir.path(),
        &[ev(
            "e-1",
            "order.placed",
            "2026-03-02T09:00:00Z",
            "c-1",
            json!({"customer": {"email": address, "first_name": "Ayşe"},
                   "order": {"id": "o-1", "name": "#1001"}}),
        )
        .to_string()],
    );
    let workflows = s.workflows_dir();
    for outbox in [true, false] {
        let db = dir.path().join(format!("store-{outbox}.db"));
        let out_dir = dir.path().join(format!("outbox-{outbox}"));
        let mut extra = vec![
            "--workflows",
            workflows.to_str().unwrap(),
            "--until",
            "2026-03-03T00:00:00Z",
        ];
        if outbox {
            extra.extend(["--outbox", out_dir.to_str().unwrap()]);
        }
        let simulated = simulate(&events, &db, &extra);
        assert!(
            simulated.contains(&format!("\"subject\":\"Receipt for {address}\"")),
            "{simulated}"
        );
        // The journal read the whole customer and rendered the address: it keeps neither.
        let journal = stored_journal(&db);
        let all = journal.join("\n");
        assert!(
            all.contains("\"customer\":{") && all.contains("\"subject\":\"Receipt for [address]\""),
            "{all}"
        );
        assert!(!all.contains('@'), "{all}");
        // explain's rows: simulate's, with the message's subject; without a message (no
        // outbox) the subject is the journal's.
        let (code, explained, err) = nudge(
            &root(),
            &[
                "explain",
                "--db",
                db.to_str().unwrap(),
                "--customer",
                "c-1",
                "--workflows",
                workflows.to_str().unwrap(),
                "--format",
                "json",
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        let email_rows = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains("\"action\":\"email."))
                .map(str::to_owned)
                .collect()
        };
        let expected = email_rows(&simulated);
        assert_eq!(expected.len(), 1, "{simulated}");
        if outbox {
            assert_eq!(email_rows(&explained), expected);
        } else {
            assert_eq!(
                email_rows(&explained),
                [expected[0].replace(&format!("Receipt for {address}"), "Receipt for [address]")]
            );
        }
    }
}
