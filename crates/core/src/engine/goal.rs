//! What a new event does to the customer's active runs: an `exit_when` goal ends a run, and
//! the event a `wait_for` awaits moves its run on.
//!
//! Both read the *new* event (not the run's trigger), and a keyed run only hears events that
//! give its key (by the goal's or wait's own `key`, else the workflow's). This happens before
//! triggers, so an event never ends the run it starts.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::state::{Phase, Run};
use super::{Cx, EndReason};
use crate::event::StoreEvent;
use crate::workflow::model::{EventFilter, StepKind, Workflow};

impl Cx<'_, '_> {
    /// Shows `event` to every active run; runs that end leave `state.runs`.
    pub(super) fn match_active_runs(
        &mut self,
        event: &StoreEvent,
        detail: &Option<Arc<Map<String, Value>>>,
    ) {
        let runs = std::mem::take(&mut self.state.runs);
        let mut kept = Vec::with_capacity(runs.len());
        for run in runs {
            // A run moved on by the event may block again: `drive` then keeps it in
            // `state.runs`, from where it joins the others in order.
            let before = self.state.runs.len();
            if let Some(run) = self.match_run(run, event, detail) {
                kept.push(run);
            }
            kept.extend(self.state.runs.drain(before..));
        }
        self.state.runs.extend(kept);
    }

    /// What `event` does to one run: ends it (a goal), moves it on (the event it awaits), or
    /// nothing (the run is given back).
    fn match_run(
        &mut self,
        mut run: Run,
        event: &StoreEvent,
        detail: &Option<Arc<Map<String, Value>>>,
    ) -> Option<Run> {
        let Some(program) = self.engine.programs.get(run.workflow.as_str()) else {
            return Some(run);
        };
        let w = program.workflow;
        // The `wait_for` the run is at, with where it leads.
        let wait_for = program
            .get(&run.step)
            .and_then(|node| match &node.step.kind {
                StepKind::WaitFor(wf) => Some((&wf.filter, node.next)),
                _ => None,
            });
        let awaits_type = wait_for.is_some_and(|(f, _)| f.event == event.event_type);
        // Most events concern no run: no scope is made for them.
        if !awaits_type && !w.exit_when.iter().any(|g| g.event == event.event_type) {
            return Some(run);
        }
        let scope = self.scope(Some(&run), detail.clone());
        if w.exit_when
            .iter()
            .any(|g| self.filter_matches(w, g, &run, event, &scope))
        {
            self.end(&run, EndReason::Goal);
            return None;
        }
        let waiting = matches!(run.phase, Phase::WaitingFor { .. });
        match wait_for {
            Some((filter, next))
                if waiting && self.filter_matches(w, filter, &run, event, &scope) =>
            {
                run.waited = Some(true);
                self.drive(run, program, next);
                None
            }
            _ => Some(run),
        }
    }

    /// Whether `event` is of the filter's type, gives the run's key and its `when` holds.
    fn filter_matches(
        &self,
        w: &Workflow,
        filter: &EventFilter,
        run: &Run,
        event: &StoreEvent,
        scope: &minijinja::Value,
    ) -> bool {
        filter.event == event.event_type
            && self.key_matches(w, filter, run, scope)
            && filter
                .when
                .as_ref()
                .is_none_or(|c| self.engine.truthy(&c.source, scope))
    }

    /// For keyed workflows, an event concerns a run only if it gives the run's key: by the
    /// entry's own key expression (its event may carry the key elsewhere than the trigger),
    /// else the workflow's; compared as text (see `key_text`).
    fn key_matches(
        &self,
        w: &Workflow,
        filter: &EventFilter,
        run: &Run,
        scope: &minijinja::Value,
    ) -> bool {
        match filter.key.as_ref().or(w.key.as_ref()) {
            None => true,
            Some(k) => self.event_key(&k.source, scope) == run.key,
        }
    }
}
