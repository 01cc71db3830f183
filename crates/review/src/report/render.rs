//! A [`Report`] as text (an aligned table per workflow), Markdown (tables for a pull request or
//! an issue) and JSON rows (one object per workflow and per step).
//!
//! Ids and reasons come from the store: control characters are escaped in every format, and
//! `|` in Markdown, so that no value breaks a line or a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::SecondsFormat;
use nudge_core::journal::{JOURNAL_COMMITS, JOURNAL_TTL_DAYS};
use nudge_core::store::FeedbackKind;
use serde::Serialize;

use super::{FEEDBACK_EVENT_TYPES, Report, StepReport, WorkflowReport};

/// The columns of a step table: header, and the cell of a step.
type Column = (&'static str, fn(&StepReport) -> String);

const COLUMNS: [Column; 13] = [
    ("sent", |s| s.sent.to_string()),
    ("deferred", |s| s.deferred.to_string()),
    ("skipped", |s| s.skipped_total().to_string()),
    ("delivered", |s| feedback(s, FeedbackKind::Delivered)),
    ("opened", |s| feedback(s, FeedbackKind::Opened)),
    ("clicked", |s| feedback(s, FeedbackKind::Clicked)),
    ("bounced", |s| feedback(s, FeedbackKind::Bounced)),
    ("complained", |s| feedback(s, FeedbackKind::Complained)),
    ("unsubscribed", |s| feedback(s, FeedbackKind::Unsubscribed)),
    ("open rate", |s| percent(s.open_rate())),
    ("click rate", |s| percent(s.click_rate())),
    ("bounce rate", |s| percent(s.bounce_rate())),
    ("unsub. rate", |s| percent(s.unsubscribe_rate())),
];

/// The label of a workflow's totals row.
const TOTAL: &str = "all steps";

fn feedback(step: &StepReport, kind: FeedbackKind) -> String {
    step.feedback.get(kind).to_string()
}

/// `12.5%`, or `–` for no rate.
fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// `text` with control characters escaped.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` cleaned for a Markdown table cell.
fn cell(text: &str) -> String {
    clean(text).replace('|', "\\|")
}

/// `reason n, reason n` (or `none`).
fn by_reason(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(reason, n)| format!("{} {n}", clean(reason)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the report covers and how to read it: one sentence each.
pub fn notes(report: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    let window = &report.journal;
    let span = match (window.first, window.last) {
        (Some(first), Some(last)) => format!(
            "{} entries of {} customers, from {} to {}",
            window.entries,
            window.customers,
            time(first),
            time(last)
        ),
        _ => "no entries".to_owned(),
    };
    notes.push(format!(
        "Counted from the store's journal ({span}), which keeps each customer's last \
         {JOURNAL_COMMITS} commits (on DynamoDB, none older than {JOURNAL_TTL_DAYS} days): \
         older activity is not counted."
    ));
    if window.truncated_commits > 0 {
        notes.push(format!(
            "{} commits had more journal than the store keeps per commit: {} of their entries \
             (the largest) were left out and are not counted.",
            window.truncated_commits, window.dropped_entries
        ));
    }
    if let Some(since) = report.since {
        notes.push(format!(
            "Only what happened at or after {} is counted.",
            time(since)
        ));
    }
    if report.feedback_is_all_time() {
        notes.push(
            "delivered, opened, clicked, bounced and complained include SES's counts, which \
             are all-time: the store keeps no dates for them, so --since does not apply to them."
                .to_owned(),
        );
    }
    notes.push(format!(
        "Feedback events received ({}; bounces with `bounce_type: hard` only) are counted for \
         the customer's most recent email before them (last touch). Rates: open, click, complaint and unsubscribe per delivered, \
         bounce per sent; every open and click event counts, so a rate can pass 100%.",
        FEEDBACK_EVENT_TYPES.map(|(name, _)| name).join(", ")
    ));
    if !report.unattributed.is_empty() {
        let counts: Vec<String> = FeedbackKind::ALL
            .iter()
            .filter(|k| report.unattributed.get(**k) > 0)
            .map(|k| format!("{} {}", k.as_str(), report.unattributed.get(*k)))
            .collect();
        notes.push(format!(
            "Feedback with no email before it in the journal, in no step: {}.",
            counts.join(", ")
        ));
    }
    notes
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The run summary lines of a workflow: runs, then goals.
fn run_lines(workflow: &WorkflowReport) -> [String; 2] {
    let ended: u64 = workflow.runs_ended.values().sum();
    let refused: u64 = workflow.runs_refused.values().sum();
    let mut runs = format!(
        "Runs: {} started, {ended} ended ({})",
        workflow.runs_started,
        by_reason(&workflow.runs_ended)
    );
    if refused > 0 {
        let _ = write!(
            runs,
            ", {refused} refused ({})",
            by_reason(&workflow.runs_refused)
        );
    }
    let goals = if workflow.has_goal == Some(false) {
        "Goals: none defined (no exit_when)".to_owned()
    } else {
        format!(
            "Goals reached: {}, conversion {} (goals / runs started)",
            workflow.goals(),
            percent(workflow.conversion_rate())
        )
    };
    [runs, goals]
}

/// The skip reasons of a workflow's steps: `step: reason n, ...` per step with skips.
fn skip_lines(workflow: &WorkflowReport, escape: fn(&str) -> String) -> Vec<String> {
    workflow
        .steps
        .iter()
        .filter(|s| !s.skipped.is_empty())
        .map(|s| format!("{}: {}", escape(&s.step), by_reason(&s.skipped)))
        .collect()
}

/// The label of a step row.
fn step_label(report: &Report, step: &StepReport, escape: fn(&str) -> String) -> String {
    if report.definitions && !step.defined {
        format!("{} (not in the workflows)", escape(&step.step))
    } else {
        escape(&step.step)
    }
}

/// The heading of a workflow.
fn heading(report: &Report, workflow: &WorkflowReport, escape: fn(&str) -> String) -> String {
    let mut out = escape(&workflow.workflow);
    if let Some(name) = &workflow.name {
        let _ = write!(out, " — {}", escape(name));
    }
    if report.definitions && !workflow.defined {
        out.push_str(" (not in the workflows)");
    }
    out
}

/// The rows of a workflow's table: a label and the cells, steps then the totals.
fn table_rows(
    report: &Report,
    workflow: &WorkflowReport,
    escape: fn(&str) -> String,
) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let total = workflow.totals();
    let labelled = workflow
        .steps
        .iter()
        .map(|s| (step_label(report, s, escape), s))
        .chain((workflow.steps.len() > 1).then(|| (TOTAL.to_owned(), &total)));
    for (label, step) in labelled {
        let mut row = vec![label];
        row.extend(COLUMNS.iter().map(|(_, value)| value(step)));
        rows.push(row);
    }
    rows
}

/// The report as text: per workflow, its runs and goals, then an aligned table of its steps
/// (and their skip reasons); the notes at the end.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    if report.workflows.is_empty() {
        out.push_str("No workflows and nothing in the journal.\n\n");
    }
    for workflow in &report.workflows {
        let _ = writeln!(out, "{}", heading(report, workflow, clean));
        for line in run_lines(workflow) {
            let _ = writeln!(out, "  {line}");
        }
        let rows = table_rows(report, workflow, clean);
        if rows.is_empty() {
            out.push_str("  (no send_email step)\n");
        } else {
            let header: Vec<String> = std::iter::once("step")
                .chain(COLUMNS.iter().map(|(name, _)| *name))
                .map(str::to_owned)
                .collect();
            aligned(&mut out, &header, &rows);
        }
        let skips = skip_lines(workflow, clean);
        if !skips.is_empty() {
            let _ = writeln!(out, "  Skipped by reason: {}", skips.join("; "));
        }
        out.push('\n');
    }
    for note in notes(report) {
        let _ = writeln!(out, "{note}");
    }
    out
}

/// An aligned table, indented by two: the first column left-aligned, the others right-aligned.
fn aligned(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(header)
                .chain(rows.iter().map(Vec::as_slice))
                .filter_map(|row| row.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::from(" ");
        for (i, (value, width)) in row.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(line, " {value:<width$}");
            } else {
                let _ = write!(line, "  {value:>width$}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The report as Markdown, to post on a pull request or an issue: a section per workflow with
/// its runs and goals and a table of its steps; the notes at the end.
pub fn markdown(report: &Report) -> String {
    let mut out = String::from("## Nudge report\n\n");
    if report.workflows.is_empty() {
        out.push_str("No workflows and nothing in the journal.\n\n");
    }
    for workflow in &report.workflows {
        let _ = writeln!(out, "### {}\n", heading(report, workflow, cell));
        for line in run_lines(workflow) {
            let _ = writeln!(out, "{line}  ");
        }
        out.push('\n');
        let rows = table_rows(report, workflow, cell);
        if rows.is_empty() {
            out.push_str("No `send_email` step.\n\n");
            continue;
        }
        out.push_str("| step |");
        for (name, _) in COLUMNS {
            let _ = write!(out, " {name} |");
        }
        out.push_str("\n|:--|");
        out.push_str(&"--:|".repeat(COLUMNS.len()));
        out.push('\n');
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out.push('\n');
        for line in skip_lines(workflow, cell) {
            let _ = writeln!(out, "- skipped at {line}");
        }
        if workflow.steps.iter().any(|s| !s.skipped.is_empty()) {
            out.push('\n');
        }
    }
    for note in notes(report) {
        let _ = writeln!(out, "> - {note}");
    }
    out
}

/// A rate rounded to 4 decimals.
fn rounded(rate: Option<f64>) -> Option<f64> {
    rate.map(|r| (r * 10_000.0).round() / 10_000.0)
}

/// The email fields of a JSON row (a step's, or a workflow's totals).
#[derive(Debug, Serialize)]
struct EmailFields<'a> {
    sent: u64,
    deferred: u64,
    skipped: u64,
    skipped_by_reason: &'a BTreeMap<String, u64>,
    delivered: u64,
    opened: u64,
    clicked: u64,
    bounced: u64,
    complained: u64,
    unsubscribed: u64,
    open_rate: Option<f64>,
    click_rate: Option<f64>,
    bounce_rate: Option<f64>,
    complaint_rate: Option<f64>,
    unsubscribe_rate: Option<f64>,
}

impl<'a> EmailFields<'a> {
    fn of(step: &'a StepReport) -> Self {
        let fb = |kind| step.feedback.get(kind);
        EmailFields {
            sent: step.sent,
            deferred: step.deferred,
            skipped: step.skipped_total(),
            skipped_by_reason: &step.skipped,
            delivered: fb(FeedbackKind::Delivered),
            opened: fb(FeedbackKind::Opened),
            clicked: fb(FeedbackKind::Clicked),
            bounced: fb(FeedbackKind::Bounced),
            complained: fb(FeedbackKind::Complained),
            unsubscribed: fb(FeedbackKind::Unsubscribed),
            open_rate: rounded(step.open_rate()),
            click_rate: rounded(step.click_rate()),
            bounce_rate: rounded(step.bounce_rate()),
            complaint_rate: rounded(step.complaint_rate()),
            unsubscribe_rate: rounded(step.unsubscribe_rate()),
        }
    }
}

/// A workflow's JSON row.
#[derive(Debug, Serialize)]
struct WorkflowRow<'a> {
    workflow: &'a str,
    step: Option<&'a str>,
    name: Option<&'a str>,
    defined: Option<bool>,
    runs_started: u64,
    runs_refused: u64,
    runs_refused_by_reason: &'a BTreeMap<String, u64>,
    runs_ended: u64,
    runs_ended_by_reason: &'a BTreeMap<String, u64>,
    goals: u64,
    conversion_rate: Option<f64>,
    #[serde(flatten)]
    email: EmailFields<'a>,
}

/// A step's JSON row.
#[derive(Debug, Serialize)]
struct StepRow<'a> {
    workflow: &'a str,
    step: &'a str,
    defined: Option<bool>,
    #[serde(flatten)]
    email: EmailFields<'a>,
}

/// The report as JSON rows, in order: per workflow, a row with `"step": null` (its runs, goals,
/// conversion rate and its steps' totals), then one row per `send_email` step.
///
/// Workflow row: `workflow`, `step` (null), `name`, `defined`, `runs_started`, `runs_refused`,
/// `runs_refused_by_reason`, `runs_ended`, `runs_ended_by_reason`, `goals`, `conversion_rate`,
/// and the email fields. Step row: `workflow`, `step`, `defined` and the email fields:
/// `sent`, `deferred`, `skipped`, `skipped_by_reason`, `delivered`, `opened`, `clicked`,
/// `bounced`, `complained`, `unsubscribed`, `open_rate`, `click_rate`, `bounce_rate`,
/// `complaint_rate`, `unsubscribe_rate`. `defined` is null without workflow definitions;
/// rates are fractions (4 decimals) or null when their denominator is 0 (`conversion_rate`
/// also when the definition has no goal).
pub fn json_rows(report: &Report) -> Result<Vec<String>, serde_json::Error> {
    let defined = |d: bool| report.definitions.then_some(d);
    let mut rows = Vec::new();
    for workflow in &report.workflows {
        let totals = workflow.totals();
        let row = WorkflowRow {
            workflow: &workflow.workflow,
            step: None,
            name: workflow.name.as_deref(),
            defined: defined(workflow.defined),
            runs_started: workflow.runs_started,
            runs_refused: workflow.runs_refused.values().sum(),
            runs_refused_by_reason: &workflow.runs_refused,
            runs_ended: workflow.runs_ended.values().sum(),
            runs_ended_by_reason: &workflow.runs_ended,
            goals: workflow.goals(),
            conversion_rate: rounded(workflow.conversion_rate()),
            email: EmailFields::of(&totals),
        };
        rows.push(serde_json::to_string(&row)?);
        for step in &workflow.steps {
            let row = StepRow {
                workflow: &workflow.workflow,
                step: &step.step,
                defined: defined(step.defined),
                email: EmailFields::of(step),
            };
            rows.push(serde_json::to_string(&row)?);
        }
    }
    Ok(rows)
}
