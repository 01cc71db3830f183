//! The journal: what happened to one customer, kept beside their state so that `nudge explain`
//! can tell their story and `nudge report` can count, from any store.
//!
//! Each commit of a customer appends the entries of the input it applied (the event received,
//! runs started and ended, emails sent, skipped or deferred with the rule that decided, the
//! conditions read, the waits begun) in the same atomic write as the state, so the journal
//! never says something happened that the state does not hold, or the other way round.
//!
//! Bounded per customer: a store keeps the entries of the customer's last
//! [`JOURNAL_COMMITS`] commits (and, on DynamoDB, none older than [`JOURNAL_TTL_DAYS`]).
//!
//! No more personal data than the state: an entry holds ids, step ids, reasons, times, the
//! rendered subject and the values a condition read (all of which the state or the send log
//! holds). It holds no address: `explain` takes the recipient of an email from its send-log
//! entry, which erasure removes with the rest.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How many of a customer's most recent commits a store keeps the journal entries of.
pub const JOURNAL_COMMITS: u64 = 100;

/// On DynamoDB, journal items expire this many days after they were written (TTL), whatever
/// the count: a customer's story covers at most about 13 months.
pub const JOURNAL_TTL_DAYS: i64 = 400;

/// One thing that happened to a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When it happened (the engine's `now`; millisecond precision).
    pub at: DateTime<Utc>,
    /// The workflow, for everything but [`Happened::EventReceived`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The run, for everything but [`Happened::EventReceived`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The step, for step-level entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub what: Happened,
}

/// What a [`JournalEntry`] records. Serialized with an `action` tag named as `simulate`'s rows
/// (`run.started`, `email.sent`, ...); the kinds only the journal has are named in the same
/// style (`event.received`, `condition.checked`, `split.chosen`, `wait.started`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action")]
pub enum Happened {
    /// The input was a store event.
    #[serde(rename = "event.received")]
    EventReceived {
        /// Its canonical type (`order.placed`).
        event_type: String,
        /// Its id (the idempotency key).
        event_id: String,
    },
    /// A run began.
    #[serde(rename = "run.started")]
    RunStarted,
    /// A trigger matched but no run started (`reason` as `simulate` prints it).
    #[serde(rename = "run.refused")]
    RunRefused {
        /// Why (`too_many_runs`).
        reason: String,
    },
    /// A run ended (`reason`: `completed`, `goal`, `step_removed`, ...).
    #[serde(rename = "run.ended")]
    RunEnded {
        /// Why.
        reason: String,
    },
    /// An email was decided and logged for delivery: what became of it is in the send log
    /// under `key`.
    #[serde(rename = "email.sent")]
    EmailSent {
        /// The send log's idempotency key (`<run>.<step>`).
        key: String,
        /// The rendered subject.
        subject: String,
        /// The step's tags.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
    },
    /// An email was not sent: the sending rule that decided (`no_consent`, `suppressed`,
    /// `frequency_cap`, ...).
    #[serde(rename = "email.skipped")]
    EmailSkipped {
        /// The rule, as `simulate` prints it.
        reason: String,
        /// What the rule read (e.g. `{"accepts_marketing": false}`), when the engine says.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        read: Map<String, Value>,
    },
    /// An email is held for the send window.
    #[serde(rename = "email.deferred")]
    EmailDeferred {
        /// The window's next opening.
        until: DateTime<Utc>,
    },
    /// `update_profile` changed attributes.
    #[serde(rename = "profile.updated")]
    ProfileUpdated {
        /// The attributes after the change.
        changes: Map<String, Value>,
    },
    /// A webhook call was decided and logged (its outcome is in the send log under `key`).
    #[serde(rename = "webhook.called")]
    WebhookCalled {
        /// The send log's idempotency key.
        key: String,
        /// `POST`, `PUT` or `PATCH`.
        method: String,
        /// Where.
        url: String,
    },
    /// An `if` step's condition was evaluated.
    #[serde(rename = "condition.checked")]
    ConditionChecked {
        /// The condition as written.
        condition: String,
        /// What it came to.
        result: bool,
        /// The values it read, by the path it named (`customer.orders_count`).
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        read: Map<String, Value>,
    },
    /// An `ab_split` step put the run in a branch.
    #[serde(rename = "split.chosen")]
    SplitChosen {
        /// The branch's name, or `holdout`.
        branch: String,
    },
    /// A `wait` or `wait_for` step began: the run sleeps until `until` (a `wait_for`'s
    /// timeout) or the event `event`.
    #[serde(rename = "wait.started")]
    WaitStarted {
        /// When it ends (or times out).
        until: DateTime<Utc>,
        /// A `wait_for`'s event type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
}

impl Happened {
    /// The action name (the serialized tag): `run.started`, `email.sent`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Happened::EventReceived { .. } => "event.received",
            Happened::RunStarted => "run.started",
            Happened::RunRefused { .. } => "run.refused",
            Happened::RunEnded { .. } => "run.ended",
            Happened::EmailSent { .. } => "email.sent",
            Happened::EmailSkipped { .. } => "email.skipped",
            Happened::EmailDeferred { .. } => "email.deferred",
            Happened::ProfileUpdated { .. } => "profile.updated",
            Happened::WebhookCalled { .. } => "webhook.called",
            Happened::ConditionChecked { .. } => "condition.checked",
            Happened::SplitChosen { .. } => "split.chosen",
            Happened::WaitStarted { .. } => "wait.started",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_the_action_tag_named_as_simulate_rows() {
        let at = DateTime::from_timestamp_millis(1_772_532_000_123).unwrap();
        let entries = [
            JournalEntry {
                at,
                workflow: None,
                run: None,
                step: None,
                what: Happened::EventReceived {
                    event_type: "order.placed".into(),
                    event_id: "e-1".into(),
                },
            },
            JournalEntry {
                at,
                workflow: Some("welcome-series".into()),
                run: Some("r-1".into()),
                step: Some("hello".into()),
                what: Happened::EmailSkipped {
                    reason: "no_consent".into(),
                    read: Map::from_iter([("accepts_marketing".into(), Value::Bool(false))]),
                },
            },
        ];
        for entry in entries {
            let json = serde_json::to_value(&entry).unwrap();
            assert_eq!(json["action"], entry.what.name());
            let back: JournalEntry = serde_json::from_value(json).unwrap();
            assert_eq!(back, entry);
        }
    }
}
