//! Problems found in workflow files, printed as `path:line:col: severity: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::workflow::yaml::Pos;

/// How bad a problem is: errors fail `nudge validate`, warnings only inform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot run as written.
    Error,
    /// Probably a mistake, but the workflow can run.
    Warning,
}

impl Severity {
    /// `error` or `warning`, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// The file, as the user named it (the path given on the command line joined with the
    /// file's name).
    pub path: PathBuf,
    /// 1-based line and column (in characters).
    pub pos: Pos,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in words a marketer understands.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.pos.line,
            self.pos.col,
            self.severity.as_str(),
            self.message
        )
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Diagnostic", 5)?;
        st.serialize_field("path", &self.path.display().to_string())?;
        st.serialize_field("line", &self.pos.line)?;
        st.serialize_field("column", &self.pos.col)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

/// Collects the problems of one file.
#[derive(Debug)]
pub struct Sink<'a> {
    path: &'a Path,
    out: &'a mut Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    /// A sink that files problems under `path`.
    pub fn new(path: &'a Path, out: &'a mut Vec<Diagnostic>) -> Self {
        Self { path, out }
    }

    /// The file this sink reports on.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// Records an error at `pos`.
    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Error, message.into());
    }

    /// Records a warning at `pos`.
    pub fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Warning, message.into());
    }

    fn push(&mut self, pos: Pos, severity: Severity, message: String) {
        self.out.push(Diagnostic {
            path: self.path.to_path_buf(),
            pos,
            severity,
            message,
        });
    }
}

/// Sorts problems by path, line and column (errors before warnings at one place) and drops
/// exact repeats, so that each problem is reported once however many routes found it.
pub fn sort_and_dedup(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        (&a.path, a.pos, a.severity, &a.message).cmp(&(&b.path, b.pos, b.severity, &b.message))
    });
    diags.dedup();
}

/// The closest of `candidates` to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let word_lc = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word_lc, &c.to_lowercase()), c))
        .filter(|(d, c)| *d > 0 && *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` or nothing.
pub fn suggestion<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Names as a message lists them: `` `a`, `b`, `c` ``.
pub fn code_list<T: std::fmt::Display>(names: impl IntoIterator<Item = T>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_quote_each_name() {
        assert_eq!(code_list(["a", "b.c"]), "`a`, `b.c`");
        assert_eq!(code_list(Vec::<String>::new()), "");
    }

    #[test]
    fn suggests_the_nearest_valid_name() {
        let kinds = ["send_email", "wait", "wait_for", "update_profile"];
        assert_eq!(did_you_mean("sned_email", kinds), Some("send_email"));
        assert_eq!(did_you_mean("wiat", kinds), Some("wait"));
        assert_eq!(did_you_mean("wait_fro", kinds), Some("wait_for"));
        assert_eq!(did_you_mean("banana", kinds), None);
        assert_eq!(
            did_you_mean("custmer", ["customer", "event"]),
            Some("customer")
        );
    }

    #[test]
    fn prints_one_line_in_the_compiler_format() {
        let d = Diagnostic {
            path: PathBuf::from("workflows/win-back.yaml"),
            pos: Pos::new(12, 7),
            severity: Severity::Error,
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "workflows/win-back.yaml:12:7: error: bad");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"path": "workflows/win-back.yaml", "line": 12, "column": 7,
                               "severity": "error", "message": "bad"})
        );
    }
}
