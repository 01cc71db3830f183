//! What the engine decided: [`Action`]s and their kinds, why runs end ([`EndReason`]) and
//! emails are skipped ([`SkipReason`]), and the webhook calls it asks for ([`WebhookCall`]).
//!
//! These are the engine's output vocabulary, shared by the runner (which carries out the
//! effects), timelines and summaries; nothing here decides anything.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

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
