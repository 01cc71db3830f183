//! Starting runs: which workflows an event triggers (their `when` and `key`), the entry
//! policies (`once`, `single`, `restart`, `every`), and the ids runs get.
//!
//! Date triggers start runs through the same `Cx::try_start` (see `date`).

use std::sync::Arc;

use chrono::Duration as ChronoDuration;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::program::Program;
use super::state::{EntryRecord, Phase, Run, TriggerDetail};
use super::{ActionKind, Cx, EndReason, MAX_ACTIVE_RUNS, RefuseReason};
use crate::event::StoreEvent;
use crate::workflow::model::{EntryPolicy, EventFilter, Trigger, Workflow};
use crate::workflow::units::Duration;

/// A day, less the hour a daylight-saving change takes away: `every: 365d` between two
/// birthdays at 09:00 local must allow a year that is an hour short.
const DST_TOLERANCE: ChronoDuration = ChronoDuration::hours(1);

impl<'p> Cx<'_, 'p> {
    /// Starts the runs `event` triggers, in workflow id order.
    pub(super) fn start_triggered(
        &mut self,
        event: &StoreEvent,
        detail: &Option<Arc<Map<String, Value>>>,
    ) {
        // One scope for all the triggers, made when the first one needs it: the profile they
        // see is the one the event left, whatever the runs started before them did.
        let mut scope = None;
        for program in self.engine.programs.values() {
            let Some(filter) = listens_to(program.workflow, event) else {
                continue;
            };
            let scope = scope
                .get_or_insert_with(|| self.scope(None, detail.clone()))
                .clone();
            if let Some(key) = self.trigger_key(program.workflow, filter, &scope) {
                self.try_start(program, key, Some(&event.detail), &event.id);
            }
        }
    }

    /// Whether the event starts a run of `w` (its `when` holds), and under which key. `None`
    /// also when `w` is keyed and the key gives nothing: a keyed run that cannot be told
    /// apart would swallow later events.
    fn trigger_key(
        &self,
        w: &Workflow,
        filter: &EventFilter,
        scope: &minijinja::Value,
    ) -> Option<Option<String>> {
        let when = filter
            .when
            .as_ref()
            .is_none_or(|c| self.engine.truthy(&c.source, scope));
        if !when {
            return None;
        }
        match &w.key {
            Some(k) => self
                .engine
                .eval(&k.source, scope)
                .map(|v| Some(key_text(&v))),
            None => Some(None),
        }
    }

    /// Starts a run if the entry policy allows it.
    pub(super) fn try_start(
        &mut self,
        program: &Program<'p>,
        key: Option<String>,
        trigger: Option<&Arc<Map<String, Value>>>,
        trigger_id: &str,
    ) {
        let w = program.workflow;
        let history = self
            .state
            .entries
            .iter()
            .position(|e| e.workflow == w.id && e.key == key);
        if !self.admit(w, key.as_deref(), history) {
            return;
        }
        if self.state.runs.len() >= MAX_ACTIVE_RUNS {
            // Refused before the entry is recorded: a `once` workflow may start later.
            let id = run_id(&w.id, &self.state.id, key.as_deref(), trigger_id);
            return self.refuse(w, id, RefuseReason::TooManyRuns);
        }
        self.record_entry(w, key.as_deref(), history);
        let run = self.new_run(w, key, trigger, trigger_id);
        self.push(&run, None, ActionKind::RunStarted);
        self.drive(run, program, program.first);
    }

    /// Records that a run of `w` (which would have had the id `run`) did not start.
    fn refuse(&mut self, w: &Workflow, run: String, reason: RefuseReason) {
        self.warn(&w.id, None, format!("run refused: {}", reason.as_str()));
        self.record(&w.id, &run, None, ActionKind::RunRefused { reason });
    }

    /// `w`'s entry policy for a new run under `key`, given the customer's entry `history`:
    /// whether it may start. Under `restart` the active run ends here, before the new one.
    fn admit(&mut self, w: &Workflow, key: Option<&str>, history: Option<usize>) -> bool {
        let active = self
            .state
            .runs
            .iter()
            .position(|r| r.workflow == w.id && r.key.as_deref() == key);
        match w.entry {
            EntryPolicy::Once => history.is_none(),
            EntryPolicy::Single => active.is_none(),
            EntryPolicy::Restart => {
                if let Some(i) = active {
                    let old = self.state.runs.swap_remove(i);
                    self.end(&old, EndReason::Restarted);
                }
                true
            }
            EntryPolicy::Every(period) => {
                let since = history.map(|i| self.now - self.state.entries[i].last_started_at);
                active.is_none() && since.is_none_or(|s| s >= min_gap(period))
            }
        }
    }

    /// Remembers a start for the policies that look back (`once`, `every`).
    fn record_entry(&mut self, w: &Workflow, key: Option<&str>, history: Option<usize>) {
        if !matches!(w.entry, EntryPolicy::Once | EntryPolicy::Every(_)) {
            return;
        }
        match history {
            Some(i) => self.state.entries[i].last_started_at = self.now,
            None => self.state.entries.push(EntryRecord {
                workflow: w.id.clone(),
                key: key.map(str::to_owned),
                last_started_at: self.now,
            }),
        }
    }

    /// Forgets starts of `every` workflows whose period has passed: they no longer hold
    /// back a start, and a keyed workflow would otherwise keep one per key forever. (Judged by
    /// the workflow as it is now; `once` starts are kept, since they always hold one back.)
    pub(super) fn prune_entries(&mut self) {
        let programs = &self.engine.programs;
        let now = self.now;
        self.state.entries.retain(|e| {
            match programs.get(e.workflow.as_str()).map(|p| p.workflow.entry) {
                Some(EntryPolicy::Every(period)) => now - e.last_started_at < min_gap(period),
                _ => true,
            }
        });
    }

    /// A run of `w` starting now, before its first step.
    fn new_run(
        &self,
        w: &Workflow,
        key: Option<String>,
        trigger: Option<&Arc<Map<String, Value>>>,
        trigger_id: &str,
    ) -> Run {
        Run {
            id: run_id(&w.id, &self.state.id, key.as_deref(), trigger_id),
            workflow: w.id.clone(),
            key,
            started_at: self.now,
            trigger: trigger
                .filter(|_| self.engine.keeps_trigger.contains(w.id.as_str()))
                .map(|detail| TriggerDetail::Parsed(Arc::clone(detail))),
            step: String::new(),
            phase: Phase::Waiting { until: self.now },
            waited: None,
            done: Vec::new(),
        }
    }
}

