//! `nudge validate`.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use anstyle::{AnsiColor, Style};
use clap::ValueEnum;

use super::{counted, exit};
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

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum Format {
    /// `path:line:col: severity: message` lines (coloured on a terminal unless NO_COLOR is
    /// set), and a summary on stderr.
    #[default]
    Text,
    /// One JSON object per problem.
    Json,
    /// One GitHub Actions workflow command per problem (`::error file=..,line=..,col=..::..`),
    /// so that a pull request shows each problem on its line; and the summary on stderr.
    Github,
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
                if args.format == Format::Github {
                    let _ = writeln!(
                        std::io::stdout(),
                        "::error::{}",
                        escape_data(&format!("nudge: {e}"))
                    );
                }
                unreadable = true;
            }
        }
    }
    sort_and_dedup(&mut diags);
    print(&diags, args.format);
    if args.format != Format::Json {
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
        Format::Github => {
            for d in diags {
                let _ = writeln!(out, "{}", github_command(d));
            }
        }
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

/// `d` as a GitHub Actions workflow command: `::error file=PATH,line=L,col=C::MESSAGE` (or
/// `::warning`), the values escaped as the Actions toolkit escapes them. A problem with the
/// whole file (its position is line 0, or the file does not exist, as a missing
/// `settings.yaml`) has no line and column, so GitHub shows it on the file.
fn github_command(d: &Diagnostic) -> String {
    let mut properties = format!("file={}", escape_property(&github_path(&d.path)));
    if d.pos.line > 0 && d.path.is_file() {
        properties.push_str(&format!(",line={},col={}", d.pos.line, d.pos.col));
    }
    format!(
        "::{} {properties}::{}",
        d.severity.as_str(),
        escape_data(&d.message)
    )
}

/// The path as GitHub matches it against the repository's files: without `./` steps.
fn github_path(path: &Path) -> String {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned()
}

/// A workflow command's message: `%`, CR and LF escaped, so that a message stays one
/// command whatever it quotes.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as a message, and `:` and `,` too, which end a value.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
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

    #[test]
    fn github_commands_escape_as_the_actions_toolkit_does() {
        assert_eq!(escape_data("50% off\r\nnext"), "50%25 off%0D%0Anext");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sale,50%:off.yaml");
        std::fs::write(&path, "").unwrap();
        let mut d = diag(Severity::Warning);
        d.path = path.clone();
        d.pos = nudge_core::workflow::yaml::Pos::new(3, 7);
        d.message = "`a`: 1,2\nthree %".to_owned();
        let file = escape_property(&github_path(&path));
        assert!(file.ends_with("/sale%2C50%25%3Aoff.yaml"), "{file}");
        assert_eq!(
            github_command(&d),
            format!("::warning file={file},line=3,col=7::`a`: 1,2%0Athree %25")
        );
        // A file that is not there, or line 0: the problem is the file's, without a line.
        d.severity = Severity::Error;
        d.pos = nudge_core::workflow::yaml::Pos::new(0, 0);
        assert_eq!(
            github_command(&d),
            format!("::error file={file}::`a`: 1,2%0Athree %25")
        );
        d.pos = nudge_core::workflow::yaml::Pos::new(1, 1);
        d.path = PathBuf::from("./missing/settings.yaml");
        assert_eq!(
            github_command(&d),
            "::error file=missing/settings.yaml::`a`: 1,2%0Athree %25"
        );
    }

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
