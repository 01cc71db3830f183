//! Scenario tests: workflows and events in, timeline out, through one helper (`Scenario`) that
//! runs the real pipeline: workflow loading, the engine, the runner, the SQLite store and the
//! simulate loop with its virtual clock.
//!
//! The store's time zone is Europe/Istanbul (UTC+3, no daylight saving) unless a scenario
//! says otherwise, so 09:00 local is 06:00Z.

use std::path::{Path, PathBuf};

use nudge_core::engine::{Action, ActionKind, Engine};
use nudge_core::links::Signer;
use nudge_core::runner::Runner;
use nudge_local::outbox::OutboxMailer;
use nudge_local::sqlite::SqliteStore;
use serde_json::{Value, json};

pub const SETTINGS: &str = r#"
store: { name: "Test Shop", url: "https://shop.example.com", postal_address: "1 Test Street, Testville" }
from: "Test Shop <hello@shop.example.com>"
timezone: Europe/Istanbul
send_window: { start: "09:00", end: "21:00" }
frequency_cap: { max: 1, per: 16h }
unsubscribe_url: "https://shop.example.com/unsubscribe"
"#;

const TEMPLATE: &str = r#"<mjml><mj-body><mj-section><mj-column>
<mj-text>Hi {{ customer.first_name | default('there') }} {{ event.order.id }}</mj-text>
<mj-text>{{ store.postal_address }} <a href="{{ links.unsubscribe }}">Unsubscribe</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"#;

/// A workflows folder in a temporary directory.
pub struct Scenario {
    dir: tempfile::TempDir,
}

impl Scenario {
    /// Workflows given as (id, yaml without the `id:` line); default settings and templates.
    pub fn new(workflows: &[(&str, &str)]) -> Self {
        Self::with_settings(SETTINGS, workflows)
    }

    pub fn with_settings(settings: &str, workflows: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let wf = dir.path().join("workflows");
        std::fs::create_dir_all(wf.join("templates")).unwrap();
        std::fs::write(wf.join("settings.yaml"), settings).unwrap();
        std::fs::write(wf.join("templates/t.mjml"), TEMPLATE).unwrap();
        std::fs::write(
            wf.join("templates/b.mjml"),
            TEMPLATE.replace(" {{ event.order.id }}", ""),
        )
        .unwrap();
        std::fs::write(wf.join("templates/broken.html"), "<p>{{ 1 / 0 }}</p>").unwrap();
        let s = Self { dir };
        s.set_workflows(workflows);
        s
    }

    /// Replaces the workflow files (an edit between two runs).
    pub fn set_workflows(&self, workflows: &[(&str, &str)]) {
        let wf = self.workflows_dir();
        for entry in std::fs::read_dir(&wf).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().unwrap() != "settings.yaml"
            {
                std::fs::remove_file(p).unwrap();
            }
        }
        for (id, body) in workflows {
            std::fs::write(wf.join(format!("{id}.yaml")), format!("id: {id}\n{body}")).unwrap();
        }
    }

    pub fn workflows_dir(&self) -> PathBuf {
        self.dir.path().join("workflows")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    /// Runs the events (JSON values, one event each) through `simulate` on the store in
    /// `self.db()` (so a later call continues), until `until`; returns the timeline.
    pub fn run(&self, events: &[Value], until: &str) -> Vec<String> {
        self.run_with_outbox(events, until, None)
    }

    pub fn run_with_outbox(
        &self,
        events: &[Value],
        until: &str,
        outbox: Option<&Path>,
    ) -> Vec<String> {
        let report = nudge_core::workflow::load(&self.workflows_dir()).unwrap();
        let errors: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == nudge_core::diagnostic::Severity::Error)
            .map(ToString::to_string)
            .collect();
        assert!(
            errors.is_empty(),
            "scenario workflows do not validate:\n{}",
            errors.join("\n")
        );
        let project = report.project.unwrap();
        let signer = Signer::new(b"scenario key");
        let engine = Engine::new(&project, &signer);
        let store = SqliteStore::open(&self.db()).unwrap();
        let mailer = outbox.map(|d| OutboxMailer::new(d).unwrap());
        let runner = Runner::new(&engine, store, mailer);
        let file = self.dir.path().join("events.jsonl");
        let text: String = events.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let until = chrono::DateTime::parse_from_rfc3339(until)
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut rows = Vec::new();
        let options = nudge_local::simulate::Options {
            until: Some(until),
            ..Default::default()
        };
        nudge_local::simulate::simulate(
            nudge_local::simulate::Runners::Shared(&runner),
            &file,
            &options,
            |a| rows.push(row(a)),
            |_| {},
            |_, _| {},
        )
        .unwrap();
        rows
    }
}

