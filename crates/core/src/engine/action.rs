//! What the engine decided: [`Action`]s and their kinds, why runs end ([`EndReason`]) and
//! emails are skipped ([`SkipReason`]), and the webhook calls it asks for ([`WebhookCall`]).
//!
//! These are the engine's output vocabulary, shared by the runner (which carries out the
//! effects), timelines and summaries; nothing here decides anything. [`Warning`]s are the
//! operator's: the runner logs them, timelines never print them as rows.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Digest;

use super::Email;

/// Something the engine decided, at a moment, for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The customer.
    pub customer: String,
    /// The workflow.
    pub workflow: String,
    /// The run.
    pub run: String,
    /// The step, for step-level actions.
    pub step: Option<String>,
    /// The customer's time zone when it happened (the profile's `timezone` when it is a valid
    /// IANA name, else the store's): timelines show the customer's local time with it.
    pub zone: Tz,
    /// What happened.
    pub kind: ActionKind,
}

/// The kinds of [`Action`]. `EmailSent` and `WebhookCalled` are effects the runner carries out;
/// the others are records.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// A run began.
    RunStarted,
    /// A trigger matched but no run started: the customer is at a limit. The action's `run`
    /// is the id the run would have had. The event itself was applied (profile, goals, waits).
    RunRefused {
        /// Which limit.
        reason: RefuseReason,
    },
    /// A run ended.
    RunEnded {
        /// Why.
        reason: EndReason,
    },
    /// Send this email.
    EmailSent(Box<Email>),
    /// An email was not sent.
    EmailSkipped {
        /// Which sending rule stopped it.
        reason: SkipReason,
    },
    /// An email is held for the send window.
    EmailDeferred {
        /// The window's next opening, when the rules are checked again.
        until: DateTime<Utc>,
    },
    /// `update_profile` changed attributes.
    ProfileUpdated {
        /// The attributes after the change (removed tags show in the new `tags`).
        changes: Map<String, Value>,
    },
    /// Call this webhook.
    WebhookCalled(Box<WebhookCall>),
}

impl ActionKind {
    /// The action's name in timelines (`run.started`, `email.sent`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::RunStarted => "run.started",
            ActionKind::RunRefused { .. } => "run.refused",
            ActionKind::RunEnded { .. } => "run.ended",
            ActionKind::EmailSent(_) => "email.sent",
            ActionKind::EmailSkipped { .. } => "email.skipped",
            ActionKind::EmailDeferred { .. } => "email.deferred",
            ActionKind::ProfileUpdated { .. } => "profile.updated",
            ActionKind::WebhookCalled(_) => "webhook.called",
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// It ran out of steps.
    Completed,
    /// An `exit_when` goal matched.
    Goal,
    /// A new trigger under `entry: restart`.
    Restarted,
    /// An `exit` step.
    Exited,
    /// Its step was removed by an edit.
    StepRemoved,
    /// Its workflow was disabled.
    WorkflowDisabled,
    /// Its workflow was deleted.
    WorkflowRemoved,
}

/// Why a run was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefuseReason {
    /// The customer already has [`MAX_ACTIVE_RUNS`](super::MAX_ACTIVE_RUNS) active runs.
    TooManyRuns,
}

impl RefuseReason {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::TooManyRuns => "too_many_runs",
        }
    }
}

/// Why an email was skipped (the sending rules, in their order, and rendering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The address is missing or not an address.
    InvalidAddress,
    /// A hard bounce or complaint.
    Suppressed,
    /// Marketing without `accepts_marketing: true`.
    NoConsent,
    /// Marketing after a recorded unsubscribe.
    Unsubscribed,
    /// Marketing over the frequency cap.
    FrequencyCap,
    /// The template failed to render.
    RenderError,
}

impl EndReason {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Goal => "goal",
            EndReason::Restarted => "restarted",
            EndReason::Exited => "exited",
            EndReason::StepRemoved => "step_removed",
            EndReason::WorkflowDisabled => "workflow_disabled",
            EndReason::WorkflowRemoved => "workflow_removed",
        }
    }
}

