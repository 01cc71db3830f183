//! The engine: one customer's state, one input and `now` in; new state and actions out.
//!
//! ```text
//! Engine::handle(CustomerState, Input, now) -> Outcome { state, actions }
//! ```
//!
//! The engine does no I/O, reads no clock and spawns nothing: it is a pure function of the
//! project (workflows, settings, compiled templates), the signing key, the customer's state, the
//! input and `now`. Rendering templates is part of deciding (a render error skips the email), so
//! it happens here; delivering mail, calling webhooks and persisting state is the runner's job
//! (`crate::runner`), through the `Store` and `Mailer` interfaces.
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

mod email;
pub mod program;
mod scope;
pub mod state;
pub mod time;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use chrono_tz::Tz;
use minijinja::{Expression, Template};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::StoreEvent;
use crate::links::Signer;
use crate::workflow::Project;
use crate::workflow::model::{
    Category, EntryPolicy, EventFilter, HttpMethod, Mailbox, ProfileValue, SendEmail, StepKind,
    Trigger, Wait, Workflow,
};
pub use email::Email;
use program::{Next, Program};
use state::{CustomerState, DateArm, EntryRecord, Phase, Run, Suppression};

/// What the engine is asked to react to.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A store event for this customer.
    Event(&'a StoreEvent),
    /// The customer's timer fired: do everything due at or before `now`.
    Wake,
}

/// Something the engine decided, at a moment, for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The customer.
    pub customer: String,
    /// The workflow.
    pub workflow: String,
    /// The run.
    pub run: String,
    /// The step, for step-level actions.
    pub step: Option<String>,
    /// What happened.
    pub kind: ActionKind,
}

/// The kinds of [`Action`]. `EmailSent` and `WebhookCalled` are effects the runner carries out;
/// the others are records.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// A run began.
    RunStarted,
    /// A run ended.
    RunEnded {
        /// Why.
        reason: EndReason,
    },
    /// Send this email.
    EmailSent(Box<Email>),
    /// An email was not sent.
    EmailSkipped {
        /// Which sending rule stopped it.
        reason: SkipReason,
    },
    /// An email is held for the send window.
    EmailDeferred {
        /// The window's next opening, when the rules are checked again.
        until: DateTime<Utc>,
    },
    /// `update_profile` changed attributes.
    ProfileUpdated {
        /// The attributes after the change (removed tags show in the new `tags`).
        changes: Map<String, Value>,
    },
    /// Call this webhook.
    WebhookCalled(Box<WebhookCall>),
}

impl ActionKind {
    /// The action's name in timelines (`run.started`, `email.sent`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::RunStarted => "run.started",
            ActionKind::RunEnded { .. } => "run.ended",
            ActionKind::EmailSent(_) => "email.sent",
            ActionKind::EmailSkipped { .. } => "email.skipped",
            ActionKind::EmailDeferred { .. } => "email.deferred",
            ActionKind::ProfileUpdated { .. } => "profile.updated",
            ActionKind::WebhookCalled(_) => "webhook.called",
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// It ran out of steps.
    Completed,
    /// An `exit_when` goal matched.
    Goal,
    /// A new trigger under `entry: restart`.
    Restarted,
    /// An `exit` step.
    Exited,
    /// Its step was removed by an edit.
    StepRemoved,
    /// Its workflow was disabled.
    WorkflowDisabled,
    /// Its workflow was deleted.
    WorkflowRemoved,
}

/// Why an email was skipped (the sending rules, in their order, and rendering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The address is missing or not an address.
    InvalidAddress,
    /// A hard bounce or complaint.
    Suppressed,
    /// Marketing without `accepts_marketing: true`.
    NoConsent,
    /// Marketing after a recorded unsubscribe.
    Unsubscribed,
    /// Marketing over the frequency cap.
    FrequencyCap,
    /// The template failed to render.
    RenderError,
}

impl EndReason {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Completed => "completed",
            EndReason::Goal => "goal",
            EndReason::Restarted => "restarted",
            EndReason::Exited => "exited",
            EndReason::StepRemoved => "step_removed",
            EndReason::WorkflowDisabled => "workflow_disabled",
            EndReason::WorkflowRemoved => "workflow_removed",
        }
    }
}

