//! One customer's state: the unit of consistency (one SQLite row, one DynamoDB item).
//!
//! The engine reads and returns it whole; the store keeps it as an opaque JSON document with a
//! version. Everything cross-run rules need is here: the profile, active runs, entry history
//! (`once`, `every`), recent marketing sends (the frequency cap) and armed date triggers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything Nudge knows about one customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerState {
    /// The customer's id in the store.
    pub id: String,
    /// Profile attributes merged from events and `update_profile` steps (shared with the
    /// template scopes that read it; `Arc::make_mut` to change it).
    #[serde(default)]
    pub profile: Arc<Map<String, Value>>,
    /// Set by a recorded unsubscribe (the one-click link or `customer.unsubscribed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribed_at: Option<DateTime<Utc>>,
    /// Set by a hard bounce or a complaint: no mail of any kind goes out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
    /// Active runs; a run leaves this list when it ends.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// Starts of `once` and `every` workflows, per workflow and key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryRecord>,
    /// Marketing emails sent within the longest cap window, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_sends: Vec<DateTime<Utc>>,
    /// Armed date triggers, one per date-triggered workflow whose attribute the profile has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<DateArm>,
}

/// Why a customer receives no mail at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// A hard bounce: the address does not exist.
    HardBounce,
    /// The customer marked mail as spam.
    Complaint,
}

/// One run of a workflow for this customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Stable id, derived from what started the run (so a retried start gets the same id).
    pub id: String,
    /// The workflow's id.
    pub workflow: String,
    /// The run key (`key:` of the workflow, evaluated on the trigger event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// The trigger event's `detail`, kept when a step of the workflow reads `event` (`None`
    /// for date triggers): `event` in templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Arc<Map<String, Value>>>,
    /// The step the run is at, by id (never by position: workflows are edited).
    pub step: String,
    /// What the run is doing at that step.
    pub phase: Phase,
    /// The outcome of the last `wait_for` (`waited.matched`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited: Option<bool>,
    /// Steps whose effect happened (email, webhook, profile update): never repeated, even if
    /// an edit moves them after the run's position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<String>,
}

/// Where a run stands at its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// In a `wait`; on waking, go on to the next step.
    Waiting {
        /// When the wait ends.
        until: DateTime<Utc>,
    },
    /// In a `wait_for`; a matching event or the timeout moves on.
    WaitingFor {
        /// The timeout.
        until: DateTime<Utc>,
    },
    /// A marketing email held for the send window; on waking, the step is tried again.
    Deferred {
        /// The window's next opening.
        until: DateTime<Utc>,
    },
}

impl Phase {
    /// When the run must be woken.
    pub fn until(self) -> DateTime<Utc> {
        match self {
            Phase::Waiting { until } | Phase::WaitingFor { until } | Phase::Deferred { until } => {
                until
            }
        }
    }
}

/// Past starts of a workflow (and key) for `once` and `every`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// The workflow's id.
    pub workflow: String,
    /// The run key, if the workflow has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The last start.
    pub last_started_at: DateTime<Utc>,
}

/// An armed date trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateArm {
    /// The workflow's id.
    pub workflow: String,
    /// The attribute's value when armed; a change re-arms.
    pub value: String,
    /// The trigger's settings and the customer's zone when armed; a change re-arms.
    pub signature: String,
    /// The next firing.
    pub next_fire: DateTime<Utc>,
}

impl CustomerState {
    /// A customer Nudge has not seen before.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// When the engine must next be woken for this customer: the earliest wait, timeout,
    /// deferral or date trigger.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        let runs = self.runs.iter().map(|r| r.phase.until());
        let dates = self.dates.iter().map(|d| d.next_fire);
        runs.chain(dates).min()
    }

    /// The profile attribute as text, if it is a string.
    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.profile.get(name).and_then(Value::as_str)
    }
}
