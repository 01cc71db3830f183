//! Explaining failures: the problems a validator finds, narrowed to the branch of a `oneOf`
//! the document meant, and every problem of a folder of YAML files.

use std::cmp::Reverse;
use std::fs;
use std::path::Path;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::{file_name, parse_yaml, yaml_files};

/// One reason a document does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    /// JSON pointer into the document, e.g. `/steps/2/wait` (empty for the root).
    pub(super) path: String,
    /// The schema keyword that failed, e.g. `pattern`.
    pub(super) keyword: String,
    message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {} [{}]", self.message, self.keyword)
    }
}

impl Problem {
    /// The problem `error` reports as it is.
    fn of(error: &ValidationError<'_>) -> Self {
        Problem {
            path: error.instance_path().as_str().to_owned(),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        }
    }
}

/// How deep a JSON pointer reaches into the document.
fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// The problems `validator` finds in `doc`. A failed `oneOf`/`anyOf` (a step matching no step
/// kind, a trigger matching neither form) is narrowed to the branch the document most likely
/// meant, so that `wait: 3 days` is reported as a bad pattern at `/steps/0/wait`, not as "matches
/// none of eight step kinds".
pub(super) fn problems(validator: &Validator, doc: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    for error in validator.iter_errors(doc) {
        explain(&error, &mut out);
    }
    out.dedup();
    out
}

/// Adds the problems of `error` to `out`, narrowing a failed `oneOf`/`anyOf` to its best
/// branches.
fn explain(error: &ValidationError<'_>, out: &mut Vec<Problem>) {
    match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            let explained: Vec<Vec<Problem>> = context
                .iter()
                .map(|branch| {
                    let mut problems = Vec::new();
                    for error in branch {
                        explain(error, &mut problems);
                    }
                    problems
                })
                .filter(|problems| !problems.is_empty())
                .collect();
            let Some(best) = explained.iter().map(|p| branch_score(p)).max() else {
                out.push(Problem::of(error));
                return;
            };
            let tied: Vec<&Vec<Problem>> = explained
                .iter()
                .filter(|p| branch_score(p) == best)
                .collect();
            if tied.len() == 1 {
                out.extend(tied[0].iter().cloned());
                return;
            }
            // Several branches fit equally well (a step with an unknown key fails every step
            // kind the same way): keep what they all agree on, else the failure as a whole.
            let common: Vec<Problem> = tied[0]
                .iter()
                .filter(|p| tied[1..].iter().all(|other| other.contains(p)))
                .cloned()
                .collect();
            if common.is_empty() {
                out.push(Problem::of(error));
            } else {
                out.extend(common);
            }
        }
        _ => out.push(Problem::of(error)),
    }
}

/// How well a branch of a `oneOf` fits: the deeper its problems reach into the document, the
/// more of the document it accepted; a type or constant mismatch where it fails means the
/// branch is for another kind of value; fewer problems is better.
fn branch_score(problems: &[Problem]) -> (usize, bool, Reverse<usize>) {
    let deepest = problems.iter().map(|p| depth(&p.path)).max().unwrap_or(0);
    let right_kind = !problems
        .iter()
        .any(|p| depth(&p.path) == deepest && (p.keyword == "type" || p.keyword == "const"));
    (deepest, right_kind, Reverse(problems.len()))
}

/// Every problem in every YAML file of `dir`, as `file: /path: message`, plus the files whose
/// first line is not the modeline that points editors at the schema.
pub(super) fn check_dir(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut schema_failures = Vec::new();
    let mut modeline_failures = Vec::new();
    for (path, kind) in yaml_files(dir) {
        let name = file_name(&path);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                schema_failures.push(format!("{name}: cannot read: {e}"));
                continue;
            }
        };
        let first = text.lines().next().unwrap_or("");
        if first != kind.modeline() {
            modeline_failures.push(format!(
                "{name}: first line is {first:?}, expected {:?}",
                kind.modeline()
            ));
        }
        match parse_yaml(&text) {
            Err(e) => schema_failures.push(format!("{name}: not valid YAML: {e}")),
            Ok(doc) => {
                for problem in problems(kind.validator(), &doc) {
                    schema_failures.push(format!("{name}: {problem}"));
                }
            }
        }
    }
    (schema_failures, modeline_failures)
}