/// A timeline row: `at customer workflow/step action detail`.
pub fn row(a: &Action) -> String {
    let detail = match &a.kind {
        ActionKind::RunStarted => String::new(),
        ActionKind::RunEnded { reason } => reason.as_str().to_owned(),
        ActionKind::EmailSent(e) => e.subject.clone(),
        ActionKind::EmailSkipped { reason } => reason.as_str().to_owned(),
        ActionKind::EmailDeferred { until } => until.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ActionKind::ProfileUpdated { changes } => Value::Object(changes.clone()).to_string(),
        ActionKind::WebhookCalled(c) => format!("{} {} {}", c.method, c.url, c.body),
    };
    let step = a.step.as_deref().unwrap_or("-");
    format!(
        "{} {} {}/{} {} {}",
        a.at.format("%Y-%m-%dT%H:%M:%SZ"),
        a.customer,
        a.workflow,
        step,
        a.kind.name(),
        detail
    )
    .trim_end()
    .to_owned()
}

/// An event: `customer` is merged into `detail.customer` with the id.
pub fn ev(id: &str, ty: &str, time: &str, customer: &str, detail: Value) -> Value {
    let mut detail = match detail {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => panic!("detail must be an object: {other}"),
    };
    let mut c = detail
        .remove("customer")
        .and_then(|c| c.as_object().cloned())
        .unwrap_or_default();
    c.insert("id".into(), json!(customer));
    detail.insert("customer".into(), Value::Object(c));
    json!({"version": "0", "id": id, "detail-type": ty, "source": "store", "account": "123456789012",
           "time": time, "region": "eu-west-1", "resources": [], "detail": detail})
}

/// A consenting customer with a valid address.
pub fn customer(first: &str) -> Value {
    let local: String = first.chars().filter(char::is_ascii_alphanumeric).collect();
    json!({"customer": {"email": format!("{}@example.com", local.to_lowercase()), "first_name": first, "accepts_marketing": true}})
}

fn has(rows: &[String], needle: &str) -> bool {
    rows.iter().any(|r| r.contains(needle))
}

fn count(rows: &[String], needle: &str) -> usize {
    rows.iter().filter(|r| r.contains(needle)).count()
}

/// A welcome series: an email, a two-day wait, another email.
pub const WELCOME: &str = r#"
category: marketing
trigger: { event: customer.created }
entry: once
steps:
  - id: hello
    send_email: { template: t.mjml, subject: "Welcome {{ customer.first_name }}" }
  - id: pause
    wait: 2d
  - id: story
    send_email: { template: t.mjml, subject: "Our story" }
"#;

#[test]
fn a_welcome_series_runs_start_to_end() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("Ayşe"),
        )],
        "2026-03-10T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 welcome/- run.started",
            "2026-03-02T07:00:00Z c1 welcome/hello email.sent Welcome Ayşe",
            "2026-03-04T07:00:00Z c1 welcome/story email.sent Our story",
            "2026-03-04T07:00:00Z c1 welcome/- run.ended completed",
        ]
    );
}

