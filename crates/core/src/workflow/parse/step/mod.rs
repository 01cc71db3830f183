//! Lists of steps, and one step: which kind it is (the key naming it), its `id`, and its body,
//! which the kind's own module reads.

mod ab_split;
mod branching;
mod send_email;
mod update_profile;
mod wait;
mod wait_for;
mod webhook;

use std::collections::HashMap;

use crate::diagnostic::{Sink, did_you_mean, suggestion};
use crate::workflow::model::{Step, StepItem, StepKind};
use crate::workflow::yaml::{Node, NodeValue, Pos};

use super::STEP_KINDS;
use super::map::Map;
use super::names::is_step_id;
use super::scalars::Scalars;
use super::values::{list, string};

/// Step ids seen so far in one workflow file, each with where it was first written: ids are
/// unique across the whole file, branches included, since a run rests on a step by its id.
#[derive(Default)]
struct StepIds(HashMap<String, Pos>);

impl StepIds {
    /// Records `id`, written at `pos`, or reports it as a duplicate of the first.
    fn claim(&mut self, sink: &mut Sink, id: &str, pos: Pos) {
        if let Some(first) = self.0.get(id) {
            sink.error(
                pos,
                format!(
                    "duplicate step id `{id}`; it is already used at line {}",
                    first.line
                ),
            );
        } else {
            self.0.insert(id.to_owned(), pos);
        }
    }
}

/// A workflow's `steps`, which must not be empty.
pub(super) fn workflow_steps(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<Vec<StepItem>> {
    let items = list(sink, node, "`steps`")?;
    if items.is_empty() {
        sink.error(
            node.pos,
            "`steps` is empty: a workflow needs at least one step",
        );
    }
    Some(steps(sink, sc, items, &mut StepIds::default()))
}

/// Reads a list of steps; `ids` collects step ids across the whole file.
fn steps(sink: &mut Sink, sc: &Scalars, items: &[Node], ids: &mut StepIds) -> Vec<StepItem> {
    let mut out = Vec::new();
    let mut exited = false;
    for item in items {
        if exited {
            sink.warn(item.pos, "this step can never run: it comes after `exit`");
            exited = false; // warn once per list
        }
        if let Some(step) = step(sink, sc, item, ids) {
            exited = matches!(step, StepItem::Exit { .. });
            out.push(step);
        }
    }
    out
}

/// A nested list of steps under `what` (`then`, `else`, an `ab_split` branch's `steps`).
fn branch_steps(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
    what: &str,
    ids: &mut StepIds,
) -> Option<Vec<StepItem>> {
    let items = list(sink, node, what)?;
    Some(steps(sink, sc, items, ids))
}

/// One item of a list of steps: `- exit`, or a mapping with an `id` and one kind key.
fn step(sink: &mut Sink, sc: &Scalars, node: &Node, ids: &mut StepIds) -> Option<StepItem> {
    let NodeValue::Map(entries) = &node.value else {
        return bare_step(sink, node);
    };
    let map = Map { entries };
    let keys = StepKeys::classify(sink, entries);
    let kind = keys.kind();
    keys.report_unknown(sink);
    keys.report_second_kind(sink);
    report_misplaced_branches(sink, &map, kind);
    let id = step_id(sink, &map, node, kind, ids);
    let Some(kind) = kind else {
        if keys.unknown.is_empty() && map.get("exit").is_none() {
            sink.error(
                node.pos,
                format!(
                    "this step does nothing; give it one of: {}",
                    STEP_KINDS.join(", ")
                ),
            );
        }
        return None;
    };
    let kind = step_kind(sink, sc, &map, node, kind, ids);
    Some(StepItem::Step(Step {
        id: id?,
        kind: kind?,
        pos: node.pos,
    }))
}

/// A step that is not a mapping: `- exit`, or a mistake such as a bare kind name.
fn bare_step(sink: &mut Sink, node: &Node) -> Option<StepItem> {
    match &node.value {
        NodeValue::Str(s) if s == "exit" => Some(StepItem::Exit { pos: node.pos }),
        NodeValue::Str(s) if STEP_KINDS.contains(&s.as_str()) => {
            sink.error(
                node.pos,
                format!(
                    "step `{s}` needs an `id` and its settings, e.g. `- id: my-step` and `{s}: ...`"
                ),
            );
            None
        }
        NodeValue::Str(s) => {
            let all = STEP_KINDS.iter().copied().chain(["exit"]);
            sink.error(
                node.pos,
                format!("unknown step `{s}`{}", suggestion(s, all)),
            );
            None
        }
        other => {
            sink.error(
                node.pos,
                format!("a step must be a mapping or `exit`, found {}", other.kind()),
            );
            None
        }
    }
}

/// A step's keys sorted out: the kind keys present, in order, and the keys no step may hold.
struct StepKeys<'n> {
    kinds: Vec<&'n Node>,
    unknown: Vec<&'n Node>,
}