impl SkipReason {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::InvalidAddress => "invalid_address",
            SkipReason::Suppressed => "suppressed",
            SkipReason::NoConsent => "no_consent",
            SkipReason::Unsubscribed => "unsubscribed",
            SkipReason::FrequencyCap => "frequency_cap",
            SkipReason::RenderError => "render_error",
        }
    }
}

/// A webhook the runner must call.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookCall {
    /// `<run>.<step>`: sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    /// Where.
    pub url: String,
    /// `POST`, `PUT` or `PATCH`.
    pub method: &'static str,
    /// The rendered body.
    pub body: Value,
    /// Name of the stored secret that signs the body.
    pub secret: Option<String>,
}

/// The engine's answer: the customer's new state and what happened, in order.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The new state (to be stored with the next timer, `state.next_wake()`).
    pub state: CustomerState,
    /// What happened, in order.
    pub actions: Vec<Action>,
}

/// The engine for one project. Build it once (it compiles every expression); it is `Sync`.
pub struct Engine<'p> {
    project: &'p Project,
    signer: &'p Signer,
    programs: BTreeMap<&'p str, Program<'p>>,
    expressions: HashMap<&'p str, Expression<'p, 'p>>,
    templates: HashMap<&'p str, Template<'p, 'p>>,
    /// Workflows whose steps read `event` (the trigger's detail); runs of the others do not
    /// keep it, which keeps long-waiting runs small.
    keeps_trigger: std::collections::HashSet<&'p str>,
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

/// A day, less the hour a daylight-saving change takes away: `every: 365d` between two
/// birthdays at 09:00 local must allow a year that is an hour short.
const DST_TOLERANCE: ChronoDuration = ChronoDuration::hours(1);

impl<'p> Engine<'p> {
    /// Prepares `project`: indexes steps and compiles every condition and template string once.
    pub fn new(project: &'p Project, signer: &'p Signer) -> Self {
        let env = project.templates.env();
        let mut expressions = HashMap::new();
        let mut templates = HashMap::new();
        let mut expr = |src: &'p str| {
            if let Ok(e) = env.compile_expression(src) {
                expressions.insert(src, e);
            }
        };
        for w in &project.workflows {
            match &w.trigger {
                Trigger::Event(f) => f.when.iter().for_each(|e| expr(&e.source)),
                Trigger::Date(d) => d.when.iter().for_each(|e| expr(&e.source)),
            }
            w.key.iter().for_each(|e| expr(&e.source));
            for goal in &w.exit_when {
                goal.when.iter().for_each(|e| expr(&e.source));
            }
            for step in w.all_steps() {
                match &step.kind {
                    StepKind::If(b) => expr(&b.condition.source),
                    StepKind::WaitFor(wf) => wf.filter.when.iter().for_each(|e| expr(&e.source)),
                    _ => {}
                }
            }
        }
        let mut tmpl = |src: &'p str| {
            if let Ok(t) = env.template_from_str(src) {
                templates.insert(src, t);
            }
        };
        for w in &project.workflows {
            for step in w.all_steps() {
                match &step.kind {
                    StepKind::SendEmail(e) => {
                        tmpl(&e.subject.source);
                        e.preheader.iter().for_each(|p| tmpl(&p.source));
                    }
                    StepKind::UpdateProfile(u) => {
                        for (_, v) in &u.set {
                            if let ProfileValue::Template(t) = v {
                                tmpl(&t.source);
                            }
                        }
                    }
                    StepKind::Webhook(h) => {
                        if let Some(body) = &h.body {
                            for_each_string(body, &mut tmpl);
                        }
                    }
                    _ => {}
                }
            }
        }
        let programs = project
            .workflows
            .iter()
            .map(|w| (w.id.as_str(), Program::new(w)))
            .collect();
        let keeps_trigger = project
            .workflows
            .iter()
            .filter(|w| steps_read_event(w, project, &expressions, &templates))
            .map(|w| w.id.as_str())
            .collect();
        Self {
            project,
            signer,
            programs,
            expressions,
            templates,
            keeps_trigger,
            store_scope: to_value(&project.settings.store),
        }
    }

    /// Reacts to one input for one customer.
    pub fn handle(&self, state: CustomerState, input: Input<'_>, now: DateTime<Utc>) -> Outcome {
        let mut cx = Cx {
            engine: self,
            state,
            now,
            actions: Vec::new(),
            unsubscribe: std::cell::OnceCell::new(),
        };
        cx.reconcile_workflows();
        cx.fire_due();
        if let Input::Event(event) = input {
            cx.on_event(event);
        }
        cx.sync_dates();
        cx.prune_sends();
        Outcome {
            state: cx.state,
            actions: cx.actions,
        }
    }

    fn truthy(&self, source: &str, scope: &minijinja::Value) -> bool {
        match self.expressions.get(source) {
            // A failing condition (undefined in a comparison, a type error) is false.
            Some(e) => e.eval(scope).map(|v| v.is_true()).unwrap_or(false),
            None => false,
        }
    }

    fn eval(&self, source: &str, scope: &minijinja::Value) -> Option<minijinja::Value> {
        let v = self.expressions.get(source)?.eval(scope).ok()?;
        (!v.is_undefined() && !v.is_none()).then_some(v)
    }

    fn render(&self, source: &str, scope: &minijinja::Value) -> Result<String, minijinja::Error> {
        match self.templates.get(source) {
            Some(t) => t.render(scope),
            None => self.project.templates.env().render_str(source, scope),
        }
    }
}

