//! Scenario tests: workflows and events in, timeline out, through one helper (`Scenario`) that
//! runs the real pipeline: workflow loading, the engine, the runner, the SQLite store and the
//! simulate loop with its virtual clock.
//!
//! The store's time zone is Europe/Istanbul (UTC+3, no daylight saving) unless a scenario
//! says otherwise, so 09:00 local is 06:00Z.

use std::path::{Path, PathBuf};

use nudge_core::engine::{Action, ActionKind, Engine};
use nudge_core::links::Signer;
use nudge_core::runner::{DeliveryOutcome, Runner};
use nudge_local::outbox::OutboxMailer;
use nudge_local::sqlite::SqliteStore;
use nudge_local::{LocalMailer, RecordingMailer};
use serde_json::{Value, json};

mod counted;
mod edits;
mod entry;
mod events;
mod keys;
mod limits;
mod sending_rules;
mod steps;
mod time;
mod waits;

/// The store's settings: Istanbul time, a 09:00-21:00 send window, one marketing email per
/// 16 hours.
pub const SETTINGS: &str = r#"
store: { name: "Test Shop", url: "https://shop.example.com", postal_address: "1 Test Street, Testville" }
from: "Test Shop <hello@shop.example.com>"
timezone: Europe/Istanbul
send_window: { start: "09:00", end: "21:00" }
frequency_cap: { max: 1, per: 16h }
unsubscribe_url: "https://shop.example.com/unsubscribe"
"#;

/// The email template `t.mjml`; `b.mjml` is the same without the order id.
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

    /// Workflows as in [`Scenario::new`], with `settings` as `settings.yaml`.
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

    /// The workflows folder.
    pub fn workflows_dir(&self) -> PathBuf {
        self.dir.path().join("workflows")
    }

    /// The SQLite store file every run of this scenario uses.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    /// Runs the events (JSON values, one event each) through `simulate` on the store in
    /// `self.db()` (so a later call continues), until `until`; returns the timeline.
    pub fn run(&self, events: &[Value], until: &str) -> Vec<String> {
        self.run_with_outbox(events, until, None)
    }

    /// [`Scenario::run`], writing each email sent to `outbox` when given.
    pub fn run_with_outbox(
        &self,
        events: &[Value],
        until: &str,
        outbox: Option<&Path>,
    ) -> Vec<String> {
        self.run_reporting(events, until, outbox).rows
    }

    /// [`Scenario::run_with_outbox`], with the notices and the summary.
    pub fn run_reporting(&self, events: &[Value], until: &str, outbox: Option<&Path>) -> Report {
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
        let mailer = match outbox {
            Some(d) => LocalMailer::Outbox(OutboxMailer::new(d).unwrap()),
            None => LocalMailer::Record(RecordingMailer),
        };
        let runner = Runner::new(&engine, store, Some(&mailer)).deliver_later();
        let file = self.events_file();
        let text: String = events.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(&file, text).unwrap();
        let until = chrono::DateTime::parse_from_rfc3339(until)
            .unwrap()
            .with_timezone(&chrono::Utc);
        let (mut rows, mut notices) = (Vec::new(), Vec::new());
        let options = nudge_local::simulate::Options {
            until: Some(until),
            ..Default::default()
        };
        let summary = nudge_local::simulate::simulate(
            nudge_local::simulate::Runners::Shared(&runner),
            &file,
            &options,
            |a, d| rows.push(delivered_row(a, d)),
            |n| notices.push(n),
            |_, _| {},
        )
        .unwrap();
        Report {
            rows,
            notices,
            summary,
        }
    }

    /// The events file every run of this scenario writes.
    pub fn events_file(&self) -> PathBuf {
        self.dir.path().join("events.jsonl")
    }
}

/// What a run of a scenario reported.
pub struct Report {
    /// The timeline (see [`row`]).
    pub rows: Vec<String>,
    /// The notices, in order.
    pub notices: Vec<nudge_local::simulate::Notice>,
    /// The summary.
    pub summary: nudge_local::simulate::Summary,
}

/// A timeline row: `at customer workflow/step action detail`.
pub fn row(a: &Action) -> String {
    let detail = match &a.kind {
        ActionKind::RunStarted => String::new(),
        ActionKind::RunRefused { reason } => reason.as_str().to_owned(),
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

/// [`row`], for an email that was not delivered with what became of it instead of
/// `email.sent`: `email.failed` or `email.pending`.
pub fn delivered_row(a: &Action, delivery: Option<&DeliveryOutcome>) -> String {
    let row = row(a);
    let instead = match (&a.kind, delivery) {
        (ActionKind::EmailSent(_), Some(DeliveryOutcome::Sent { .. })) => return row,
        (ActionKind::EmailSent(_), Some(DeliveryOutcome::Failed { .. })) => "email.failed",
        (ActionKind::EmailSent(_), _) => "email.pending",
        _ => return row,
    };
    row.replacen(" email.sent ", &format!(" {instead} "), 1)
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

/// Whether a timeline row contains `needle`.
fn has(rows: &[String], needle: &str) -> bool {
    rows.iter().any(|r| r.contains(needle))
}

/// How many timeline rows contain `needle`.
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

/// A win-back: 90 days after an order, unless another order comes first.
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

/// A shipment follow-up per order: shipped, then delivered or late after 14 days.
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

/// A consenting customer's event detail with order `id`.
fn order(id: &str) -> Value {
    let mut c = customer("A");
    c["order"] = json!({"id": id, "total": 50});
    c
}

/// A birthday email at 09:00 local, once a year.
const BIRTHDAY: &str = r#"
category: marketing
trigger: { date: customer.birthday, at: "09:00" }
entry: { every: 365d }
steps:
  - id: gift
    send_email: { template: b.mjml, subject: "Happy birthday {{ customer.first_name }}" }
"#;
