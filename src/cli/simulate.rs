//! `nudge simulate`.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::db::{LockError, StoreLock};
use super::project::ProjectError;
use super::{Format, counted, escape_controls, exit};
use nudge_core::engine::{Action, ActionKind, Engine, Tz};
use nudge_core::event::check_time_range;
use nudge_core::links::{KeySource, Signer, SigningKeyError};
use nudge_core::runner::{DeliveryOutcome, Runner};
use nudge_core::timeline::{Row, ts};
use nudge_core::workflow::model::{StepItem, StepKind};
use nudge_core::workflow::{LoadError, Project};
use nudge_local::simulate::{
    Notice, Options, Runners, SimulateError, Summary, Swept, WorkflowSummary, resume_sends,
    retry_pending, simulate,
};
use nudge_local::sqlite::{SqliteOptions, SqliteStore};
use nudge_local::{LocalMailer, OpenError, OutboxError, OutboxMailer, RecordingMailer};
use tempfile::NamedTempFile;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Events, one EventBridge event (JSON) per line.
    #[arg(long, value_name = "FILE")]
    events: PathBuf,
    /// The workflows folder.
    #[arg(long, value_name = "DIR", default_value = "workflows/")]
    workflows: PathBuf,
    /// Run the clock on to this RFC 3339 time (default: the last event + 365 days).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Also write every sent email as an .eml file into this folder (without it, emails are
    /// recorded as sent and nothing is written).
    #[arg(long, value_name = "DIR")]
    outbox: Option<PathBuf>,
    /// Keep the embedded store in this file; a later run continues from its state and clock.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Output format: a timeline for people, or JSON lines for tools.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
    /// Show local times in this IANA time zone (e.g. America/New_York) instead of each
    /// customer's own (the profile's `timezone`, else settings.yaml's).
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<Tz>,
}

/// `--timezone`: an IANA zone name.
fn parse_zone(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>().map_err(|_| {
        format!(
            "`{}` is not an IANA time zone; write e.g. America/New_York or Europe/Istanbul",
            text.escape_debug()
        )
    })
}

/// `--until`: an RFC 3339 time within the range an event's time may be in (the clock is kept
/// in the store, and a later run reads it back).
pub(super) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let shown = text.escape_debug();
    let t = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("`{shown}` is not an RFC 3339 time ({e}); write e.g. 2026-12-31T00:00:00Z")
        })?;
    check_time_range(t).map_err(|e| format!("`{shown}` is {e}"))
}