/// Whether any step of `w` reads `event`: conditions, subjects, preheaders, template files,
/// profile values or webhook bodies. (Goals, `wait_for` filters and keys read the *new* event,
/// not the trigger.)
fn steps_read_event(
    w: &Workflow,
    project: &Project,
    expressions: &HashMap<&str, Expression<'_, '_>>,
    templates: &HashMap<&str, Template<'_, '_>>,
) -> bool {
    let expr = |src: &str| {
        expressions
            .get(src)
            .is_none_or(|e| e.undeclared_variables(false).contains("event"))
    };
    let tmpl = |src: &str| {
        templates
            .get(src)
            .is_none_or(|t| t.undeclared_variables(false).contains("event"))
    };
    w.all_steps().iter().any(|step| match &step.kind {
        StepKind::If(b) => expr(&b.condition.source),
        StepKind::SendEmail(e) => {
            tmpl(&e.subject.source)
                || e.preheader.as_ref().is_some_and(|p| tmpl(&p.source))
                || project
                    .templates
                    .file(&e.template)
                    .is_none_or(|f| f.names.contains("event"))
        }
        StepKind::UpdateProfile(u) => u
            .set
            .iter()
            .any(|(_, v)| matches!(v, ProfileValue::Template(t) if tmpl(&t.source))),
        StepKind::Webhook(h) => {
            let mut reads = false;
            if let Some(body) = &h.body {
                for_each_string(body, &mut |s| reads |= tmpl(s));
            }
            reads
        }
        _ => false,
    })
}

fn for_each_string<'a>(value: &'a Value, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| for_each_string(i, f)),
        Value::Object(map) => map.values().for_each(|v| for_each_string(v, f)),
        _ => {}
    }
}

