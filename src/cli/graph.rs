//! `nudge graph`: each workflow as a Mermaid or Graphviz diagram (the drawing is
//! `nudge_review::graph`'s; this reads the folder, picks the workflows and prints).

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use super::{escape_controls, exit};
use nudge_core::diagnostic::{code_list, suggestion};
use nudge_core::workflow::model::Workflow;
use nudge_review::graph;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The workflows to draw, by id (default: every workflow, in id order).
    #[arg(value_name = "WORKFLOW_ID")]
    ids: Vec<String>,
    /// Output format: a Mermaid flowchart (GitHub draws it in a ```mermaid block) or
    /// Graphviz DOT (`| dot -Tsvg > flow.svg`).
    #[arg(long, value_enum, default_value_t)]
    format: GraphFormat,
    /// The workflows folder.
    #[arg(long, value_name = "DIR", default_value = "workflows/")]
    workflows: PathBuf,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum GraphFormat {
    /// A Mermaid `flowchart TD` per workflow.
    #[default]
    Mermaid,
    /// A Graphviz `digraph` per workflow.
    Dot,
}

impl From<GraphFormat> for graph::Format {
    fn from(format: GraphFormat) -> Self {
        match format {
            GraphFormat::Mermaid => graph::Format::Mermaid,
            GraphFormat::Dot => graph::Format::Dot,
        }
    }
}

/// Runs `nudge graph`; returns the exit code.
pub(crate) fn run(args: &Args) -> u8 {
    let project = match super::project::load(&args.workflows) {
        Ok(project) => project,
        Err(e) => {
            let _ = writeln!(anstream::stderr(), "nudge: {e}");
            return e.exit_code();
        }
    };
    let chosen = match choose(&project.workflows, &args.ids) {
        Ok(chosen) => chosen,
        Err(why) => {
            let _ = writeln!(anstream::stderr(), "nudge: {why}");
            return exit::USAGE;
        }
    };
    let text = graph::render_all(chosen, args.format.into());
    // A closed pipe (`| head`) is not this command's failure.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    exit::OK
}

/// The workflows named by `ids` in that order (each once), or all when none is named; an id
/// that names none is refused with the ids there are.
fn choose<'w>(workflows: &'w [Workflow], ids: &[String]) -> Result<Vec<&'w Workflow>, String> {
    if ids.is_empty() {
        return Ok(workflows.iter().collect());
    }
    let mut chosen: Vec<&Workflow> = Vec::new();
    for id in ids {
        let Some(w) = workflows.iter().find(|w| &w.id == id) else {
            let known = workflows.iter().map(|w| w.id.as_str());
            return Err(format!(
                "no workflow `{}`{} (the workflows: {})",
                escape_controls(id),
                suggestion(id, known.clone()),
                code_list(known)
            ));
        };
        if !chosen.iter().any(|c| c.id == w.id) {
            chosen.push(w);
        }
    }
    Ok(chosen)
}
