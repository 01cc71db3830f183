//! The `if` step: a condition under `if`, steps under `then` and, optionally, `else`, all three
//! keys of the step itself.

use crate::diagnostic::Sink;
use crate::workflow::model::Branching;
use crate::workflow::yaml::Node;

use super::super::map::Map;
use super::super::scalars::{Scalars, expr};
use super::{StepIds, branch_steps};

/// Reads an `if` step; `map` is the step's mapping and `node` the step.
pub(super) fn branching(
    sink: &mut Sink,
    sc: &Scalars,
    map: &Map,
    node: &Node,
    ids: &mut StepIds,
) -> Option<Branching> {
    let condition = map.get("if").and_then(|n| expr(sink, sc, n, "`if`"));
    let then = match map.get("then") {
        Some(n) => branch_steps(sink, sc, n, "`then`", ids),
        None => {
            sink.error(node.pos, "this `if` step has no `then`");
            None
        }
    };
    let otherwise = match map.get("else") {
        Some(n) => branch_steps(sink, sc, n, "`else`", ids),
        None => Some(Vec::new()),
    };
    Some(Branching {
        condition: condition?,
        then: then?,
        otherwise: otherwise?,
    })
}
