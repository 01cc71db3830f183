//! Expressions (`when`, `if`, `key`) and templates (subjects, profile values) written inside
//! YAML scalars, checked against the names a workflow has in scope.

use crate::diagnostic::Sink;
use crate::workflow::model::{Expr, TemplateText};
use crate::workflow::template::{SCOPE, ScalarChecker, ScalarKind};
use crate::workflow::yaml::{Node, NodeValue, Pos};

use super::values::non_empty_string;

/// Checks expressions and templates written in a workflow against the names in its scope.
pub struct Scalars<'a> {
    checker: &'a ScalarChecker<'a>,
    scope: Vec<&'static str>,
}

impl<'a> Scalars<'a> {
    /// Checks with `checker`; a date-triggered workflow has no `event` in scope.
    pub fn new(checker: &'a ScalarChecker<'a>, date_triggered: bool) -> Self {
        let scope = SCOPE
            .iter()
            .copied()
            .filter(|n| !(date_triggered && *n == "event"))
            .collect();
        Self { checker, scope }
    }

    /// Checks `source`, written at `pos`, as `kind`; problems go to `sink` at their column.
    pub(super) fn check(&self, sink: &mut Sink, source: &str, pos: Pos, kind: ScalarKind) {
        self.checker.check(sink, source, pos, kind, &self.scope);
    }
}

/// An expression; a boolean or number is taken as the expression it spells.
pub(super) fn expr(sink: &mut Sink, sc: &Scalars, node: &Node, what: &str) -> Option<Expr> {
    let source = match &node.value {
        NodeValue::Str(s) => s.clone(),
        // `if: true` or `when: 1` are legal expressions; keep their text.
        NodeValue::Bool(_) | NodeValue::Int(_) | NodeValue::Float(_) => node.as_scalar_text()?,
        other => {
            sink.error(
                node.pos,
                format!("{what} must be an expression, found {}", other.kind()),
            );
            return None;
        }
    };
    if source.trim().is_empty() {
        sink.error(node.pos, format!("{what} must not be empty"));
        return None;
    }
    sc.check(sink, &source, node.pos, ScalarKind::Expression);
    Some(Expr {
        source,
        pos: node.pos,
    })
}

/// A non-empty template string.
pub(super) fn template_text(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
    what: &str,
) -> Option<TemplateText> {
    let source = non_empty_string(sink, node, what)?;
    sc.check(sink, &source, node.pos, ScalarKind::Template);
    Some(TemplateText {
        source,
        pos: node.pos,
    })
}
