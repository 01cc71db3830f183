//! Reading the workflows folder for the commands that need the workflows whole and
//! without errors (`simulate`, `graph`, ...): the diagnostics go to stderr as `validate`
//! prints them, and a folder with errors is refused.

use std::io::Write;
use std::path::Path;

use super::exit;
use nudge_core::workflow::{LoadError, Project};

/// Why the workflows cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProjectError {
    /// The folder (or file) cannot be read at all.
    #[error(transparent)]
    Read(#[from] LoadError),
    /// The workflows have errors (already printed as diagnostics).
    #[error("the workflows have errors; fix them (nudge validate) and run again")]
    Invalid,
}

impl ProjectError {
    /// The exit code of a command refused for this: [`exit::USAGE`] when the folder cannot
    /// be read, [`exit::PROBLEMS`] when the workflows have errors.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            ProjectError::Read(_) => exit::USAGE,
            ProjectError::Invalid => exit::PROBLEMS,
        }
    }
}

/// Reads the workflows at `path` (a folder, or one file beside its settings and templates),
/// printing every problem found (warnings too) on stderr, one per line; the project when
/// nothing is in error.
pub(crate) fn load(path: &Path) -> Result<Project, ProjectError> {
    let report = nudge_core::workflow::load(path)?;
    let mut err = anstream::stderr();
    for d in &report.diagnostics {
        let _ = writeln!(err, "{d}");
    }
    report.project.ok_or(ProjectError::Invalid)
}
