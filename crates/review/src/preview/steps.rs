//! Every `send_email` step of a workflow, branches included, with the branch path that leads
//! to it.

use nudge_core::workflow::model::{SendEmail, Step, StepItem, StepKind, Workflow};

/// One `send_email` step and how a run reaches it.
#[derive(Debug, Clone)]
pub struct EmailStep<'w> {
    /// The step.
    pub step: &'w Step,
    /// Its `send_email`.
    pub email: &'w SendEmail,
    /// The branches taken to reach it, outermost first (`regular: then`, `offer: branch 2 of
    /// 2 (50%)`); empty on the main path.
    pub path: Vec<String>,
}

/// The `send_email` steps of `workflow`, in document order, every branch of every `if` and
/// `ab_split` included.
pub fn email_steps(workflow: &Workflow) -> Vec<EmailStep<'_>> {
    let mut out = Vec::new();
    walk(&workflow.steps, &mut Vec::new(), &mut out);
    out
}

fn walk<'w>(items: &'w [StepItem], path: &mut Vec<String>, out: &mut Vec<EmailStep<'w>>) {
    for item in items {
        let StepItem::Step(step) = item else {
            continue;
        };
        match &step.kind {
            StepKind::SendEmail(email) => out.push(EmailStep {
                step,
                email,
                path: path.clone(),
            }),
            StepKind::If(b) => {
                for (label, list) in [("then", &b.then), ("else", &b.otherwise)] {
                    path.push(format!("{}: {label}", step.id));
                    walk(list, path, out);
                    path.pop();
                }
            }
            StepKind::AbSplit(branches) => {
                let total: u32 = branches.iter().map(|b| b.weight).sum();
                for (i, b) in branches.iter().enumerate() {
                    path.push(format!(
                        "{}: branch {} of {} ({})",
                        step.id,
                        i + 1,
                        branches.len(),
                        percent(b.weight, total)
                    ));
                    walk(&b.steps, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

/// `weight` of `total` as a percentage for people: `50%`, `33.3%`.
pub fn percent(weight: u32, total: u32) -> String {
    if total == 0 {
        return "0%".to_owned();
    }
    let p = f64::from(weight) * 100.0 / f64::from(total);
    if (p - p.round()).abs() < 0.05 {
        format!("{}%", p.round())
    } else {
        format!("{p:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_naturally() {
        assert_eq!(percent(50, 100), "50%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 0), "0%");
    }
}