#[test]
fn duplicate_event_ids_have_the_effect_of_one() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let e = ev(
        "e1",
        "customer.created",
        "2026-03-02T07:00:00Z",
        "c1",
        customer("Ayşe"),
    );
    let mut other_body = e.clone();
    other_body["detail"]["customer"]["first_name"] = json!("Someone else");
    let rows = s.run(&[e.clone(), e, other_body], "2026-03-03T00:00:00Z");
    assert_eq!(count(&rows, "email.sent"), 1, "{rows:#?}");
    assert_eq!(count(&rows, "run.started"), 1);
    // The first body wins: the duplicate did not rename the customer.
    assert!(has(&rows, "Welcome Ayşe"));
    // And a later run on the same store still knows the id: only the pending wait fires.
    let again = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-05T07:00:00Z",
            "c1",
            customer("Ayşe"),
        )],
        "2026-03-06T00:00:00Z",
    );
    assert_eq!(
        again,
        [
            "2026-03-04T07:00:00Z c1 welcome/story email.sent Our story",
            "2026-03-04T07:00:00Z c1 welcome/- run.ended completed"
        ]
    );
}

#[test]
fn entry_once_starts_a_customer_at_most_once() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[
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
                "2026-03-20T07:00:00Z",
                "c1",
                customer("A"),
            ),
        ],
        "2026-04-01T00:00:00Z",
    );
    assert_eq!(count(&rows, "run.started"), 1, "{rows:#?}");
}

fn policy_workflow(entry: &str) -> String {
    format!(
        r#"
category: transactional
trigger: {{ event: order.placed }}
entry: {entry}
steps:
  - id: thanks
    send_email: {{ template: t.mjml, subject: "Thanks" }}
  - id: pause
    wait: 10d
  - id: follow-up
    send_email: {{ template: t.mjml, subject: "Follow-up" }}
"#
    )
}

fn two_orders() -> Vec<Value> {
    vec![
        ev(
            "o1",
            "order.placed",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        ),
        ev(
            "o2",
            "order.placed",
            "2026-03-05T07:00:00Z",
            "c1",
            customer("A"),
        ),
        ev(
            "o3",
            "order.placed",
            "2026-03-20T07:00:00Z",
            "c1",
            customer("A"),
        ),
    ]
}

#[test]
fn entry_single_ignores_triggers_while_a_run_is_active() {
    let s = Scenario::new(&[("policy", &policy_workflow("single"))]);
    let rows = s.run(&two_orders(), "2026-04-30T00:00:00Z");
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 policy/- run.started",
            "2026-03-02T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-12T07:00:00Z c1 policy/follow-up email.sent Follow-up",
            "2026-03-12T07:00:00Z c1 policy/- run.ended completed",
            "2026-03-20T07:00:00Z c1 policy/- run.started",
            "2026-03-20T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-30T07:00:00Z c1 policy/follow-up email.sent Follow-up",
            "2026-03-30T07:00:00Z c1 policy/- run.ended completed",
        ]
    );
}

#[test]
fn entry_restart_ends_the_active_run_and_starts_afresh() {
    let s = Scenario::new(&[("policy", &policy_workflow("restart"))]);
    let rows = s.run(&two_orders()[..2], "2026-04-30T00:00:00Z");
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 policy/- run.started",
            "2026-03-02T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-05T07:00:00Z c1 policy/- run.ended restarted",
            "2026-03-05T07:00:00Z c1 policy/- run.started",
            "2026-03-05T07:00:00Z c1 policy/thanks email.sent Thanks",
            "2026-03-15T07:00:00Z c1 policy/follow-up email.sent Follow-up",
            "2026-03-15T07:00:00Z c1 policy/- run.ended completed",
        ]
    );
}

#[test]
fn entry_every_allows_one_start_per_period() {
    let wf = r#"
category: transactional
trigger: { event: order.placed }
entry: { every: 7d }
steps:
  - id: thanks
    send_email: { template: t.mjml, subject: "Thanks" }
"#;
    let s = Scenario::new(&[("weekly", wf)]);
    let rows = s.run(
        &[
            ev(
                "o1",
                "order.placed",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "o2",
                "order.placed",
                "2026-03-08T07:00:00Z",
                "c1",
                customer("A"),
            ), // 6 days: no
            ev(
                "o3",
                "order.placed",
                "2026-03-09T07:00:00Z",
                "c1",
                customer("A"),
            ), // 7 days: yes
        ],
        "2026-04-01T00:00:00Z",
    );
    let starts: Vec<&String> = rows.iter().filter(|r| r.contains("run.started")).collect();
    assert_eq!(
        starts,
        [
            "2026-03-02T07:00:00Z c1 weekly/- run.started",
            "2026-03-09T07:00:00Z c1 weekly/- run.started"
        ]
    );
}

