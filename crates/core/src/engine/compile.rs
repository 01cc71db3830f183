//! What `Engine::new` prepares once so that `handle` never parses: every condition and
//! template string of the project compiled (keyed by its source), which workflows' runs must
//! keep their trigger's detail, and `store` as templates see it; and the lookups that evaluate
//! and render through what was compiled.
//!
//! A source that did not compile is left out: `validate` reports it, and evaluating it here is
//! false (a condition) or nothing (a key), while rendering it goes through the environment,
//! which gives the render error the sending rules turn into `render_error`.

use std::collections::{HashMap, HashSet};

use minijinja::{Expression, Template};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Engine;
use crate::workflow::model::{ProfileValue, StepKind, Trigger, Workflow};
use crate::workflow::{Project, template};

/// Compiled conditions, keys and filters (`when`, `if`, `key`, `exit_when`, `wait_for`, and
/// the goals' and waits' own `key`).
pub(super) fn expressions<'p>(project: &'p Project) -> HashMap<&'p str, Expression<'p, 'p>> {
    let env = project.templates.env();
    let mut expressions = HashMap::new();
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
            goal.when
                .iter()
                .chain(&goal.key)
                .for_each(|e| expr(&e.source));
        }
        for step in w.all_steps() {
            match &step.kind {
                StepKind::If(b) => expr(&b.condition.source),
                StepKind::WaitFor(wf) => {
                    let f = &wf.filter;
                    f.when.iter().chain(&f.key).for_each(|e| expr(&e.source));
                }
                _ => {}
            }
        }
    }
    expressions
}

/// Compiled template strings of steps: subjects, preheaders, profile values, webhook bodies.
/// (Template files are compiled by the project's environment.)
pub(super) fn templates<'p>(project: &'p Project) -> HashMap<&'p str, Template<'p, 'p>> {
    let env = project.templates.env();
    let mut templates = HashMap::new();
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
    templates
}

/// The workflows whose steps read `event` (the trigger's detail); runs of the others do not
/// keep it, which keeps long-waiting runs small.
pub(super) fn keeping_trigger<'p>(
    project: &'p Project,
    expressions: &HashMap<&str, Expression<'_, '_>>,
    templates: &HashMap<&str, Template<'_, '_>>,
) -> HashSet<&'p str> {
    project
        .workflows
        .iter()
        .filter(|w| steps_read_event(w, project, expressions, templates))
        .map(|w| w.id.as_str())
        .collect()
}

/// Whether any step of `w` reads `event`: conditions, subjects, preheaders, template files,
/// profile values or webhook bodies. (Goals, `wait_for` filters and keys read the *new* event,
/// not the trigger.) A source that did not compile counts as reading it, to be safe.
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

/// Every string in a JSON value (a webhook body's templates).
fn for_each_string<'a>(value: &'a Value, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| for_each_string(i, f)),
        Value::Object(map) => map.values().for_each(|v| for_each_string(v, f)),
        _ => {}
    }
}

/// A value as templates see it (`store`, converted once).
pub(super) fn to_value<T: Serialize>(value: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(value))
}

impl Engine<'_> {
    /// Whether a condition holds in `scope`.
    pub(super) fn truthy(&self, source: &str, scope: &minijinja::Value) -> bool {
        match self.expressions.get(source) {
            // A failing condition (undefined in a comparison, a type error) is false.
            Some(e) => e.eval(scope).map(|v| v.is_true()).unwrap_or(false),
            None => false,
        }
    }

    /// The values a condition reads in `scope`, by the path it names
    /// (`customer.orders_count`; minijinja's nested undeclared variables): what `explain`
    /// shows beside a condition's result. A path that is undefined reads `null`; a source that
    /// did not compile reads nothing.
    pub(super) fn condition_read(
        &self,
        source: &str,
        scope: &minijinja::Value,
    ) -> Map<String, Value> {
        let Some(paths) = self.reads.get(source) else {
            return Map::new();
        };
        paths
            .iter()
            .map(|path| (path.clone(), lookup(scope, path)))
            .collect()
    }

    /// An expression's value in `scope`; nothing when it fails or gives undefined or none.
    pub(super) fn eval(&self, source: &str, scope: &minijinja::Value) -> Option<minijinja::Value> {
        let v = self.expressions.get(source)?.eval(scope).ok()?;
        (!v.is_undefined() && !v.is_none()).then_some(v)
    }

    /// A template string rendered in `scope`, within the render limits.
    pub(super) fn render(
        &self,
        source: &str,
        scope: &minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        let env = self.project.templates.env();
        match self.templates.get(source) {
            Some(t) => template::render(t, scope),
            None => template::render(&env.template_from_str(source)?, scope),
        }
    }
}

/// The paths each expression reads (minijinja's nested undeclared variables), sorted: computed
/// once, with the expressions.
pub(super) fn reads<'p>(
    expressions: &HashMap<&'p str, Expression<'p, 'p>>,
) -> HashMap<&'p str, Vec<String>> {
    expressions
        .iter()
        .map(|(source, expression)| {
            let mut paths: Vec<String> =
                expression.undeclared_variables(true).into_iter().collect();
            paths.sort_unstable();
            (*source, paths)
        })
        .collect()
}

/// The value at a dotted `path` in `scope`, as JSON (`null` when undefined or not
/// representable). Addresses are taken out when the journal entry is built
/// ([`crate::journal::redact`]).
fn lookup(scope: &minijinja::Value, path: &str) -> Value {
    let mut value = scope.clone();
    for part in path.split('.') {
        value = match value.get_attr(part) {
            Ok(v) if !v.is_undefined() => v,
            _ => return Value::Null,
        };
    }
    serde_json::to_value(&value).unwrap_or(Value::Null)
}