/// Why `nudge simulate` could not run, or stopped: printed as `nudge: <why>`, exit code 2
/// ([`exit::USAGE`]).
#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    /// The workflows folder cannot be read.
    #[error(transparent)]
    Workflows(#[from] LoadError),
    /// `NUDGE_UNSUBSCRIBE_URL` is not a URL.
    #[error("NUDGE_UNSUBSCRIBE_URL is not a URL: {0}")]
    UnsubscribeUrl(String),
    /// The workflows have errors (already printed as diagnostics).
    #[error("the workflows have errors; fix them (nudge validate) and run again")]
    Invalid,
    /// A store cannot be opened (the error names its file).
    #[error(transparent)]
    Store(#[from] OpenError),
    /// Another process uses the `--db` store, or its lock file cannot be locked.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A throwaway store's file cannot be created.
    #[error("cannot create a scratch store: {0}")]
    Scratch(std::io::Error),
    /// The outbox folder cannot be used (the error names it).
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The simulation stopped.
    #[error(transparent)]
    Simulate(#[from] SimulateError),
    /// `NUDGE_SIGNING_KEY` is too short.
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
}

/// Runs `nudge simulate`; returns the exit code.
pub(crate) fn run(args: &Args) -> u8 {
    match simulate_command(args) {
        Ok(code) => code,
        Err(e) => {
            let why = with_causes(&e);
            let _ = writeln!(anstream::stderr(), "nudge: {}", escape_controls(&why));
            exit::USAGE
        }
    }
}

/// `error`'s message followed by each of its causes that it does not already say, so that
/// "the store rolled back a batch" says why ("...: database or disk is full").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// The stores of a run.
enum Stores {
    /// `--db`: one store in that file, which every shard shares (boxed: the enum would be
    /// the size of a store), and the lock that keeps other processes off it.
    Db(Box<SqliteStore>, StoreLock),
    /// One throwaway store per shard, with its file (deleted when dropped).
    Scratch(Vec<(SqliteStore, NamedTempFile)>),
}

/// What the command does, up to the exit code; every failure is a [`RunError`].
fn simulate_command(args: &Args) -> Result<u8, RunError> {
    let project = load_project(args)?;
    let (signer, source) = Signer::from_env()?;
    let why = match source {
        KeySource::Environment => None,
        KeySource::Unset => Some("is not set"),
        KeySource::Empty => Some("is empty"),
    };
    if let Some(why) = why {
        let _ = writeln!(
            anstream::stderr(),
            "note: NUDGE_SIGNING_KEY {why}: unsubscribe links are signed with the development key"
        );
    }
    let mut project = project;
    if project.settings.unsubscribe_url.is_none() {
        let (url, note) = simulated_unsubscribe_url(std::env::var("NUDGE_UNSUBSCRIBE_URL").ok())?;
        if let Some(note) = note {
            let _ = writeln!(anstream::stderr(), "{note}");
        }
        project.settings.unsubscribe_url = Some(url);
    }
    let project = project;
    let engine = Engine::new(&project, &signer);
    let options = Options {
        until: args.until,
        ..Options::default()
    };
    let stores = open_stores(args, &options)?;
    let mailer = match &args.outbox {
        Some(dir) => LocalMailer::Outbox(OutboxMailer::new(dir)?),
        None => LocalMailer::Record(RecordingMailer),
    };
    // Each round's emails are delivered by `simulate` once the round is durable.
    let runner = |store| Runner::new(&engine, store, Some(&mailer)).deliver_later();
    let timeline = Timeline::new(&project, args.timezone);
    match stores {
        Stores::Db(store, _lock) => {
            // Without an outbox the emails are recorded sent, nothing leaves the process and no
            // message is ever read, so claims need no flush and no message is built: a later
            // run with `--outbox` on this store writes only what it decides itself.
            let runner = match args.outbox {
                Some(_) => runner(*store),
                None => runner(*store).without_durable_claims().without_messages(),
            };
            // What a stopped run left, before anything new.
            let resumed = resume_sends(&runner, &mailer)?;
            let run = Run {
                resumed,
                keeps_sends: true,
            };
            report(Runners::Shared(&runner), args, &options, timeline, run)
        }
        Stores::Scratch(stores) => {
            // The files outlive the runners (and their stores), which are dropped first.
            let (stores, _files): (Vec<_>, Vec<_>) = stores.into_iter().unzip();
            // A throwaway store: no run continues from it, so its claims need not be flushed
            // before each round's emails leave, nobody reads a customer's story from it; and
            // without an outbox no message is read.
            let write_none = args.outbox.is_none();
            let runners: Vec<_> = stores
                .into_iter()
                .map(|store| {
                    let runner = runner(store).without_durable_claims().without_journal();
                    if write_none {
                        runner.without_messages()
                    } else {
                        runner
                    }
                })
                .collect();
            let run = Run {
                resumed: Vec::new(),
                keeps_sends: false,
            };
            report(Runners::PerShard(&runners), args, &options, timeline, run)
        }
    }
}

/// What `report` needs to know beyond the runners.
struct Run {
    /// What [`resume_sends`] settled of a stopped run's sends.
    resumed: Vec<Swept>,
    /// Whether the store is kept (`--db`), so that an email left pending is delivered by a
    /// later run.
    keeps_sends: bool,
}

/// Where unsubscribe links point in a simulation of workflows whose settings name no
/// `unsubscribe_url` (deployed, they point at the `unsubscribe` function's URL): at
/// `NUDGE_UNSUBSCRIBE_URL` when set, else at [`PLACEHOLDER_UNSUBSCRIBE_URL`], with a note saying
/// so.
pub(super) fn simulated_unsubscribe_url(
    var: Option<String>,
) -> Result<(url::Url, Option<String>), RunError> {
    match var.filter(|v| !v.is_empty()) {
        Some(v) => url::Url::parse(&v)
            .map(|u| (u, None))
            .map_err(|e| RunError::UnsubscribeUrl(e.to_string())),
        None => Ok((
            url::Url::parse(PLACEHOLDER_UNSUBSCRIBE_URL).expect("a valid URL"),
            Some(format!(
                "note: settings.yaml names no unsubscribe_url and NUDGE_UNSUBSCRIBE_URL is not set: unsubscribe links point at {PLACEHOLDER_UNSUBSCRIBE_URL} (deployed, at the unsubscribe function's URL)"
            )),
        )),
    }
}

/// The unsubscribe link's base in a simulation that knows no other: a reserved domain
/// (RFC 2606), so it can never reach anyone.
const PLACEHOLDER_UNSUBSCRIBE_URL: &str = "https://unsubscribe.invalid/";

/// The workflows, after printing their diagnostics.
fn load_project(args: &Args) -> Result<Project, RunError> {
    super::project::load(&args.workflows).map_err(|e| match e {
        ProjectError::Read(e) => RunError::Workflows(e),
        ProjectError::Invalid => RunError::Invalid,
    })
}

/// Opens the stores. `--db`: one store in that file, which every shard shares. By default,
/// throwaway stores: one file per shard, so that no shard waits for another's writes (an
/// in-memory database would hold every customer in RAM, and a large simulation has hundreds
/// of thousands). A throwaway store needs no fsync and no journal (a crash loses it anyway); a
/// `--db` store keeps WAL's durability: a crash never corrupts it and loses at most the last
/// batch.
fn open_stores(args: &Args, options: &Options) -> Result<Stores, RunError> {
    if let Some(path) = &args.db {
        let lock = StoreLock::take(path)?;
        let options = SqliteOptions::default().batch(SqliteOptions::SIMULATE_BATCH);
        return open_store(path, options).map(|store| Stores::Db(Box::new(store), lock));
    }
    let mut stores = Vec::new();
    for _ in 0..options.shards.max(1) {
        let file = tempfile::Builder::new()
            .prefix("nudge-simulate-")
            .suffix(".db")
            .tempfile()
            .map_err(RunError::Scratch)?;
        let store = open_store(file.path(), SqliteOptions::scratch(options.shards))?;
        stores.push((store, file));
    }
    Ok(Stores::Scratch(stores))
}

/// Opens one store.
fn open_store(path: &Path, options: SqliteOptions) -> Result<SqliteStore, RunError> {
    Ok(SqliteStore::open_with(path, options)?)
}

/// Runs the simulation, printing the timeline as it goes, then the summary; returns the exit
/// code ([`exit_code`]).
fn report(
    runners: Runners<'_, Runner<'_, SqliteStore, &LocalMailer>>,
    args: &Args,
    options: &Options,
    mut timeline: Timeline,
    run: Run,
) -> Result<u8, RunError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let format = args.format;
    let progress = progress_bar();
    let events_name = args.events.display().to_string();
    // What a stopped run left and this run delivered now comes first.
    timeline.print_swept(&mut out, &run.resumed, format);
    // Notices about lines, kept to be printed in line order (see `LineNotices`).
    let mut line_notices = LineNotices::default();
    let result = simulate(
        runners,
        &args.events,
        options,
        |action, delivery| {
            let _ = match format {
                Format::Json => writeln!(out, "{}", timeline.json(action, delivery)),
                Format::Text => writeln!(out, "{}", timeline.text(action, delivery)),
            };
            // With a kept store, each row goes out at once: a run killed now loses as few
            // rows of emails it delivered as it can (see docs/RELIABILITY.md).
            if run.keeps_sends && delivery.is_some() {
                let _ = out.flush();
            }
        },
        |notice| {
            if let Some(notice) = line_notices.keep(notice) {
                progress.suspend(|| {
                    let _ = writeln!(anstream::stderr(), "{}", notice_text(&events_name, &notice));
                });
            }
        },
        |done, total| {
            if total >= 10_000 {
                progress.set_length(total as u64);
                progress.set_position(done as u64);
            }
        },
    );
    progress.finish_and_clear();
    line_notices.print(&events_name);
    // The timeline up to an error goes out before the error.
    let mut summary = result.inspect_err(|_| {
        let _ = out.flush();
    })?;
    // The emails whose delivery failed during the run get one more try at its end.
    let retried = retry_pending(runners_slice(runners), summary.until).inspect_err(|_| {
        let _ = out.flush();
    })?;
    timeline.print_swept(&mut out, &retried, format);
    for swept in &retried {
        summary.count_swept(swept, false);
    }
    for swept in &run.resumed {
        summary.count_swept(swept, true);
    }
    let text = summary_text(&summary, run.keeps_sends);
    match format {
        Format::Text => {
            let _ = writeln!(out);
            let _ = write!(out, "{text}");
        }
        Format::Json => {
            let _ = write!(anstream::stderr(), "{text}");
        }
    }
    let _ = out.flush();
    Ok(exit_code(&summary))
}

/// The exit code of a run that ended: [`exit::UNDELIVERED`] when an email could not be
/// delivered, else [`exit::PROBLEMS`] when lines were rejected, else [`exit::OK`].
fn exit_code(summary: &Summary) -> u8 {
    let failed: u64 = summary.workflows.values().map(|w| w.emails_failed).sum();
    if summary.undelivered > 0 || failed > 0 {
        exit::UNDELIVERED
    } else if summary.rejected > 0 {
        exit::PROBLEMS
    } else {
        exit::OK
    }
}

/// The runners of `runners`, as a slice.
fn runners_slice<'a, R>(runners: Runners<'a, R>) -> &'a [R] {
    match runners {
        Runners::Shared(runner) => std::slice::from_ref(runner),
        Runners::PerShard(runners) => runners,
    }
}

