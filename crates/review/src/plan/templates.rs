//! Which template files changed between two projects: the only part of a plan that reads
//! files (the models hold the compiled templates, not their text).

use std::collections::BTreeSet;
use std::path::PathBuf;

use nudge_core::workflow::Project;

/// A template file could not be read again.
#[derive(Debug, thiserror::Error)]
#[error("cannot read template {}: {source}", path.display())]
pub struct TemplateReadError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// The templates of `head` (by name, as steps name them: `win-back/vip.mjml`) whose file's
/// bytes differ from `base`'s file of the same name or that `base` does not have, and every
/// template that includes or extends one of those (its email changes too).
pub fn changed_templates(
    base: &Project,
    head: &Project,
) -> Result<BTreeSet<String>, TemplateReadError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| TemplateReadError {
            path: path.clone(),
            source,
        })
    };
    let mut changed = BTreeSet::new();
    for name in head.templates.names() {
        let Some(new) = head.templates.file(name) else {
            continue;
        };
        let same = match base.templates.file(name) {
            Some(old) => read(&old.path)? == read(&new.path)?,
            None => false,
        };
        if !same {
            changed.insert(name.to_owned());
        }
    }
    // Whatever renders a changed template changed too, transitively.
    loop {
        let more: Vec<String> = head
            .templates
            .names()
            .filter(|name| !changed.contains(*name))
            .filter(|name| {
                head.templates
                    .file(name)
                    .is_some_and(|f| f.renders.iter().any(|r| changed.contains(r)))
            })
            .map(str::to_owned)
            .collect();
        if more.is_empty() {
            return Ok(changed);
        }
        changed.extend(more);
    }
}
