//! The engine: one customer's state, one input and `now` in; new state and actions out.
//!
//! ```text
//! Engine::handle(CustomerState, Input, now) -> Outcome { state, actions, warnings, journal }
//! ```
//!
//! The engine does no I/O, reads no clock and spawns nothing: it is a pure function of the
//! project (workflows, settings, compiled templates), the signing key, the customer's state, the
//! input and `now`. Rendering templates is part of deciding (a render error skips the email), so
//! it happens here; persisting state and delivering mail is the runner's job (`crate::runner`),
//! through the `Store` and `Mailer` ports. A webhook is decided and recorded here
//! (`webhook.called`); nothing calls it yet.
//!
//! What happens to inputs that arrive late or twice, stated once:
//! - A wake for a customer with nothing due does nothing.
//! - A timer of an ended run cannot fire: ending a run removes it, and the customer's single
//!   timer is recomputed from the runs that remain (`CustomerState::next_wake`).
//! - A run whose step was removed by an edit ends with `step_removed` when it next moves.
//! - A step whose effect already happened (email, webhook, profile update) is never repeated
//!   for the same run, even if an edit moved it after the run's position.
//! - Duplicate event ids are the runner's to drop (the store records processed ids atomically
//!   with the state), so the engine never sees one.
//!
//! Where things are (the deciding modules add methods to `Cx`, the state of one `handle` call):
//! - `mod.rs`: [`Engine`], and [`Engine::handle`] with the order of its work; `Cx` and what
//!   every step uses (scopes, actions, warnings, the customer's zone); ending runs of deleted
//!   or disabled workflows; the order in which an event is taken in.
//! - `compile`: what [`Engine::new`] compiles once (conditions, templates), and evaluating it.
//! - `drive`: waking what is due, and running a run's steps until it blocks or ends.
//! - `send`: `send_email` and the sending rules (consent, suppression, caps, send windows).
//! - `profile`: merging events into the profile, `update_profile`; `orders`: the counted
//!   order facts (`orders_count`, `total_spent`, `first_order_at`, `last_order_at`).
//! - `goal`: `exit_when` goals and `wait_for`s of active runs.
//! - `trigger`: event triggers, entry policies, run ids.
//! - `date`: date triggers.
//! - `action`: what the engine decides ([`Action`]) and what it warns of ([`Warning`]);
//!   `email`: the [`Email`] it sends; `preview`: one email step rendered for sample data
//!   ([`Engine::preview_email`], `nudge preview`).
//! - `program`: a workflow's steps by id; `state`: the customer's state; `scope`: what
//!   templates see; `time`: local-time rules.

mod action;
mod compile;
mod date;
mod drive;
mod email;
mod goal;
pub mod orders;
mod preview;
mod profile;
pub mod program;
mod scope;
mod send;
pub mod state;
pub mod time;
mod trigger;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use minijinja::{Expression, Template};
use serde_json::{Map, Value};

use crate::event::StoreEvent;
use crate::journal::{self, Happened, JournalEntry};
use crate::links::Signer;
use crate::workflow::Project;
use program::Program;
use state::{CustomerState, Run, TriggerDetail};

pub use action::{
    Action, ActionKind, EndReason, RefuseReason, SkipReason, Warning, WebhookCall, customer_ref,
};
/// The time zone type of [`Action::zone`], for callers that show local times.
pub use chrono_tz::Tz;
pub use drive::split_branch;
pub use email::Email;
pub use preview::{EmailSample, PreviewError};
pub use trigger::run_id;

/// The most active runs a customer may have. A trigger (event or date) that would start one
/// more applies its event as usual (profile, goals, `wait_for`s) and refuses only the new run
/// (`run.refused`, reason `too_many_runs`).
///
/// A real store never comes near it: the shipped workflows keep a run per order for two weeks
/// at most, so 100 active runs means 100 orders shipped or delivered in a fortnight by one
/// customer. What it stops is a runaway feed (a loop resending events under new ids, a bulk
/// import replayed as orders), whose runs would make every input of that customer read and
/// write an ever larger state. It also keeps the state, one store item, small: 100 runs each
/// keeping a trigger event of a few kilobytes stay well under
/// [`MAX_STATE_BYTES`](crate::runner::MAX_STATE_BYTES).
pub const MAX_ACTIVE_RUNS: usize = 100;

/// What the engine is asked to react to.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A store event for this customer.
    Event(&'a StoreEvent),
    /// The customer's timer fired: do everything due at or before `now`.
    Wake,
}

