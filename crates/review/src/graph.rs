//! `nudge graph`: each workflow as a diagram, in Mermaid (which GitHub draws in Markdown) or
//! Graphviz DOT.
//!
//! [`Diagram::of`] turns a workflow into nodes and edges, the same for both formats; [`mermaid`]
//! and [`dot`] write it out. What a diagram guarantees:
//!
//! - **Every step is a node**, branches of any depth included, labelled with its id in full
//!   and what it does (`send_email`: the subject; `wait`: the duration or time of day;
//!   `wait_for`: the event, its condition and the timeout; `if`: the condition; `ab_split`:
//!   the split; `update_profile`: the attributes and tags; `webhook`: the method and host, never
//!   the path or query, which may carry a token). The trigger node shows the event (or the
//!   date), its `when`, the run key and the entry policy; every goal (`exit_when`) is an end
//!   reached from any step; each `exit` and the end of the steps are ends too.
//! - **The edges are the engine's**: a step leads where `nudge_core::engine::program` says a
//!   run goes after it (the end of a branch continues after its `if` or `ab_split`; an empty
//!   `ab_split` branch is drawn as a holdout node). `if` edges say `yes` / `no`; split edges
//!   give each branch's letter, share and weight. A step after an `exit` (which no run can
//!   reach) is still drawn, marked as never reached.
//! - **Any text is safe**: subjects, conditions and ids are escaped for the format, and control
//!   characters (newlines included) and bidirectional overrides become spaces, so no workflow
//!   text can end a label, add a node or hide one. Node ids are generated (`trigger`, `s1`,
//!   `s2`, ...), never taken from the file. Long subjects and conditions are cut to
//!   [`LABEL_CHARS`] characters with `…`; step ids never are.
//!
//! Limits: `{{ expr | filters }}` in a subject is shown as `{expr}` (the filters, such as a
//! `default`, are left out); `{% %}` tags are shown as `…`. The layout is the renderer's.
//! mermaid.js (11) drops the last `;` of a line on which `style` is followed by a `:` and, with
//! no space between, a `#`: such a subject shows one `;` short (its syntax is unharmed).

mod dot;
mod mermaid;

use std::collections::{HashMap, HashSet, VecDeque};

use nudge_core::workflow::model::{
    Branching, EntryPolicy, EventFilter, SendEmail, SplitBranch, Step, StepItem, StepKind, Trigger,
    UpdateProfile, Wait, WaitFor, Webhook, Workflow,
};
use nudge_core::workflow::units::Duration;

pub use dot::dot;
pub use mermaid::mermaid;

/// The longest a label line (a subject, a condition) is drawn, in characters; a longer one
/// ends with `…`.
pub const LABEL_CHARS: usize = 48;

/// The output formats of `nudge graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A Mermaid `flowchart TD` (GitHub draws it in a ```` ```mermaid ```` block).
    #[default]
    Mermaid,
    /// A Graphviz `digraph` (`dot -Tsvg`).
    Dot,
}

/// `workflow` drawn in `format`, ending with a newline.
pub fn render(workflow: &Workflow, format: Format) -> String {
    let diagram = Diagram::of(workflow);
    match format {
        Format::Mermaid => mermaid(&diagram),
        Format::Dot => dot(&diagram),
    }
}

/// Several workflows, each its own diagram (a complete Mermaid text, or a `digraph`), in the
/// order given, separated by an empty line.
pub fn render_all<'w>(workflows: impl IntoIterator<Item = &'w Workflow>, format: Format) -> String {
    workflows
        .into_iter()
        .map(|w| render(w, format))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A workflow as nodes and edges, before it is written in a format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagram {
    /// The workflow's id.
    pub workflow: String,
    /// The nodes: the trigger first, then the steps in document order, then the holdouts and
    /// exits, the goals, and `done` (when a run can get there).
    pub nodes: Vec<Node>,
    /// The edges, in the order of their sources.
    pub edges: Vec<Edge>,
}

/// One box of a diagram. Its text is raw: each format escapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its id in the diagram (`trigger`, `s3`, `goal1`, `exit2`, `done`): generated, safe in
    /// every format.
    pub key: String,
    /// What it stands for (its shape and colour).
    pub kind: NodeKind,
    /// The step's id, for the nodes of steps.
    pub step: Option<String>,
    /// The first line, drawn in bold: the step id, the trigger's event.
    pub title: String,
    /// The lines below it (what the step does), each at most [`LABEL_CHARS`] characters.
    pub lines: Vec<String>,
    /// False for a step no run can reach (after an `exit`).
    pub reachable: bool,
}

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// The trigger, with the entry policy.
    Trigger,
    /// `send_email`.
    Email,
    /// `wait`.
    Wait,
    /// `wait_for`.
    WaitFor,
    /// `update_profile`.
    Profile,
    /// `webhook`.
    Webhook,
    /// `if`.
    If,
    /// `ab_split`.
    Split,
    /// An `ab_split` branch without steps.
    Holdout,
    /// A goal (`exit_when`): the run ends with `goal`.
    Goal,
    /// `- exit`: the run ends with `exited`.
    Exit,
    /// The end of the steps: the run ends with `completed`.
    Done,
}

