//! Date triggers: a yearly date on the profile (`birthday`) arms a timer per workflow, which
//! fires at the local time of the customer's zone and starts a run through the entry policy.
//!
//! An arm remembers the attribute's value and the trigger's settings it was computed from, so
//! an unchanged profile keeps its timer and a changed one is re-armed.

use super::Cx;
use super::state::DateArm;
use super::time;
use crate::workflow::model::Trigger;

impl Cx<'_, '_> {
    /// Fires the date arm at `index`: re-arms it for its next year, then starts a run if the
    /// workflow is enabled and its `when` holds.
    pub(super) fn fire_date(&mut self, index: usize) {
        let arm = self.state.dates[index].clone();
        let program = self.engine.programs.get(arm.workflow.as_str());
        let trigger = program.and_then(|p| match &p.workflow.trigger {
            Trigger::Date(d) => Some((p, d)),
            Trigger::Event(_) => None,
        });
        let Some((program, d)) = trigger else {
            self.state.dates.swap_remove(index);
            return;
        };
        // Re-arm first from the occurrence itself, so a late wake never skips a year.
        match time::parse_profile_date(&arm.value) {
            Some(date) => {
                self.state.dates[index].next_fire =
                    time::next_yearly(date, arm.next_fire, d.at, self.zone(), d.offset);
            }
            None => {
                self.state.dates.swap_remove(index);
                return;
            }
        }
        let when_ok = d
            .when
            .as_ref()
            .is_none_or(|w| self.engine.truthy(&w.source, &self.scope(None, None)));
        if program.workflow.enabled && when_ok {
            let trigger_id = format!("date:{}", arm.next_fire.timestamp());
            self.try_start(program, None, None, &trigger_id);
        }
    }

    /// Arms date triggers for attributes the profile has, re-arms them when the attribute (or
    /// the trigger's settings, or the customer's zone) changed, and drops the rest.
    pub(super) fn sync_dates(&mut self) {
        let tz = self.zone();
        let mut arms = Vec::new();
        for program in self.engine.programs.values() {
            let w = program.workflow;
            let Trigger::Date(d) = &w.trigger else {
                continue;
            };
            if !w.enabled {
                continue;
            }
            let Some(value) = self.state.attr_str(&d.attribute).map(str::to_owned) else {
                continue;
            };
            let Some(date) = time::parse_profile_date(&value) else {
                continue;
            };
            let signature = format!("{}|{}|{}|{}", d.attribute, d.at, d.offset, tz.name());
            let existing = self.state.dates.iter().find(|a| a.workflow == w.id);
            let arm = match existing {
                Some(a) if a.value == value && a.signature == signature => a.clone(),
                _ => DateArm {
                    workflow: w.id.clone(),
                    value,
                    signature,
                    next_fire: time::next_yearly(date, self.now, d.at, tz, d.offset),
                },
            };
            arms.push(arm);
        }
        self.state.dates = arms;
    }
}
