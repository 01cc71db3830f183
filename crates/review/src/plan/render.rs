//! A [`Plan`] printed: text for people, Markdown for a pull-request comment, JSON lines for
//! tools. None of them names a customer or a run: counts and times only.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use super::flight::Flight;
use super::{ChangeKind, Plan, Row};

/// The first line of the Markdown form: a hidden marker by which the CI finds its own comment
/// on the pull request, to update it in place.
pub const MARKDOWN_MARKER: &str = "<!-- nudge-plan -->";

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `1 run`, `2 runs`.
fn runs(n: impl Into<u64>) -> String {
    match n.into() {
        1 => "1 run".to_owned(),
        n => format!("{n} runs"),
    }
}

/// The earliest and latest of `times` as `A` or `A … B`.
fn span(times: impl IntoIterator<Item = DateTime<Utc>>) -> String {
    let mut times: Vec<_> = times.into_iter().collect();
    times.sort_unstable();
    match (times.first(), times.last()) {
        (Some(a), Some(b)) if a == b => time(*a),
        (Some(a), Some(b)) => format!("{} … {}", time(*a), time(*b)),
        _ => String::new(),
    }
}

/// One JSON object per line, each row exactly `{"workflow", "change", "step", "detail",
/// "runs"}` in that order (`step` null when the row is about no step): the changes, then the
/// `runs_at_step` counts.
pub fn json(plan: &Plan) -> String {
    #[derive(serde::Serialize)]
    struct JsonRow<'a> {
        workflow: &'a str,
        change: &'a str,
        step: Option<&'a str>,
        detail: &'a str,
        runs: u64,
    }
    let mut out = String::new();
    for row in plan.rows() {
        let line = JsonRow {
            workflow: &row.workflow,
            change: row.change.as_str(),
            step: row.step.as_deref(),
            detail: &row.detail,
            runs: row.runs,
        };
        // Strings and numbers only: serializing cannot fail.
        if let Ok(text) = serde_json::to_string(&line) {
            out.push_str(&text);
            out.push('\n');
        }
    }
    out
}

/// The groups of runs that end: `(workflow, step or none, reason) → times`.
type EndingGroups<'a> = BTreeMap<(&'a str, Option<&'a str>, ChangeKind), Vec<DateTime<Utc>>>;

fn ending_groups(flight: &Flight) -> EndingGroups<'_> {
    let mut groups: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for e in &flight.ending {
        let step = (e.reason == ChangeKind::StepRemoved).then_some(e.step.as_str());
        groups
            .entry((e.workflow.as_str(), step, e.reason))
            .or_default()
            .push(e.at);
    }
    groups
}

/// The groups of moved waits: `(workflow, step) → (old, new)` times.
type MovedGroups<'a> = BTreeMap<(&'a str, &'a str), Vec<(DateTime<Utc>, DateTime<Utc>)>>;

fn moved_groups(flight: &Flight) -> MovedGroups<'_> {
    let mut groups: MovedGroups<'_> = BTreeMap::new();
    for m in &flight.moved {
        groups
            .entry((m.workflow.as_str(), m.step.as_str()))
            .or_default()
            .push((m.old, m.new));
    }
    groups
}

fn when_ending(reason: ChangeKind) -> &'static str {
    match reason {
        ChangeKind::StepRemoved => "when their step's time comes",
        _ => "at their customer's next input",
    }
}

/// The one-line summary both forms start with.
fn summary(plan: &Plan) -> String {
    let changes = plan.changes.len();
    let mut text = match changes {
        0 => "No definition changes".to_owned(),
        1 => "1 definition change".to_owned(),
        n => format!("{n} definition changes"),
    };
    if let Some(f) = &plan.flight {
        let _ = write!(
            text,
            "; {} in flight at {}: {} ending, {} getting changed mail, {} with a moved wait",
            runs(f.runs),
            time(f.at),
            f.ending.len(),
            f.runs_with_different_mail,
            f.moved.len()
        );
    }
    text.push('.');
    text
}

/// For people: the summary, each change on a line, then the runs in flight.
pub fn text(plan: &Plan) -> String {
    let mut out = summary(plan);
    out.push('\n');
    if !plan.changes.is_empty() {
        out.push_str("\nDefinition changes:\n");
    }
    for row in &plan.changes {
        let step = row
            .step
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let runs = match &plan.flight {
            Some(_) => format!(" [runs: {}]", row.runs),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {} {}{step}: {}{runs}",
            row.workflow,
            row.change.as_str(),
            row.detail
        );
    }
    if let Some(flight) = &plan.flight {
        flight_text(flight, &mut out);
    }
    out
}

fn flight_text(flight: &Flight, out: &mut String) {
    let _ = writeln!(
        out,
        "\nRuns in flight at {}: {} of {} customers.",
        time(flight.at),
        runs(flight.runs),
        flight.customers
    );
    for row in &flight.at_step {
        let step = row.step.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "  {} {step}: {} ({})",
            row.workflow, row.runs, row.detail
        );
    }
    let ending = ending_groups(flight);
    if !ending.is_empty() {
        out.push_str("\nRuns that end (unless an event ends them first):\n");
    }
    for ((workflow, step, reason), times) in &ending {
        let step = step.map(|s| format!(" {s}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {workflow}{step}: {} ending with {} {} ({})",
            runs(times.len() as u64),
            reason.as_str(),
            when_ending(*reason),
            span(times.iter().copied())
        );
    }
    if !flight.different_mail.is_empty() {
        out.push_str("\nRuns that will get changed mail:\n");
    }
    for (workflow, step, n) in &flight.different_mail {
        let _ = writeln!(out, "  {workflow} {step}: {}", runs(*n));
    }
    let moved = moved_groups(flight);
    if !moved.is_empty() {
        out.push_str("\nWaits whose end moves:\n");
    }
    for ((workflow, step), times) in &moved {
        let _ = writeln!(
            out,
            "  {workflow} {step}: {}, due {} → now {}",
            runs(times.len() as u64),
            span(times.iter().map(|t| t.0)),
            span(times.iter().map(|t| t.1))
        );
    }
}

