//! The counts a run reports at its end ([`Summary`], one [`WorkflowSummary`] per workflow).
//! Kept apart from the loop: they only add up the actions it reports, in its order.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use nudge_core::engine::{Action, ActionKind, EndReason, SkipReason};
use nudge_core::runner::DeliveryOutcome;

use super::Swept;

/// Counts a marketer reads after a run, per workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkflowSummary {
    /// Runs started.
    pub runs_started: u64,
    /// Runs refused at the customer's active-run limit (`run.refused`).
    pub runs_refused: u64,
    /// Runs ended, by reason.
    pub runs_ended: BTreeMap<EndReason, u64>,
    /// Emails sent (the mailer took them), by step.
    pub emails_sent: BTreeMap<String, u64>,
    /// Emails settled failed (refused for good, or out of retries).
    pub emails_failed: u64,
    /// Emails decided whose delivery failed for now: kept pending for a retry (a later sweep
    /// of the run may still deliver them; [`Summary::undelivered`] says how many were left).
    pub emails_retried: u64,
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
    /// Sends a stopped earlier run left (pending, or claimed) that this run settled before it
    /// went on: delivered now, or found already delivered.
    pub left_over: usize,
    /// Of those, the ones the mailer had already delivered (their file was in the outbox):
    /// settled sent, not delivered again.
    pub found_delivered: usize,
    /// Emails still pending when the run ended (their delivery failed and waits for a
    /// retry): a later run on the same `--db` store delivers them.
    pub undelivered: usize,
    /// The most inputs (events, timer firings, notices) one round reported at once: the
    /// simulation holds a round's results in memory, so this bounds what it holds whatever
    /// the gap between two events. Not a count a marketer reads.
    #[serde(skip)]
    pub largest_round: usize,
}

impl Summary {
    /// The workflow's summary, created if needed. Looks the workflow up before inserting, so
    /// that its id is copied once per workflow, not per action.
    fn workflow(&mut self, workflow: &str) -> &mut WorkflowSummary {
        if !self.workflows.contains_key(workflow) {
            self.workflows
                .insert(workflow.to_owned(), WorkflowSummary::default());
        }
        self.workflows.get_mut(workflow).expect("inserted above")
    }

    /// Counts one action in its workflow's summary; an email by what became of it
    /// (`delivery`; `None`: not delivered by this run, which counts as retried).
    pub(crate) fn count(&mut self, action: &Action, delivery: Option<&DeliveryOutcome>) {
        let w = self.workflow(&action.workflow);
        match &action.kind {
            ActionKind::RunStarted => w.runs_started += 1,
            ActionKind::RunRefused { .. } => w.runs_refused += 1,
            ActionKind::RunEnded { reason } => *w.runs_ended.entry(*reason).or_default() += 1,
            ActionKind::EmailSent(_) => {
                w.count_delivery(action.step.as_deref().unwrap_or_default(), delivery)
            }
            ActionKind::EmailSkipped { reason } => {
                *w.emails_skipped.entry(*reason).or_default() += 1
            }
            ActionKind::EmailDeferred { .. } => w.emails_deferred += 1,
            ActionKind::ProfileUpdated { .. } => w.profile_updates += 1,
            ActionKind::WebhookCalled(_) => w.webhooks += 1,
        }
    }

    /// Counts what a sweep did with an email decided before ([`resume_sends`] before the
    /// run, `left_over`; [`retry_pending`] after it): sent or failed now in its workflow's
    /// counts; one found already delivered only as such; one still waiting for a retry after
    /// the run in [`Summary::undelivered`].
    ///
    /// [`resume_sends`]: super::resume_sends
    /// [`retry_pending`]: super::retry_pending
    pub fn count_swept(&mut self, swept: &Swept, left_over: bool) {
        if left_over {
            self.left_over += 1;
        }
        if swept.found {
            self.found_delivered += 1;
            return;
        }
        match &swept.outcome {
            DeliveryOutcome::Retry { .. } if !left_over => self.undelivered += 1,
            DeliveryOutcome::Retry { .. } => {}
            outcome => self
                .workflow(&swept.record.workflow)
                .count_delivery(&swept.record.step, Some(outcome)),
        }
    }
}

impl WorkflowSummary {
    fn count_delivery(&mut self, step: &str, delivery: Option<&DeliveryOutcome>) {
        match delivery {
            Some(DeliveryOutcome::Sent { .. }) => match self.emails_sent.get_mut(step) {
                Some(n) => *n += 1,
                None => {
                    self.emails_sent.insert(step.to_owned(), 1);
                }
            },
            Some(DeliveryOutcome::Failed { .. } | DeliveryOutcome::Unknown { .. }) => {
                self.emails_failed += 1
            }
            Some(DeliveryOutcome::Retry { .. }) | None => self.emails_retried += 1,
        }
    }
}
