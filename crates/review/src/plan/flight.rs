//! What an edit does to the runs in flight, computed with the engine's own rules.
//!
//! Each run is at a step id, in a phase (waiting, waiting for an event, an email deferred to
//! the send window). Under the edited workflows (`crates/core/src/engine`):
//!
//! - a run of a workflow that is gone or disabled ends (`workflow_removed`,
//!   `workflow_disabled`) at its customer's next input, whatever it is: the engine's first
//!   act on any input (`reconcile_workflows`). Without events that input is the customer's
//!   next timer ([`Engine::next_wake`]).
//! - a run at a step id the workflow no longer has ends with `step_removed` when it next
//!   moves: when its phase's time comes (its wait's, timeout's or deferral's stored end:
//!   [`Engine::run_wake`]). Before then an event may end it otherwise: a goal of its
//!   workflow (`goal`) or a new trigger of a `restart` workflow (`restarted`); an event it
//!   waits for cannot move it (the `wait_for` is gone).
//! - a run waiting at a `wait` whose length or time of day changed wakes at the step's new
//!   end counted from when it began to wait, at once (at `now`) if that has passed
//!   ([`Engine::run_wake`]); a state written before the wait's start was kept keeps its end.
//! - a run will still reach the steps after its own (its own step too when its email was
//!   deferred), in the workflow as edited, except steps whose effect already happened for it
//!   (`done`: never repeated): `ab_split` branches are the customer's (the engine's
//!   [`split_branch`]); both sides of an `if` count, its condition being read only then.
//!
//! Nothing here names a customer in what it prints; [`Ending`] and [`MovedWait`] keep the ids
//! for callers that compare (tests).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use nudge_core::engine::program::{Next, Program, StepNode};
use nudge_core::engine::state::{CustomerState, Phase, Run};
use nudge_core::engine::{Engine, split_branch};
use nudge_core::links::Signer;
use nudge_core::workflow::Project;
use nudge_core::workflow::model::{StepKind, Workflow};

use super::diff::{Effect, step_effects};
use super::{ChangeKind, Row, SETTINGS};

/// A run the edit ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The customer.
    pub customer: String,
    /// The run's id.
    pub run: String,
    /// Its workflow.
    pub workflow: String,
    /// The step it is at.
    pub step: String,
    /// Why it ends: [`ChangeKind::StepRemoved`], [`ChangeKind::WorkflowDisabled`] or
    /// [`ChangeKind::WorkflowRemoved`].
    pub reason: ChangeKind,
    /// When, if no event comes first (not before `now`).
    pub at: DateTime<Utc>,
}

/// A run waiting at an edited `wait` whose end moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedWait {
    /// The customer.
    pub customer: String,
    /// The run's id.
    pub run: String,
    /// Its workflow.
    pub workflow: String,
    /// The `wait` step.
    pub step: String,
    /// When it would wake without the edit.
    pub old: DateTime<Utc>,
    /// When it wakes now (not before `now`: a new end already past is at once).
    pub new: DateTime<Utc>,
}

/// The runs in flight and what the edit does to them.
#[derive(Debug, Clone, PartialEq)]
pub struct Flight {
    /// The time the plan is made at (the store's clock, or `--at`).
    pub at: DateTime<Utc>,
    /// Customers read.
    pub customers: u64,
    /// Runs in flight.
    pub runs: u64,
    /// How many runs are at each step: [`ChangeKind::RunsAtStep`] rows, by workflow then step.
    pub at_step: Vec<Row>,
    /// The runs that end, by workflow, step and customer.
    pub ending: Vec<Ending>,
    /// The runs whose wait ends at another time, by workflow, step and customer.
    pub moved: Vec<MovedWait>,
    /// The changed `send_email` steps runs will still reach: `(workflow, step, runs)`.
    pub different_mail: Vec<(String, String, u64)>,
    /// The runs that will still reach at least one of those steps.
    pub runs_with_different_mail: u64,
}

