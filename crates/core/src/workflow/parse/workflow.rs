//! One workflow file: its id, name, category, trigger, run key, entry policy, goals
//! (`exit_when`), send window and steps; then its keys across them (`key`).

use crate::diagnostic::{Sink, suggestion};
use crate::workflow::model::{Category, EntryPolicy, EventFilter, Expr, SendWindow, Workflow};
use crate::workflow::template::ScalarChecker;
use crate::workflow::yaml::{Node, NodeValue};

use super::key::check_keys;
use super::map::Map;
use super::names::is_slug;
use super::scalars::{Scalars, expr};
use super::step::workflow_steps;
use super::trigger::{goal_filter, trigger};
use super::values::{boolean, list, non_empty_string, positive_duration, send_window, string};

const WORKFLOW_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "category",
    "enabled",
    "trigger",
    "key",
    "entry",
    "exit_when",
    "send_window",
    "steps",
];

/// Reads one workflow file. `stem` is the file name without its extension.
pub fn workflow(
    sink: &mut Sink,
    checker: &ScalarChecker,
    root: &Node,
    stem: &str,
) -> Option<Workflow> {
    let map = Map::of(sink, root, "a workflow file")?;
    // The scope of every expression depends on the trigger, so look at it before reading them.
    let date_triggered = map.get("trigger").and_then(|t| t.get("date")).is_some();
    let scalars = Scalars::new(checker, date_triggered);
    let sc = &scalars;
    map.deny_unknown(sink, WORKFLOW_KEYS, "workflow");
    let top = root.pos;

    let id = map
        .required(sink, "id", top, "workflow")
        .and_then(|n| workflow_id(sink, n, stem));
    let name = map
        .get("name")
        .and_then(|n| non_empty_string(sink, n, "`name`"));
    let description = map
        .get("description")
        .and_then(|n| string(sink, n, "`description`"));
    let category = map
        .required_hint(
            sink,
            "category",
            top,
            "workflow",
            ": marketing or transactional",
        )
        .and_then(|n| category(sink, n));
    let enabled = map
        .get("enabled")
        .map_or(Some(true), |n| boolean(sink, n, "`enabled`"));
    let trigger = map
        .required(sink, "trigger", top, "workflow")
        .and_then(|n| trigger(sink, sc, n));
    let key = run_key(sink, sc, &map, date_triggered);
    let entry = map
        .get("entry")
        .map_or(Some(EntryPolicy::Single), |n| entry_policy(sink, n));
    let exit_when = map
        .get("exit_when")
        .map_or(Some(Vec::new()), |n| goals(sink, sc, n));
    let window = workflow_send_window(sink, &map, category);
    let steps = map
        .required(sink, "steps", top, "workflow")
        .and_then(|n| workflow_steps(sink, sc, n));
    check_keys(
        sink,
        trigger.as_ref(),
        key.as_ref(),
        exit_when.as_deref().unwrap_or_default(),
        steps.as_deref().unwrap_or_default(),
    );

    Some(Workflow {
        name: name.unwrap_or_else(|| id.clone().unwrap_or_default()),
        id: id?,
        description,
        category: category?,
        enabled: enabled?,
        trigger: trigger?,
        key,
        entry: entry?,
        exit_when: exit_when?,
        send_window: window,
        steps: steps?,
        path: sink.path().to_path_buf(),
    })
}

/// The workflow's `id`: a slug equal to the file's stem. A wrong one is reported and still
/// returned, so that later checks (its templates) still run on the workflow.
fn workflow_id(sink: &mut Sink, node: &Node, stem: &str) -> Option<String> {
    let id = non_empty_string(sink, node, "`id`")?;
    if !is_slug(&id) {
        sink.error(
            node.pos,
            format!("id `{id}` must be a slug: lowercase letters, digits and single dashes"),
        );
    } else if id != stem {
        sink.error(
            node.pos,
            format!("id `{id}` must equal the file name `{stem}`"),
        );
    }
    Some(id)
}

/// `marketing` or `transactional`.
fn category(sink: &mut Sink, node: &Node) -> Option<Category> {
    match node.as_str() {
        Some("marketing") => Some(Category::Marketing),
        Some("transactional") => Some(Category::Transactional),
        _ => {
            let text = node.as_scalar_text().unwrap_or_default();
            sink.error(
                node.pos,
                format!(
                    "category must be `marketing` or `transactional`, found `{text}`{}",
                    suggestion(&text, ["marketing", "transactional"])
                ),
            );
            None
        }
    }
}

/// `key`, which is read from the trigger event, so a date-triggered workflow cannot have one.
fn run_key(sink: &mut Sink, sc: &Scalars, map: &Map, date_triggered: bool) -> Option<Expr> {
    let key = map.get("key").and_then(|n| expr(sink, sc, n, "`key`"));
    if let (true, Some(k)) = (date_triggered, &key) {
        sink.error(
            k.pos,
            "`key` needs an event trigger: a date trigger has no event to take it from",
        );
    }
    key
}

/// `entry`: `once`, `single`, `restart` or `{every: <duration>}`.
fn entry_policy(sink: &mut Sink, node: &Node) -> Option<EntryPolicy> {
    const NAMES: [&str; 3] = ["once", "single", "restart"];
    match &node.value {
        NodeValue::Str(s) => match s.as_str() {
            "once" => Some(EntryPolicy::Once),
            "single" => Some(EntryPolicy::Single),
            "restart" => Some(EntryPolicy::Restart),
            other => {
                sink.error(
                    node.pos,
                    format!(
                        "unknown entry policy `{other}`{}; write once, single, restart or {{every: 365d}}",
                        suggestion(other, NAMES)
                    ),
                );
                None
            }
        },
        NodeValue::Map(_) => {
            let map = Map::of(sink, node, "`entry`")?;
            map.deny_unknown(sink, &["every"], "`entry`");
            let every = map.required(sink, "every", node.pos, "`entry`")?;
            positive_duration(sink, every, "`every`").map(EntryPolicy::Every)
        }
        other => {
            sink.error(
                node.pos,
                format!(
                    "`entry` must be once, single, restart or {{every: 365d}}, found {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// `exit_when`: a list of goals. A bad goal is reported and left out; only a value that is not
/// a list makes the whole unusable.
fn goals(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<Vec<EventFilter>> {
    let items = list(sink, node, "`exit_when`")?;
    Some(
        items
            .iter()
            .filter_map(|i| goal_filter(sink, sc, i))
            .collect(),
    )
}

/// The workflow's own `send_window`, which only marketing mail obeys.
fn workflow_send_window(
    sink: &mut Sink,
    map: &Map,
    category: Option<Category>,
) -> Option<SendWindow> {
    let window = map
        .get("send_window")
        .and_then(|n| send_window(sink, n, "`send_window`"));
    if let (Some(Category::Transactional), Some(key)) = (category, map.key_node("send_window")) {
        sink.warn(
            key.pos,
            "`send_window` is ignored for transactional workflows: they send at any hour",
        );
    }
    window
}