impl SkipReason {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::InvalidAddress => "invalid_address",
            SkipReason::Suppressed => "suppressed",
            SkipReason::NoConsent => "no_consent",
            SkipReason::Unsubscribed => "unsubscribed",
            SkipReason::FrequencyCap => "frequency_cap",
            SkipReason::RenderError => "render_error",
        }
    }
}

/// A webhook the runner must call.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookCall {
    /// `<run>.<step>`: sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    /// Where.
    pub url: String,
    /// `POST`, `PUT` or `PATCH`.
    pub method: &'static str,
    /// The rendered body.
    pub body: Value,
    /// Name of the stored secret that signs the body.
    pub secret: Option<String>,
}

/// Something the engine noticed while deciding that the operator should hear of (a template
/// that failed to render, a run refused at a limit): data in the [`Outcome`](super::Outcome),
/// which the runner logs once the decision is committed, with the engine's `now` (the virtual
/// time under `simulate`). Never a timeline row.
///
/// Never carries customer data: the customer is named by [`customer_ref`], and `message` says
/// what went wrong without quoting values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// When (the engine's `now`).
    pub at: DateTime<Utc>,
    /// The workflow.
    pub workflow: String,
    /// The step, when the warning is about one.
    pub step: Option<String>,
    /// The template or value whose rendering failed: a file under `templates/`, or the step's
    /// `subject`, `preheader`, `set.<attribute>` (an `update_profile` value) or `body` (a
    /// webhook body string).
    pub template: Option<String>,
    /// The template's line, when known.
    pub line: Option<usize>,
    /// The customer, as [`customer_ref`] shows them.
    pub customer_ref: String,
    /// What happened (no customer data).
    pub message: String,
}

impl Warning {
    /// `template` and `line` set (a render failure's place).
    pub fn in_template(mut self, template: impl Into<String>, line: Option<usize>) -> Self {
        self.template = Some(template.into());
        self.line = line;
        self
    }

    /// `template:line`, `template`, or `-` without a template: how logs show the place.
    pub fn place(&self) -> String {
        match (&self.template, self.line) {
            (Some(t), Some(line)) => format!("{t}:{line}"),
            (Some(t), None) => t.clone(),
            (None, _) => "-".to_owned(),
        }
    }
}

/// A customer id as logs and file names may show it: the id itself, unless it could hold an
/// address. A `guest:` id (a checkout without an account, named by its address) becomes
/// `guest:` and a short hash of the id; any other id with an `@` becomes `id:` and the hash.
/// The hash is stable, so one customer's lines can still be found together.
pub fn customer_ref(id: &str) -> std::borrow::Cow<'_, str> {
    let prefix = if id.starts_with("guest:") {
        "guest:"
    } else if id.contains('@') {
        "id:"
    } else {
        return std::borrow::Cow::Borrowed(id);
    };
    let digest = sha2::Sha256::digest(id.as_bytes());
    std::borrow::Cow::Owned(format!("{prefix}{}", hex::encode(&digest[..5])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_refs_never_show_an_address() {
        assert_eq!(customer_ref("c-1001"), "c-1001");
        let guest = customer_ref("guest:ayse@example.com");
        assert!(guest.starts_with("guest:"), "{guest}");
        assert_eq!(guest.len(), "guest:".len() + 10, "{guest}");
        assert!(!guest.contains('@') && !guest.contains("ayse"), "{guest}");
        assert_eq!(guest, customer_ref("guest:ayse@example.com"));
        assert_ne!(guest, customer_ref("guest:emre@example.com"));
        let other = customer_ref("ayse@example.com");
        assert!(other.starts_with("id:") && !other.contains('@'), "{other}");
        // A guest id without an address is hashed too: it is one by name.
        assert!(customer_ref("guest:12345").starts_with("guest:"));
    }
}