/// The engine's answer: the customer's new state, what happened, in order, and what the
/// operator should hear of.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The new state (to be stored with the next timer, `state.next_wake()`).
    pub state: CustomerState,
    /// What happened, in order.
    pub actions: Vec<Action>,
    /// Warnings, in order: the runner logs them once the outcome is committed (a retried
    /// input decides again, and would otherwise warn twice).
    pub warnings: Vec<Warning>,
    /// The customer's journal entries of this input, in the order things happened: one per
    /// action (the same order as `actions`) and, between them, the decisions that are not
    /// actions (`condition.checked`, `split.chosen`, `wait.started`), each with no address
    /// ([`journal::redact`]). The runner stores them with the state (see [`crate::journal`]).
    pub journal: Vec<JournalEntry>,
}

/// The engine for one project. Build it once (it compiles every expression); it is `Sync`.
pub struct Engine<'p> {
    project: &'p Project,
    signer: &'p Signer,
    programs: BTreeMap<&'p str, Program<'p>>,
    expressions: HashMap<&'p str, Expression<'p, 'p>>,
    /// The paths each expression reads (`customer.orders_count`), sorted, for the journal's
    /// `condition.checked` entries.
    reads: HashMap<&'p str, Vec<String>>,
    templates: HashMap<&'p str, Template<'p, 'p>>,
    /// Workflows whose steps read `event` (the trigger's detail); runs of the others do not
    /// keep it, which keeps long-waiting runs small.
    keeps_trigger: HashSet<&'p str>,
    /// `store` in templates, converted once.
    store_scope: minijinja::Value,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workflows", &self.programs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<'p> Engine<'p> {
    /// Prepares `project`: indexes steps and compiles every condition and template string once.
    pub fn new(project: &'p Project, signer: &'p Signer) -> Self {
        let expressions = compile::expressions(project);
        let templates = compile::templates(project);
        let programs = project
            .workflows
            .iter()
            .map(|w| (w.id.as_str(), Program::new(w)))
            .collect();
        let keeps_trigger = compile::keeping_trigger(project, &expressions, &templates);
        let reads = compile::reads(&expressions);
        Self {
            project,
            signer,
            programs,
            expressions,
            reads,
            templates,
            keeps_trigger,
            store_scope: compile::to_value(&project.settings.store),
        }
    }

    /// The project the engine runs (its settings name the store, e.g. on the unsubscribe
    /// page).
    pub fn project(&self) -> &'p Project {
        self.project
    }

    /// Reacts to one input for one customer.
    pub fn handle(&self, state: CustomerState, input: Input<'_>, now: DateTime<Utc>) -> Outcome {
        let mut cx = Cx {
            engine: self,
            state,
            now,
            actions: Vec::new(),
            warnings: Vec::new(),
            journal: Vec::new(),
            unsubscribe: std::cell::OnceCell::new(),
        };
        cx.reconcile_workflows();
        cx.fire_due();
        if let Input::Event(event) = input {
            cx.on_event(event);
        }
        cx.sync_dates();
        cx.prune_sends();
        cx.prune_entries();
        Outcome {
            state: cx.state,
            actions: cx.actions,
            warnings: cx.warnings,
            // No address in the journal, whatever the workflows read or render.
            journal: cx.journal.into_iter().map(journal::redact).collect(),
        }
    }
}

/// One `handle` call in progress.
struct Cx<'e, 'p> {
    engine: &'e Engine<'p>,
    state: CustomerState,
    now: DateTime<Utc>,
    actions: Vec<Action>,
    warnings: Vec<Warning>,
    /// The journal entries so far (see [`Outcome::journal`]).
    journal: Vec<JournalEntry>,
    /// The customer's signed unsubscribe link, computed on first use.
    unsubscribe: std::cell::OnceCell<Option<Arc<str>>>,
}

