//! `nudge plan`: what merging an edit of the workflows changes (`nudge_review::plan`), and
//! with `--db` what it does to the runs in flight, at the store's clock (the virtual clock a
//! `simulate --db` run left; a store without one, such as the deployed table, is read at the
//! wall clock) or at `--at`.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nudge_core::store::Store;
use nudge_core::workflow::{LoadError, Project};
use nudge_local::simulate::CLOCK_KEY;
use nudge_review::plan::{self, Plan, PlanError, TemplateReadError, render};

use super::db::{self, DbError, DbSpec, with_store};
use super::project::ProjectError;
use super::{escape_controls, exit};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The workflows as deployed (a checkout of the main branch, say).
    #[arg(long, value_name = "DIR")]
    base: PathBuf,
    /// The edited workflows.
    #[arg(long, value_name = "DIR", default_value = "workflows/")]
    workflows: PathBuf,
    /// Also say what happens to the runs in flight in this store: a file `simulate --db`
    /// wrote, or dynamodb://TABLE.
    #[arg(long, value_name = "STORE", value_parser = DbSpec::parse)]
    db: Option<DbSpec>,
    /// Look at the runs as of this RFC 3339 time (default: the store's clock, else now).
    #[arg(long, value_name = "TIME", value_parser = super::simulate::parse_time)]
    at: Option<DateTime<Utc>>,
    /// Output format: text for people, Markdown for a pull-request comment, JSON lines.
    #[arg(long, value_enum, default_value_t)]
    format: PlanFormat,
}

/// How `plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub(crate) enum PlanFormat {
    /// Lines for people.
    #[default]
    Text,
    /// A pull-request comment (with a hidden `<!-- nudge-plan -->` marker first).
    Markdown,
    /// One JSON object per line: {"workflow", "change", "step", "detail", "runs"}.
    Json,
}

/// Why `nudge plan` could not run: printed as `nudge: <why>`.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// A workflows folder cannot be read.
    #[error(transparent)]
    Workflows(#[from] LoadError),
    /// `--base` or `--workflows` names something other than a folder: a plan of one file
    /// against a folder would report every other workflow as removed.
    #[error("{} is not a folder: --base and --workflows name workflows folders", .0.display())]
    NotAFolder(PathBuf),
    /// A workflows folder has errors (already printed as diagnostics).
    #[error("the workflows in {} have errors; fix them (nudge validate) and run again", .0.display())]
    Invalid(PathBuf),
    /// A template file cannot be read again.
    #[error(transparent)]
    Template(#[from] TemplateReadError),
    /// The store cannot be opened.
    #[error(transparent)]
    Db(#[from] DbError),
    /// No runtime for the store's calls.
    #[error("cannot start the store's runtime: {0}")]
    Runtime(std::io::Error),
    /// The store failed, or holds a state this engine cannot read.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The store's clock is not a time.
    #[error("the store's clock (`{CLOCK_KEY}`) is not an RFC 3339 time: {0}")]
    Clock(String),
}

impl RunError {
    fn code(&self) -> u8 {
        match self {
            RunError::Invalid(_) => exit::PROBLEMS,
            _ => exit::USAGE,
        }
    }
}

/// Runs `nudge plan`; returns the exit code (0 whether or not something changes).
pub(crate) fn run(args: &Args) -> u8 {
    match plan_command(args) {
        Ok(plan) => {
            let text = match args.format {
                PlanFormat::Text => render::text(&plan),
                PlanFormat::Markdown => render::markdown(&plan),
                PlanFormat::Json => render::json(&plan),
            };
            let _ = anstream::stdout().write_all(text.as_bytes());
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(
                anstream::stderr(),
                "nudge: {}",
                escape_controls(&e.to_string())
            );
            e.code()
        }
    }
}

/// Loads a workflows folder (diagnostics on stderr), naming the folder when it has errors
/// (`plan` reads two).
fn load(dir: &Path) -> Result<Project, RunError> {
    if dir.exists() && !dir.is_dir() {
        return Err(RunError::NotAFolder(dir.to_path_buf()));
    }
    super::project::load(dir).map_err(|e| match e {
        ProjectError::Read(e) => RunError::Workflows(e),
        ProjectError::Invalid => RunError::Invalid(dir.to_path_buf()),
    })
}

fn plan_command(args: &Args) -> Result<Plan, RunError> {
    let base = load(&args.base)?;
    let head = load(&args.workflows)?;
    let templates = plan::changed_templates(&base, &head)?;
    let Some(spec) = &args.db else {
        return Ok(Plan {
            changes: plan::diff(&base, &head, &templates),
            flight: None,
        });
    };
    let rt = db::runtime().map_err(RunError::Runtime)?;
    rt.block_on(async {
        let opened = db::open(spec).await?;
        with_store!(opened, store => {
            let now = match args.at {
                Some(at) => at,
                None => clock(&store).await?.unwrap_or_else(Utc::now),
            };
            Ok(plan::plan(&base, &head, &templates, Some((&store, now))).await?)
        })
    })
}

/// The virtual clock a `simulate --db` run left in the store, if any.
async fn clock<S: Store>(store: &S) -> Result<Option<DateTime<Utc>>, RunError> {
    let Some(text) = store.get_meta(CLOCK_KEY).await.map_err(PlanError::from)? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| RunError::Clock(e.to_string()))
}
