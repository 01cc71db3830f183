//! `nudge plan`: what merging an edit of the workflows changes, in the definitions and, with a
//! store, for the runs in flight.
//!
//! - [`diff`] compares two validated projects (the deployed `--base` and the edited
//!   `--workflows`) and gives one [`Row`] per definition change, positions ignored: moving a
//!   line is no change. A template file whose text changed changes every step that uses it
//!   ([`changed_templates`] finds them, reading the files).
//! - [`Tally`] takes in every customer's state (each [`CustomerState`] from
//!   [`Store::customers`]) and says, at a time `now`, what the edit does to each run in flight
//!   ([`Flight`]), with the engine's own rules (see [`flight`]); [`plan`] reads the store and
//!   puts both together.
//! - [`render`] prints a [`Plan`] as text, as a pull-request comment (Markdown) or as JSON
//!   lines (`{"workflow", "change", "step", "detail", "runs"}`, the contract's shape).
//!
//! Guarantee (tested against `simulate --db`): the runs [`Flight`] lists as ending with
//! `step_removed` are exactly those that end so when the same store goes on under the edited
//! workflows with no other input than their timers. An event may end a run first (a goal of
//! its workflow, or a `restart` trigger), and `if` conditions are not evaluated ahead: a step
//! behind an `if` counts as reached on either side. Limits: without a store only definitions
//! are compared (`runs` is 0).

mod diff;
pub mod flight;
pub mod render;
mod templates;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use nudge_core::engine::state::CustomerState;
use nudge_core::links::Signer;
use nudge_core::store::{Store, StoreError};
use nudge_core::workflow::Project;

pub use diff::diff;
pub use flight::{Ending, Flight, MovedWait, Tally};
pub use templates::{TemplateReadError, changed_templates};

/// What a [`Row`] says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A workflow file is new.
    WorkflowAdded,
    /// A workflow file is gone: its runs end (`workflow_removed`).
    WorkflowRemoved,
    /// `enabled: true` now.
    WorkflowEnabled,
    /// `enabled: false` now: its runs end (`workflow_disabled`).
    WorkflowDisabled,
    /// What starts a run changed.
    TriggerChanged,
    /// The entry policy changed.
    EntryChanged,
    /// The goals (`exit_when`) changed.
    GoalChanged,
    /// `settings.yaml` (workflow `settings`) or a workflow's own settings (name, category,
    /// key, send window) changed.
    SettingsChanged,
    /// A step id is new.
    StepAdded,
    /// A step id is gone: runs at it end (`step_removed`).
    StepRemoved,
    /// A step does something else (its subject, template, wait, condition, ...).
    StepChanged,
    /// A step is elsewhere in the flow (another branch, or another order).
    StepMoved,
    /// Not a change: how many runs are at a step now.
    RunsAtStep,
}

impl ChangeKind {
    /// Its name in the contract: `workflow_added`, ..., `runs_at_step`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::WorkflowAdded => "workflow_added",
            ChangeKind::WorkflowRemoved => "workflow_removed",
            ChangeKind::WorkflowEnabled => "workflow_enabled",
            ChangeKind::WorkflowDisabled => "workflow_disabled",
            ChangeKind::TriggerChanged => "trigger_changed",
            ChangeKind::EntryChanged => "entry_changed",
            ChangeKind::GoalChanged => "goal_changed",
            ChangeKind::SettingsChanged => "settings_changed",
            ChangeKind::StepAdded => "step_added",
            ChangeKind::StepRemoved => "step_removed",
            ChangeKind::StepChanged => "step_changed",
            ChangeKind::StepMoved => "step_moved",
            ChangeKind::RunsAtStep => "runs_at_step",
        }
    }
}

/// The workflow id of rows about `settings.yaml` (no workflow file can have it: its file is
/// the settings).
pub const SETTINGS: &str = "settings";

/// One line of a plan: a change, or (with [`ChangeKind::RunsAtStep`]) a count of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The workflow id ([`SETTINGS`] for `settings.yaml`).
    pub workflow: String,
    /// What changed.
    pub change: ChangeKind,
    /// The step, for step changes and counts.
    pub step: Option<String>,
    /// What changed, for people (`subject "A" → "B"`); never customer data.
    pub detail: String,
    /// The runs in flight it touches (0 without a store): for `step_removed`, the runs at
    /// the step (they end); for `workflow_disabled` and `workflow_removed`, all the workflow's
    /// runs (they end); for a changed `wait`, the runs waiting there; for other step changes,
    /// added and moved steps, the runs that will still reach the step; for goals and a
    /// workflow's settings, the workflow's runs; for `settings.yaml`, every run; else 0.
    pub runs: u64,
}

impl Row {
    /// A row touching no run yet.
    pub(crate) fn new(
        workflow: &str,
        change: ChangeKind,
        step: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        Row {
            workflow: workflow.to_owned(),
            change,
            step: step.map(str::to_owned),
            detail: detail.into(),
            runs: 0,
        }
    }
}

/// What merging the edit does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Definition changes (and runs ending for reasons the edit did not introduce), with the
    /// runs each touches: by workflow, then in the order of the workflow's steps.
    pub changes: Vec<Row>,
    /// With a store: the runs in flight.
    pub flight: Option<Flight>,
}

impl Plan {
    /// Every row: the changes, then (with a store) the `runs_at_step` counts.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        let at_step = self.flight.iter().flat_map(|f| f.at_step.iter());
        self.changes.iter().chain(at_step)
    }
}

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A customer's stored state is not one this engine reads. Neither the customer (an id
    /// may be an address) nor serde's message (it may quote a value) is shown: where in the
    /// state, and what kind of fault.
    #[error("a stored customer state cannot be read ({kind} at line {line}, column {column})")]
    State {
        /// `syntax`, `data` (a value of the wrong type or range), `eof` or `io`.
        kind: &'static str,
        /// Where in the state's JSON.
        line: usize,
        /// Where in the line.
        column: usize,
    },
}

/// Customers read per page of [`Store::customers`].
pub const PAGE: usize = 500;

/// The plan of `base` → `head`: the definition changes, and with `store` the runs in flight at
/// `now` (every customer read, a page of [`PAGE`] at a time).
pub async fn plan<S: Store>(
    base: &Project,
    head: &Project,
    changed_templates: &BTreeSet<String>,
    store: Option<(&S, DateTime<Utc>)>,
) -> Result<Plan, PlanError> {
    let mut changes = diff(base, head, changed_templates);
    let Some((store, now)) = store else {
        return Ok(Plan {
            changes,
            flight: None,
        });
    };
    let signer = Signer::development();
    let mut flight = Tally::new(base, head, &signer, &changes, changed_templates, now);
    let mut cursor: Option<String> = None;
    loop {
        let page = store.customers(cursor.as_deref(), PAGE).await?;
        for (_, record) in &page.customers {
            let state: CustomerState =
                serde_json::from_slice(&record.state).map_err(|e| PlanError::State {
                    kind: match e.classify() {
                        serde_json::error::Category::Io => "io",
                        serde_json::error::Category::Syntax => "syntax",
                        serde_json::error::Category::Data => "data",
                        serde_json::error::Category::Eof => "eof",
                    },
                    line: e.line(),
                    column: e.column(),
                })?;
            flight.add(&state);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let flight = flight.finish(&mut changes);
    Ok(Plan {
        changes,
        flight: Some(flight),
    })
}
