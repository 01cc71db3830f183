//! A [`Diagram`] as a Mermaid `flowchart TD`.
//!
//! Every label is a quoted string in which the characters Mermaid or HTML would read are
//! written as Mermaid's entity codes (`#quot;`, `#lt;`, `#35;`, ...), so a label ends only
//! where the writer ends it. Shapes say the kind (a stadium for the trigger, rounded boxes for
//! steps, a rhombus for `if`, a hexagon for `ab_split`, a flag for a goal, double circles for
//! the ends) and `classDef` colours it, with dark text on light fills so that the diagram reads
//! in GitHub's light and dark themes alike.

use std::fmt::Write;

use super::{Diagram, Edge, Node, NodeKind};

/// The colours of each class, in the order they are written.
const CLASSES: [(&str, &str); 9] = [
    (
        "start",
        "fill:#e0f2fe,stroke:#0369a1,stroke-width:2px,color:#0c4a6e",
    ),
    ("email", "fill:#fef3c7,stroke:#b45309,color:#451a03"),
    ("pause", "fill:#f1f5f9,stroke:#64748b,color:#1e293b"),
    ("action", "fill:#ede9fe,stroke:#6d28d9,color:#2e1065"),
    ("branch", "fill:#fce7f3,stroke:#be185d,color:#500724"),
    (
        "holdout",
        "fill:#f8fafc,stroke:#94a3b8,stroke-dasharray:4 3,color:#334155",
    ),
    (
        "goal",
        "fill:#dcfce7,stroke:#15803d,stroke-width:2px,color:#052e16",
    ),
    ("exited", "fill:#fee2e2,stroke:#b91c1c,color:#450a0a"),
    ("completed", "fill:#e5e7eb,stroke:#4b5563,color:#111827"),
];

/// The class of nodes no run reaches (after an `exit`): drawn dashed and faded.
const UNREACHED: (&str, &str) = (
    "unreached",
    "fill:#ffffff,stroke:#9ca3af,stroke-dasharray:2 2,color:#6b7280",
);

/// `diagram` as a Mermaid flowchart, ending with a newline.
pub fn mermaid(diagram: &Diagram) -> String {
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(
        out,
        "    %% nudge graph {}",
        comment_safe(&diagram.workflow)
    );
    for node in &diagram.nodes {
        let _ = writeln!(out, "    {}", node_line(node));
    }
    for edge in &diagram.edges {
        let _ = writeln!(out, "    {}", edge_line(edge));
    }
    for (class, style) in CLASSES.iter().chain([&UNREACHED]) {
        let members: Vec<&str> = diagram
            .nodes
            .iter()
            .filter(|n| class_of(n) == *class)
            .map(|n| n.key.as_str())
            .collect();
        if !members.is_empty() {
            let _ = writeln!(out, "    classDef {class} {style}");
            let _ = writeln!(out, "    class {} {class}", members.join(","));
        }
    }
    out
}

/// `s1("…label…")` in the node's shape.
fn node_line(node: &Node) -> String {
    let (open, close) = match node.kind {
        NodeKind::Trigger => ("([", "])"),
        NodeKind::If => ("{", "}"),
        NodeKind::Split => ("{{", "}}"),
        NodeKind::Holdout => ("[/", "/]"),
        NodeKind::Goal => (">", "]"),
        NodeKind::Exit | NodeKind::Done => ("(((", ")))"),
        NodeKind::Email
        | NodeKind::Wait
        | NodeKind::WaitFor
        | NodeKind::Profile
        | NodeKind::Webhook => ("(", ")"),
    };
    format!("{}{open}\"{}\"{close}", node.key, label(node))
}

/// The node's text: an icon, its title in bold, then its lines.
fn label(node: &Node) -> String {
    let mut text = String::new();
    if let Some(icon) = icon(node.kind) {
        text.push_str(icon);
        text.push(' ');
    }
    let _ = write!(text, "<b>{}</b>", escape(&node.title));
    for line in &node.lines {
        let _ = write!(text, "<br/>{}", escape(line));
    }
    text
}

fn icon(kind: NodeKind) -> Option<&'static str> {
    match kind {
        NodeKind::Trigger => Some("⚡"),
        NodeKind::Email => Some("✉️"),
        NodeKind::Wait => Some("⏱️"),
        NodeKind::WaitFor => Some("⏳"),
        NodeKind::Profile => Some("👤"),
        NodeKind::Webhook => Some("🔗"),
        NodeKind::Split => Some("🔀"),
        NodeKind::Goal => Some("🎯"),
        NodeKind::If | NodeKind::Holdout | NodeKind::Exit | NodeKind::Done => None,
    }
}

fn class_of(node: &Node) -> &'static str {
    if !node.reachable {
        return UNREACHED.0;
    }
    match node.kind {
        NodeKind::Trigger => "start",
        NodeKind::Email => "email",
        NodeKind::Wait | NodeKind::WaitFor => "pause",
        NodeKind::Profile | NodeKind::Webhook => "action",
        NodeKind::If | NodeKind::Split => "branch",
        NodeKind::Holdout => "holdout",
        NodeKind::Goal => "goal",
        NodeKind::Exit => "exited",
        NodeKind::Done => "completed",
    }
}

/// `a --> b`, `a -->|"yes"| b`, or dashed `a -.->|"any time"| b`.
fn edge_line(edge: &Edge) -> String {
    let arrow = if edge.dashed { "-.->" } else { "-->" };
    match &edge.label {
        Some(label) => format!("{} {arrow}|\"{}\"| {}", edge.from, escape(label), edge.to),
        None => format!("{} {arrow} {}", edge.from, edge.to),
    }
}

/// `text` for inside a quoted Mermaid label: the quote, `#` (which starts an entity code),
/// HTML's `<`, `>` and `&`, the backtick (which starts Markdown) and `|` (which ends an edge
/// label) as entity codes; line breaks and other hidden characters as spaces.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            c if super::is_hidden(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `text` for a `%%` comment: letters, digits, `-`, `_` and `.`; anything else as `_`.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