const WIN_BACK: &str = r#"
category: marketing
trigger: { event: order.placed }
entry: restart
exit_when:
  - event: order.placed
steps:
  - id: wait-90
    wait: 90d
  - id: miss-you
    send_email: { template: t.mjml, subject: "We miss you" }
"#;

#[test]
fn a_goal_during_a_wait_ends_the_run_and_the_same_event_starts_a_new_one() {
    let s = Scenario::new(&[("win-back", WIN_BACK)]);
    let rows = s.run(
        &[
            ev(
                "o1",
                "order.placed",
                "2026-01-01T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "o2",
                "order.placed",
                "2026-02-01T07:00:00Z",
                "c1",
                customer("A"),
            ),
        ],
        "2026-06-01T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-01-01T07:00:00Z c1 win-back/- run.started",
            "2026-02-01T07:00:00Z c1 win-back/- run.ended goal",
            "2026-02-01T07:00:00Z c1 win-back/- run.started",
            "2026-05-02T07:00:00Z c1 win-back/miss-you email.sent We miss you",
            "2026-05-02T07:00:00Z c1 win-back/- run.ended completed",
        ]
    );
}

const SHIPMENT: &str = r#"
category: transactional
trigger: { event: order.shipped }
key: "event.order.id"
steps:
  - id: shipped
    send_email: { template: t.mjml, subject: "Order {{ event.order.id }} shipped" }
  - id: delivery
    wait_for: { event: order.delivered, timeout: 14d }
  - id: check
    if: "waited.matched"
    then:
      - id: delivered
        send_email: { template: t.mjml, subject: "Order {{ event.order.id }} delivered" }
    else:
      - id: late
        send_email: { template: t.mjml, subject: "Order {{ event.order.id }} still on its way?" }
"#;

fn order(id: &str) -> Value {
    let mut c = customer("A");
    c["order"] = json!({"id": id, "total": 50});
    c
}

#[test]
fn wait_for_matched_and_timed_out_with_keys_per_order() {
    let s = Scenario::new(&[("shipment", SHIPMENT)]);
    let rows = s.run(
        &[
            ev(
                "s1",
                "order.shipped",
                "2026-03-02T07:00:00Z",
                "c1",
                order("o-1"),
            ),
            ev(
                "s2",
                "order.shipped",
                "2026-03-02T08:00:00Z",
                "c1",
                order("o-2"),
            ),
            // Delivery of o-2 only: the o-1 run keeps waiting.
            ev(
                "d2",
                "order.delivered",
                "2026-03-04T10:00:00Z",
                "c1",
                order("o-2"),
            ),
        ],
        "2026-04-01T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 shipment/- run.started",
            "2026-03-02T07:00:00Z c1 shipment/shipped email.sent Order o-1 shipped",
            "2026-03-02T08:00:00Z c1 shipment/- run.started",
            "2026-03-02T08:00:00Z c1 shipment/shipped email.sent Order o-2 shipped",
            "2026-03-04T10:00:00Z c1 shipment/delivered email.sent Order o-2 delivered",
            "2026-03-04T10:00:00Z c1 shipment/- run.ended completed",
            "2026-03-16T07:00:00Z c1 shipment/late email.sent Order o-1 still on its way?",
            "2026-03-16T07:00:00Z c1 shipment/- run.ended completed",
        ]
    );
}

#[test]
fn a_wait_for_whose_timeout_equals_the_event_time_has_timed_out() {
    let s = Scenario::new(&[("shipment", SHIPMENT)]);
    let rows = s.run(
        &[
            ev(
                "s1",
                "order.shipped",
                "2026-03-02T07:00:00Z",
                "c1",
                order("o-1"),
            ),
            ev(
                "d1",
                "order.delivered",
                "2026-03-16T07:00:00Z",
                "c1",
                order("o-1"),
            ),
        ],
        "2026-04-01T00:00:00Z",
    );
    assert!(
        has(&rows, "2026-03-16T07:00:00Z c1 shipment/late email.sent"),
        "{rows:#?}"
    );
    assert!(!has(&rows, "shipment/delivered"), "{rows:#?}");
}

