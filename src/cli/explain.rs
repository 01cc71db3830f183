//! `nudge explain --db STORE --customer ID [--workflow ID] [--workflows DIR] [--format
//! text|json]`: one customer's story from the store (the logic: `nudge_review::explain`).
//!
//! The workflows (`--workflows`, default `workflows/` when it exists, else none) are read as
//! `simulate` reads them: with errors they are refused (exit 1, the diagnostics on stderr).
//! They give the ids `--workflow` may name besides those of the customer's story; another
//! is a usage error (exit 2) with the closest id suggested.
//!
//! Prints the story on stdout: in text, a line per thing that happened and then "Now"; in
//! JSON, one row per line (the shape of `simulate`'s rows), the history first, then the
//! `state.run` and `state.wake` rows (at the store's clock: the virtual clock `simulate --db`
//! left, else the wall clock). Exits 0; 1 when the store knows no such customer; 2 when
//! the store cannot be opened or read. stdout is the operator's report and names the
//! customer's address (as `simulate`'s does); stderr and logs never do.

use std::io::Write;
use std::path::{Path, PathBuf};

use nudge_core::engine::Tz;
use nudge_core::workflow::Project;
use nudge_review::explain::{ExplainError, Request, Story, explain, text};

use super::db::{self, DbSpec, with_store};
use super::project::{self, ProjectError};
use super::{Format, escape_controls, exit};

/// The workflows folder read when `--workflows` is not given, if it exists.
const DEFAULT_WORKFLOWS: &str = "workflows/";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store: a file `nudge simulate --db` wrote, or `dynamodb://TABLE`.
    #[arg(long, value_name = "STORE", value_parser = DbSpec::parse)]
    db: DbSpec,
    /// The customer's id.
    #[arg(long, value_name = "ID")]
    customer: String,
    /// Only this workflow's runs (and the events that moved them): one the workflows define
    /// or the customer's story names.
    #[arg(long, value_name = "ID")]
    workflow: Option<String>,
    /// The workflows folder (default: workflows/ when it exists, else none); workflows with
    /// errors are refused.
    #[arg(long, value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// Output format: a story for people, or JSON lines for tools.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs `nudge explain`; the exit code.
pub(crate) fn run(args: &Args) -> u8 {
    match story(args) {
        Ok(story) => {
            print(&story, args.format);
            exit::OK
        }
        Err((code, message)) => {
            eprintln!("error: {}", escape_controls(&message));
            code
        }
    }
}

/// The workflows `--workflows` names, or `workflows/` when it exists, or none.
fn load_project(dir: Option<&Path>) -> Result<Option<Project>, ProjectError> {
    match dir {
        Some(dir) => project::load(dir).map(Some),
        None if Path::new(DEFAULT_WORKFLOWS).is_dir() => {
            project::load(Path::new(DEFAULT_WORKFLOWS)).map(Some)
        }
        None => Ok(None),
    }
}

/// The story `args` ask for, or the exit code and message of why not.
fn story(args: &Args) -> Result<Story, (u8, String)> {
    let project =
        load_project(args.workflows.as_deref()).map_err(|e| (e.exit_code(), e.to_string()))?;
    let defined: Vec<&str> = project
        .iter()
        .flat_map(|p| p.workflows.iter().map(|w| w.id.as_str()))
        .collect();
    let runtime =
        db::runtime().map_err(|e| (exit::USAGE, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let opened = db::open(&args.db)
            .await
            .map_err(|e| (exit::USAGE, e.to_string()))?;
        with_store!(opened, store => {
            let request = Request {
                customer: &args.customer,
                workflow: args.workflow.as_deref(),
                defined: &defined,
                zone: Tz::UTC,
                now: db::clock(&store).await.map_err(|e| (exit::USAGE, format!("{}: {e}", args.db)))?,
            };
            explain(&store, &request).await
        })
        .map_err(|e| match e {
            ExplainError::UnknownCustomer(_) => (exit::PROBLEMS, format!("{}: {e}", args.db)),
            ExplainError::UnknownWorkflow { .. } => (exit::USAGE, e.to_string()),
            other => (exit::USAGE, format!("{}: {other}", args.db)),
        })
    })
}

/// Prints `story` in `format` on stdout.
fn print(story: &Story, format: Format) {
    let mut out = std::io::stdout().lock();
    let _ = match format {
        Format::Json => story
            .rows
            .iter()
            .chain(&story.now)
            .try_for_each(|row| writeln!(out, "{}", row.json())),
        // Ids, subjects and addresses come from events: one row stays one line.
        Format::Text => text(story)
            .lines()
            .try_for_each(|line| writeln!(out, "{}", escape_controls(line))),
    };
}
