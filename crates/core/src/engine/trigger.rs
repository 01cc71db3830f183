//! Starting runs: which workflows an event triggers (their `when` and `key`), the entry
//! policies (`once`, `single`, `restart`, `every`), and the ids runs get.
//!
//! Date triggers start runs through the same `Cx::try_start` (see `date`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::program::Program;
use super::state::{EntryRecord, Phase, Run, TriggerDetail};
use super::{ActionKind, Cx, EndReason, MAX_ACTIVE_RUNS, RefuseReason, time};
use crate::event::StoreEvent;
use crate::workflow::model::{EntryPolicy, EventFilter, Trigger, Workflow};
use crate::workflow::units::Duration;

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
            if let Some(key) = self.trigger_key(program.workflow, filter, &scope, &event.id) {
                self.try_start(program, key, Some(&event.detail), &event.id);
            }
        }
    }

    /// Whether the event starts a run of `w` (its `when` holds), and under which key. `None`
    /// also when `w` is keyed and the key gives nothing (undefined, none or empty): a keyed run
    /// that cannot be told apart would swallow later events. That is a warning naming the
    /// workflow and the event (`event_id`), since the store sent an event the workflow's key
    /// cannot be read from.
    fn trigger_key(
        &mut self,
        w: &Workflow,
        filter: &EventFilter,
        scope: &minijinja::Value,
        event_id: &str,
    ) -> Option<Option<String>> {
        let when = filter
            .when
            .as_ref()
            .is_none_or(|c| self.engine.truthy(&c.source, scope));
        if !when {
            return None;
        }
        let Some(k) = &w.key else {
            return Some(None);
        };
        let key = self.event_key(&k.source, scope);
        if key.is_none() {
            self.warn(
                &w.id,
                None,
                format!(
                    "the trigger event {event_id} gives no key (`{}` is undefined, empty, a list or a mapping): no run started",
                    k.source
                ),
            );
        }
        key.map(Some)
    }

    /// The key the expression `source` gives in `scope`, as text; `None` when it fails or
    /// gives undefined, none, empty text, a list or a mapping (see [`key_value`]).
    pub(super) fn event_key(&self, source: &str, scope: &minijinja::Value) -> Option<String> {
        key_value(&self.engine.eval(source, scope)?)
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
            self.refresh_trigger(w, key.as_deref(), trigger);
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

    /// A trigger under the key of an active run that did not start a new one is newer news of
    /// the same thing (an updated checkout, a second parcel of one order): the active run's
    /// `event` becomes this event, so its later emails show the cart or parcel as it is now.
    /// Only keyed workflows: without a key, another trigger event is about something else.
    fn refresh_trigger(
        &mut self,
        w: &Workflow,
        key: Option<&str>,
        trigger: Option<&Arc<Map<String, Value>>>,
    ) {
        let (Some(key), Some(detail)) = (key, trigger) else {
            return;
        };
        if !self.engine.keeps_trigger.contains(w.id.as_str()) {
            return;
        }
        let active = self
            .state
            .runs
            .iter_mut()
            .find(|r| r.workflow == w.id && r.key.as_deref() == Some(key));
        if let Some(run) = active {
            run.trigger = Some(TriggerDetail::Parsed(Arc::clone(detail)));
        }
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
                let tz = self.zone();
                let last = history.map(|i| self.state.entries[i].last_started_at);
                active.is_none() && last.is_none_or(|l| period_passed(w, period, l, self.now, tz))
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
        let (now, tz) = (self.now, self.zone());
        self.state.entries.retain(|e| {
            let Some(w) = programs.get(e.workflow.as_str()).map(|p| p.workflow) else {
                return true;
            };
            match w.entry {
                EntryPolicy::Every(period) => !period_passed(w, period, e.last_started_at, now, tz),
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
            phase: Phase::Waiting {
                until: self.now,
                since: None,
            },
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

/// Whether `every: period` of `w` allows a start at `now` after one at `last`. For a date
/// trigger and whole days, the customer's local calendar dates (in `tz`) are compared, so a
/// birthday at 09:00 local comes every year whatever daylight saving (or a move to another
/// zone, or an edited `at`) did to the hours between; otherwise `period` is a duration.
fn period_passed(
    w: &Workflow,
    period: Duration,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
) -> bool {
    const DAY: i64 = 24 * 60;
    match w.trigger {
        Trigger::Date(_) if period.minutes() % DAY == 0 => {
            time::local_days_between(last, now, tz) >= period.minutes() / DAY
        }
        _ => now - last >= period.to_delta(),
    }
}

/// A key value as text (`o-77`, `1001`), or `None` when it gives none: empty text, or a list
/// or a mapping (`event.checkout` rather than `event.checkout.id`), whose text would change
/// with every update of the thing and split one run's events across many.
fn key_value(v: &minijinja::Value) -> Option<String> {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::String | ValueKind::Number | ValueKind::Bool => {
            Some(key_text(v)).filter(|k| !k.is_empty())
        }
        _ => None,
    }
}

/// A key value as text (`o-77`, `1001`). Keys compare as text, so a number is written as a
/// store writes it in text: an integer without decimals, and so is a float without a fraction
/// (`1001.0`, as JSON numbers may come; `1e20`, as a JSON number beyond 64 bits comes, is
/// `100000000000000000000`), so that a numeric `checkout_id` matches its text form.
pub(super) fn key_text(v: &minijinja::Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    if v.is_number()
        && !v.is_integer()
        && let Ok(f) = f64::try_from(v.clone())
        && f.is_finite()
        && f.fract() == 0.0
    {
        // Rust writes a whole float without decimals or exponent; `+ 0.0` turns -0 into 0.
        return format!("{}", f + 0.0);
    }
    v.to_string()
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
    fn keys_are_text_and_whole_numbers_have_no_decimals() {
        let text = |v: minijinja::Value| key_text(&v);
        assert_eq!(text("o-77".into()), "o-77");
        assert_eq!(text("1001".into()), "1001");
        assert_eq!(text(1001.into()), "1001");
        assert_eq!(text(1001.0.into()), "1001");
        assert_eq!(text(10.5.into()), "10.5");
        // Whole however large (a JSON number beyond u64 comes as a float): still no decimals.
        assert_eq!(text(1e20.into()), "100000000000000000000");
        assert_eq!(text((-0.0).into()), "0");
    }

    #[test]
    fn a_list_or_a_mapping_is_no_key() {
        assert_eq!(key_value(&1001.into()), Some("1001".to_owned()));
        assert_eq!(key_value(&true.into()), Some(key_text(&true.into())));
        assert_eq!(key_value(&"".into()), None);
        let list = minijinja::Value::from(vec![minijinja::Value::from(1), "a".into()]);
        assert_eq!(key_value(&list), None);
        let map = minijinja::Value::from_iter([("id", 1)]);
        assert_eq!(key_value(&map), None);
    }

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