#[test]
fn marketing_mail_outside_the_window_is_deferred_to_its_opening() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    // 23:30 local (20:30Z): deferred to 09:00 local next day (06:00Z).
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T20:30:00Z",
            "c1",
            customer("A"),
        )],
        "2026-03-03T12:00:00Z",
    );
    assert_eq!(
        rows[..3],
        [
            "2026-03-02T20:30:00Z c1 welcome/- run.started",
            "2026-03-02T20:30:00Z c1 welcome/hello email.deferred 2026-03-03T06:00:00Z",
            "2026-03-03T06:00:00Z c1 welcome/hello email.sent Welcome A",
        ]
    );
}

#[test]
fn a_window_that_wraps_midnight() {
    let wf = r#"
category: marketing
trigger: { event: customer.created }
send_window: { start: "22:00", end: "06:00" }
steps:
  - id: night
    send_email: { template: t.mjml, subject: "Night owl" }
"#;
    let s = Scenario::new(&[("night", wf)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T09:00:00Z",
                "c1",
                customer("A"),
            ), // 12:00 local: defer to 22:00
            ev(
                "e2",
                "customer.created",
                "2026-03-02T23:30:00Z",
                "c2",
                customer("B"),
            ), // 02:30 local: inside
            ev(
                "e3",
                "customer.created",
                "2026-03-03T03:00:00Z",
                "c3",
                customer("C"),
            ), // 06:00 local: end is exclusive
        ],
        "2026-03-04T00:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-02T09:00:00Z c1 night/night email.deferred 2026-03-02T19:00:00Z"
        ),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "2026-03-02T19:00:00Z c1 night/night email.sent"),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "2026-03-02T23:30:00Z c2 night/night email.sent"),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            "2026-03-03T03:00:00Z c3 night/night email.deferred 2026-03-03T19:00:00Z"
        ),
        "{rows:#?}"
    );
}

#[test]
fn daylight_saving_days_keep_local_times() {
    let wf = r#"
category: marketing
trigger: { event: customer.created }
steps:
  - id: morning
    wait: { until: "02:30" }
  - id: hello
    send_email: { template: t.mjml, subject: "Morning" }
"#;
    let s = Scenario::new(&[("dst", wf)]);
    let mut berlin = customer("A");
    berlin["customer"]["timezone"] = json!("Europe/Berlin");
    // Saturday 28 March 2026, 12:00 in Berlin. 02:30 on the 29th does not exist (clocks jump
    // 02:00 -> 03:00): the wait ends at 03:00 CEST = 01:00Z. The window opens at 09:00 CEST.
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-28T11:00:00Z",
            "c1",
            berlin,
        )],
        "2026-03-30T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-28T11:00:00Z c1 dst/- run.started",
            "2026-03-29T01:00:00Z c1 dst/hello email.deferred 2026-03-29T07:00:00Z",
            "2026-03-29T07:00:00Z c1 dst/hello email.sent Morning",
            "2026-03-29T07:00:00Z c1 dst/- run.ended completed",
        ]
    );
}

const BIRTHDAY: &str = r#"
category: marketing
trigger: { date: customer.birthday, at: "09:00" }
entry: { every: 365d }
steps:
  - id: gift
    send_email: { template: b.mjml, subject: "Happy birthday {{ customer.first_name }}" }
"#;

#[test]
fn a_29_february_birthday_fires_on_28_february_and_yearly() {
    let s = Scenario::new(&[("birthday", BIRTHDAY)]);
    let mut c = customer("Leap");
    c["customer"]["birthday"] = json!("1992-02-29");
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-06-01T07:00:00Z",
            "c1",
            c,
        )],
        "2028-03-31T00:00:00Z",
    );
    let sent: Vec<&String> = rows.iter().filter(|r| r.contains("email.sent")).collect();
    assert_eq!(
        sent,
        [
            "2027-02-28T06:00:00Z c1 birthday/gift email.sent Happy birthday Leap",
            "2028-02-29T06:00:00Z c1 birthday/gift email.sent Happy birthday Leap",
        ]
    );
}

