//! `nudge preview`: the static site of every email of every workflow.
//!
//! [`build`] renders every `send_email` step (every branch of every `if` and `ab_split`)
//! through the engine's own composition ([`Engine::preview_email`]) and the runner's MIME
//! builder ([`build_mime`](nudge_core::mail::build_mime)), then reads the page's headers, HTML
//! and text back from those bytes: what a page shows is what the outbox would write for the
//! same data (the `Date` and `Message-ID` headers depend on the time and the run, as always).
//! Unsubscribe links are signed with the development key and, when the settings name no
//! `unsubscribe_url`, point at `https://unsubscribe.invalid/` (as `nudge simulate` without
//! environment).
//!
//! The site is plain files: `index.html` (every workflow with a diagram of its steps, its
//! trigger and its emails), one page per email (`emails/<workflow>/<step>.html`, with the HTML
//! part in `<step>.body.html` shown in frames at desktop and phone widths, and the message as
//! `<step>.eml`). It needs no network: styles and the one small script are inline, and the site
//! itself loads nothing remote (an image a template links to remotely is the template's, and
//! loads only if the network is there).
//!
//! Everything taken from the workflows or the sample data is HTML-escaped in the pages; the
//! email's own HTML goes only into its frame, which is sandboxed (no scripts).
//!
//! Limits: the sending rules (consent, send window, frequency cap) are not applied; an email
//! that the engine would skip for the sample data (a render error, no valid recipient) is shown
//! as that error in its place.

mod diagram;
mod page;
pub mod render;
pub mod sample;
pub mod steps;

use std::path::Path;

use chrono::{DateTime, Utc};

use nudge_core::diagnostic::{Diagnostic, Severity};
use nudge_core::engine::Engine;
use nudge_core::links::Signer;
use nudge_core::mail::escape_key;
use nudge_core::workflow::Project;
use nudge_core::workflow::model::Workflow;

pub use render::{RenderError, Rendered};
pub use sample::{DataError, Sample, SampleData, Source};

/// Where unsubscribe links point when the settings name no `unsubscribe_url`: a reserved
/// domain (RFC 2606), as in `nudge simulate`.
pub const PLACEHOLDER_UNSUBSCRIBE_URL: &str = "https://unsubscribe.invalid/";

/// What the site is built with besides the project.
#[derive(Debug, Clone)]
pub struct Options {
    /// When the emails are rendered (`Date`, `run.started_at`).
    pub now: DateTime<Utc>,
    /// The `--data` file's name, shown on the page.
    pub data_file: Option<String>,
}

/// One file of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFile {
    /// Its path in the site, `/`-separated (`emails/win-back/miss-you.html`).
    pub path: String,
    /// Its bytes.
    pub contents: Vec<u8>,
}

/// The built site.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// Every file, `index.html` first.
    pub files: Vec<SiteFile>,
    /// How many emails it shows (those that failed to render included).
    pub emails: usize,
    /// How many of them failed to render.
    pub failed: usize,
}

impl Site {
    /// The file at `path` (`/`-separated, no leading `/`).
    pub fn get(&self, path: &str) -> Option<&SiteFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Writes every file under `dir` (made if missing). Files already there that the site does
    /// not have stay.
    ///
    /// # Errors
    ///
    /// The first file or folder that cannot be written.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        for file in &self.files {
            let path = dir.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &file.contents)?;
        }
        Ok(())
    }
}

/// One email of a workflow, rendered.
#[derive(Debug)]
struct EmailView {
    step: String,
    template: String,
    path: Vec<String>,
    subject_source: String,
    result: Result<Rendered, RenderError>,
    warnings: Vec<Diagnostic>,
    /// The page, from the site's root.
    href: String,
}

/// One workflow, rendered.
#[derive(Debug)]
struct WorkflowView<'p> {
    workflow: &'p Workflow,
    sample: Sample,
    emails: Vec<EmailView>,
    /// Its warnings that concern no single email.
    warnings: Vec<Diagnostic>,
}

/// Builds the site of `project` (whose validation found `diagnostics`, warnings shown beside
/// what they concern), with sample data from `data` or made up.
pub fn build(
    mut project: Project,
    diagnostics: &[Diagnostic],
    data: &SampleData,
    options: &Options,
) -> Site {
    if project.settings.unsubscribe_url.is_none() {
        project.settings.unsubscribe_url = url::Url::parse(PLACEHOLDER_UNSUBSCRIBE_URL).ok();
    }
    let signer = Signer::development();
    let engine = Engine::new(&project, &signer);
    let mut placed = vec![false; diagnostics.len()];
    let views: Vec<WorkflowView<'_>> = project
        .workflows
        .iter()
        .map(|w| workflow_view(&engine, w, data, diagnostics, &mut placed, options.now))
        .collect();
    let general: Vec<&Diagnostic> = diagnostics
        .iter()
        .zip(&placed)
        .filter(|(d, placed)| !**placed && d.severity == Severity::Warning)
        .map(|(d, _)| d)
        .collect();
    let mut site = Site::default();
    site.files.push(SiteFile {
        path: "index.html".to_owned(),
        contents: page::index(&project, &views, &general, options).into_bytes(),
    });
    for view in &views {
        for email in &view.emails {
            site.emails += 1;
            site.failed += usize::from(email.result.is_err());
            push_email_files(&mut site, &project, view, email, options);
        }
    }
    site
}

