//! The `nudge` command line.

// `--db` of plan, explain, report, erase and dead-letters.
mod db;
mod dead_letters;
mod erase;
mod explain;
mod generate;
mod graph;
mod plan;
mod preview;
mod project;
mod report;
mod simulate;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Marketing-automation workflows for online stores.
#[derive(Debug, Parser)]
#[command(name = "nudge", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check workflows, their templates and settings.yaml; print every problem as
    /// `path:line:col: error: message`. Exits 0 when clean, 1 on errors, 2 when a path cannot
    /// be read.
    Validate(validate::Args),
    /// Feed store events through the workflows under a virtual clock, on the embedded store,
    /// and print what happens (emails sent, skipped, deferred; runs started and ended). Exits 0
    /// when every line was applied, 1 when lines were rejected (kept as dead letters), 2 when
    /// it cannot run (unreadable files, workflows with errors), 3 when emails could not be
    /// delivered (a later run with the same --db delivers those left pending).
    Simulate(simulate::Args),
    /// Write a synthetic store's events (JSON lines) to stdout, for benchmarks and trials.
    GenerateEvents(generate::Args),
    /// Render every email of every workflow (every branch) into a static site: desktop and
    /// phone widths, the text part, the headers as the outbox writes them, warnings beside
    /// them. `--serve` serves it and rebuilds it on save. Exits 1 when the workflows have
    /// errors, 2 when it cannot run.
    Preview(preview::Args),
    /// Draw workflows as Mermaid flowcharts (GitHub draws them in Markdown) or Graphviz DOT:
    /// the trigger and entry policy, every step, branches with their weights, goals and ends.
    /// Exits 1 when the workflows have errors, 2 on an unknown workflow id or an unreadable
    /// folder.
    Graph(graph::Args),
    /// What merging an edit of the workflows changes: definition changes against --base and,
    /// with --db, what happens to the runs in flight. Exits 0 whether or not something
    /// changes, 1 when either folder's workflows have errors, 2 when it cannot run.
    Plan(plan::Args),
    /// Tell one customer's story from a store: events received, runs, every email sent,
    /// deferred or skipped with the rule that decided it and what it read, conditions and
    /// waits; then where each active run stands. Exits 0; 1 when the store knows no such
    /// customer; 2 when the store cannot be opened or read.
    Explain(explain::Args),
    /// Per workflow and step, from a store (--db): runs started and ended by reason, emails
    /// sent, deferred and skipped by reason, delivered, opened, clicked, bounced, complained
    /// and unsubscribed, goals reached and the conversion rate. Exits 0, 1 when the workflows
    /// have errors, 2 when it cannot run (bad arguments, a store that cannot be read).
    Report(report::Args),
    /// Remove everything a store keeps about one customer: state and timer, sends with their
    /// messages, history (the journal), order links and the dead letters naming them; print
    /// what was removed. Exits 0 (also when nothing was kept), 2 when the store cannot be
    /// opened or written.
    Erase(erase::Args),
    /// List the inputs a store rejected, or replay them once fixed upstream (`list`,
    /// `replay`); see `nudge dead-letters <command> --help`.
    DeadLetters(dead_letters::Args),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Lines for people (coloured on a terminal unless NO_COLOR is set).
    #[default]
    Text,
    /// One JSON object per line, for tools.
    Json,
}

/// Exit codes shared by every command.
pub mod exit {
    /// Everything is fine.
    pub const OK: u8 = 0;
    /// The input had problems (validation errors, rejected events).
    pub const PROBLEMS: u8 = 1;
    /// The command could not run: bad arguments or a path that cannot be read.
    pub const USAGE: u8 = 2;
    /// `simulate`: some emails could not be delivered (the outbox could not be written, or an
    /// email was refused): they are reported as `email.pending` or `email.failed`, and a
    /// pending one is delivered by a later run on the same `--db` store.
    pub const UNDELIVERED: u8 = 3;
}

/// Runs the command line with the process's arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Under `simulate` the engine runs on a virtual clock: its warnings carry that time
    // (`at=`), and the wall clock beside it would only mislead.
    init_logging(!matches!(cli.command, Command::Simulate(_)));
    let code = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::GenerateEvents(args) => generate::run(&args),
        Command::Preview(args) => preview::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Erase(args) => erase::run(&args),
        Command::DeadLetters(args) => dead_letters::run(&args),
    };
    ExitCode::from(code)
}

/// `text` with its control characters (CR, LF, ESC, ...) escaped as Rust writes them (`\r`,
/// `\n`, `\u{1b}`), for text printed to a terminal: a customer id or an event id from an
/// events file must not start a line of its own, or move the cursor, or colour the screen.
pub(crate) fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `n` and the noun in its number, for the summaries of `simulate` and `validate`: `1 event`,
/// `0 events`, `2 events`.
pub(crate) fn counted(
    n: impl TryInto<u64> + Copy + std::fmt::Display,
    one: &str,
    many: &str,
) -> String {
    let is_one = n.try_into().is_ok_and(|n| n == 1);
    format!("{n} {}", if is_one { one } else { many })
}

/// Logs go to stderr, at `warn` unless `NUDGE_LOG` says otherwise (`NUDGE_LOG=debug`,
/// `NUDGE_LOG=nudge_core::runner=info`). Log lines never carry an address or a name: events name
/// customers by id (a `guest:` id by a hash) and emails by idempotency key. `wall_clock`:
/// whether lines start with the time they were written.
fn init_logging(wall_clock: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NUDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if wall_clock {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}
