//! The workflows built into the function package (see `build.rs`: checked as `nudge validate`
//! checks them, so a broken workflow fails the build and never deploys). Every function of one
//! deploy runs the same version.

use std::path::{Path, PathBuf};

use nudge_core::workflow::{self, Project};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/workflows.rs"));
}

/// Every file of the workflows folder the package was built with, by path relative to it.
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    embedded::FILES
}

/// Why the built-in workflows could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowsError {
    /// The scratch folder could not be written.
    #[error("cannot write the workflows to {}: {source}", path.display())]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The loader could not read them.
    #[error(transparent)]
    Load(#[from] workflow::LoadError),
    /// They have errors (the build checks them, so only a package built around that check).
    #[error("the built-in workflows have {0} error(s); rebuild after `nudge validate` passes")]
    Invalid(usize),
}

/// Loads the built-in workflows: writes them under `scratch` (the loader reads a folder, with
/// the same checks as `nudge validate`) and reads them back.
pub fn load(scratch: &Path) -> Result<Project, WorkflowsError> {
    for (rel, bytes) in files() {
        let path = scratch.join(rel);
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)
        };
        write(&path).map_err(|source| WorkflowsError::Write { path, source })?;
    }
    let report = workflow::load(scratch)?;
    let errors = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == nudge_core::diagnostic::Severity::Error)
        .count();
    report.project.ok_or(WorkflowsError::Invalid(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_workflows_are_built_in_and_load() {
        let names: Vec<&str> = files().iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"settings.yaml"), "{names:?}");
        assert!(names.contains(&"welcome-series.yaml"), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with("templates/")),
            "{names:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let project = load(dir.path()).unwrap();
        assert!(project.workflows.iter().any(|w| w.id == "welcome-series"));
    }
}