/// Reads runs one customer at a time ([`Tally::add`]), then says what the edit does to them
/// ([`Tally::finish`]).
pub struct Tally<'p> {
    base: Engine<'p>,
    head: Engine<'p>,
    head_project: &'p Project,
    programs: BTreeMap<&'p str, Program<'p>>,
    /// Per workflow and step changed: what about.
    effects: BTreeMap<(String, String), Vec<Effect>>,
    now: DateTime<Utc>,
    customers: u64,
    runs: u64,
    /// Runs per (workflow, step), per phase name.
    at_step: BTreeMap<(String, String), BTreeMap<&'static str, u64>>,
    /// Runs that will still reach each (workflow, step).
    reach: BTreeMap<(String, String), u64>,
    /// Runs of each workflow.
    of_workflow: BTreeMap<String, u64>,
    /// Runs that will reach a step whose mail changed.
    mail_runs: u64,
    ending: Vec<Ending>,
    moved: Vec<MovedWait>,
}

impl<'p> Tally<'p> {
    /// A tally of runs at `now`, for the edit `base` → `head` whose changes are `changes`
    /// ([`super::diff`] with `changed_templates`). `signer` only signs links, which decide
    /// nothing here.
    pub fn new(
        base: &'p Project,
        head: &'p Project,
        signer: &'p Signer,
        changes: &[Row],
        changed_templates: &BTreeSet<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let workflow = |p: &'p Project, id: &str| p.workflows.iter().find(|w| w.id == id);
        let effects = changes
            .iter()
            .filter(|r| r.change == ChangeKind::StepChanged)
            .filter_map(|r| {
                let step = r.step.as_deref()?;
                let (b, h) = (workflow(base, &r.workflow)?, workflow(head, &r.workflow)?);
                let effects = step_effects(b, h, step, changed_templates)?;
                Some(((r.workflow.clone(), step.to_owned()), effects))
            })
            .collect();
        Tally {
            base: Engine::new(base, signer),
            head: Engine::new(head, signer),
            head_project: head,
            programs: head
                .workflows
                .iter()
                .map(|w| (w.id.as_str(), Program::new(w)))
                .collect(),
            effects,
            now,
            customers: 0,
            runs: 0,
            at_step: BTreeMap::new(),
            reach: BTreeMap::new(),
            of_workflow: BTreeMap::new(),
            mail_runs: 0,
            ending: Vec::new(),
            moved: Vec::new(),
        }
    }

    /// Takes in one customer's runs.
    pub fn add(&mut self, state: &CustomerState) {
        self.customers += 1;
        for run in &state.runs {
            self.add_run(state, run);
        }
    }

    fn add_run(&mut self, state: &CustomerState, run: &Run) {
        self.runs += 1;
        let key = (run.workflow.clone(), run.step.clone());
        *self
            .at_step
            .entry(key.clone())
            .or_default()
            .entry(phase_name(run.phase))
            .or_default() += 1;
        *self.of_workflow.entry(run.workflow.clone()).or_default() += 1;
        let program = self.programs.get(run.workflow.as_str());
        let reason = match program {
            None => Some(ChangeKind::WorkflowRemoved),
            Some(p) if !p.workflow.enabled => Some(ChangeKind::WorkflowDisabled),
            Some(p) if p.get(&run.step).is_none() => Some(ChangeKind::StepRemoved),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            // A gone or disabled workflow's runs end at the customer's next input; a run at a
            // removed step when its own phase is over.
            let at = match reason {
                ChangeKind::StepRemoved => self.head.run_wake(state, run),
                _ => self.head.next_wake(state).unwrap_or(self.now),
            };
            self.ending.push(Ending {
                customer: state.id.clone(),
                run: run.id.clone(),
                workflow: run.workflow.clone(),
                step: run.step.clone(),
                reason,
                at: at.max(self.now),
            });
            return;
        }
        if matches!(run.phase, Phase::Waiting { .. })
            && self
                .effects
                .get(&key)
                .is_some_and(|e| e.contains(&Effect::Wait))
        {
            let (old, new) = (
                self.base.run_wake(state, run),
                self.head.run_wake(state, run),
            );
            if old != new {
                self.moved.push(MovedWait {
                    customer: state.id.clone(),
                    run: run.id.clone(),
                    workflow: run.workflow.clone(),
                    step: run.step.clone(),
                    old: old.max(self.now),
                    new: new.max(self.now),
                });
            }
        }
        if let Some((program, node)) = program.and_then(|p| Some((p, p.get(&run.step)?))) {
            let mut changed_mail = false;
            for step in pending_steps(program, node, run, &state.id) {
                let key = (run.workflow.clone(), step.to_owned());
                changed_mail |= self
                    .effects
                    .get(&key)
                    .is_some_and(|e| e.contains(&Effect::Mail));
                *self.reach.entry(key).or_default() += 1;
            }
            self.mail_runs += u64::from(changed_mail);
        }
    }

