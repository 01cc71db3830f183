//! The customer's profile: what an event's `detail.customer` merges into it, and what an
//! `update_profile` step changes (attributes and tags).
//!
//! The profile is shared (`Arc`) with the scopes made from it, so a change copies it only when
//! a scope still holds the old one.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::state::Run;
use super::{ActionKind, Cx};
use crate::event::StoreEvent;
use crate::workflow::model::{ProfileValue, UpdateProfile};

impl Cx<'_, '_> {
    /// Merges `detail.customer` into the profile: an absent field leaves the stored value, `null`
    /// clears it, arrays are replaced whole.
    pub(super) fn merge_profile(&mut self, event: &StoreEvent) {
        let profile = Arc::make_mut(&mut self.state.profile);
        if let Some(Value::Object(customer)) = event.detail.get("customer") {
            for (k, v) in customer {
                if k == "id" {
                    continue;
                }
                if v.is_null() {
                    profile.remove(k);
                } else {
                    profile.insert(k.clone(), v.clone());
                }
            }
        }
        profile.insert("id".to_owned(), Value::String(self.state.id.clone()));
    }

    /// An `update_profile` step: applies its changes and records them.
    pub(super) fn update_profile(&mut self, run: &Run, step: &str, update: &UpdateProfile) {
        let changes = self.profile_changes(run, step, update);
        let profile = Arc::make_mut(&mut self.state.profile);
        for (k, v) in &changes {
            profile.insert(k.clone(), v.clone());
        }
        self.push(run, Some(step), ActionKind::ProfileUpdated { changes });
    }

    /// The attributes an `update_profile` step sets, values rendered in the run's scope, and
    /// `tags` after its additions and removals.
    fn profile_changes(
        &mut self,
        run: &Run,
        step: &str,
        update: &UpdateProfile,
    ) -> Map<String, Value> {
        let scope = self.run_scope(run);
        let mut changes = Map::new();
        for (name, value) in &update.set {
            let v = match value {
                ProfileValue::Literal(v) => v.clone(),
                // A value that fails to render leaves the attribute as it was, with a warning.
                ProfileValue::Template(t) => match self.engine.render(&t.source, &scope) {
                    Ok(s) => Value::String(s),
                    Err(e) => {
                        self.warn_render(run, step, &format!("set.{name}"), "profile value", &e);
                        continue;
                    }
                },
            };
            changes.insert(name.clone(), v);
        }
        if !update.add_tags.is_empty() || !update.remove_tags.is_empty() {
            changes.insert("tags".to_owned(), Value::Array(self.tags_after(update)));
        }
        changes
    }

    /// The profile's tags with the step's added (once each, in order) and removed.
    fn tags_after(&self, update: &UpdateProfile) -> Vec<Value> {
        let mut tags: Vec<Value> = self
            .state
            .profile
            .get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in &update.add_tags {
            if !tags.iter().any(|x| x.as_str() == Some(t)) {
                tags.push(Value::String(t.clone()));
            }
        }
        tags.retain(|x| !update.remove_tags.iter().any(|r| x.as_str() == Some(r)));
        tags
    }
}