fn progress_bar() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} events [{bar:30}] {per_sec} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

/// How timeline rows are printed: the local-time zone (`--timezone`, else each customer's
/// own) and, in text, the widths of the id columns.
///
/// The timeline streams, so the widths are chosen before the first row: the workflow and
/// step columns fit every id of the loaded workflows, the customer column fits
/// [`Timeline::CUSTOMER_WIDTH`] characters. A longer id (a customer's, or a workflow's that a
/// `--db` store still has runs of) widens its column from its row on.
pub(crate) struct Timeline {
    zone: Option<Tz>,
    local: usize,
    customer: usize,
    workflow: usize,
    step: usize,
}

impl Timeline {
    /// The customer column's width until a longer id appears (`c-100234`, `gid-8841`).
    const CUSTOMER_WIDTH: usize = 10;
    /// The action column: the longest action name (`profile.updated`).
    const ACTION_WIDTH: usize = 15;
    /// The local-time column's width until a longer one appears: `2026-01-05 10:12 CEST`, a
    /// four-letter abbreviation (the few zones shown as a `+0545` offset take one more).
    const LOCAL_WIDTH: usize = 21;

    /// Widths from `project`'s workflow and step ids; local times in `zone`, or else in each
    /// customer's.
    pub(crate) fn new(project: &Project, zone: Option<Tz>) -> Self {
        let mut workflow = 1;
        let mut step = 1;
        for w in &project.workflows {
            workflow = workflow.max(w.id.chars().count());
            step = step.max(longest_step_id(&w.steps));
        }
        Timeline {
            zone,
            local: Self::LOCAL_WIDTH,
            customer: Self::CUSTOMER_WIDTH,
            workflow,
            step,
        }
    }