/// The event filter of `w`'s trigger, if `w` is enabled and triggered by this event's type.
fn listens_to<'w>(w: &'w Workflow, event: &StoreEvent) -> Option<&'w EventFilter> {
    match &w.trigger {
        Trigger::Event(filter) if w.enabled && filter.event == event.event_type => Some(filter),
        _ => None,
    }
}

/// The least time between two starts under `every: period` (see [`DST_TOLERANCE`]).
fn min_gap(period: Duration) -> ChronoDuration {
    if period.minutes() % (24 * 60) == 0 {
        period.to_delta() - DST_TOLERANCE
    } else {
        period.to_delta()
    }
}

/// A key value as text (`o-77`, `1001`).
pub(super) fn key_text(v: &minijinja::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// A run's id: a hash of what started it, so that the same start always gets the same id.
///
/// `r-` and the first 20 hex digits of SHA-256 over `workflow \0 customer \0 key \0 trigger \0`,
/// no key hashing as the empty key. (The two never meet: `trigger` is an event id or a date
/// occurrence, and one trigger starts at most one run of a workflow for a customer.) Ids are
/// stored and name sent emails, so the definition must not move.
pub fn run_id(workflow: &str, customer: &str, key: Option<&str>, trigger: &str) -> String {
    let mut h = Sha256::new();
    for part in [workflow, customer, key.unwrap_or(""), trigger] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("r-{}", &hex::encode(h.finalize())[..20])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_stable_and_distinct() {
        let a = run_id("win-back", "c-1", None, "evt-1");
        assert_eq!(a, run_id("win-back", "c-1", None, "evt-1"));
        // Each part of what defines a run changes its id.
        for other in [
            run_id("win-back-2", "c-1", None, "evt-1"),
            run_id("win-back", "c-2", None, "evt-1"),
            run_id("win-back", "c-1", Some("o-1"), "evt-1"),
            run_id("win-back", "c-1", None, "evt-2"),
        ] {
            assert_ne!(a, other);
        }
        assert_ne!(
            run_id("w", "c", Some("o-1"), "t"),
            run_id("w", "c", Some("o-2"), "t")
        );
        // The parts are separated: the same bytes split differently are another start.
        assert_ne!(run_id("ab", "c", None, "t"), run_id("a", "bc", None, "t"));
        assert_ne!(
            run_id("w", "c", Some("k"), "t"),
            run_id("w", "c", None, "kt")
        );
        // No key hashes as the empty key, as documented (they never meet; see `run_id`).
        assert_eq!(a, run_id("win-back", "c-1", Some(""), "evt-1"));
    }

    #[test]
    fn run_id_is_pinned_to_the_documented_hash() {
        // SHA-256("win-back\0c-1\0o-1\0evt-1\0"), first 20 hex digits: a pinned value, so that
        // a change of the function (which would rename stored runs and resend their emails)
        // fails here.
        let d = hex::encode(Sha256::digest(b"win-back\0c-1\0o-1\0evt-1\0"));
        assert_eq!(&d[..20], "fa795934f903de1b9b2d");
        assert_eq!(
            run_id("win-back", "c-1", Some("o-1"), "evt-1"),
            "r-fa795934f903de1b9b2d"
        );
        // SHA-256("win-back\0c-1\0\0evt-1\0"): no key.
        assert_eq!(
            run_id("win-back", "c-1", None, "evt-1"),
            "r-790e7e4912e4cd5bd1ff"
        );
    }
}
