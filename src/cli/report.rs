//! `nudge report`: per workflow and step, what was sent, skipped, delivered, opened, ... and
//! the goals reached, from a store (`--db`). The counting is `nudge_review::report`'s; this
//! opens the store and the workflows, and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use nudge_core::store::StoreError;
use nudge_core::workflow::{LoadError, Project};
use nudge_review::report::{self, Report};

use super::db::{self, DbError, DbSpec, with_store};
use super::exit;

/// The workflows folder read when `--workflows` is not given, if it exists.
const DEFAULT_WORKFLOWS: &str = "workflows/";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store: a file `nudge simulate --db` wrote, or `dynamodb://TABLE`.
    #[arg(long, value_name = "STORE", value_parser = DbSpec::parse)]
    db: DbSpec,
    /// Count only what happened at or after this RFC 3339 time (SES's counts carry no dates
    /// and stay all-time; the report says so).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// The workflows folder: every workflow and `send_email` step is listed in its order,
    /// with zeros where nothing happened (default: workflows/ when it exists).
    #[arg(long, value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// Output format: aligned tables, Markdown tables (for a pull request or an issue), or
    /// JSON lines (a row per workflow with `"step": null`, then a row per step).
    #[arg(long, value_enum, default_value_t)]
    format: ReportFormat,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum ReportFormat {
    /// An aligned table per workflow.
    #[default]
    Text,
    /// Markdown tables.
    Markdown,
    /// One JSON object per line.
    Json,
}

/// `--since`: an RFC 3339 time.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "`{}` is not an RFC 3339 time ({e}); write e.g. 2026-03-01T00:00:00Z",
                text.escape_debug()
            )
        })
}

/// Why `nudge report` could not run: printed as `nudge: <why>`.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The workflows folder cannot be read.
    #[error(transparent)]
    Workflows(#[from] LoadError),
    /// The workflows have errors (already printed as diagnostics).
    #[error("the workflows have errors; fix them (nudge validate) and run again")]
    Invalid,
    /// The store cannot be opened.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The store failed while being read.
    #[error("cannot read the store {db}: {source}")]
    Store {
        /// The store.
        db: DbSpec,
        /// Why.
        source: StoreError,
    },
    /// The runtime could not start.
    #[error("cannot start: {0}")]
    Runtime(std::io::Error),
    /// A row could not be written as JSON.
    #[error("cannot write a JSON row: {0}")]
    Json(#[from] serde_json::Error),
}

impl RunError {
    fn code(&self) -> u8 {
        match self {
            RunError::Invalid => exit::PROBLEMS,
            _ => exit::USAGE,
        }
    }
}

/// Runs `nudge report`; returns the exit code.
pub(crate) fn run(args: &Args) -> u8 {
    match report(args) {
        Ok(()) => exit::OK,
        Err(e) => {
            let _ = writeln!(anstream::stderr(), "nudge: {e}");
            e.code()
        }
    }
}

fn report(args: &Args) -> Result<(), RunError> {
    let project = load_project(args.workflows.as_deref())?;
    let rt = db::runtime().map_err(RunError::Runtime)?;
    let report = rt.block_on(async {
        let opened = db::open(&args.db).await?;
        let read = with_store!(opened, store => {
            report::report(&store, project.as_ref(), args.since).await
        });
        read.map_err(|source| RunError::Store {
            db: args.db.clone(),
            source,
        })
    })?;
    print(&report, args.format)
}

/// The workflows `--workflows` names, or `workflows/` when it exists, or none.
fn load_project(dir: Option<&Path>) -> Result<Option<Project>, RunError> {
    let dir = match dir {
        Some(dir) => dir,
        None if Path::new(DEFAULT_WORKFLOWS).is_dir() => Path::new(DEFAULT_WORKFLOWS),
        None => return Ok(None),
    };
    let loaded = nudge_core::workflow::load(dir)?;
    let mut err = anstream::stderr();
    for d in &loaded.diagnostics {
        let _ = writeln!(err, "{d}");
    }
    loaded.project.map(Some).ok_or(RunError::Invalid)
}

fn print(report: &Report, format: ReportFormat) -> Result<(), RunError> {
    let mut out = anstream::stdout().lock();
    let _ = match format {
        ReportFormat::Text => write!(out, "{}", report::text(report)),
        ReportFormat::Markdown => write!(out, "{}", report::markdown(report)),
        ReportFormat::Json => {
            for row in report::json_rows(report)? {
                let _ = writeln!(out, "{row}");
            }
            let mut err = anstream::stderr();
            for note in report::notes(report) {
                let _ = writeln!(err, "note: {note}");
            }
            Ok(())
        }
    };
    Ok(())
}