    /// The local time of `at` in the action's zone (or `--timezone`).
    fn local(&self, a: &Action, at: DateTime<Utc>) -> DateTime<Tz> {
        at.with_timezone(&self.zone.unwrap_or(a.zone))
    }

    /// One action as a JSON line (the contract's shape, `nudge_core::timeline::Row`, which
    /// `explain` prints too; whole seconds; `at` in UTC, `local` with the local offset).
    pub(crate) fn json(&self, a: &Action, delivery: Option<&DeliveryOutcome>) -> String {
        let mut row = Row::of_action(a, self.zone.unwrap_or(a.zone));
        row.action = action_name(a, delivery).to_owned();
        if let ActionKind::EmailSent(_) = &a.kind {
            match delivery {
                Some(DeliveryOutcome::Sent { .. }) => {}
                Some(DeliveryOutcome::Failed { reason } | DeliveryOutcome::Unknown { reason }) => {
                    row.reason = Some(reason.clone());
                }
                Some(DeliveryOutcome::Retry { at, reason }) => {
                    row.reason = Some(reason.clone());
                    row.until = Some(ts(*at));
                }
                None => row.reason = Some(NOT_DELIVERED.to_owned()),
            }
        }
        row.json()
    }

    /// One action as a timeline line for people: UTC, local time, customer, workflow, step,
    /// action, detail. Widens a column whose id does not fit.
    pub(crate) fn text(&mut self, a: &Action, delivery: Option<&DeliveryOutcome>) -> String {
        let detail = match &a.kind {
            ActionKind::RunStarted => String::new(),
            ActionKind::RunRefused { reason } => reason.as_str().to_owned(),
            ActionKind::RunEnded { reason } => reason.as_str().to_owned(),
            ActionKind::EmailSent(email) => {
                let sent = format!("{}  \"{}\"", email.to.address, email.subject);
                match delivery {
                    Some(DeliveryOutcome::Sent { .. }) => sent,
                    other => format!("{sent}  {}", undelivered_text(other)),
                }
            }
            ActionKind::EmailSkipped { reason } => reason.as_str().to_owned(),
            ActionKind::EmailDeferred { until } => {
                format!(
                    "until {} ({})",
                    ts(*until),
                    local_text(self.local(a, *until))
                )
            }
            ActionKind::ProfileUpdated { changes } => Value::Object(changes.clone()).to_string(),
            ActionKind::WebhookCalled(call) => {
                format!("{} {} (recorded, not sent)", call.method, call.url)
            }
        };
        let step = a.step.as_deref().unwrap_or("-");
        let local = local_text(self.local(a, a.at));
        // Widths in characters, as `{:<w}` pads (ids from the events may be any text).
        self.local = self.local.max(local.chars().count());
        self.customer = self.customer.max(a.customer.chars().count());
        self.workflow = self.workflow.max(a.workflow.chars().count());
        self.step = self.step.max(step.chars().count());
        let line = format!(
            "{}  {:<lw$}  {:<cw$}  {:<ww$}  {:<sw$}  {:<aw$} {}",
            ts(a.at),
            local,
            a.customer,
            a.workflow,
            step,
            action_name(a, delivery),
            detail,
            lw = self.local,
            cw = self.customer,
            ww = self.workflow,
            sw = self.step,
            aw = Self::ACTION_WIDTH,
        );
        // Ids, addresses and subjects come from the events: one action stays one line.
        escape_controls(line.trim_end()).into_owned()
    }
}