/// Text from the workflows (ids, subjects, conditions, details) as a table cell of a
/// pull-request comment: always a code span, which GitHub shows as written: no Markdown, HTML,
/// link, image, `@mention` or `#123` reference inside it takes effect. The fence is one
/// backtick more than the longest run of backticks in the text (padded with spaces when the
/// text starts or ends with one), lines are joined, and `|` is written `\|`, which GitHub's
/// tables read as a pipe inside the cell, code spans included.
fn code(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ").replace('|', "\\|");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') || text.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// For a pull-request comment: the marker, a heading, the summary in bold, a table of the
/// definition changes, and (with a store) tables of the runs in flight.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!(
        "{MARKDOWN_MARKER}\n## Nudge plan\n\n**{}**\n",
        summary(plan)
    );
    if !plan.changes.is_empty() {
        out.push_str("\n### Definition changes\n\n| Workflow | Change | Step | Detail | Runs |\n|---|---|---|---|---:|\n");
        for row in &plan.changes {
            let runs = if plan.flight.is_some() {
                row.runs.to_string()
            } else {
                "–".to_owned()
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {runs} |",
                code(&row.workflow),
                row.change.as_str(),
                row.step.as_deref().map(code).unwrap_or_default(),
                code(&row.detail)
            );
        }
    }
    if let Some(flight) = &plan.flight {
        flight_markdown(flight, &mut out);
    }
    out
}

fn flight_markdown(flight: &Flight, out: &mut String) {
    let _ = writeln!(
        out,
        "\n### Runs in flight\n\n{} of {} customers at {}.\n",
        runs(flight.runs),
        flight.customers,
        time(flight.at)
    );
    if !flight.at_step.is_empty() {
        out.push_str("| Workflow | Step | Runs | Phases |\n|---|---|---:|---|\n");
        for row in &flight.at_step {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                code(&row.workflow),
                row.step.as_deref().map(code).unwrap_or_default(),
                row.runs,
                code(&row.detail)
            );
        }
    }
    let ending = ending_groups(flight);
    if !ending.is_empty() {
        out.push_str("\n#### Runs that end\n\nUnless an event ends them first (a goal, a restart).\n\n| Workflow | Step | Reason | Runs | When |\n|---|---|---|---:|---|\n");
        for ((workflow, step, reason), times) in &ending {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {}: {} |",
                code(workflow),
                step.map(code).unwrap_or_default(),
                reason.as_str(),
                times.len(),
                when_ending(*reason),
                span(times.iter().copied())
            );
        }
    }
    if !flight.different_mail.is_empty() {
        out.push_str("\n#### Runs that will get changed mail\n\n| Workflow | Step | Runs |\n|---|---|---:|\n");
        for (workflow, step, runs) in &flight.different_mail {
            let _ = writeln!(out, "| {} | {} | {runs} |", code(workflow), code(step));
        }
    }
    let moved = moved_groups(flight);
    if !moved.is_empty() {
        out.push_str("\n#### Waits whose end moves\n\n| Workflow | Step | Runs | Was due | Now due |\n|---|---|---:|---|---|\n");
        for ((workflow, step), times) in &moved {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                code(workflow),
                code(step),
                times.len(),
                span(times.iter().map(|t| t.0)),
                span(times.iter().map(|t| t.1))
            );
        }
    }
}

/// A row as one text line (for tests and logs): `workflow change step: detail [runs]`.
pub fn row_line(row: &Row) -> String {
    format!(
        "{} {} {}: {} [{}]",
        row.workflow,
        row.change.as_str(),
        row.step.as_deref().unwrap_or("-"),
        row.detail,
        row.runs
    )
}

#[cfg(test)]
mod tests {
    use super::code;

    /// What GitHub shows for a cell written by `code`: the text of the code span, the way
    /// CommonMark reads one (GFM reads `\|` as `|` in a table cell first).
    fn shown(cell: &str) -> String {
        let cell = cell.replace("\\|", "|");
        let fence = cell.chars().take_while(|&c| c == '`').count();
        let inner = &cell[fence..cell.len() - fence];
        assert!(
            !inner.contains(&"`".repeat(fence)) || inner.split(&"`".repeat(fence)).count() == 1,
            "the fence {fence} closes inside {cell}"
        );
        let inner = match inner.strip_prefix(' ').and_then(|i| i.strip_suffix(' ')) {
            Some(stripped) if !inner.trim().is_empty() => stripped,
            _ => inner,
        };
        inner.to_owned()
    }

    #[test]
    fn workflow_text_is_a_code_span_shown_as_written() {
        for text in [
            "subject \"Last chance <!-- hidden --> [click](javascript:alert(1)) ![i](https://evil.example/t.png)\"",
            "ping @octocat about #123",
            "a | b || c",
            "`leading and trailing`",
            "one ` two `` three",
            "back\\slash",
        ] {
            let cell = code(text);
            assert!(cell.starts_with('`') && cell.ends_with('`'), "{cell}");
            // No unescaped pipe can end the table cell.
            let unescaped = cell.replace("\\|", "");
            assert!(!unescaped.contains('|'), "{cell}");
            assert_eq!(shown(&cell), text, "{cell}");
        }
        assert_eq!(code("line one\nline two"), "`line one line two`");
    }
}