#[test]
fn a_date_trigger_is_re_armed_when_the_attribute_changes() {
    let s = Scenario::new(&[("birthday", BIRTHDAY)]);
    let mut c = customer("A");
    c["customer"]["birthday"] = json!("1990-07-01");
    let fix = json!({"customer": {"birthday": "1990-05-10"}});
    let rows = s.run(
        &[
            ev("e1", "customer.created", "2026-03-01T07:00:00Z", "c1", c),
            ev("e2", "customer.updated", "2026-04-01T07:00:00Z", "c1", fix),
        ],
        "2026-12-31T00:00:00Z",
    );
    let sent: Vec<&String> = rows.iter().filter(|r| r.contains("email.sent")).collect();
    assert_eq!(
        sent,
        ["2026-05-10T06:00:00Z c1 birthday/gift email.sent Happy birthday A"],
        "{rows:#?}"
    );
}

#[test]
fn the_frequency_cap_is_a_rolling_window_across_marketing_workflows() {
    let other = r#"
category: marketing
trigger: { event: order.placed }
steps:
  - id: promo
    send_email: { template: t.mjml, subject: "Promo" }
"#;
    let s = Scenario::new(&[("welcome", WELCOME), ("promo", other)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            // 2h later: one marketing email in the last 16h already.
            ev(
                "o1",
                "order.placed",
                "2026-03-02T09:00:00Z",
                "c1",
                customer("A"),
            ),
            // Exactly 16h after the welcome: the window (now - 16h, now] no longer holds it.
            ev(
                "o2",
                "order.placed",
                "2026-03-02T23:00:00Z",
                "c1",
                customer("A"),
            ),
        ],
        "2026-03-03T12:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-02T09:00:00Z c1 promo/promo email.skipped frequency_cap"
        ),
        "{rows:#?}"
    );
    // o2 arrives at 02:00 local: deferred to 09:00, then sent (the cap allows it by then).
    assert!(
        has(
            &rows,
            "2026-03-03T06:00:00Z c1 promo/promo email.sent Promo"
        ),
        "{rows:#?}"
    );
}

#[test]
fn transactional_mail_ignores_consent_windows_and_the_cap() {
    let s = Scenario::new(&[("welcome", WELCOME), ("shipment", SHIPMENT)]);
    let mut no_consent = order("o-1");
    no_consent["customer"]["accepts_marketing"] = json!(false);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            // 01:00 local, 12 minutes after a marketing email, no consent: still sent.
            ev(
                "s1",
                "order.shipped",
                "2026-03-02T22:00:00Z",
                "c1",
                no_consent,
            ),
        ],
        "2026-03-03T00:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-02T22:00:00Z c1 shipment/shipped email.sent Order o-1 shipped"
        ),
        "{rows:#?}"
    );
}

#[test]
fn the_sending_rules_skip_with_their_reasons() {
    let s = Scenario::new(&[("welcome", WELCOME), ("shipment", SHIPMENT)]);
    let bad_address = json!({"customer": {"email": "not-an-address", "accepts_marketing": true}});
    let no_consent = json!({"customer": {"email": "b@example.com"}});
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                bad_address,
            ),
            ev(
                "e2",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c2",
                no_consent,
            ),
            ev(
                "b3",
                "email.bounced",
                "2026-03-02T07:00:00Z",
                "c3",
                json!({"customer": {"email": "c@example.com"}, "bounce_type": "hard"}),
            ),
            ev(
                "s3",
                "order.shipped",
                "2026-03-02T08:00:00Z",
                "c3",
                order("o-3"),
            ),
        ],
        "2026-03-02T12:00:00Z",
    );
    assert!(
        has(&rows, "c1 welcome/hello email.skipped invalid_address"),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "c2 welcome/hello email.skipped no_consent"),
        "{rows:#?}"
    );
    // Suppression stops transactional mail too.
    assert!(
        has(&rows, "c3 shipment/shipped email.skipped suppressed"),
        "{rows:#?}"
    );
}