impl Timeline {
    /// Prints a row for each of `swept` that has one (see [`Timeline::swept`]).
    fn print_swept(&mut self, out: &mut impl Write, swept: &[Swept], format: Format) {
        for s in swept {
            if let Some(row) = self.swept(s, format) {
                let _ = writeln!(out, "{row}");
            }
        }
    }

    /// A row for an email a sweep delivered or failed (a stopped run's, or one retried at the
    /// end of the run), from its logged message: `None` for one found already delivered (the
    /// run that delivered it reported it) or still waiting for a retry (the summary counts
    /// it). Its local time is in `--timezone`, else UTC: the customer's zone is not at hand.
    fn swept(&mut self, swept: &Swept, format: Format) -> Option<String> {
        if swept.found || matches!(swept.outcome, DeliveryOutcome::Retry { .. }) {
            return None;
        }
        let r = &swept.record;
        let (to, subject) = nudge_local::mime::recipient_and_subject(&r.payload);
        let (action, reason) = match &swept.outcome {
            DeliveryOutcome::Sent { .. } => ("email.sent", None),
            DeliveryOutcome::Failed { reason } | DeliveryOutcome::Unknown { reason } => {
                ("email.failed", Some(reason.as_str()))
            }
            DeliveryOutcome::Retry { .. } => return None,
        };
        let zone = self.zone.unwrap_or(Tz::UTC);
        let local = swept.at.with_timezone(&zone);
        if format == Format::Json {
            let run = r
                .idempotency_key
                .strip_suffix(&format!(".{}", r.step))
                .unwrap_or(&r.idempotency_key);
            let mut row = Row::new(action, swept.at, zone, &r.customer_id);
            row.reason = reason.map(str::to_owned);
            row.run = Some(run.to_owned());
            row.step = Some(r.step.clone());
            row.subject = Some(subject);
            row.tags = Some(r.tags.clone());
            row.to = Some(to);
            row.workflow = Some(r.workflow.clone());
            return Some(row.json());
        }
        let mut detail = format!("{to}  \"{subject}\"");
        if let Some(reason) = reason {
            detail.push_str(&format!("  failed: {reason}"));
        }
        let local = local_text(local);
        self.local = self.local.max(local.chars().count());
        self.customer = self.customer.max(r.customer_id.chars().count());
        self.workflow = self.workflow.max(r.workflow.chars().count());
        self.step = self.step.max(r.step.chars().count());
        let line = format!(
            "{}  {:<lw$}  {:<cw$}  {:<ww$}  {:<sw$}  {:<aw$} {detail}",
            ts(swept.at),
            local,
            r.customer_id,
            r.workflow,
            r.step,
            action,
            lw = self.local,
            cw = self.customer,
            ww = self.workflow,
            sw = self.step,
            aw = Self::ACTION_WIDTH,
        );
        Some(escape_controls(line.trim_end()).into_owned())
    }
}