/// The site shown while the workflows have errors (`--serve` after a broken edit): the
/// diagnostics, on `index.html`.
pub fn diagnostics_site(diagnostics: &[Diagnostic]) -> Site {
    Site {
        files: vec![SiteFile {
            path: "index.html".to_owned(),
            contents: page::diagnostics(diagnostics).into_bytes(),
        }],
        emails: 0,
        failed: 0,
    }
}

fn workflow_view<'p>(
    engine: &Engine<'p>,
    w: &'p Workflow,
    data: &SampleData,
    diagnostics: &[Diagnostic],
    placed: &mut [bool],
    now: DateTime<Utc>,
) -> WorkflowView<'p> {
    let project = engine.project();
    let steps = steps::email_steps(w);
    let sample = data.sample_for(project, w, &steps);
    let owners = warning_owners(w, diagnostics);
    let mut warnings = Vec::new();
    for (i, owner) in &owners {
        if owner.is_none() {
            warnings.push(diagnostics[*i].clone());
            placed[*i] = true;
        }
    }
    let emails = steps
        .iter()
        .map(|e| {
            let mut mine = Vec::new();
            for (i, owner) in &owners {
                if owner.as_deref() == Some(e.step.id.as_str()) {
                    mine.push(diagnostics[*i].clone());
                    placed[*i] = true;
                }
            }
            for (i, d) in diagnostics.iter().enumerate() {
                if uses(project, e, d) && !mine.contains(d) {
                    mine.push(d.clone());
                    placed[i] = true;
                }
            }
            EmailView {
                step: e.step.id.clone(),
                template: e.email.template.clone(),
                path: e.path.clone(),
                subject_source: e.email.subject.source.clone(),
                result: render::render(engine, &w.id, &e.step.id, &sample, now),
                warnings: mine,
                href: email_path(&w.id, &e.step.id, "html"),
            }
        })
        .collect();
    WorkflowView {
        workflow: w,
        sample,
        emails,
        warnings,
    }
}

/// The warnings in `w`'s file, each with the step it is in when that is an email step (else
/// `None`: the workflow's).
fn warning_owners(w: &Workflow, diagnostics: &[Diagnostic]) -> Vec<(usize, Option<String>)> {
    let all = w.all_steps();
    diagnostics
        .iter()
        .enumerate()
        .filter(|(_, d)| d.severity == Severity::Warning && d.path == w.path)
        .map(|(i, d)| {
            let step = all
                .iter()
                .filter(|s| s.pos <= d.pos)
                .max_by_key(|s| s.pos)
                .filter(|s| matches!(s.kind, nudge_core::workflow::model::StepKind::SendEmail(_)))
                .map(|s| s.id.clone());
            (i, step)
        })
        .collect()
}

/// Whether warning `d` is in the template of email step `e` (or one it includes).
fn uses(project: &Project, e: &steps::EmailStep<'_>, d: &Diagnostic) -> bool {
    if d.severity != Severity::Warning {
        return false;
    }
    let mut pending = vec![e.email.template.as_str()];
    let mut seen = Vec::new();
    while let Some(name) = pending.pop() {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        if let Some(file) = project.templates.file(name) {
            if file.path == d.path {
                return true;
            }
            pending.extend(file.renders.iter().map(String::as_str));
        }
    }
    false
}

/// `emails/<workflow>/<step>.<ext>`, the ids escaped to file-name-safe text.
fn email_path(workflow: &str, step: &str, ext: &str) -> String {
    format!("emails/{}/{}.{ext}", escape_key(workflow), escape_key(step))
}

fn push_email_files(
    site: &mut Site,
    project: &Project,
    view: &WorkflowView<'_>,
    email: &EmailView,
    options: &Options,
) {
    let w = &view.workflow.id;
    site.files.push(SiteFile {
        path: email.href.clone(),
        contents: page::email(project, view, email, options).into_bytes(),
    });
    if let Ok(r) = &email.result {
        site.files.push(SiteFile {
            path: email_path(w, &email.step, "body.html"),
            contents: r.html.clone().into_bytes(),
        });
        site.files.push(SiteFile {
            path: email_path(w, &email.step, "eml"),
            contents: r.eml.clone(),
        });
    }
}
