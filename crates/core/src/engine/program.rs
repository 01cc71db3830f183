//! A workflow's steps indexed by id, with where each one leads.
//!
//! Runs remember their step by id; this index answers "which step comes after this one" in
//! the workflow as it is now, so a run resumes correctly after an edit moved or removed steps.

use std::collections::HashMap;

use crate::workflow::model::{Step, StepItem, StepKind, Workflow};

/// What comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'w> {
    /// The step with this id.
    Step(&'w str),
    /// An `exit` step: the run ends with reason `exited`.
    Exit,
    /// Nothing: the run ends with reason `completed`.
    End,
}

/// One step of a workflow, found by its id, and where it leads (its successors).
#[derive(Debug)]
pub struct StepNode<'w> {
    /// The step.
    pub step: &'w Step,
    /// Where the run goes after this step.
    pub next: Next<'w>,
    /// For `if`: the first step of `then` and of `else`; for `ab_split`: of each branch. An
    /// empty branch leads straight to `next`.
    pub branches: Vec<Next<'w>>,
}

/// A workflow ready to run.
#[derive(Debug)]
pub struct Program<'w> {
    /// The workflow.
    pub workflow: &'w Workflow,
    /// Where a new run starts.
    pub first: Next<'w>,
    steps: HashMap<&'w str, StepNode<'w>>,
}

impl<'w> Program<'w> {
    /// Indexes `workflow`.
    pub fn new(workflow: &'w Workflow) -> Self {
        let mut steps = HashMap::new();
        let first = index(&workflow.steps, Next::End, &mut steps);
        Self {
            workflow,
            first,
            steps,
        }
    }

    /// The step with this id, if the workflow (still) has it.
    pub fn get(&self, id: &str) -> Option<&StepNode<'w>> {
        self.steps.get(id)
    }
}

/// Indexes `list`, whose last step leads to `after`; returns where the list starts.
fn index<'w>(
    list: &'w [StepItem],
    after: Next<'w>,
    out: &mut HashMap<&'w str, StepNode<'w>>,
) -> Next<'w> {
    let mut next = after;
    for item in list.iter().rev() {
        let step = match item {
            StepItem::Step(step) => step,
            // Whatever followed an `exit` can never run (`validate` warns about it).
            StepItem::Exit { .. } => {
                next = Next::Exit;
                continue;
            }
        };
        let id = step.id.as_str();
        let branches = match &step.kind {
            StepKind::If(b) => vec![index(&b.then, next, out), index(&b.otherwise, next, out)],
            StepKind::AbSplit(branches) => branches
                .iter()
                .map(|b| index(&b.steps, next, out))
                .collect(),
            _ => Vec::new(),
        };
        out.insert(
            id,
            StepNode {
                step,
                next,
                branches,
            },
        );
        next = Next::Step(id);
    }
    next
}