impl<'n> StepKeys<'n> {
    /// Sorts the keys of a step's mapping. An `exit` key is reported here: `exit` is a step of
    /// its own, not a setting.
    fn classify(sink: &mut Sink, entries: &'n [(Node, Node)]) -> Self {
        let mut kinds = Vec::new();
        let mut unknown = Vec::new();
        for (key, _) in entries {
            match key.as_str() {
                Some(k) if STEP_KINDS.contains(&k) => kinds.push(key),
                Some("id" | "then" | "else") => {}
                Some("exit") => sink.error(
                    key.pos,
                    "write `- exit` on its own line: it takes no id or settings",
                ),
                _ => unknown.push(key),
            }
        }
        Self { kinds, unknown }
    }

    /// The step's kind: its first kind key.
    fn kind(&self) -> Option<&'n str> {
        self.kinds.first().and_then(|k| k.as_str())
    }

    /// Reports each unknown key, with the nearest key the step may hold.
    fn report_unknown(&self, sink: &mut Sink) {
        let kind = self.kind();
        for key in &self.unknown {
            let Some(k) = key.as_str() else {
                sink.error(key.pos, "keys in a step must be names");
                continue;
            };
            match kind {
                // Without a known kind, an unknown key is most likely a misspelt kind.
                None => {
                    let all = STEP_KINDS.iter().copied().chain(["id"]);
                    sink.error(key.pos, format!("unknown step `{k}`{}", suggestion(k, all)));
                }
                Some(kind) => {
                    let hint = unknown_key_hint(k, kind);
                    sink.error(key.pos, format!("unknown key `{k}` in `{kind}` step{hint}"));
                }
            }
        }
    }

    /// Reports a second kind key: a step does one thing.
    fn report_second_kind(&self, sink: &mut Sink) {
        if let Some(extra) = self.kinds.get(1) {
            sink.error(
                extra.pos,
                format!(
                    "a step does one thing, but this one has both `{}` and `{}`; split it into two steps",
                    self.kind().unwrap_or_default(),
                    extra.as_str().unwrap_or_default()
                ),
            );
        }
    }
}

/// "; did you mean `x`?" for an unknown key `k` in a `kind` step: the nearest key this step
/// may hold, else the nearest kind.
fn unknown_key_hint(k: &str, kind: &str) -> String {
    let mut allowed = vec!["id", kind];
    if kind == "if" {
        allowed.extend(["then", "else"]);
    }
    let all_kinds = STEP_KINDS.iter().copied();
    did_you_mean(k, allowed.iter().copied())
        .or_else(|| did_you_mean(k, all_kinds))
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Reports `then` and `else` on a step that is not an `if`.
fn report_misplaced_branches(sink: &mut Sink, map: &Map, kind: Option<&str>) {
    if kind != Some("if") {
        for word in ["then", "else"] {
            if let Some(k) = map.key_node(word) {
                sink.error(k.pos, format!("`{word}` belongs to an `if` step"));
            }
        }
    }
}

/// The step's `id`, checked and claimed in `ids`. A step without one is reported only when it
/// has a kind: one with neither is reported as doing nothing.
fn step_id(
    sink: &mut Sink,
    map: &Map,
    node: &Node,
    kind: Option<&str>,
    ids: &mut StepIds,
) -> Option<String> {
    let Some(n) = map.get("id") else {
        if let Some(kind) = kind {
            sink.error(
                node.pos,
                format!("this `{kind}` step has no `id`; every step but `exit` needs a stable id"),
            );
        }
        return None;
    };
    let id = string(sink, n, "step `id`")?;
    if !is_step_id(&id) {
        sink.error(
            n.pos,
            format!("step id `{id}` may hold only letters, digits, `-` and `_`"),
        );
        return None;
    }
    ids.claim(sink, &id, n.pos);
    Some(id)
}

/// Reads the body under the step's `kind` key with that kind's reader; `node` is the step.
fn step_kind(
    sink: &mut Sink,
    sc: &Scalars,
    map: &Map,
    node: &Node,
    kind: &str,
    ids: &mut StepIds,
) -> Option<StepKind> {
    let body = map.get(kind).expect("kind key present");
    match kind {
        "send_email" => send_email::send_email(sink, sc, body).map(StepKind::SendEmail),
        "wait" => wait::wait(sink, body).map(StepKind::Wait),
        "wait_for" => wait_for::wait_for(sink, sc, body).map(StepKind::WaitFor),
        "if" => branching::branching(sink, sc, map, node, ids).map(StepKind::If),
        "ab_split" => ab_split::ab_split(sink, sc, body, ids).map(StepKind::AbSplit),
        "update_profile" => {
            update_profile::update_profile(sink, sc, body).map(StepKind::UpdateProfile)
        }
        "webhook" => webhook::webhook(sink, sc, body).map(StepKind::Webhook),
        _ => unreachable!("kind names come from STEP_KINDS"),
    }
}