/// A value as templates see it.
fn to_value<T: Serialize>(value: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

/// `event` in templates run for `run`: its trigger's detail (none when not kept).
fn trigger_scope(run: &Run) -> Option<Arc<Map<String, Value>>> {
    run.trigger.clone()
}

/// What a step did to its run.
enum Flow {
    Continue,
    Block(Phase),
}

/// One `handle` call in progress.
struct Cx<'e, 'p> {
    engine: &'e Engine<'p>,
    state: CustomerState,
    now: DateTime<Utc>,
    actions: Vec<Action>,
    /// The customer's signed unsubscribe link, computed on first use.
    unsubscribe: std::cell::OnceCell<Option<Arc<str>>>,
}

impl<'p> Cx<'_, 'p> {
    fn settings(&self) -> &'p crate::workflow::model::Settings {
        &self.engine.project.settings
    }

    fn zone(&self) -> Tz {
        time::customer_zone(self.state.attr_str("timezone"), self.settings().timezone)
    }

    fn push(&mut self, run: &Run, step: Option<&str>, kind: ActionKind) {
        self.actions.push(Action {
            at: self.now,
            customer: self.state.id.clone(),
            workflow: run.workflow.clone(),
            run: run.id.clone(),
            step: step.map(str::to_owned),
            kind,
        });
    }

    fn end(&mut self, run: &Run, reason: EndReason) {
        self.push(run, None, ActionKind::RunEnded { reason });
    }

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

    /// Wakes everything due at or before `now`, earliest first.
    fn fire_due(&mut self) {
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

    fn wake_run(&mut self, index: usize) {
        let mut run = self.state.runs.swap_remove(index);
        let Some(program) = self.engine.programs.get(run.workflow.as_str()) else {
            return self.end(&run, EndReason::WorkflowRemoved);
        };
        let Some(entry) = program.get(&run.step) else {
            return self.end(&run, EndReason::StepRemoved);
        };
        let at = match run.phase {
            Phase::Waiting { .. } => entry.next,
            Phase::WaitingFor { .. } => {
                run.waited = Some(false);
                entry.next
            }
            // A deferred email is tried again: every sending rule is checked anew.
            Phase::Deferred { .. } => Next::Step(entry.step.id.as_str()),
        };
        self.drive(run, program, at);
    }

    fn fire_date(&mut self, index: usize) {
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

    fn on_event(&mut self, event: &StoreEvent) {
        self.merge_profile(event);
        self.apply_feedback(event);
        let detail = Some(Arc::clone(&event.detail));

        // Goals and wait_fors of active runs first; an event never ends the run it starts.
        let runs = std::mem::take(&mut self.state.runs);
        let mut kept = Vec::with_capacity(runs.len());
        for mut run in runs {
            let Some(program) = self.engine.programs.get(run.workflow.as_str()) else {
                kept.push(run);
                continue;
            };
            let w = program.workflow;
            let awaits_type = matches!(program.get(&run.step).map(|e| &e.step.kind), Some(StepKind::WaitFor(wf)) if wf.filter.event == event.event_type);
            if !awaits_type && !w.exit_when.iter().any(|g| g.event == event.event_type) {
                kept.push(run);
                continue;
            }
            let scope = self.scope(Some(&run), detail.clone());
            let key_ok = self.key_matches(w, &run, &scope);
            if key_ok
                && w.exit_when
                    .iter()
                    .any(|g| self.filter_matches(g, event, &scope))
            {
                self.end(&run, EndReason::Goal);
                continue;
            }
            let waiting = matches!(run.phase, Phase::WaitingFor { .. });
            let entry = program.get(&run.step);
            let awaited = match entry.map(|e| &e.step.kind) {
                Some(StepKind::WaitFor(wf)) => Some(&wf.filter),
                _ => None,
            };
            if waiting && key_ok && awaited.is_some_and(|f| self.filter_matches(f, event, &scope)) {
                run.waited = Some(true);
                let next = entry.expect("awaited implies entry").next;
                // Runs driven here may end or block; collect them after the loop.
                let before = self.state.runs.len();
                self.drive(run, program, next);
                kept.extend(self.state.runs.drain(before..));
                continue;
            }
            kept.push(run);
        }
        self.state.runs.extend(kept);

        // Then triggers, in workflow id order.
        let mut trigger_scope = None;
        for program in self.engine.programs.values() {
            let w = program.workflow;
            let Trigger::Event(filter) = &w.trigger else {
                continue;
            };
            if !w.enabled || filter.event != event.event_type {
                continue;
            }
            let scope = trigger_scope
                .get_or_insert_with(|| self.scope(None, detail.clone()))
                .clone();
            if !filter
                .when
                .as_ref()
                .is_none_or(|c| self.engine.truthy(&c.source, &scope))
            {
                continue;
            }
            let key = match &w.key {
                Some(k) => match self.engine.eval(&k.source, &scope) {
                    Some(v) => Some(key_text(&v)),
                    // No key, no run: a keyed workflow cannot tell this run apart.
                    None => continue,
                },
                None => None,
            };
            self.try_start(program, key, Some(&event.detail), &event.id);
        }
    }

    fn filter_matches(
        &self,
        filter: &EventFilter,
        event: &StoreEvent,
        scope: &minijinja::Value,
    ) -> bool {
        filter.event == event.event_type
            && filter
                .when
                .as_ref()
                .is_none_or(|c| self.engine.truthy(&c.source, scope))
    }

    /// For keyed workflows, an event concerns a run only if it gives the run's key.
    fn key_matches(&self, w: &Workflow, run: &Run, scope: &minijinja::Value) -> bool {
        match &w.key {
            None => true,
            Some(k) => self.engine.eval(&k.source, scope).map(|v| key_text(&v)) == run.key,
        }
    }

    /// Starts a run if the entry policy allows it.
    fn try_start(
        &mut self,
        program: &Program<'p>,
        key: Option<String>,
        trigger: Option<&Arc<Map<String, Value>>>,
        trigger_id: &str,
    ) {
        let w = program.workflow;
        let active = self
            .state
            .runs
            .iter()
            .position(|r| r.workflow == w.id && r.key == key);
        let history = self
            .state
            .entries
            .iter()
            .position(|e| e.workflow == w.id && e.key == key);
        let allowed = match w.entry {
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
                let min = if period.minutes() % (24 * 60) == 0 {
                    period.to_delta() - DST_TOLERANCE
                } else {
                    period.to_delta()
                };
                active.is_none() && since.is_none_or(|s| s >= min)
            }
        };
        if !allowed {
            return;
        }
        if matches!(w.entry, EntryPolicy::Once | EntryPolicy::Every(_)) {
            match history {
                Some(i) => self.state.entries[i].last_started_at = self.now,
                None => self.state.entries.push(EntryRecord {
                    workflow: w.id.clone(),
                    key: key.clone(),
                    last_started_at: self.now,
                }),
            }
        }
        let run = Run {
            id: run_id(&w.id, &self.state.id, key.as_deref(), trigger_id),
            workflow: w.id.clone(),
            key,
            started_at: self.now,
            trigger: trigger
                .filter(|_| self.engine.keeps_trigger.contains(w.id.as_str()))
                .cloned(),
            step: String::new(),
            phase: Phase::Waiting { until: self.now },
            waited: None,
            done: Vec::new(),
        };
        self.push(&run, None, ActionKind::RunStarted);
        self.drive(run, program, program.first);
    }

    /// Runs steps from `at` until the run blocks (kept in `state.runs`) or ends.
    fn drive(&mut self, mut run: Run, program: &Program<'p>, mut at: Next<'p>) {
        loop {
            let id = match at {
                Next::Step(id) => id,
                Next::Exit => return self.end(&run, EndReason::Exited),
                Next::End => return self.end(&run, EndReason::Completed),
            };
            let Some(entry) = program.get(id) else {
                return self.end(&run, EndReason::StepRemoved);
            };
            id.clone_into(&mut run.step);
            let flow = match &entry.step.kind {
                StepKind::SendEmail(email) => {
                    self.send_email(&mut run, program.workflow, id, email)
                }
                StepKind::Wait(Wait::For(d)) => Flow::Block(Phase::Waiting {
                    until: self.now + d.to_delta(),
                }),
                StepKind::Wait(Wait::Until(t)) => {
                    let until = time::next_local_time(self.now, self.zone(), *t);
                    if until <= self.now {
                        Flow::Continue
                    } else {
                        Flow::Block(Phase::Waiting { until })
                    }
                }
                StepKind::WaitFor(wf) => Flow::Block(Phase::WaitingFor {
                    until: self.now + wf.timeout.to_delta(),
                }),
                StepKind::If(b) => {
                    let scope = self.scope(Some(&run), trigger_scope(&run));
                    let branch = if self.engine.truthy(&b.condition.source, &scope) {
                        0
                    } else {
                        1
                    };
                    at = entry.branches[branch];
                    continue;
                }
                StepKind::AbSplit(branches) => {
                    let weights: Vec<u32> = branches.iter().map(|b| b.weight).collect();
                    at = entry.branches
                        [split_branch(&program.workflow.id, id, &self.state.id, &weights)];
                    continue;
                }
                StepKind::UpdateProfile(update) => {
                    if !run.done.iter().any(|d| d == id) {
                        self.update_profile(&run, id, update);
                        run.done.push(id.to_owned());
                    }
                    Flow::Continue
                }
                StepKind::Webhook(hook) => {
                    if !run.done.iter().any(|d| d == id) {
                        let scope = self.scope(Some(&run), trigger_scope(&run));
                        let body = match &hook.body {
                            Some(b) => self.render_value(b, &scope),
                            None => {
                                serde_json::json!({"workflow": run.workflow, "step": id, "run": run.id, "customer": {"id": self.state.id}})
                            }
                        };
                        let call = WebhookCall {
                            idempotency_key: format!("{}.{id}", run.id),
                            url: hook.url.to_string(),
                            method: match hook.method {
                                HttpMethod::Post => "POST",
                                HttpMethod::Put => "PUT",
                                HttpMethod::Patch => "PATCH",
                            },
                            body,
                            secret: hook.secret.clone(),
                        };
                        self.push(&run, Some(id), ActionKind::WebhookCalled(Box::new(call)));
                        run.done.push(id.to_owned());
                    }
                    Flow::Continue
                }
            };
            match flow {
                Flow::Continue => at = entry.next,
                Flow::Block(phase) => {
                    run.phase = phase;
                    self.state.runs.push(run);
                    return;
                }
            }
        }
    }

    /// The sending rules, in the contract's order, then rendering.
    fn send_email(
        &mut self,
        run: &mut Run,
        w: &'p Workflow,
        step: &str,
        email: &'p SendEmail,
    ) -> Flow {
        if run.done.iter().any(|d| d == step) {
            return Flow::Continue;
        }
        let marketing = w.category == Category::Marketing;
        let address = self
            .state
            .attr_str("email")
            .and_then(Mailbox::parse)
            .filter(|m| m.name.is_none());
        let skip = |cx: &mut Self, run: &Run, reason| {
            cx.push(run, Some(step), ActionKind::EmailSkipped { reason });
            Flow::Continue
        };
        let Some(address) = address else {
            return skip(self, run, SkipReason::InvalidAddress);
        };
        if self.state.suppressed.is_some() {
            return skip(self, run, SkipReason::Suppressed);
        }
        if marketing {
            if self.state.unsubscribed_at.is_some() {
                return skip(self, run, SkipReason::Unsubscribed);
            }
            if self.state.profile.get("accepts_marketing") != Some(&Value::Bool(true)) {
                return skip(self, run, SkipReason::NoConsent);
            }
            let window = w.send_window.unwrap_or(self.settings().send_window);
            let tz = self.zone();
            if !time::in_window(self.now, tz, window) {
                let until = time::next_opening(self.now, tz, window);
                self.push(run, Some(step), ActionKind::EmailDeferred { until });
                return Flow::Block(Phase::Deferred { until });
            }
            let cap = self.settings().frequency_cap;
            let since = self.now - cap.per.to_delta();
            let recent = self
                .state
                .recent_sends
                .iter()
                .filter(|t| **t > since && **t <= self.now)
                .count();
            if recent >= cap.max as usize {
                return skip(self, run, SkipReason::FrequencyCap);
            }
        }

        let scope = self.scope(Some(run), trigger_scope(run));
        let rendered = (|| {
            let subject = self.engine.render(&email.subject.source, &scope)?;
            let preheader = email
                .preheader
                .as_ref()
                .map(|p| self.engine.render(&p.source, &scope))
                .transpose()?;
            let html = self
                .engine
                .project
                .templates
                .env()
                .get_template(&email.template)?
                .render(&scope)?;
            Ok::<_, minijinja::Error>((subject, preheader, html))
        })();
        let Ok((subject, preheader, html)) = rendered else {
            tracing::warn!(workflow = %w.id, step, "template failed to render");
            return skip(self, run, SkipReason::RenderError);
        };
        let settings = self.settings();
        let template = self.engine.project.templates.file(&email.template);
        let renders_both = template.is_some_and(|t| t.has_unsubscribe_link && t.has_postal_address);
        let name = [
            self.state.attr_str("first_name"),
            self.state.attr_str("last_name"),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        let out = Email {
            idempotency_key: format!("{}.{step}", run.id),
            customer_id: self.state.id.clone(),
            workflow: w.id.clone(),
            step: step.to_owned(),
            category: w.category,
            to: Mailbox {
                name: (!name.is_empty()).then_some(name),
                address: address.address,
            },
            from: email.from.clone().unwrap_or_else(|| settings.from.clone()),
            reply_to: email.reply_to.clone().or_else(|| settings.reply_to.clone()),
            subject: subject.trim().to_owned(),
            preheader: preheader
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty()),
            html,
            date: self.now,
            tags: email.tags.clone(),
            unsubscribe_url: if marketing {
                self.unsubscribe_link().map(|link| link.to_string())
            } else {
                None
            },
            postal_address: if marketing {
                settings.store.postal_address.clone()
            } else {
                None
            },
            store_name: settings.store.name.clone(),
            append_footer: marketing && !renders_both,
        };
        if marketing {
            self.state.recent_sends.push(self.now);
        }
        run.done.push(step.to_owned());
        self.push(run, Some(step), ActionKind::EmailSent(Box::new(out)));
        Flow::Continue
    }

    fn update_profile(
        &mut self,
        run: &Run,
        step: &str,
        update: &'p crate::workflow::model::UpdateProfile,
    ) {
        let scope = self.scope(Some(run), trigger_scope(run));
        let mut changes = Map::new();
        for (name, value) in &update.set {
            let v = match value {
                ProfileValue::Literal(v) => v.clone(),
                // A value that fails to render leaves the attribute as it was.
                ProfileValue::Template(t) => match self.engine.render(&t.source, &scope) {
                    Ok(s) => Value::String(s),
                    Err(_) => continue,
                },
            };
            changes.insert(name.clone(), v);
        }
        if !update.add_tags.is_empty() || !update.remove_tags.is_empty() {
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
            changes.insert("tags".to_owned(), Value::Array(tags));
        }
        let profile = Arc::make_mut(&mut self.state.profile);
        for (k, v) in &changes {
            profile.insert(k.clone(), v.clone());
        }
        self.push(run, Some(step), ActionKind::ProfileUpdated { changes });
    }

    fn render_value(&self, value: &Value, scope: &minijinja::Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.engine.render(s, scope).unwrap_or_default()),
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.render_value(i, scope)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.render_value(v, scope)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Merges `detail.customer` into the profile: an absent field leaves the stored value, `null`
    /// clears it, arrays are replaced whole.
    fn merge_profile(&mut self, event: &StoreEvent) {
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

    /// Mail feedback: unsubscribes and suppressions.
    fn apply_feedback(&mut self, event: &StoreEvent) {
        match event.event_type.as_str() {
            "customer.unsubscribed" => {
                self.state.unsubscribed_at.get_or_insert(event.time);
            }
            "email.bounced"
                if event.detail.get("bounce_type").and_then(Value::as_str) == Some("hard") =>
            {
                self.state.suppressed = Some(Suppression::HardBounce);
            }
            "email.complained" => self.state.suppressed = Some(Suppression::Complaint),
            _ => {}
        }
    }

    /// Arms date triggers for attributes the profile has, re-arms them when the attribute (or
    /// the trigger's settings, or the customer's zone) changed, and drops the rest.
    fn sync_dates(&mut self) {
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

    /// Keeps only the sends the frequency cap can still count.
    fn prune_sends(&mut self) {
        let since = self.now - self.settings().frequency_cap.per.to_delta();
        self.state.recent_sends.retain(|t| *t > since);
    }
}

/// A key value as text (`o-77`, `1001`).
fn key_text(v: &minijinja::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// A run's id: a hash of what started it, so that the same start always gets the same id.
pub fn run_id(workflow: &str, customer: &str, key: Option<&str>, trigger: &str) -> String {
    let mut h = Sha256::new();
    for part in [workflow, customer, key.unwrap_or(""), trigger] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("r-{}", &hex::encode(h.finalize())[..20])
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

    #[test]
    fn run_ids_are_stable_and_distinct() {
        let a = run_id("win-back", "c-1", None, "evt-1");
        assert_eq!(a, run_id("win-back", "c-1", None, "evt-1"));
        assert_ne!(a, run_id("win-back", "c-1", None, "evt-2"));
        assert_ne!(
            a,
            run_id("win-back", "c-1", Some(""), "evt-1").replace('x', "y") + "x"
        );
        assert!(a.starts_with("r-") && a.len() == 22);
    }
}
