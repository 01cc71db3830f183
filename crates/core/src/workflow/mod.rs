//! Workflow files: reading, checking and the typed model the engine runs.
//!
//! [`load`] reads a `workflows/` folder (or single files in one) into a [`Project`] and every
//! problem found on the way. It never stops at the first problem and never fails on bad
//! content: only a path that cannot be read at all is an error ([`LoadError`]).

pub mod files;
pub mod model;
pub mod parse;
pub mod template;
pub mod units;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Severity, Sink, sort_and_dedup, suggestion};
use model::{Category, Settings, Trigger, Workflow};
use template::{ScalarChecker, Templates};
use yaml::Pos;

/// A checked set of workflows with their settings and compiled templates.
#[derive(Debug)]
pub struct Project {
    /// Store-wide settings.
    pub settings: Settings,
    /// Workflows, sorted by id.
    pub workflows: Vec<Workflow>,
    /// Compiled templates.
    pub templates: Templates,
}

/// What reading workflows produced: the project when it has no errors, and every problem.
#[derive(Debug)]
pub struct Report {
    /// `Some` when nothing is in error (warnings allowed).
    pub project: Option<Project>,
    /// Every problem, sorted by path and position.
    pub diagnostics: Vec<Diagnostic>,
    /// How many workflow files were read (those with problems included).
    pub workflows_checked: usize,
    /// How many template files were checked.
    pub templates_checked: usize,
}

impl Report {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// A path that could not be read at all (as opposed to a file with problems in it).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist or cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file that is neither a workflow nor `settings.yaml`.
    #[error("{}: not a workflow file (expected a .yaml file or a folder of them)", path.display())]
    NotWorkflow {
        /// The path as given.
        path: PathBuf,
    },
}

/// Settings file name, reserved in every workflows folder.
pub const SETTINGS_FILE: &str = "settings.yaml";
const TEMPLATES_DIR: &str = "templates";

/// Reads a workflows folder, or a single workflow file together with the settings and
/// templates beside it. Diagnostics name files as `path` joined with their names.
pub fn load(path: &Path) -> Result<Report, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        return load_dir(path, None);
    }
    let is_yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_yaml {
        return Err(LoadError::NotWorkflow {
            path: path.to_path_buf(),
        });
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    load_dir(dir, Some(&name))
}

/// Reads the folder `dir`; with `only`, just that one file of it (and what it needs).
fn load_dir(dir: &Path, only: Option<&str>) -> Result<Report, LoadError> {
    let io_dir = io_dir_of(dir);
    let names = workflow_file_names(dir, io_dir, only)?;
    let root = files::canonical_root(io_dir);
    let root = root.as_deref();
    let mut diags = Vec::new();
    let env = template::environment();
    let (read, complete) = read_workflows(dir, io_dir, root, &names, &env, &mut diags);
    let (workflows, texts): (Vec<Workflow>, Vec<String>) = read.into_iter().unzip();
    let has_marketing = workflows.iter().any(|w| w.category == Category::Marketing);
    let settings = read_settings(dir, io_dir, root, has_marketing, &mut diags);
    // A single file compiles only the templates it uses: the others are not its problems.
    let wanted = only.is_some().then(|| referenced(&workflows));
    let templates = read_templates(dir, io_dir, root, wanted, &mut diags)?;
    for w in &workflows {
        check_templates(w, &templates, dir, &mut diags);
    }
    let attributes = attributes(dir, only, settings.as_ref(), &workflows, &env);
    for (w, text) in workflows.iter().zip(&texts) {
        let mut sink = Sink::new(&w.path, &mut diags);
        template::reads::check_workflow(w, text, &env, attributes.as_ref(), &mut sink);
    }
    template::reads::check_template_files(&templates, &workflows, attributes.as_ref(), &mut diags);

    sort_and_dedup(&mut diags);
    let templates_checked = templates.checked();
    let ok = complete && !diags.iter().any(|d| d.severity == Severity::Error);
    let project = match settings {
        Some(settings) if ok => Some(Project {
            settings,
            workflows,
            templates,
        }),
        _ => None,
    };
    Ok(Report {
        workflows_checked: names.len(),
        templates_checked,
        project,
        diagnostics: diags,
    })
}