/// An arrow between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The source node's key.
    pub from: String,
    /// The target node's key.
    pub to: String,
    /// Its text: `yes` / `no`, a split branch's share, `any time`.
    pub label: Option<String>,
    /// Dashed: not a step of the run but something that may happen at any step (a goal).
    pub dashed: bool,
}

/// The key of the trigger node.
const TRIGGER: &str = "trigger";
/// The key of the end of the steps.
const DONE: &str = "done";

impl Diagram {
    /// Draws `workflow`.
    pub fn of(workflow: &Workflow) -> Diagram {
        let mut builder = Builder::new(workflow);
        builder.nodes.push(trigger_node(workflow));
        let first = builder.entry(&workflow.steps, DONE);
        builder.edge(TRIGGER, &first, None);
        builder.list(&workflow.steps, DONE);
        builder.goals(&workflow.exit_when);
        builder.finish(workflow)
    }

    /// The step ids the diagram shows, in document order.
    pub fn step_ids(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().filter_map(|n| n.step.as_deref())
    }
}

/// Builds a [`Diagram`]: node keys are given out in document order before any edge is drawn,
/// so an edge can point at a step further down.
struct Builder {
    /// Each step item's node key, by the item's address.
    keys: HashMap<*const StepItem, String>,
    nodes: Vec<Node>,
    /// Holdout, goal and end nodes, written after the steps.
    ends: Vec<Node>,
    edges: Vec<Edge>,
    holdouts: usize,
}

impl Builder {
    fn new(workflow: &Workflow) -> Self {
        let mut keys = HashMap::new();
        let (mut steps, mut exits) = (0, 0);
        number(&workflow.steps, &mut keys, &mut steps, &mut exits);
        Self {
            keys,
            nodes: Vec::new(),
            ends: Vec::new(),
            edges: Vec::new(),
            holdouts: 0,
        }
    }

    /// The key of `item`'s node.
    fn key(&self, item: &StepItem) -> String {
        // Every item was numbered by `number` over the same lists.
        self.keys
            .get(&std::ptr::from_ref(item))
            .cloned()
            .unwrap_or_default()
    }

    /// Where a run entering `items` goes: its first item, or `after` when it is empty.
    fn entry(&self, items: &[StepItem], after: &str) -> String {
        items
            .first()
            .map_or_else(|| after.to_owned(), |item| self.key(item))
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<String>) {
        self.edges.push(Edge {
            from: from.to_owned(),
            to: to.to_owned(),
            label,
            dashed: false,
        });
    }

    /// Draws the items of one list, whose last one leads to `after`.
    fn list(&mut self, items: &[StepItem], after: &str) {
        for (i, item) in items.iter().enumerate() {
            let key = self.key(item);
            match item {
                StepItem::Exit { .. } => self.ends.push(end_node(key, NodeKind::Exit)),
                StepItem::Step(step) => {
                    let next = self.entry(&items[i + 1..], after);
                    self.step(step, &key, &next);
                }
            }
        }
    }

    /// Draws one step and its branches; `next` is where the run goes after it.
    fn step(&mut self, step: &Step, key: &str, next: &str) {
        self.nodes.push(step_node(step, key));
        match &step.kind {
            StepKind::If(branching) => self.branching(branching, key, next),
            StepKind::AbSplit(branches) => self.split(branches, key, next),
            _ => self.edge(key, next, None),
        }
    }

