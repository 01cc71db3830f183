//! Moving runs through their steps: waking what is due (waits, `wait_for` timeouts, deferred
//! emails, date triggers, earliest first), then running a run's steps until it blocks or ends.
//!
//! A run is at a step id in the workflow as it is now (see `program`), so an edit that moved
//! or removed steps is followed; a step whose effect already happened for the run is not done
//! again (`Run::done`). A run waiting at a `wait` step whose length or time of day was edited
//! waits as the step now says, from when it began to wait (`Phase::Waiting::since`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::program::{Next, Program, StepNode};
use super::state::{CustomerState, Phase, Run};
use super::time;
use super::{ActionKind, Cx, EndReason, Engine, WebhookCall};
use crate::journal::Happened;
use crate::workflow::model::{Expr, HttpMethod, StepKind, Wait, Webhook};

/// What a step did to its run.
pub(super) enum Flow<'p> {
    /// On to the step's successor.
    Continue,
    /// On to this branch of an `if` or `ab_split` instead.
    Branch(Next<'p>),
    /// The run waits here, in this phase.
    Block(Phase),
}

/// Whether the effect of `step` already happened for `run`.
pub(super) fn done(run: &Run, step: &str) -> bool {
    run.done.iter().any(|d| d == step)
}

impl<'p> Cx<'_, 'p> {
    /// Wakes everything due at or before `now`, earliest first (waits re-timed to their edits
    /// first: a shortened wait that has passed is due now).
    pub(super) fn fire_due(&mut self) {
        self.retime_waits();
        loop {
            let run_due = self
                .state
                .runs
                .iter()
                .enumerate()
                .filter(|(_, r)| r.phase.until() <= self.now)
                .min_by_key(|(_, r)| r.phase.until());
            let date_due = self
                .state
                .dates
                .iter()
                .enumerate()
                .filter(|(_, d)| d.next_fire <= self.now)
                .min_by_key(|(_, d)| d.next_fire);
            match (
                run_due.map(|(i, r)| (i, r.phase.until())),
                date_due.map(|(i, d)| (i, d.next_fire)),
            ) {
                (Some((i, ru)), Some((_, du))) if ru <= du => self.wake_run(i),
                (Some((i, _)), None) => self.wake_run(i),
                (_, Some((j, _))) => self.fire_date(j),
                (None, None) => break,
            }
        }
    }

    /// Gives each run waiting at an edited `wait` step the end the step now says.
    fn retime_waits(&mut self) {
        let zone = self.zone();
        let programs = &self.engine.programs;
        for run in &mut self.state.runs {
            if let (Phase::Waiting { since, .. }, Some(until)) =
                (run.phase, wait_end(programs, run, zone))
            {
                run.phase = Phase::Waiting { until, since };
            }
        }
    }

    /// Moves on the run at `index`, whose phase is over.
    fn wake_run(&mut self, index: usize) {
        let mut run = self.state.runs.swap_remove(index);
        let Some(program) = self.engine.programs.get(run.workflow.as_str()) else {
            return self.end(&run, EndReason::WorkflowRemoved);
        };
        let Some(node) = program.get(&run.step) else {
            return self.end(&run, EndReason::StepRemoved);
        };
        let at = match run.phase {
            Phase::Waiting { .. } => node.next,
            Phase::WaitingFor { .. } => {
                run.waited = Some(false);
                node.next
            }
            // A deferred email is tried again: every sending rule is checked anew.
            Phase::Deferred { .. } => Next::Step(node.step.id.as_str()),
        };
        self.drive(run, program, at);
    }

    /// Runs steps from `at` until the run blocks (kept in `state.runs`) or ends.
    pub(super) fn drive(&mut self, mut run: Run, program: &Program<'p>, mut at: Next<'p>) {
        loop {
            let id = match at {
                Next::Step(id) => id,
                Next::Exit => return self.end(&run, EndReason::Exited),
                Next::End => return self.end(&run, EndReason::Completed),
            };
            let Some(node) = program.get(id) else {
                return self.end(&run, EndReason::StepRemoved);
            };
            id.clone_into(&mut run.step);
            at = match self.run_step(&mut run, program, node) {
                Flow::Continue => node.next,
                Flow::Branch(branch) => branch,
                Flow::Block(phase) => {
                    run.phase = phase;
                    self.state.runs.push(run);
                    return;
                }
            };
        }
    }

    /// Runs the step at `node` for `run`.
    fn run_step(&mut self, run: &mut Run, program: &Program<'p>, node: &StepNode<'p>) -> Flow<'p> {
        let id = node.step.id.as_str();
        match &node.step.kind {
            StepKind::SendEmail(email) => self.send_email(run, program.workflow, id, email),
            StepKind::Wait(wait) => {
                let flow = self.wait(wait);
                if let Flow::Block(Phase::Waiting { until, .. }) = flow {
                    self.note_run(run, id, Happened::WaitStarted { until, event: None });
                }
                flow
            }
            StepKind::WaitFor(wf) => {
                let until = self.now + wf.timeout.to_delta();
                let event = Some(wf.filter.event.clone());
                self.note_run(run, id, Happened::WaitStarted { until, event });
                Flow::Block(Phase::WaitingFor { until })
            }
            StepKind::If(b) => {
                let branch = self.if_branch(run, id, &b.condition);
                Flow::Branch(node.branches[branch])
            }
            StepKind::AbSplit(branches) => {
                let weights: Vec<u32> = branches.iter().map(|b| b.weight).collect();
                let branch = split_branch(&program.workflow.id, id, &self.state.id, &weights);
                let name = if branches[branch].steps.is_empty() {
                    "holdout".to_owned()
                } else {
                    (branch + 1).to_string()
                };
                self.note_run(run, id, Happened::SplitChosen { branch: name });
                Flow::Branch(node.branches[branch])
            }
            StepKind::UpdateProfile(update) => {
                if !done(run, id) {
                    self.update_profile(run, id, update);
                    run.done.push(id.to_owned());
                }
                Flow::Continue
            }
            StepKind::Webhook(hook) => {
                if !done(run, id) {
                    let call = self.webhook_call(run, id, hook);
                    self.push(run, Some(id), ActionKind::WebhookCalled(Box::new(call)));
                    run.done.push(id.to_owned());
                }
                Flow::Continue
            }
        }
    }

    /// A `wait` step: blocks until its end, unless a `wait: {until}` time is now.
    fn wait(&self, wait: &Wait) -> Flow<'p> {
        let until = wait_end_from(wait, self.now, self.zone());
        if until <= self.now {
            Flow::Continue
        } else {
            Flow::Block(Phase::Waiting {
                until,
                since: Some(self.now),
            })
        }
    }

    /// The branch of an `if` step: 0 (`then`) when its condition holds, else 1 (`else`).
    /// Journals the condition, its result and the values it read.
    fn if_branch(&mut self, run: &Run, step: &str, condition: &Expr) -> usize {
        let scope = self.run_scope(run);
        let result = self.engine.truthy(&condition.source, &scope);
        let read = self.engine.condition_read(&condition.source, &scope);
        let checked = Happened::ConditionChecked {
            condition: condition.source.clone(),
            result,
            read,
        };
        self.note_run(run, step, checked);
        if result { 0 } else { 1 }
    }

    /// The call a `webhook` step asks for: its body rendered, or a default naming the run.
    fn webhook_call(&mut self, run: &Run, id: &str, hook: &Webhook) -> WebhookCall {
        let scope = self.run_scope(run);
        let body = match &hook.body {
            Some(b) => {
                let mut failures = Vec::new();
                let body = self.render_value(b, &scope, &mut failures);
                for e in &failures {
                    self.warn_render(run, id, "body", "webhook body string", e);
                }
                body
            }
            None => {
                serde_json::json!({"workflow": run.workflow, "step": id, "run": run.id, "customer": {"id": self.state.id}})
            }
        };
        WebhookCall {
            idempotency_key: format!("{}.{id}", run.id),
            url: hook.url.to_string(),
            method: match hook.method {
                HttpMethod::Post => "POST",
                HttpMethod::Put => "PUT",
                HttpMethod::Patch => "PATCH",
            },
            body,
            secret: hook.secret.clone(),
        }
    }

    /// A JSON value with every string rendered as a template (one that fails is empty, and
    /// its error goes to `failures`).
    fn render_value(
        &self,
        value: &Value,
        scope: &minijinja::Value,
        failures: &mut Vec<minijinja::Error>,
    ) -> Value {
        match value {
            Value::String(s) => match self.engine.render(s, scope) {
                Ok(text) => Value::String(text),
                Err(e) => {
                    failures.push(e);
                    Value::String(String::new())
                }
            },
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value(i, scope, failures))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.render_value(v, scope, failures)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

impl Engine<'_> {
    /// When the customer must next be woken under the workflows as they are now: like
    /// [`CustomerState::next_wake`], with the waits of edited `wait` steps re-timed. A timer
    /// stored before an edit that shortened a wait is later than this; whoever keeps timers
    /// across an edit (`simulate --db`) reads them again through here.
    pub fn next_wake(&self, state: &CustomerState) -> Option<DateTime<Utc>> {
        let zone = time::customer_zone(state.attr_str("timezone"), self.project.settings.timezone);
        let runs = state
            .runs
            .iter()
            .map(|r| wait_end(&self.programs, r, zone).unwrap_or(r.phase.until()));
        runs.chain(state.dates.iter().map(|d| d.next_fire)).min()
    }
}