/// The customer attributes templates may read (see [`template::reads::Attributes`]), once
/// the settings are read (`None` when they cannot be: their declarations are unknown, and
/// their errors come first). What workflows write counts project-wide, so validating one file
/// also reads the folder's other workflows for it (their problems are not this file's).
fn attributes(
    dir: &Path,
    only: Option<&str>,
    settings: Option<&Settings>,
    workflows: &[Workflow],
    env: &minijinja::Environment<'static>,
) -> Option<template::reads::Attributes> {
    let settings = settings?;
    let mut writers: Vec<Workflow> = Vec::new();
    if only.is_some() {
        let io_dir = io_dir_of(dir);
        let root = files::canonical_root(io_dir);
        let names = workflow_file_names(dir, io_dir, None).unwrap_or_default();
        let mut ignored = Vec::new();
        let (others, _) = read_workflows(dir, io_dir, root.as_deref(), &names, env, &mut ignored);
        writers.extend(others.into_iter().map(|(w, _)| w));
    }
    let all = workflows.iter().chain(&writers);
    Some(template::reads::Attributes::new(&settings.profile, all))
}

/// Where to read `dir` from: an empty path (a bare file name's parent) is the current folder.
/// Diagnostics keep `dir` as given.
fn io_dir_of(dir: &Path) -> &Path {
    if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }
}

/// The workflow files in `dir` (every `.yaml` or `.yml` file but the settings), sorted; with
/// `only`, just that one.
fn workflow_file_names(
    dir: &Path,
    io_dir: &Path,
    only: Option<&str>,
) -> Result<Vec<String>, LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(io_dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if is_yaml && name != SETTINGS_FILE && entry.file_type().map_err(read_err)?.is_file() {
            names.push(name);
        }
    }
    names.sort();
    if let Some(only) = only {
        names.retain(|n| n == only);
    }
    Ok(names)
}

/// Reads and parses the workflow files `names` in `dir`, each with its text, and whether every
/// one of them could be made into a workflow. Two files with the same stem (`a.yaml`, `a.yml`)
/// are reported.
fn read_workflows(
    dir: &Path,
    io_dir: &Path,
    root: Option<&Path>,
    names: &[String],
    env: &minijinja::Environment<'static>,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<(Workflow, String)>, bool) {
    let mut workflows = Vec::new();
    let mut complete = true;
    let mut stems: BTreeMap<String, PathBuf> = BTreeMap::new();
    for name in names {
        let shown = dir.join(name);
        let stem = name
            .rsplit_once('.')
            .map_or(name.as_str(), |(s, _)| s)
            .to_owned();
        let mut sink = Sink::new(&shown, diags);
        if let Some(first) = stems.insert(stem.clone(), shown.clone()) {
            sink.error(
                Pos::new(1, 1),
                format!("workflow `{stem}` is also defined by {}", first.display()),
            );
        }
        match read_workflow(&io_dir.join(name), root, &stem, env, &mut sink) {
            Some(w) => workflows.push(w),
            None => complete = false,
        }
    }
    (workflows, complete)
}

/// Reads, parses and checks one workflow file; the workflow with the file's text.
fn read_workflow(
    path: &Path,
    root: Option<&Path>,
    stem: &str,
    env: &minijinja::Environment<'static>,
    sink: &mut Sink,
) -> Option<(Workflow, String)> {
    let text = read_text(path, root, sink)?;
    let root = match yaml::parse(&text) {
        Ok(root) => root,
        Err(e) => {
            sink.error(e.pos, e.message);
            return None;
        }
    };
    let checker = ScalarChecker::new(env, &text);
    let workflow = parse::workflow(sink, &checker, &root, stem)?;
    Some((workflow, text))
}

/// Compiles the templates under `templates/`, when there is such a folder; with `wanted`, only
/// those.
fn read_templates(
    dir: &Path,
    io_dir: &Path,
    root: Option<&Path>,
    wanted: Option<BTreeSet<String>>,
    diags: &mut Vec<Diagnostic>,
) -> Result<Templates, LoadError> {
    let templates_dir = io_dir.join(TEMPLATES_DIR);
    if !templates_dir.is_dir() {
        return Ok(Templates::default());
    }
    Templates::load_dir(
        &templates_dir,
        &dir.join(TEMPLATES_DIR),
        root,
        wanted,
        diags,
    )
    .map_err(|source| LoadError::Read {
        path: dir.join(TEMPLATES_DIR),
        source,
    })
}

/// Template names the workflows use: those they send, and those their template strings
/// include or import.
fn referenced(workflows: &[Workflow]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for step in workflows.iter().flat_map(|w| w.all_steps()) {
        if let model::StepKind::SendEmail(e) = &step.kind {
            names.insert(e.template.clone());
        }
        for (source, _) in template_strings(step) {
            names.extend(
                template::refs::template_refs(source)
                    .into_iter()
                    .map(|r| r.name),
            );
        }
    }
    names
}