    fn branching(&mut self, b: &Branching, key: &str, next: &str) {
        for (label, items) in [("yes", &b.then), ("no", &b.otherwise)] {
            let to = self.entry(items, next);
            self.edge(key, &to, Some(label.to_owned()));
        }
        self.list(&b.then, next);
        self.list(&b.otherwise, next);
    }

    /// The split's edges: to each branch's first step, named by letter in the order of the
    /// branches that have steps (`A`, `B`, ...), or to a holdout node; each with its share.
    fn split(&mut self, branches: &[SplitBranch], key: &str, next: &str) {
        let total: u64 = branches.iter().map(|b| u64::from(b.weight)).sum();
        let mut named = 0;
        for branch in branches {
            let share = share(branch.weight, total);
            let (to, name) = if branch.steps.is_empty() {
                (self.holdout(next), "holdout".to_owned())
            } else {
                named += 1;
                (self.entry(&branch.steps, next), branch_letter(named - 1))
            };
            self.edge(key, &to, Some(format!("{name} · {share}")));
        }
        for branch in branches {
            self.list(&branch.steps, next);
        }
    }

    /// A holdout node leading to `next`; returns its key.
    fn holdout(&mut self, next: &str) -> String {
        self.holdouts += 1;
        let key = format!("hold{}", self.holdouts);
        self.ends.push(Node {
            key: key.clone(),
            kind: NodeKind::Holdout,
            step: None,
            title: "holdout".to_owned(),
            lines: vec!["no steps".to_owned()],
            reachable: true,
        });
        self.edge(&key, next, None);
        key
    }

    fn goals(&mut self, goals: &[EventFilter]) {
        for (i, goal) in goals.iter().enumerate() {
            let key = format!("goal{}", i + 1);
            let mut lines = vec![short(&goal.event)];
            lines.extend(
                goal.when
                    .as_ref()
                    .map(|e| short(&format!("when: {}", e.source))),
            );
            lines.extend(
                goal.key
                    .as_ref()
                    .map(|e| short(&format!("key: {}", e.source))),
            );
            self.ends.push(Node {
                key: key.clone(),
                kind: NodeKind::Goal,
                step: None,
                title: "goal".to_owned(),
                lines,
                reachable: true,
            });
            self.edges.push(Edge {
                from: TRIGGER.to_owned(),
                to: key,
                label: Some("any time".to_owned()),
                dashed: true,
            });
        }
    }

    /// Adds the end of the steps when something leads there, marks what no run reaches, and
    /// puts the nodes in their order.
    fn finish(mut self, workflow: &Workflow) -> Diagram {
        if self.edges.iter().any(|e| e.to == DONE) {
            self.ends.push(end_node(DONE.to_owned(), NodeKind::Done));
        }
        let mut nodes = self.nodes;
        nodes.append(&mut self.ends);
        let reached = reachable(&self.edges);
        for node in &mut nodes {
            if !reached.contains(node.key.as_str()) {
                node.reachable = false;
                node.lines.push("never reached (after an exit)".to_owned());
            }
        }
        Diagram {
            workflow: workflow.id.clone(),
            nodes,
            edges: self.edges,
        }
    }
}