impl<'p> Cx<'_, 'p> {
    fn settings(&self) -> &'p crate::workflow::model::Settings {
        &self.engine.project.settings
    }

    /// The customer's time zone: the profile's, else the store's.
    fn zone(&self) -> Tz {
        time::customer_zone(self.state.attr_str("timezone"), self.settings().timezone)
    }

    /// Records an action of `run`, now.
    fn push(&mut self, run: &Run, step: Option<&str>, kind: ActionKind) {
        self.record(&run.workflow, &run.id, step, kind);
    }

    /// Records an action of the run `run` of `workflow` (which may not exist: a refused run),
    /// now.
    fn record(&mut self, workflow: &str, run: &str, step: Option<&str>, kind: ActionKind) {
        self.note(workflow, run, step, Happened::of_action(&kind));
        self.actions.push(Action {
            at: self.now,
            customer: self.state.id.clone(),
            workflow: workflow.to_owned(),
            run: run.to_owned(),
            step: step.map(str::to_owned),
            zone: self.zone(),
            kind,
        });
    }

    /// Journals a decision of `run` of `workflow` (and `step`), now.
    fn note(&mut self, workflow: &str, run: &str, step: Option<&str>, what: Happened) {
        self.journal.push(JournalEntry {
            at: self.now,
            workflow: Some(workflow.to_owned()),
            run: Some(run.to_owned()),
            step: step.map(str::to_owned),
            zone: Some(self.zone().name().to_owned()),
            what,
        });
    }

    /// Journals a decision of `run` (see [`Cx::note`]).
    fn note_run(&mut self, run: &Run, step: &str, what: Happened) {
        self.note(&run.workflow, &run.id, Some(step), what);
    }

    /// Warns the operator, now, about `workflow` (and `step`) for this customer; the runner
    /// logs it (see [`Warning`]). `message` must not quote customer data. For a render
    /// failure, with its template and line: [`Cx::warn_render`].
    fn warn(&mut self, workflow: &str, step: Option<&str>, message: impl Into<String>) {
        let warning = self.warning(workflow, step, message);
        self.warnings.push(warning);
    }

    /// A warning as [`Cx::warn`] makes it, not kept yet (see [`Cx::warn_with`]).
    fn warning(&self, workflow: &str, step: Option<&str>, message: impl Into<String>) -> Warning {
        Warning {
            at: self.now,
            workflow: workflow.to_owned(),
            step: step.map(str::to_owned),
            template: None,
            line: None,
            customer_ref: customer_ref(&self.state.id).into_owned(),
            message: message.into(),
        }
    }

    /// Keeps a warning made with [`Cx::warning`].
    fn warn_with(&mut self, warning: Warning) {
        self.warnings.push(warning);
    }

    /// Warns that `what` (`email`, `profile value`, ...) of `run`'s `step` failed to render:
    /// `place` is the template or value (`welcome.mjml`, `subject`, `set.vip_since`, `body`),
    /// with the error's line. The message names the error's kind, never a value.
    fn warn_render(
        &mut self,
        run: &Run,
        step: &str,
        place: &str,
        what: &str,
        e: &minijinja::Error,
    ) {
        let message = format!(
            "{what} failed to render: {}",
            crate::workflow::template::render_failure(e)
        );
        let warning = self.warning(&run.workflow, Some(step), message);
        self.warn_with(warning.in_template(place, e.line()));
    }

    /// Records the end of `run` (which the caller has already taken out of `state.runs`).
    fn end(&mut self, run: &Run, reason: EndReason) {
        self.push(run, None, ActionKind::RunEnded { reason });
    }

    /// The customer's signed unsubscribe link, if the settings have an unsubscribe URL.
    fn unsubscribe_link(&self) -> Option<Arc<str>> {
        self.unsubscribe
            .get_or_init(|| {
                self.settings().unsubscribe_url.as_ref().map(|base| {
                    self.engine
                        .signer
                        .unsubscribe_url(base, &self.state.id)
                        .into()
                })
            })
            .clone()
    }

    /// What templates see (see [`scope::Scope`]): `event` is the trigger's or the new event's
    /// detail.
    fn scope(&self, run: Option<&Run>, event: Option<Arc<Map<String, Value>>>) -> minijinja::Value {
        minijinja::Value::from_object(scope::Scope {
            customer: Arc::clone(&self.state.profile),
            event,
            store: self.engine.store_scope.clone(),
            run: run.map(|r| (r.id.clone(), r.started_at)),
            unsubscribe: self.unsubscribe_link(),
            waited: run.and_then(|r| r.waited),
        })
    }

    /// What a run's steps see: `event` is its trigger's detail (none when not kept).
    fn run_scope(&self, run: &Run) -> minijinja::Value {
        self.scope(
            Some(run),
            run.trigger.as_ref().and_then(TriggerDetail::detail),
        )
    }

    /// Ends runs of workflows that were deleted or disabled since they started.
    fn reconcile_workflows(&mut self) {
        let runs = std::mem::take(&mut self.state.runs);
        for run in runs {
            match self.engine.programs.get(run.workflow.as_str()) {
                None => self.end(&run, EndReason::WorkflowRemoved),
                Some(p) if !p.workflow.enabled => self.end(&run, EndReason::WorkflowDisabled),
                Some(_) => self.state.runs.push(run),
            }
        }
    }

    /// A new event: the profile (counted order facts, then the event's own customer fields)
    /// and mail feedback first, then goals and `wait_for`s of active
    /// runs, then triggers (so an event never ends the run it starts).
    fn on_event(&mut self, event: &StoreEvent) {
        self.count_order(event);
        self.merge_profile(event);
        self.apply_feedback(event);
        let detail = Some(Arc::clone(&event.detail));
        self.match_active_runs(event, &detail);
        self.start_triggered(event, &detail);
    }
}