/// When `run`'s wait ends under its `wait` step as the workflow now has it: the step's length
/// (or next time of day) from when the run began to wait, at once if that has passed. `None`
/// when the run is not waiting at a `wait` step, or its state predates `since` (then it keeps
/// its stored end).
fn wait_end(programs: &BTreeMap<&str, Program<'_>>, run: &Run, zone: Tz) -> Option<DateTime<Utc>> {
    let Phase::Waiting {
        since: Some(since), ..
    } = run.phase
    else {
        return None;
    };
    let node = programs.get(run.workflow.as_str())?.get(&run.step)?;
    match &node.step.kind {
        StepKind::Wait(wait) => Some(wait_end_from(wait, since, zone)),
        _ => None,
    }
}

/// The end of a `wait` begun at `since`: its length after it, or the next time of day at or
/// after it (`since` itself when the clock shows that time).
fn wait_end_from(wait: &Wait, since: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    match wait {
        Wait::For(d) => since + d.to_delta(),
        Wait::Until(t) => time::next_local_time(since, zone, *t),
    }
}

/// The `ab_split` branch for a customer: the first 8 bytes of SHA-256 over
/// `workflow \0 step \0 customer`, read big-endian, modulo the total weight, then walked
/// through the cumulative weights. SHA-256 is fixed by standard, so no compiler, platform or
/// release can move a customer to another branch.
pub fn split_branch(workflow: &str, step: &str, customer: &str, weights: &[u32]) -> usize {
    let mut h = Sha256::new();
    h.update(workflow.as_bytes());
    h.update([0u8]);
    h.update(step.as_bytes());
    h.update([0u8]);
    h.update(customer.as_bytes());
    let digest = h.finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    let mut point = n % total.max(1);
    for (i, w) in weights.iter().enumerate() {
        if point < u64::from(*w) {
            return i;
        }
        point -= u64::from(*w);
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_pinned_to_the_documented_hash() {
        // SHA-256("w\0s\0c"), first 8 bytes big-endian: a pinned value, so that a change of
        // the function (which would move customers between branches) fails here.
        let d = Sha256::digest(b"w\0s\0c");
        let n = u64::from_be_bytes(d[..8].try_into().unwrap());
        assert_eq!(n, PINNED_HASH);
        assert_eq!(
            split_branch("w", "s", "c", &[1, 1]),
            (PINNED_HASH % 2) as usize
        );
        let point = PINNED_HASH % 10;
        assert_eq!(
            split_branch("w", "s", "c", &[3, 0, 7]),
            if point < 3 { 0 } else { 2 }
        );
    }

    const PINNED_HASH: u64 = 633_542_595_714_325_647;

    #[test]
    fn split_follows_the_weights() {
        let weights = [80, 20];
        let mut counts = [0usize; 2];
        for i in 0..10_000 {
            counts[split_branch("w", "s", &format!("c-{i}"), &weights)] += 1;
        }
        assert!((7_700..8_300).contains(&counts[0]), "{counts:?}");
    }
}
