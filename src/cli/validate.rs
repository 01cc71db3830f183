//! `nudge validate`.

use std::io::Write;
use std::path::PathBuf;

use anstyle::{AnsiColor, Style};

use super::{Format, exit};
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
    for path in &paths {
        match nudge_core::workflow::load(path) {
            Ok(report) => diags.extend(report.diagnostics),
            Err(e) => {
                let _ = writeln!(anstream::stderr(), "nudge: {e}");
                unreadable = true;
            }
        }
    }
    sort_and_dedup(&mut diags);
    print(&diags, args.format);
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
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = diags.len() - errors;
            if !diags.is_empty() {
                let _ = writeln!(
                    anstream::stderr(),
                    "{errors} error{}, {warnings} warning{}",
                    if errors == 1 { "" } else { "s" },
                    if warnings == 1 { "" } else { "s" }
                );
            }
        }
    }
}