    /// What the edit does to the runs taken in: fills in `changes`' runs (adding a row for
    /// runs that end for a reason no change names: a step or workflow gone before this edit).
    pub fn finish(mut self, changes: &mut Vec<Row>) -> Flight {
        self.ending.sort_by(|a, b| {
            (&a.workflow, &a.step, &a.customer, &a.run).cmp(&(
                &b.workflow,
                &b.step,
                &b.customer,
                &b.run,
            ))
        });
        self.moved.sort_by(|a, b| {
            (&a.workflow, &a.step, &a.customer, &a.run).cmp(&(
                &b.workflow,
                &b.step,
                &b.customer,
                &b.run,
            ))
        });
        for row in changes.iter_mut() {
            row.runs = self.runs_touched(row);
        }
        self.add_unnamed_endings(changes);
        let different_mail = changes
            .iter()
            .filter(|r| r.change == ChangeKind::StepChanged && r.runs > 0)
            .filter_map(|r| {
                let step = r.step.clone()?;
                let key = (r.workflow.clone(), step.clone());
                let mail = self.effects.get(&key)?.contains(&Effect::Mail);
                mail.then(|| (r.workflow.clone(), step, r.runs))
            })
            .collect();
        Flight {
            at: self.now,
            customers: self.customers,
            runs: self.runs,
            at_step: self.at_step_rows(),
            ending: self.ending,
            moved: self.moved,
            different_mail,
            runs_with_different_mail: self.mail_runs,
        }
    }