#[test]
fn consent_withdrawn_mid_run_stops_later_marketing_mail() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "u1",
                "customer.unsubscribed",
                "2026-03-03T07:00:00Z",
                "c1",
                json!(null),
            ),
        ],
        "2026-03-10T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 welcome/- run.started",
            "2026-03-02T07:00:00Z c1 welcome/hello email.sent Welcome A",
            "2026-03-04T07:00:00Z c1 welcome/story email.skipped unsubscribed",
            "2026-03-04T07:00:00Z c1 welcome/- run.ended completed",
        ]
    );
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "u1",
                "customer.updated",
                "2026-03-03T07:00:00Z",
                "c1",
                json!({"customer": {"accepts_marketing": false}}),
            ),
        ],
        "2026-03-10T00:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-04T07:00:00Z c1 welcome/story email.skipped no_consent"
        ),
        "{rows:#?}"
    );
}

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

#[test]
fn profiles_merge_absent_fields_keep_and_null_clears() {
    let wf = r#"
category: transactional
trigger: { event: order.placed }
steps:
  - id: hello
    send_email: { template: t.mjml, subject: "{{ customer.first_name | default('nobody') }} {{ customer.city | default('-') }}" }
"#;
    let s = Scenario::new(&[("merge", wf)]);
    let rows = s.run(
        &[
            ev("e1", "customer.created", "2026-03-02T07:00:00Z", "c1", json!({"customer": {"email": "a@example.com", "first_name": "Ayşe", "city": "İstanbul"}})),
            ev("o1", "order.placed", "2026-03-03T07:00:00Z", "c1", json!({})),
            ev("u1", "customer.updated", "2026-03-04T07:00:00Z", "c1", json!({"customer": {"city": null}})),
            ev("o2", "order.placed", "2026-03-05T07:00:00Z", "c1", json!({})),
        ],
        "2026-03-06T00:00:00Z",
    );
    let subjects: Vec<&String> = rows.iter().filter(|r| r.contains("email.sent")).collect();
    assert_eq!(
        subjects,
        [
            "2026-03-03T07:00:00Z c1 merge/hello email.sent Ayşe İstanbul",
            "2026-03-05T07:00:00Z c1 merge/hello email.sent Ayşe -"
        ]
    );
}

#[test]
fn timers_due_before_an_event_fire_first_and_at_their_own_time() {
    let s = Scenario::new(&[("welcome", WELCOME), ("win-back", WIN_BACK)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "o1",
                "order.placed",
                "2026-03-10T07:00:00Z",
                "c2",
                customer("B"),
            ),
        ],
        "2026-03-10T08:00:00Z",
    );
    let story = rows
        .iter()
        .position(|r| r.contains("welcome/story email.sent"))
        .unwrap();
    let order = rows
        .iter()
        .position(|r| r.contains("c2 win-back/- run.started"))
        .unwrap();
    assert!(rows[story].starts_with("2026-03-04T07:00:00Z"));
    assert!(story < order);
}

#[test]
fn the_timeline_is_in_time_order_however_many_timers_are_due() {
    // 300 customers (more than one batch of due timers), each woken repeatedly.
    let s = Scenario::new(&[("welcome", WELCOME), ("birthday", BIRTHDAY)]);
    let events: Vec<Value> = (0..300)
        .map(|i| {
            let mut c = customer("A");
            c["customer"]["birthday"] = json!(format!("1990-{:02}-{:02}", 1 + i % 12, 1 + i % 28));
            ev(
                &format!("e{i}"),
                "customer.created",
                &format!("2026-03-02T{:02}:{:02}:00Z", 6 + i / 60 % 10, i % 60),
                &format!("c{i}"),
                c,
            )
        })
        .collect();
    let rows = s.run(&events, "2027-06-01T00:00:00Z");
    let times: Vec<&str> = rows.iter().map(|r| &r[..20]).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "rows out of time order");
    for i in 0..300 {
        assert!(
            has(&rows, &format!(" c{i} birthday/gift email.sent")),
            "c{i} got no birthday email"
        );
    }
}
