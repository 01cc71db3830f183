//! A [`Diagram`] as a Graphviz `digraph` (`nudge graph --format dot | dot -Tsvg`).
//!
//! Every label and the graph's name are quoted strings in which `"` and `\` are escaped, so
//! a label ends only where the writer ends it and no `\n`, `\N` or `\G` of a workflow's text is
//! read as Graphviz's own escape; line breaks in the label are the writer's `\n`. Shapes and
//! colours follow the Mermaid drawing's.

use std::fmt::Write;

use super::{Diagram, Edge, Node, NodeKind};

const FONT: &str = "Helvetica,Arial,sans-serif";

/// `diagram` as a `digraph`, ending with a newline.
pub fn dot(diagram: &Diagram) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", escape(&diagram.workflow));
    let _ = writeln!(
        out,
        "    graph [rankdir=TB, fontname=\"{FONT}\", nodesep=0.4, ranksep=0.45]"
    );
    let _ = writeln!(
        out,
        "    node [fontname=\"{FONT}\", fontsize=11, shape=box, style=\"rounded,filled\", margin=\"0.15,0.06\"]"
    );
    let _ = writeln!(
        out,
        "    edge [fontname=\"{FONT}\", fontsize=10, color=\"#475569\", fontcolor=\"#334155\"]"
    );
    for node in &diagram.nodes {
        let _ = writeln!(out, "    {}", node_line(node));
    }
    for edge in &diagram.edges {
        let _ = writeln!(out, "    {}", edge_line(edge));
    }
    out.push_str("}\n");
    out
}

/// `s1 [label="...", shape=..., ...]`.
fn node_line(node: &Node) -> String {
    let mut label = escape(&node.title);
    for line in &node.lines {
        label.push_str("\\n");
        label.push_str(&escape(line));
    }
    let (shape, style, fill, stroke) = look(node);
    format!(
        "{} [label=\"{label}\", shape={shape}, style=\"{style}\", fillcolor=\"{fill}\", color=\"{stroke}\"]",
        node.key
    )
}

/// Shape, style, fill and stroke colour.
fn look(node: &Node) -> (&'static str, &'static str, &'static str, &'static str) {
    if !node.reachable {
        let shape = match node.kind {
            NodeKind::Exit | NodeKind::Done => "doublecircle",
            _ => "box",
        };
        return (shape, "rounded,dashed", "#ffffff", "#9ca3af");
    }
    match node.kind {
        NodeKind::Trigger => ("box", "rounded,filled,bold", "#e0f2fe", "#0369a1"),
        NodeKind::Email => ("box", "rounded,filled", "#fef3c7", "#b45309"),
        NodeKind::Wait | NodeKind::WaitFor => ("box", "rounded,filled", "#f1f5f9", "#64748b"),
        NodeKind::Profile | NodeKind::Webhook => ("box", "rounded,filled", "#ede9fe", "#6d28d9"),
        NodeKind::If => ("diamond", "filled", "#fce7f3", "#be185d"),
        NodeKind::Split => ("hexagon", "filled", "#fce7f3", "#be185d"),
        NodeKind::Holdout => ("parallelogram", "dashed,filled", "#f8fafc", "#94a3b8"),
        NodeKind::Goal => ("cds", "filled,bold", "#dcfce7", "#15803d"),
        NodeKind::Exit => ("doublecircle", "filled", "#fee2e2", "#b91c1c"),
        NodeKind::Done => ("doublecircle", "filled", "#e5e7eb", "#4b5563"),
    }
}

/// `a -> b [label="yes"]`, dashed for a goal.
fn edge_line(edge: &Edge) -> String {
    let mut attrs = Vec::new();
    if let Some(label) = &edge.label {
        attrs.push(format!("label=\"{}\"", escape(label)));
    }
    if edge.dashed {
        attrs.push("style=dashed".to_owned());
    }
    if attrs.is_empty() {
        format!("{} -> {}", edge.from, edge.to)
    } else {
        format!("{} -> {} [{}]", edge.from, edge.to, attrs.join(", "))
    }
}

/// `text` for inside a quoted DOT string: `\` and `"` escaped, hidden characters as spaces.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if super::is_hidden(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
