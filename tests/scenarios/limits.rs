//! The limits on one customer: the active-run limit (`run.refused`), and what happens to the
//! inputs of a customer whose stored state cannot be read.

use chrono::{DateTime, Duration, Utc};
use nudge_core::engine::MAX_ACTIVE_RUNS;
use nudge_core::store::{Commit, CommitOutcome, Store};
use nudge_local::SqliteStore;
use nudge_local::simulate::Notice;
use serde_json::{Value, json};

use super::{SHIPMENT, Scenario, WELCOME, count, customer, ev, has, order};

/// Thanks the customer by name when an order arrives.
const DELIVERED: &str = r#"
category: transactional
trigger: { event: order.delivered }
key: "event.order.id"
steps:
  - id: thanks
    send_email: { template: t.mjml, subject: "Thanks {{ customer.first_name }}" }
"#;

fn at(minutes: usize) -> String {
    let t0: DateTime<Utc> = "2026-03-02T07:00:00Z".parse().unwrap();
    (t0 + Duration::minutes(minutes as i64))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn shipped(i: usize, detail: Value) -> Value {
    ev(&format!("s{i}"), "order.shipped", &at(i), "c1", detail)
}

#[test]
fn a_trigger_beyond_the_active_run_limit_is_refused_and_its_event_still_applies() {
    let s = Scenario::new(&[("ship", SHIPMENT), ("delivered", DELIVERED)]);
    let n = MAX_ACTIVE_RUNS;
    let mut events: Vec<Value> = (0..n)
        .map(|i| shipped(i, order(&format!("o-{i}"))))
        .collect();
    // One more order, from a customer who changed their name: the run is refused, the
    // profile still changes.
    let mut renamed = order(&format!("o-{n}"));
    renamed["customer"]["first_name"] = json!("Beyza");
    events.push(shipped(n, renamed));
    // A delivery still moves its run on (which ends it), and the trigger it fires starts.
    let delivery = json!({"order": {"id": "o-0"}});
    events.push(ev("d0", "order.delivered", &at(n + 1), "c1", delivery));
    // A slot is free again.
    let next = n + 2;
    events.push(shipped(next, order(&format!("o-{next}"))));
    let report = s.run_reporting(&events, "2026-03-03T00:00:00Z", None);
    let rows = &report.rows;
    assert_eq!(count(rows, "ship/- run.started"), n + 1, "{rows:#?}");
    assert_eq!(count(rows, "run.refused"), 1);
    let refused = format!("{} c1 ship/- run.refused too_many_runs", at(n));
    assert_eq!(rows[2 * n], refused, "{rows:#?}");
    let after: Vec<&str> = rows[2 * n + 1..].iter().map(String::as_str).collect();
    let (d, o) = (at(n + 1), at(next));
    assert_eq!(
        after,
        [
            format!("{d} c1 ship/delivered email.sent Order o-0 delivered"),
            format!("{d} c1 ship/- run.ended completed"),
            format!("{d} c1 delivered/- run.started"),
            format!("{d} c1 delivered/thanks email.sent Thanks Beyza"),
            format!("{d} c1 delivered/- run.ended completed"),
            format!("{o} c1 ship/- run.started"),
            format!("{o} c1 ship/shipped email.sent Order o-{next} shipped"),
        ]
    );
    assert!(!has(rows, &format!("Order o-{n} shipped")));
    assert_eq!(report.summary.workflows["ship"].runs_refused, 1);
    assert_eq!(report.summary.rejected, 0);
}

/// Stores `bytes` as customer `id`'s state, with a timer due at `wake`.
fn store_state(s: &Scenario, id: &str, bytes: &[u8], wake: &str) {
    let store = SqliteStore::open(&s.db()).unwrap();
    let commit = Commit {
        customer_id: id,
        expected_version: 0,
        state: bytes,
        next_wake: Some(wake.parse().unwrap()),
        event_id: None,
        sends: &[],
        journal: &[],
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let outcome = store.commit(commit).await.unwrap();
        assert!(matches!(outcome, CommitOutcome::Committed { .. }));
        store.flush().await.unwrap();
    });
}