    /// The runs `row` touches (the contract's `runs`).
    fn runs_touched(&self, row: &Row) -> u64 {
        let ends = |reason: ChangeKind| {
            self.ending
                .iter()
                .filter(|e| {
                    e.reason == reason
                        && e.workflow == row.workflow
                        && (reason != ChangeKind::StepRemoved || Some(&e.step) == row.step.as_ref())
                })
                .count() as u64
        };
        let step_key = row.step.as_ref().map(|s| (row.workflow.clone(), s.clone()));
        match row.change {
            ChangeKind::StepRemoved
            | ChangeKind::WorkflowDisabled
            | ChangeKind::WorkflowRemoved => ends(row.change),
            ChangeKind::StepChanged => {
                let Some(key) = step_key else { return 0 };
                if self
                    .effects
                    .get(&key)
                    .is_some_and(|e| e.contains(&Effect::Wait))
                {
                    self.at_step
                        .get(&key)
                        .and_then(|phases| phases.get("waiting").copied())
                        .unwrap_or(0)
                } else {
                    self.reach.get(&key).copied().unwrap_or(0)
                }
            }
            ChangeKind::StepAdded | ChangeKind::StepMoved => step_key
                .and_then(|k| self.reach.get(&k).copied())
                .unwrap_or(0),
            // settings.yaml (send window, cap, sender) touches every run.
            ChangeKind::SettingsChanged if row.workflow == SETTINGS => self.runs,
            ChangeKind::GoalChanged | ChangeKind::SettingsChanged => {
                self.of_workflow.get(&row.workflow).copied().unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// A row for each group of ending runs no change names (their step or workflow was gone
    /// before this edit: they end all the same).
    fn add_unnamed_endings(&self, changes: &mut Vec<Row>) {
        let mut groups: BTreeMap<(&str, ChangeKind, Option<&str>), u64> = BTreeMap::new();
        for e in &self.ending {
            let step = (e.reason == ChangeKind::StepRemoved).then_some(e.step.as_str());
            let named = changes.iter().any(|r| {
                r.change == e.reason && r.workflow == e.workflow && r.step.as_deref() == step
            });
            if !named {
                *groups.entry((&e.workflow, e.reason, step)).or_default() += 1;
            }
        }
        for ((workflow, reason, step), runs) in groups {
            let detail = match reason {
                ChangeKind::StepRemoved => "not in the workflow before this change either",
                ChangeKind::WorkflowDisabled => "disabled before this change too",
                _ => "not in the workflows before this change either",
            };
            changes.push(Row {
                runs,
                ..Row::new(workflow, reason, step, detail)
            });
        }
    }

    /// The `runs_at_step` rows: by workflow, then in the order of the edited workflow's steps
    /// (steps it no longer has last, by id).
    fn at_step_rows(&self) -> Vec<Row> {
        let order = |workflow: &str, step: &str| -> usize {
            self.head_project
                .workflows
                .iter()
                .find(|w| w.id == workflow)
                .map(Workflow::all_steps)
                .and_then(|steps| steps.iter().position(|s| s.id == step))
                .unwrap_or(usize::MAX)
        };
        let mut keys: Vec<_> = self.at_step.keys().collect();
        keys.sort_by_key(|(w, s)| (w.clone(), order(w, s), s.clone()));
        keys.into_iter()
            .map(|key| {
                let phases = &self.at_step[key];
                let detail = phases
                    .iter()
                    .map(|(phase, n)| format!("{n} {phase}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                Row {
                    runs: phases.values().sum(),
                    ..Row::new(&key.0, ChangeKind::RunsAtStep, Some(&key.1), detail)
                }
            })
            .collect()
    }
}

/// The name of a phase: `waiting`, `waiting_for`, `deferred`.
fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Waiting { .. } => "waiting",
        Phase::WaitingFor { .. } => "waiting_for",
        Phase::Deferred { .. } => "deferred",
    }
}

/// The steps `run`, at `node` of `program` (the edited workflow), may still do: from the step
/// after its own (its own, when its email was deferred and is tried again), following every
/// side of an `if` and the customer's side of an `ab_split`, without the steps already done.
pub fn pending_steps<'p>(
    program: &Program<'p>,
    node: &StepNode<'p>,
    run: &Run,
    customer: &str,
) -> BTreeSet<&'p str> {
    let start = match run.phase {
        Phase::Deferred { .. } => Next::Step(node.step.id.as_str()),
        Phase::Waiting { .. } | Phase::WaitingFor { .. } => node.next,
    };
    let mut stack = vec![start];
    let mut seen = BTreeSet::new();
    let mut out = BTreeSet::new();
    while let Some(next) = stack.pop() {
        let Next::Step(id) = next else { continue };
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = program.get(id) else {
            continue;
        };
        if !run.done.iter().any(|d| d == id) {
            out.insert(id);
        }
        match &node.step.kind {
            StepKind::If(_) => stack.extend(node.branches.iter().copied()),
            StepKind::AbSplit(branches) => {
                let weights: Vec<u32> = branches.iter().map(|b| b.weight).collect();
                let side = split_branch(&program.workflow.id, id, customer, &weights);
                if let Some(b) = node.branches.get(side) {
                    stack.push(*b);
                }
            }
            _ => stack.push(node.next),
        }
    }
    out
}
