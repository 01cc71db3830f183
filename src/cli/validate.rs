//! `nudge validate`.

use std::io::Write;
use std::path::PathBuf;

use anstyle::{AnsiColor, Style};

use super::{Format, counted, exit};
use nudge_core::diagnostic::{Diagnostic, Severity, sort_and_dedup};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Workflow folders or files (default: workflows/).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

pub(crate) fn run(args: &Args) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("workflows/")]
    } else {
        args.paths.clone()
    };
    let mut diags = Vec::new();
    let mut unreadable = false;
    let mut checked = Checked::default();
    for path in &paths {
        match nudge_core::workflow::load(path) {
            Ok(report) => {
                checked.workflows += report.workflows_checked;
                checked.templates += report.templates_checked;
                diags.extend(report.diagnostics);
            }
            Err(e) => {
                let _ = writeln!(anstream::stderr(), "nudge: {e}");
                unreadable = true;
            }
        }
    }
    sort_and_dedup(&mut diags);
    print(&diags, args.format);
    if args.format == Format::Text {
        let _ = writeln!(anstream::stderr(), "{}", summary(checked, &diags));
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if unreadable {
        exit::USAGE
    } else if errors > 0 {
        exit::PROBLEMS
    } else {
        exit::OK
    }
}

fn print(diags: &[Diagnostic], format: Format) {
    // anstream drops the colour codes when stdout is not a terminal or NO_COLOR is set.
    let mut out = anstream::stdout().lock();
    match format {
        Format::Json => {
            for d in diags {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string(d).expect("diagnostics serialize")
                );
            }
        }
        Format::Text => {
            let path = Style::new().bold();
            for d in diags {
                let sev = match d.severity {
                    Severity::Error => Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
                    Severity::Warning => {
                        Style::new().bold().fg_color(Some(AnsiColor::Yellow.into()))
                    }
                };
                let _ = writeln!(
                    out,
                    "{path}{}:{}:{}:{path:#} {sev}{}:{sev:#} {}",
                    d.path.display(),
                    d.pos.line,
                    d.pos.col,
                    d.severity.as_str(),
                    d.message
                );
            }
        }
    }
}

/// What one `validate` run looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Checked {
    workflows: usize,
    templates: usize,
}

/// The one-line summary text format prints on stderr: `checked 6 workflows, 14 templates:
/// no problems` or `...: 2 errors, 1 warning`.
fn summary(checked: Checked, diags: &[Diagnostic]) -> String {
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let problems = if diags.is_empty() {
        "no problems".to_owned()
    } else {
        format!(
            "{}, {}",
            counted(errors, "error", "errors"),
            counted(warnings, "warning", "warnings")
        )
    };
    format!(
        "checked {}, {}: {problems}",
        counted(checked.workflows, "workflow", "workflows"),
        counted(checked.templates, "template", "templates")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(severity: Severity) -> Diagnostic {
        Diagnostic {
            path: PathBuf::from("w.yaml"),
            pos: nudge_core::workflow::yaml::Pos::new(1, 1),
            severity,
            message: String::new(),
        }
    }

    #[test]
    fn the_summary_counts_in_words_with_plurals_right() {
        let one = Checked {
            workflows: 1,
            templates: 1,
        };
        assert_eq!(
            summary(one, &[]),
            "checked 1 workflow, 1 template: no problems"
        );
        let many = Checked {
            workflows: 6,
            templates: 14,
        };
        let diags = [
            diag(Severity::Error),
            diag(Severity::Error),
            diag(Severity::Warning),
        ];
        assert_eq!(
            summary(many, &diags),
            "checked 6 workflows, 14 templates: 2 errors, 1 warning"
        );
        assert_eq!(
            summary(Checked::default(), &diags[2..]),
            "checked 0 workflows, 0 templates: 0 errors, 1 warning"
        );
        assert_eq!(
            summary(one, &diags[1..2]),
            "checked 1 workflow, 1 template: 1 error, 0 warnings"
        );
    }
}