#[test]
fn an_unreadable_state_fails_only_its_customers_inputs() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    store_state(&s, "c1", b"{\"id\":3}", "2026-03-02T06:00:00Z");
    let events = [
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
            "2026-03-02T07:01:00Z",
            "c2",
            customer("B"),
        ),
    ];
    let report = s.run_reporting(&events, "2026-03-02T08:00:00Z", None);
    assert_eq!(
        report.rows,
        [
            "2026-03-02T07:01:00Z c2 welcome/- run.started",
            "2026-03-02T07:01:00Z c2 welcome/hello email.sent Welcome B",
        ]
    );
    let unreadable = "stored state of customer c1 is unreadable: invalid type: integer, \
                      expected a string at line 1 column 7";
    let [wake, line] = &report.notices[..] else {
        panic!("{:#?}", report.notices);
    };
    let Notice::WakeFailed {
        customer, reason, ..
    } = wake
    else {
        panic!("{wake:?}");
    };
    assert_eq!((customer.as_str(), reason.as_str()), ("c1", unreadable));
    let Notice::Rejected(r) = line else {
        panic!("{line:?}");
    };
    assert_eq!((r.line, r.event_id.as_deref()), (1, Some("e1")));
    assert_eq!(r.reason, unreadable);
    assert_eq!((report.summary.rejected, report.summary.events), (1, 1));
    let store = SqliteStore::open(&s.db()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let letters = rt.block_on(store.dead_letters(10)).unwrap();
    let [letter] = &letters[..] else {
        panic!("{letters:#?}");
    };
    assert_eq!(letter.event_id.as_deref(), Some("e1"));
    assert_eq!(letter.reason, unreadable);
    assert!(
        letter.source.ends_with("events.jsonl:1"),
        "{}",
        letter.source
    );
    let body: Value = serde_json::from_str(&letter.body).unwrap();
    assert_eq!(body["detail"]["customer"]["id"], "c1");
    // The state is left as it was, and the event is not marked processed.
    let stored = rt.block_on(store.load("c1")).unwrap().unwrap();
    assert_eq!(stored.state, b"{\"id\":3}");
    assert!(!rt.block_on(store.is_processed("e1")).unwrap());
}

/// `nudge simulate` prints a refused run in text and JSON, and counts it in the summary.
#[test]
fn simulate_prints_and_counts_refused_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let lines: String = (0..=MAX_ACTIVE_RUNS)
        .map(|i| format!("{}\n", shipped(i, order(&format!("o-{i}")))))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let workflows = crate::helpers::root().join("workflows");
    let (w, e) = (workflows.to_str().unwrap(), file.to_str().unwrap());
    let until = ["--until", "2026-03-03T00:00:00Z"];
    let args = [&["simulate", "--workflows", w, "--events", e][..], &until].concat();
    let (code, out, err) = crate::helpers::nudge(dir.path(), &args, &[]);
    assert_eq!(code, 0, "{err}");
    let at = at(MAX_ACTIVE_RUNS);
    // UTC, the local date, time and zone, then the customer, workflow, step, action, reason.
    let refused = |l: &str| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words[0] == at
            && words[4..]
                == [
                    "c1",
                    "shipment-updates",
                    "-",
                    "run.refused",
                    "too_many_runs",
                ]
    };
    assert!(out.lines().any(refused), "{out}");
    let runs = format!(
        "\n  runs     {n} started; ended: none; {n} still active; 1 refused (too_many_runs)\n",
        n = MAX_ACTIVE_RUNS
    );
    assert!(out.contains(&runs), "{out}");
    let json_args = [&args[..], &["--format", "json"]].concat();
    let (code, out, err) = crate::helpers::nudge(dir.path(), &json_args, &[]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refused: Vec<&Value> = rows
        .iter()
        .filter(|r| r["action"] == "run.refused")
        .collect();
    let [row] = &refused[..] else {
        panic!("{out}");
    };
    let run = nudge_core::engine::run_id(
        "shipment-updates",
        "c1",
        Some(&format!("o-{MAX_ACTIVE_RUNS}")),
        &format!("s{MAX_ACTIVE_RUNS}"),
    );
    // The shipped settings' zone, Istanbul (the customer has none of their own).
    let local = at
        .parse::<DateTime<Utc>>()
        .unwrap()
        .with_timezone(&chrono_tz::Europe::Istanbul)
        .to_rfc3339();
    assert_eq!(
        **row,
        json!({"action": "run.refused", "at": at, "customer": "c1", "local": local,
               "reason": "too_many_runs", "run": run, "workflow": "shipment-updates"})
    );
}

/// `nudge simulate` on a store with an unreadable state: that customer's line is rejected
/// (exit 1) with a notice naming the line, the customer and the problem; the others run.
#[test]
fn simulate_reports_an_unreadable_state_and_goes_on() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    store_state(&s, "c1", b"[]", "2026-03-09T06:00:00Z");
    let events = [
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
            "2026-03-02T07:01:00Z",
            "c2",
            customer("B"),
        ),
    ];
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(s.events_file(), text).unwrap();
    let (w, e, db) = (s.workflows_dir(), s.events_file(), s.db());
    let args = [
        "simulate",
        "--workflows",
        w.to_str().unwrap(),
        "--events",
        e.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--until",
        "2026-03-03T00:00:00Z",
    ];
    let (code, out, err) = crate::helpers::nudge(s.workflows_dir().as_path(), &args, &[]);
    assert_eq!(code, 1, "{err}");
    let row = |l: &str| {
        l.split_whitespace()
            .collect::<Vec<_>>()
            .windows(3)
            .any(|w| w == ["c2", "welcome", "hello"])
    };
    assert!(out.lines().any(row), "{out}");
    // The detail is serde's (it counts the state's fields, which grow): the line's shape is ours.
    let notice = format!(
        "{}:1: rejected: stored state of customer c1 is unreadable: invalid length 0, expected \
         struct CustomerState with ",
        e.display()
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with(&notice) && l.ends_with("(kept as a dead letter)")),
        "{err}"
    );
    assert!(
        out.contains("2 events applied") || out.contains("1 event applied"),
        "{out}"
    );
}