/// Why an email decided in this run has no delivery to show (the run's delivery did not
/// claim it; not expected).
const NOT_DELIVERED: &str = "not delivered by this run";

/// The row's action: an email's says what became of it: `email.sent` (the mailer took it),
/// `email.failed` (refused for good, or out of retries) or `email.pending` (its delivery
/// failed for now: it waits for a retry).
fn action_name(a: &Action, delivery: Option<&DeliveryOutcome>) -> &'static str {
    match (&a.kind, delivery) {
        (ActionKind::EmailSent(_), Some(DeliveryOutcome::Sent { .. })) => "email.sent",
        (
            ActionKind::EmailSent(_),
            Some(DeliveryOutcome::Failed { .. } | DeliveryOutcome::Unknown { .. }),
        ) => "email.failed",
        (ActionKind::EmailSent(_), _) => "email.pending",
        (kind, _) => kind.name(),
    }
}

/// The end of an undelivered email's text row: why, and when it is tried again.
fn undelivered_text(delivery: Option<&DeliveryOutcome>) -> String {
    match delivery {
        Some(DeliveryOutcome::Failed { reason } | DeliveryOutcome::Unknown { reason }) => {
            format!("failed: {reason}")
        }
        Some(DeliveryOutcome::Retry { at, reason }) => {
            format!("not delivered yet: {reason}; retried from {}", ts(*at))
        }
        Some(DeliveryOutcome::Sent { .. }) => String::new(),
        None => NOT_DELIVERED.to_owned(),
    }
}

/// The longest step id in `steps`, branches included (0 without steps).
fn longest_step_id(steps: &[StepItem]) -> usize {
    steps
        .iter()
        .map(|item| match item {
            StepItem::Step(step) => {
                let inner = match &step.kind {
                    StepKind::If(b) => longest_step_id(&b.then).max(longest_step_id(&b.otherwise)),
                    StepKind::AbSplit(branches) => branches
                        .iter()
                        .map(|b| longest_step_id(&b.steps))
                        .max()
                        .unwrap_or(0),
                    _ => 0,
                };
                inner.max(step.id.chars().count())
            }
            StepItem::Exit { .. } => 0,
        })
        .max()
        .unwrap_or(0)
}

/// A local time for people: date, hours and minutes, and the zone's abbreviation (`EST`,
/// `CET`) or offset (`+03`), which shows daylight saving.
fn local_text(t: DateTime<Tz>) -> String {
    t.format("%Y-%m-%d %H:%M %Z").to_string()
}

/// Notices about lines of the events file (rejected, late, duplicate), printed on stderr in
/// file line order once the run is over. The simulation meets lines in time order, and an
/// operator fixing a file goes down it from the top; a failure without a line (a customer's
/// timer) is printed at once.
#[derive(Default)]
struct LineNotices(Vec<(usize, Notice)>);

impl LineNotices {
    /// Keeps a notice about a line; gives back any other, to print now.
    fn keep(&mut self, notice: Notice) -> Option<Notice> {
        let line = match &notice {
            Notice::Rejected(r) => r.line,
            Notice::Late { line, .. } | Notice::Duplicate { line, .. } => *line,
            Notice::WakeFailed { .. } => return Some(notice),
        };
        self.0.push((line, notice));
        None
    }

    /// Prints the notices kept, in line order (a stable sort: one line's notices keep
    /// their order).
    fn print(mut self, events: &str) {
        self.0.sort_by_key(|(line, _)| *line);
        let mut err = anstream::stderr().lock();
        for (_, notice) in &self.0 {
            let _ = writeln!(err, "{}", notice_text(events, notice));
        }
    }
}

/// A notice as one line for the operator (control characters escaped: ids come from the
/// events file).
fn notice_text(events: &str, notice: &Notice) -> String {
    escape_controls(&notice_line(events, notice)).into_owned()
}

