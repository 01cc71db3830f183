//! The `ab_split` step: two or more weighted branches of steps; a branch with no steps is a
//! holdout group.

use crate::diagnostic::Sink;
use crate::workflow::model::SplitBranch;
use crate::workflow::yaml::{Node, NodeValue};

use super::super::map::Map;
use super::super::scalars::Scalars;
use super::super::values::list;
use super::{StepIds, branch_steps};

/// Reads the body of an `ab_split` step; `None` when any branch is unusable (each is reported).
pub(super) fn ab_split(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
    ids: &mut StepIds,
) -> Option<Vec<SplitBranch>> {
    let items = list(sink, node, "`ab_split`")?;
    if items.len() < 2 {
        sink.error(
            node.pos,
            "`ab_split` needs at least two branches (a branch with `steps: []` is a holdout group)",
        );
    }
    let mut ok = items.len() >= 2;
    let mut branches = Vec::new();
    for item in items {
        match split_branch(sink, sc, item, ids) {
            Some(b) => branches.push(b),
            None => ok = false,
        }
    }
    ok.then_some(branches)
}

/// One branch: `{weight, steps}`.
fn split_branch(
    sink: &mut Sink,
    sc: &Scalars,
    item: &Node,
    ids: &mut StepIds,
) -> Option<SplitBranch> {
    let map = Map::of(sink, item, "an `ab_split` branch")?;
    map.deny_unknown(sink, &["weight", "steps"], "an `ab_split` branch");
    let weight = map
        .required(sink, "weight", item.pos, "this `ab_split` branch")
        .and_then(|n| weight(sink, n));
    let steps = map
        .required_hint(
            sink,
            "steps",
            item.pos,
            "this `ab_split` branch",
            " (`steps: []` makes a holdout group)",
        )
        .and_then(|n| branch_steps(sink, sc, n, "`steps`", ids));
    Some(SplitBranch {
        weight: weight?,
        steps: steps?,
    })
}

/// A branch's relative weight: a whole number from 1 to 10000.
fn weight(sink: &mut Sink, node: &Node) -> Option<u32> {
    match node.value {
        NodeValue::Int(w) if (1..=10_000).contains(&w) => Some(w as u32),
        _ => {
            let shown = node
                .as_scalar_text()
                .unwrap_or_else(|| node.value.kind().to_owned());
            sink.error(
                node.pos,
                format!("`weight` must be a whole number from 1 to 10000, found `{shown}`"),
            );
            None
        }
    }
}