/// The template strings of a step with where each was written (a webhook body's strings at
/// the step, since JSON keeps no positions).
pub(crate) fn template_strings(step: &model::Step) -> Vec<(&str, Pos)> {
    let mut out = Vec::new();
    match &step.kind {
        model::StepKind::SendEmail(e) => {
            out.push((e.subject.source.as_str(), e.subject.pos));
            out.extend(e.preheader.iter().map(|p| (p.source.as_str(), p.pos)));
        }
        model::StepKind::UpdateProfile(u) => {
            for (_, value) in &u.set {
                if let model::ProfileValue::Template(t) = value {
                    out.push((t.source.as_str(), t.pos));
                }
            }
        }
        model::StepKind::Webhook(h) => {
            let mut stack: Vec<&serde_json::Value> = h.body.iter().collect();
            while let Some(value) = stack.pop() {
                match value {
                    serde_json::Value::String(s) => out.push((s.as_str(), step.pos)),
                    serde_json::Value::Array(items) => stack.extend(items),
                    serde_json::Value::Object(map) => stack.extend(map.values()),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    out
}

/// A template that a workflow's template string includes or imports must be there.
fn check_string_refs(step: &model::Step, templates: &Templates, dir: &Path, sink: &mut Sink) {
    for (source, pos) in template_strings(step) {
        for r in template::refs::template_refs(source) {
            let path = io_dir_of(dir).join(TEMPLATES_DIR).join(&r.name);
            // One that exists but did not compile has its errors reported at the template.
            if templates.file(&r.name).is_none() && !path.is_file() {
                sink.error(
                    pos,
                    format!("template `{}` not found in templates/", r.name),
                );
            }
        }
    }
}

/// A workflow or settings file's text; a problem reading it is reported at its spot.
fn read_text(path: &Path, root: Option<&Path>, sink: &mut Sink) -> Option<String> {
    files::read_text(path, root)
        .map_err(|e| sink.error(e.pos(), e.to_string()))
        .ok()
}

fn read_settings(
    dir: &Path,
    io_dir: &Path,
    root: Option<&Path>,
    has_marketing: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Settings> {
    let shown = dir.join(SETTINGS_FILE);
    let mut sink = Sink::new(&shown, diags);
    let path = io_dir.join(SETTINGS_FILE);
    if !path.exists() {
        sink.error(
            Pos::new(1, 1),
            "settings.yaml is missing: every workflows folder needs the store's settings",
        );
        return None;
    }
    let text = read_text(&path, root, &mut sink)?;
    match yaml::parse(&text) {
        Ok(root) => parse::settings(&mut sink, &root, has_marketing),
        Err(e) => {
            sink.error(e.pos, e.message);
            None
        }
    }
}

/// Checks what a workflow asks of its templates: that they exist, use only names the workflow
/// has, and (for marketing) carry an unsubscribe link.
fn check_templates(w: &Workflow, templates: &Templates, dir: &Path, diags: &mut Vec<Diagnostic>) {
    let mut sink = Sink::new(&w.path, diags);
    let date_triggered = matches!(w.trigger, Trigger::Date(_));
    for step in w.all_steps() {
        check_string_refs(step, templates, dir, &mut sink);
        let model::StepKind::SendEmail(email) = &step.kind else {
            continue;
        };
        let Some(file) = templates.file(&email.template) else {
            let path = io_dir_of(dir).join(TEMPLATES_DIR).join(&email.template);
            if path.is_dir() {
                let message = format!("template `{}` is a folder, not a file", email.template);
                sink.error(email.template_pos, message);
                continue;
            }
            if path.exists() {
                // It exists but did not compile: its own errors are reported at the template.
                continue;
            }
            sink.error(
                email.template_pos,
                format!(
                    "template `{}` not found in templates/{}",
                    email.template,
                    suggestion(&email.template, templates.names())
                ),
            );
            continue;
        };
        if date_triggered && file.names.contains("event") {
            sink.error(
                email.template_pos,
                format!(
                    "template `{}` uses `event`, which a date-triggered workflow does not have",
                    email.template
                ),
            );
        }
        if w.category == Category::Marketing && !file.has_unsubscribe_link {
            sink.warn(
                email.template_pos,
                format!(
                    "marketing template `{}` has no unsubscribe link (`links.unsubscribe`); Nudge will append a footer with one",
                    email.template
                ),
            );
        }
    }
}