fn notice_line(events: &str, notice: &Notice) -> String {
    match notice {
        Notice::Rejected(r) => format!(
            "{events}:{}: rejected: {} (kept as a dead letter)",
            r.line, r.reason
        ),
        Notice::Late {
            line,
            event_id,
            time,
            clock,
        } => format!(
            "{events}:{line}: event {event_id} happened at {} before the store's clock ({}); applied at the later of its time and the customer's last applied time",
            ts(*time),
            ts(*clock)
        ),
        Notice::WakeFailed {
            customer,
            at,
            reason,
        } => format!(
            "timer of customer {} due at {} failed: {reason}",
            nudge_core::engine::customer_ref(customer),
            ts(*at)
        ),
        Notice::Duplicate { line, event_id } => {
            format!("{events}:{line}: event {event_id} was seen before; ignored")
        }
    }
}

/// The summary a marketer reads after a run; `keeps_sends`: the store is kept (`--db`), so
/// an email left pending is delivered by a later run.
pub(crate) fn summary_text(s: &Summary, keeps_sends: bool) -> String {
    let mut out = String::new();
    let span = match (s.from, s.until) {
        (Some(a), Some(b)) => format!(", {} to {}", ts(a), ts(b)),
        _ => String::new(),
    };
    out.push_str(&format!(
        "Summary: {} applied ({}, {} rejected), {} fired{span}\n",
        counted(s.events, "event", "events"),
        counted(s.duplicates, "duplicate", "duplicates"),
        s.rejected,
        counted(s.wakes, "timer", "timers"),
    ));
    if s.left_over > 0 {
        out.push_str(&format!(
            "Resumed: {} an earlier run left undelivered, tried first ({} found already delivered)\n",
            counted(s.left_over, "email", "emails"),
            s.found_delivered,
        ));
    }
    if s.undelivered > 0 {
        let next = if keeps_sends {
            "they wait in the store: run again with the same --db (and a writable --outbox) to deliver them"
        } else {
            "they are lost with the throwaway store: run with --db to keep them for a retry"
        };
        out.push_str(&format!(
            "Undelivered: {} could not be delivered; {next}\n",
            counted(s.undelivered, "email", "emails"),
        ));
    }
    for (id, w) in &s.workflows {
        out.push_str(&format!("\n{id}\n"));
        workflow_summary(&mut out, w);
    }
    out
}

/// A workflow's lines of the summary.
fn workflow_summary(out: &mut String, w: &WorkflowSummary) {
    let ended: Vec<String> = w
        .runs_ended
        .iter()
        .map(|(r, n)| format!("{n} {}", r.as_str()))
        .collect();
    let active = w.runs_started as i64 - w.runs_ended.values().sum::<u64>() as i64;
    out.push_str(&format!(
        "  runs     {} started; ended: {}",
        w.runs_started,
        if ended.is_empty() {
            "none".into()
        } else {
            ended.join(", ")
        }
    ));
    if active > 0 {
        out.push_str(&format!("; {active} still active"));
    }
    if w.runs_refused > 0 {
        out.push_str(&format!("; {} refused (too_many_runs)", w.runs_refused));
    }
    out.push('\n');
    let goals = w
        .runs_ended
        .get(&nudge_core::engine::EndReason::Goal)
        .copied()
        .unwrap_or(0);
    out.push_str(&format!("  goals    {goals}\n"));
    if !w.emails_sent.is_empty() {
        let sent: Vec<String> = w
            .emails_sent
            .iter()
            .map(|(step, n)| format!("{step} {n}"))
            .collect();
        out.push_str(&format!(
            "  sent     {} ({})\n",
            w.emails_sent.values().sum::<u64>(),
            sent.join(", ")
        ));
    }
    if w.emails_failed > 0 {
        out.push_str(&format!("  failed   {}\n", w.emails_failed));
    }
    if w.emails_retried > 0 {
        out.push_str(&format!(
            "  retried  {} (delivery failed for now)\n",
            w.emails_retried
        ));
    }
    if !w.emails_skipped.is_empty() {
        let skipped: Vec<String> = w
            .emails_skipped
            .iter()
            .map(|(r, n)| format!("{} {n}", r.as_str()))
            .collect();
        out.push_str(&format!("  skipped  {}\n", skipped.join(", ")));
    }
    if w.emails_deferred > 0 {
        out.push_str(&format!(
            "  deferred {} (held for the send window)\n",
            w.emails_deferred
        ));
    }
    if w.profile_updates > 0 {
        out.push_str(&format!(
            "  profile  {}\n",
            counted(w.profile_updates, "update", "updates")
        ));
    }
    if w.webhooks > 0 {
        out.push_str(&format!(
            "  webhooks {} recorded (simulate never calls them)\n",
            w.webhooks
        ));
    }
}
