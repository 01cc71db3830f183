//! The counts a run reports at its end ([`Summary`], one [`WorkflowSummary`] per workflow).
//! Kept apart from the loop: they only add up the actions it reports, in its order.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use nudge_core::engine::{Action, ActionKind, EndReason, SkipReason};

/// Counts a marketer reads after a run, per workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkflowSummary {
    /// Runs started.
    pub runs_started: u64,
    /// Runs refused at the customer's active-run limit (`run.refused`).
    pub runs_refused: u64,
    /// Runs ended, by reason.
    pub runs_ended: BTreeMap<EndReason, u64>,
    /// Emails sent, by step.
    pub emails_sent: BTreeMap<String, u64>,
    /// Emails skipped, by reason.
    pub emails_skipped: BTreeMap<SkipReason, u64>,
    /// Emails deferred to a send window (each deferral counts once).
    pub emails_deferred: u64,
    /// Profile updates.
    pub profile_updates: u64,
    /// Webhooks recorded (never called by `simulate`).
    pub webhooks: u64,
}

/// What a simulation did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Event lines read.
    pub lines: usize,
    /// Events applied.
    pub events: usize,
    /// Duplicate event ids ignored.
    pub duplicates: usize,
    /// Lines rejected (kept as dead letters).
    pub rejected: usize,
    /// Timer firings.
    pub wakes: usize,
    /// Where the clock started: the store's clock, or else the first event's time.
    pub from: Option<DateTime<Utc>>,
    /// Where the clock stopped.
    pub until: Option<DateTime<Utc>>,
    /// Per workflow.
    pub workflows: BTreeMap<String, WorkflowSummary>,
    /// The most inputs (events, timer firings, notices) one round reported at once: the
    /// simulation holds a round's results in memory, so this bounds what it holds whatever
    /// the gap between two events. Not a count a marketer reads.
    #[serde(skip)]
    pub largest_round: usize,
}

impl Summary {
    /// Counts one action in its workflow's summary. Looks the workflow and step up before
    /// inserting, so that their ids are copied once per workflow and step, not per action.
    pub(super) fn count(&mut self, action: &Action) {
        if !self.workflows.contains_key(&action.workflow) {
            self.workflows
                .insert(action.workflow.clone(), WorkflowSummary::default());
        }
        let w = self
            .workflows
            .get_mut(&action.workflow)
            .expect("inserted above");
        match &action.kind {
            ActionKind::RunStarted => w.runs_started += 1,
            ActionKind::RunRefused { .. } => w.runs_refused += 1,
            ActionKind::RunEnded { reason } => *w.runs_ended.entry(*reason).or_default() += 1,
            ActionKind::EmailSent(_) => {
                let step = action.step.as_deref().unwrap_or_default();
                match w.emails_sent.get_mut(step) {
                    Some(n) => *n += 1,
                    None => {
                        w.emails_sent.insert(step.to_owned(), 1);
                    }
                }
            }
            ActionKind::EmailSkipped { reason } => {
                *w.emails_skipped.entry(*reason).or_default() += 1
            }
            ActionKind::EmailDeferred { .. } => w.emails_deferred += 1,
            ActionKind::ProfileUpdated { .. } => w.profile_updates += 1,
            ActionKind::WebhookCalled(_) => w.webhooks += 1,
        }
    }
}
