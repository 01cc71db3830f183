//! Timeline rows: the JSON lines `nudge simulate --format json` prints for what the engine
//! decided, and `nudge explain --format json` prints for what a customer's journal kept. One
//! [`Row`] type for both, so that a customer's `email.*` and `run.*` rows are the same bytes
//! whichever command printed them.
//!
//! Times are RFC 3339 with whole seconds: `at` (and `until`) in UTC, `local` with the
//! customer's offset. Fields are in name order, as in every JSON object Nudge writes, and
//! absent when they do not apply.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::{Action, ActionKind};

/// One timeline row. `simulate` fills the fields of its actions; `explain` adds the kinds only
/// the journal has (`event.received`, `condition.checked`, `split.chosen`, `wait.started`,
/// `journal.truncated`) and the reading of a skip's rule (`rule.checked`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Row {
    /// What happened: `run.started`, `email.sent`, `event.received`, ...
    pub action: String,
    /// When, in UTC.
    pub at: String,
    /// `split.chosen`: the branch (its 1-based number, or `holdout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `profile.updated`: the attributes after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Map<String, Value>>,
    /// `condition.checked`: the condition as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The customer.
    pub customer: String,
    /// `journal.truncated`: how many entries of the commit were not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// `wait.started` of a `wait_for`: the awaited event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `event.received`: the event's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `event.received`: the event's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// `at` in the customer's zone, with its offset.
    pub local: String,
    /// `webhook.called`: `POST`, `PUT` or `PATCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `condition.checked`, `rule.checked`: the values read, by path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<Map<String, Value>>,
    /// Why (a run's end or refusal, a skip's rule, a delivery's failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `condition.checked`: what the condition came to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<bool>,
    /// The run (absent on rows about no run: `event.received`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The step, for step-level rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// An email's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// An email's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// An email's recipient address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Until when (a deferral, a wait, a retry), in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `webhook.called`: where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The workflow (absent on rows about no workflow: `event.received`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

impl Row {
    /// A row at `at` (local time in `zone`) for `customer`, of `action`; the rest empty.
    pub fn new(action: &str, at: DateTime<Utc>, zone: Tz, customer: &str) -> Row {
        Row {
            action: action.to_owned(),
            at: ts(at),
            local: local(at, zone),
            customer: customer.to_owned(),
            ..Row::default()
        }
    }

    /// The row of an engine action, local time in `zone`. An email's row is `email.sent`
    /// with its recipient, subject and tags: whoever delivered it sets the action and reason
    /// of what became of it.
    pub fn of_action(a: &Action, zone: Tz) -> Row {
        let mut row = Row::new(a.kind.name(), a.at, zone, &a.customer);
        row.run = Some(a.run.clone());
        row.step = a.step.clone();
        row.workflow = Some(a.workflow.clone());
        match &a.kind {
            ActionKind::RunStarted => {}
            ActionKind::RunRefused { reason } => row.reason = Some(reason.as_str().to_owned()),
            ActionKind::RunEnded { reason } => row.reason = Some(reason.as_str().to_owned()),
            ActionKind::EmailSent(email) => {
                row.to = Some(email.to.address.clone());
                row.subject = Some(email.subject.clone());
                row.tags = Some(email.tags.clone());
            }
            ActionKind::EmailSkipped { reason } => row.reason = Some(reason.as_str().to_owned()),
            ActionKind::EmailDeferred { until } => row.until = Some(ts(*until)),
            ActionKind::ProfileUpdated { changes } => row.changes = Some(changes.clone()),
            ActionKind::WebhookCalled(call) => {
                row.url = Some(call.url.clone());
                row.method = Some(call.method.to_owned());
            }
        }
        row
    }

    /// The row as one line of JSON.
    pub fn json(&self) -> String {
        // A struct of strings, numbers, booleans and JSON maps always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A time as rows show it: RFC 3339 UTC, whole seconds (`2026-03-03T10:00:00Z`).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time in `zone` as rows show it: RFC 3339 with the zone's offset, whole seconds.
pub fn local(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_their_fields_in_name_order_and_leave_out_what_does_not_apply() {
        let at = DateTime::from_timestamp(1_772_532_000, 0).unwrap();
        let mut row = Row::new("email.skipped", at, chrono_tz::Europe::Istanbul, "c-1");
        row.run = Some("r-1".into());
        row.workflow = Some("w".into());
        row.reason = Some("no_consent".into());
        assert_eq!(
            row.json(),
            r#"{"action":"email.skipped","at":"2026-03-03T10:00:00Z","customer":"c-1","local":"2026-03-03T13:00:00+03:00","reason":"no_consent","run":"r-1","workflow":"w"}"#
        );
        let back: Row = serde_json::from_str(&row.json()).unwrap();
        assert_eq!(back, row);
    }
}