/// Gives every item of `items` (branches included) its node key, in document order: `s1`,
/// `s2`, ... for steps and `exit1`, ... for exits.
fn number(
    items: &[StepItem],
    keys: &mut HashMap<*const StepItem, String>,
    steps: &mut usize,
    exits: &mut usize,
) {
    for item in items {
        let key = match item {
            StepItem::Exit { .. } => {
                *exits += 1;
                format!("exit{exits}")
            }
            StepItem::Step(_) => {
                *steps += 1;
                format!("s{steps}")
            }
        };
        keys.insert(std::ptr::from_ref(item), key);
        if let StepItem::Step(step) = item {
            match &step.kind {
                StepKind::If(b) => {
                    number(&b.then, keys, steps, exits);
                    number(&b.otherwise, keys, steps, exits);
                }
                StepKind::AbSplit(branches) => {
                    for b in branches {
                        number(&b.steps, keys, steps, exits);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The keys of the nodes a run can be at: those reached from the trigger by solid edges, and
/// the goals.
fn reachable(edges: &[Edge]) -> HashSet<&str> {
    let mut seen: HashSet<&str> = HashSet::from([TRIGGER]);
    let mut queue = VecDeque::from([TRIGGER]);
    while let Some(at) = queue.pop_front() {
        for e in edges.iter().filter(|e| e.from == at) {
            if seen.insert(e.to.as_str()) {
                queue.push_back(e.to.as_str());
            }
        }
    }
    seen
}

fn end_node(key: String, kind: NodeKind) -> Node {
    let title = if kind == NodeKind::Exit {
        "exit"
    } else {
        "done"
    };
    Node {
        key,
        kind,
        step: None,
        title: title.to_owned(),
        lines: Vec::new(),
        reachable: true,
    }
}

/// The trigger: the event or date, its condition, the run key, the entry policy.
fn trigger_node(workflow: &Workflow) -> Node {
    let mut lines = Vec::new();
    let (title, when) = match &workflow.trigger {
        Trigger::Event(filter) => (short(&filter.event), filter.when.as_ref()),
        Trigger::Date(date) => {
            let mut at = format!("yearly at {}", date.at);
            let offset = date.offset.minutes();
            if offset != 0 {
                let shift = length(Duration::from_minutes(offset.abs()));
                let side = if offset < 0 { "before" } else { "after" };
                at.push_str(&format!(", {shift} {side}"));
            }
            lines.push(at);
            (
                short(&format!("customer.{}", date.attribute)),
                date.when.as_ref(),
            )
        }
    };
    lines.extend(when.map(|e| short(&format!("when: {}", e.source))));
    lines.extend(
        workflow
            .key
            .as_ref()
            .map(|e| short(&format!("key: {}", e.source))),
    );
    lines.push(format!("entry: {}", entry_text(workflow.entry)));
    if !workflow.enabled {
        lines.push("disabled: starts no run".to_owned());
    }
    Node {
        key: TRIGGER.to_owned(),
        kind: NodeKind::Trigger,
        step: None,
        title,
        lines,
        reachable: true,
    }
}

/// The entry policy as the file writes it.
fn entry_text(entry: EntryPolicy) -> String {
    match entry {
        EntryPolicy::Once => "once".to_owned(),
        EntryPolicy::Single => "single".to_owned(),
        EntryPolicy::Restart => "restart".to_owned(),
        EntryPolicy::Every(period) => format!("every {}", length(period)),
    }
}

/// A step's node: its id and what it does.
fn step_node(step: &Step, key: &str) -> Node {
    let (kind, lines) = match &step.kind {
        StepKind::SendEmail(email) => (NodeKind::Email, email_lines(email)),
        StepKind::Wait(wait) => (NodeKind::Wait, vec![wait_text(*wait)]),
        StepKind::WaitFor(wait_for) => (NodeKind::WaitFor, wait_for_lines(wait_for)),
        StepKind::If(b) => (
            NodeKind::If,
            vec![short(&format!("{}?", b.condition.source))],
        ),
        StepKind::AbSplit(branches) => (NodeKind::Split, vec![split_text(branches)]),
        StepKind::UpdateProfile(update) => (NodeKind::Profile, profile_lines(update)),
        StepKind::Webhook(webhook) => (NodeKind::Webhook, vec![webhook_text(webhook)]),
    };
    Node {
        key: key.to_owned(),
        kind,
        step: Some(step.id.clone()),
        title: clean(&step.id),
        lines,
        reachable: true,
    }
}

fn email_lines(email: &SendEmail) -> Vec<String> {
    vec![format!(
        "“{}”",
        short(&compact_template(&email.subject.source))
    )]
}

fn wait_text(wait: Wait) -> String {
    match wait {
        Wait::For(d) => format!("wait {}", length(d)),
        Wait::Until(at) => format!("wait until {at}"),
    }
}

fn wait_for_lines(wait_for: &WaitFor) -> Vec<String> {
    let filter = &wait_for.filter;
    let mut lines = vec![short(&format!("wait for {}", filter.event))];
    lines.extend(
        filter
            .when
            .as_ref()
            .map(|e| short(&format!("when: {}", e.source))),
    );
    lines.extend(
        filter
            .key
            .as_ref()
            .map(|e| short(&format!("key: {}", e.source))),
    );
    lines.push(format!("up to {}", length(wait_for.timeout)));
    lines
}

/// A length as marketers write it: in days when it is whole days (`14d`, `365d`, not `2w`),
/// else in hours, else in minutes.
fn length(d: Duration) -> String {
    let minutes = d.minutes();
    if minutes != 0 && minutes % (24 * 60) == 0 {
        format!("{}d", minutes / (24 * 60))
    } else if minutes != 0 && minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

/// `A/B split`, `A/B/C split`, `A/B/holdout split`, or `split 6 ways`.
fn split_text(branches: &[SplitBranch]) -> String {
    if branches.len() > 4 {
        return format!("split {} ways", branches.len());
    }
    let named = branches.iter().filter(|b| !b.steps.is_empty()).count();
    let mut names: Vec<String> = (0..named).map(branch_letter).collect();
    if named < branches.len() {
        names.push("holdout".to_owned());
    }
    format!("{} split", names.join("/"))
}

fn profile_lines(update: &UpdateProfile) -> Vec<String> {
    let mut lines = Vec::new();
    if !update.set.is_empty() {
        let names: Vec<&str> = update.set.iter().map(|(name, _)| name.as_str()).collect();
        lines.push(short(&format!("set {}", names.join(", "))));
    }
    for (verb, tags) in [("add", &update.add_tags), ("remove", &update.remove_tags)] {
        if !tags.is_empty() {
            let noun = if tags.len() == 1 { "tag" } else { "tags" };
            lines.push(short(&format!("{verb} {noun} {}", tags.join(", "))));
        }
    }
    if lines.is_empty() {
        lines.push("update profile".to_owned());
    }
    lines
}

/// `POST crm.example.com`: the host only, since a path or query may carry a token.
fn webhook_text(webhook: &Webhook) -> String {
    let method = match webhook.method {
        nudge_core::workflow::model::HttpMethod::Post => "POST",
        nudge_core::workflow::model::HttpMethod::Put => "PUT",
        nudge_core::workflow::model::HttpMethod::Patch => "PATCH",
    };
    let host = webhook.url.host_str().unwrap_or("?");
    short(&format!("{method} {host}"))
}

/// A split branch's name: `A`, `B`, ..., `Z`, then `27`, `28`, ...
fn branch_letter(i: usize) -> String {
    u8::try_from(i)
        .ok()
        .filter(|i| *i < 26)
        .map_or_else(|| (i + 1).to_string(), |i| char::from(b'A' + i).to_string())
}

/// `weight` of `total` as a share: `50%`, or `33.3% (weight 1)` when the weights are not
/// percentages.
fn share(weight: u32, total: u64) -> String {
    let weight = u64::from(weight);
    let tenths = (weight * 1000 + total / 2).checked_div(total).unwrap_or(0);
    let percent = if tenths.is_multiple_of(10) {
        format!("{}%", tenths / 10)
    } else {
        format!("{}.{}%", tenths / 10, tenths % 10)
    };
    if total == 100 {
        percent
    } else {
        format!("{percent} (weight {weight})")
    }
}

/// `{{ customer.first_name | default('x') }}` as `{customer.first_name}`, `{% ... %}` as `…`
/// and `{# ... #}` left out: a subject as a reviewer reads it.
fn compact_template(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        let (before, tag) = rest.split_at(start);
        out.push_str(before);
        let close = match tag.get(..2) {
            Some("{{") => "}}",
            Some("{%") => "%}",
            Some("{#") => "#}",
            _ => {
                out.push('{');
                rest = &tag[1..];
                continue;
            }
        };
        let Some(end) = tag[2..].find(close) else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..2 + end];
        match close {
            "}}" => {
                let expr = inner.split('|').next().unwrap_or("").trim();
                out.push('{');
                out.push_str(expr);
                out.push('}');
            }
            "%}" => out.push('…'),
            _ => {}
        }
        rest = &tag[2 + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Whether `c` must not reach a label: control characters (newlines, escapes), line and
/// paragraph separators, and the marks that reorder text.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` on one line: hidden characters as spaces, runs of spaces as one, trimmed.
fn clean(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if is_hidden(c) { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` [`clean`]ed and cut to [`LABEL_CHARS`] characters, ending with `…` when cut.
fn short(text: &str) -> String {
    let text = clean(text);
    if text.chars().count() <= LABEL_CHARS {
        return text;
    }
    let cut: String = text.chars().take(LABEL_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests;
