//! Email templates and expressions: the one minijinja environment every part of Nudge uses,
//! MJML compiled once at load, and the static checks `nudge validate` runs on them.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::diagnostic::{Sink, code_list, suggestion};
use crate::workflow::files;
use crate::workflow::yaml::Pos;

mod calls;
pub mod limits;
mod mjml;
pub mod reads;
pub mod refs;
pub mod scan;

pub use mjml::{CompiledMjml, MjmlError, compile_mjml};

/// Top-level names templates and expressions may use.
pub const SCOPE: &[&str] = &["customer", "event", "waited", "store", "run", "links"];

/// The environment all templates, subjects and conditions are compiled in.
///
/// - Only email bodies are HTML: a template file (`.html`, `.mjml`) is HTML-escaped, so that
///   customer data can never inject markup (a `.mjml` template is HTML by the time it renders).
///   Subjects, preheaders, `update_profile` values and the strings of webhook bodies are plain
///   text and are not escaped: a subject for Seán O'Brien & Co reads exactly so. (A webhook
///   body stays valid JSON because each rendered string is put into the body as a JSON string
///   by the engine, never spliced into JSON text.) [`auto_escape`] decides by template name.
/// - Undefined values are `Chainable`: `customer.address.city` on a profile without an address
///   renders as nothing (the contract's "an undefined value renders as empty"); conditions
///   treat an error as false in the engine, never as a crash.
/// - Every render (and every condition) has [`RENDER_FUEL`]: a template that loops too long
///   stops with an error instead of running for minutes; [`render`] also caps the output at
///   [`MAX_RENDERED_BYTES`].
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(auto_escape);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_recursion_limit(64);
    env.set_fuel(Some(RENDER_FUEL));
    env
}

/// The work one render or condition may do, in minijinja's fuel: about one unit per
/// instruction and one per 64 bytes of data made. A million is far above any real email
/// (a few thousand) and stops `{% for i in range(100000) %}{% for j in range(100000) %}` in a
/// fraction of a second.
pub const RENDER_FUEL: u64 = 1_000_000;

/// The largest text one render may produce, in bytes: an email body over 1 MiB is never what
/// a marketer meant (mail clients clip messages far smaller), and a subject or webhook string
/// is smaller still.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

/// The detail of the error [`render`] gives for output over [`MAX_RENDERED_BYTES`].
const OVER_SIZE: &str = "rendered output is over the size limit";

/// Renders `template` in `ctx`, failing once the output passes [`MAX_RENDERED_BYTES`] (or the
/// render runs out of [`RENDER_FUEL`]). Every render of a send goes through here.
pub fn render(
    template: &minijinja::Template<'_, '_>,
    ctx: &minijinja::Value,
) -> Result<String, minijinja::Error> {
    let mut out = Capped::default();
    let rendered = template.render_captured_to(ctx, &mut out);
    if out.over {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            OVER_SIZE,
        ));
    }
    rendered?;
    String::from_utf8(out.buf).map_err(|_| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "output is not UTF-8",
        )
    })
}

/// A render failure as the operator's log says it: which limit was hit, or the kind of error
/// and its line. Never the error's detail otherwise, which may quote a customer's data.
pub fn render_failure(err: &minijinja::Error) -> String {
    let at = match (err.name(), err.line()) {
        (Some(name), Some(line)) => format!(" at {name}:{line}"),
        _ => String::new(),
    };
    match err.kind() {
        minijinja::ErrorKind::OutOfFuel => format!(
            "ran out of render fuel{at}: over the limit of {RENDER_FUEL} steps (a loop too large?)"
        ),
        _ if err.detail() == Some(OVER_SIZE) => {
            format!("rendered output is over the limit of {MAX_RENDERED_BYTES} bytes")
        }
        kind => format!("{kind}{at}"),
    }
}

/// A writer that refuses to grow past [`MAX_RENDERED_BYTES`], and says that it did.
#[derive(Default)]
struct Capped {
    buf: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + bytes.len() > MAX_RENDERED_BYTES {
            self.over = true;
            return Err(std::io::Error::other(OVER_SIZE));
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// HTML escaping for email bodies (template files, named by their path under `templates/`),
/// none for the template strings written in workflows (compiled without a file name).
pub fn auto_escape(name: &str) -> AutoEscape {
    if name.ends_with(".html") || name.ends_with(".mjml") {
        AutoEscape::Html
    } else {
        AutoEscape::None
    }
}

/// Which language a template file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// MJML, compiled to HTML when workflows load.
    Mjml,
    /// HTML as it is.
    Html,
}

/// What validation learned about one template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    /// The file, as the user named it.
    pub path: PathBuf,
    /// MJML or HTML.
    pub kind: TemplateKind,
    /// Top-level names it reads (`customer`, `event`, ...).
    pub names: BTreeSet<String>,
    /// Whether it renders `links.unsubscribe`.
    pub has_unsubscribe_link: bool,
    /// Whether it renders `store.postal_address`.
    pub has_postal_address: bool,
    /// The `customer.*` and `event.*` paths it reads, each with where it is first read.
    pub reads: Vec<reads::PathRead>,
    /// The templates it includes or extends (by literal name): they render with its `event`.
    pub renders: Vec<String>,
}

/// Every template of a project, compiled and ready to render.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    files: BTreeMap<String, TemplateFile>,
    /// Template files checked, those with errors included.
    checked: usize,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            env: environment(),
            files: BTreeMap::new(),
            checked: 0,
        }
    }
}

impl Templates {
    /// The environment holding every compiled template under its name (`win-back/vip.mjml`).
    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }

    /// The template file `name` rendered in `ctx`, within the render limits (see [`render`]).
    pub fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, minijinja::Error> {
        render(&self.env.get_template(name)?, ctx)
    }

    /// What is known about a template, by name.
    pub fn file(&self, name: &str) -> Option<&TemplateFile> {
        self.files.get(name)
    }

    /// How many template files were checked (those with errors included).
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// Template names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Loads every `.mjml` and `.html` file under `dir` (the `templates/` folder), checking each
    /// and reporting problems under `display` joined with the file's relative path. Files are
    /// read as [`files::read_text`] allows (regular files inside `root`, the workflows folder).
    /// With `only`, just the templates of those names and those they include. A template that
    /// includes, imports or extends one that is not there is an error at the name.
    pub fn load_dir(
        dir: &Path,
        display: &Path,
        root: Option<&Path>,
        only: Option<BTreeSet<String>>,
        diags: &mut Vec<crate::diagnostic::Diagnostic>,
    ) -> std::io::Result<Self> {
        let mut templates = Self::default();
        let mut files = Vec::new();
        collect_files(dir, Path::new(""), &mut files)?;
        let by_name: BTreeMap<String, PathBuf> = files
            .into_iter()
            .map(|rel| (template_name(&rel), rel))
            .collect();
        let mut todo: Vec<String> = match only {
            Some(only) => only
                .into_iter()
                .filter(|n| by_name.contains_key(n))
                .collect(),
            None => by_name.keys().cloned().collect(),
        };
        let mut done = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !done.insert(name.clone()) {
                continue;
            }
            templates.checked += 1;
            let rel = &by_name[&name];
            let shown = display.join(rel);
            let mut sink = Sink::new(&shown, diags);
            let text = match files::read_text(&dir.join(rel), root) {
                Ok(text) => text,
                Err(e) => {
                    sink.error(e.pos(), e.to_string());
                    continue;
                }
            };
            templates.add(&name, &text, &mut sink);
            for r in refs::template_refs(&text) {
                if by_name.contains_key(&r.name) {
                    if let Some(file) = templates.files.get_mut(&name).filter(|_| r.same_context) {
                        file.renders.push(r.name.clone());
                    }
                    todo.push(r.name);
                } else {
                    sink.error(
                        offset_to_pos(&text, r.offset),
                        format!(
                            "template `{}` not found in templates/ (names are relative to templates/){}",
                            r.name,
                            suggestion(&r.name, by_name.keys().map(String::as_str))
                        ),
                    );
                }
            }
        }
        Ok(templates)
    }

    /// Checks and compiles one template. Problems go to `sink` (the template file's own path).
    pub fn add(&mut self, name: &str, source: &str, sink: &mut Sink) {
        let kind = if name.ends_with(".mjml") {
            TemplateKind::Mjml
        } else {
            TemplateKind::Html
        };
        // Bounds first: minijinja parses by recursion, and text past them would overflow the
        // stack instead of reporting. (`compile_mjml` bounds MJML's nesting for mrml.)
        if let Err(e) = limits::check_template(source) {
            sink.error(offset_to_pos(source, e.offset), e.message);
            return;
        }
        // Syntax and names are checked on the file as written, so that lines are the author's.
        let tmpl = match self.env.template_from_str(source) {
            Ok(t) => t,
            Err(e) => {
                sink.error(error_pos(&e, source), template_error_message(&e));
                return;
            }
        };
        let names = top_level_names(&self.env, &tmpl.undeclared_variables(false));
        let nested = tmpl.undeclared_variables(true);
        self.check_calls(source, &names, sink);
        let paths = scan::template_paths(source);
        let reads = reads::path_reads(
            &nested,
            |path| paths.get(path).map(|&o| offset_to_pos(source, o)),
            Pos::new(1, 1),
        );
        let html = match kind {
            TemplateKind::Html => source.to_owned(),
            TemplateKind::Mjml => match compile_mjml(source) {
                Ok(compiled) => {
                    for (pos, message) in compiled.warnings {
                        sink.warn(pos, message);
                    }
                    compiled.html
                }
                Err(e) => {
                    sink.error(e.pos, e.message);
                    return;
                }
            },
        };
        if let Err(e) = self.env.add_template_owned(name.to_owned(), html) {
            // The source compiled, so MJML must have moved a tag where minijinja cannot read it
            // (control flow between MJML elements, which MJML drops or reorders).
            sink.error(
                Pos::new(1, 1),
                format!(
                    "after MJML compilation the template no longer reads: {}; keep {{% %}} tags inside <mj-text> or <mj-raw>",
                    template_error_message(&e)
                ),
            );
            return;
        }
        self.files.insert(
            name.to_owned(),
            TemplateFile {
                path: sink.path().to_path_buf(),
                kind,
                names,
                has_unsubscribe_link: nested.contains("links.unsubscribe"),
                has_postal_address: nested.contains("store.postal_address"),
                reads,
                renders: Vec::new(),
            },
        );
    }
}

impl Templates {
    /// Reports the names of a template file that are neither in scope nor the environment's
    /// (an unknown function where the name is called), and its unknown filters and tests.
    fn check_calls(&self, source: &str, names: &BTreeSet<String>, sink: &mut Sink) {
        let calls = scan::template_calls(source);
        // Where each name is first called and first read, each found in one pass: searching
        // the whole text again for every undefined name made a file of thousands of them
        // (`{{ a1 }}{{ a2 }}...`) quadratic, seconds for 60 KB.
        let first_call = first_calls(&calls);
        let first_read = scan::template_paths(source);
        for name in names.iter().filter(|n| !SCOPE.contains(&n.as_str())) {
            match first_call.get(name.as_str()) {
                Some(&offset) => sink.error(
                    offset_to_pos(source, offset),
                    calls::unknown_message(&self.env, scan::CallKind::Function, name),
                ),
                None => sink.error(
                    first_read
                        .get(name.as_str())
                        .map_or(Pos::new(1, 1), |&offset| offset_to_pos(source, offset)),
                    undefined_name_message(name),
                ),
            }
        }
        let suggestions = Cell::new(calls::MAX_SUGGESTED);
        for (offset, message) in calls::unknown_filters_and_tests(&self.env, &calls, &suggestions) {
            sink.error(offset_to_pos(source, offset), message);
        }
    }
}

/// A template's name: its path under `templates/` with `/` between folders.
fn template_name(rel: &Path) -> String {
    rel.iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn collect_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        let child = rel.join(&name);
        let ty = entry.file_type()?;
        if ty.is_dir() {
            collect_files(root, &child, out)?;
        } else if matches!(
            Path::new(&name).extension().and_then(|e| e.to_str()),
            Some("mjml" | "html")
        ) {
            out.push(child);
        }
    }
    Ok(())
}

/// The 1-based line and column (in characters) of a byte offset.
pub fn offset_to_pos(source: &str, offset: usize) -> Pos {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    Pos::new(line as u32, col as u32)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where in `source` minijinja says the error is.
pub fn error_pos(err: &minijinja::Error, source: &str) -> Pos {
    match (err.range(), err.line()) {
        (Some(range), _) => offset_to_pos(source, range.start),
        (None, Some(line)) => Pos::new(line as u32, 1),
        (None, None) => Pos::new(1, 1),
    }
}

/// minijinja's message without its " (in `<string>:3`)" suffix: we print our own position.
pub fn template_error_message(err: &minijinja::Error) -> String {
    let detail = err
        .detail()
        .map(str::to_owned)
        .unwrap_or_else(|| err.kind().to_string());
    format!("template syntax error: {detail}")
}

/// Names a template or expression reads at the top level, from minijinja's undeclared set,
/// without the environment's own (`range`, `loop`, ...).
fn top_level_names(
    env: &Environment<'static>,
    undeclared: &std::collections::HashSet<String>,
) -> BTreeSet<String> {
    undeclared
        .iter()
        .map(|n| n.split('.').next().unwrap_or(n).to_owned())
        .filter(|n| !calls::is_builtin_name(env, n))
        .collect()
}

/// The offset of each name's first call as a function (`name(...)`).
fn first_calls(calls: &[scan::Call]) -> HashMap<&str, usize> {
    let mut first = HashMap::new();
    for call in calls.iter().filter(|c| c.kind == scan::CallKind::Function) {
        first.entry(call.name.as_str()).or_insert(call.offset);
    }
    first
}

/// The message for a name that is not in scope.
pub fn undefined_name_message(name: &str) -> String {
    format!(
        "undefined variable `{name}`{} (in scope: {})",
        suggestion(name, SCOPE.iter().copied()),
        code_list(SCOPE)
    )
}

/// Byte offset of `name` used as an identifier (not an attribute, not part of a longer word,
/// not inside a string literal). Walks characters, never bytes, so that text in any script
/// around the name is safe; a backslash inside a string literal escapes the next character,
/// as in minijinja's own lexer.
pub fn find_identifier(text: &str, name: &str) -> Option<usize> {
    if name.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    code_chars(text).find_map(|(i, _, prev)| {
        if !text[i..].starts_with(name) {
            return None;
        }
        let before_ok = prev.is_none_or(|p| !(is_word(p) || p == '.'));
        let after_ok = text[i + name.len()..]
            .chars()
            .next()
            .is_none_or(|a| !is_word(a));
        (before_ok && after_ok).then_some(i)
    })
}

/// The characters of `text` outside string literals (`'…'` and `"…"`, in which a backslash
/// escapes the next character, as minijinja's lexer reads them; the quotes themselves are
/// left out too), each with its byte offset and the character before it in `text`.
pub(crate) fn code_chars(text: &str) -> impl Iterator<Item = (usize, char, Option<char>)> + '_ {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut prev = None;
    text.char_indices().filter_map(move |(i, c)| {
        let before = prev.replace(c);
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            None
        } else if c == '"' || c == '\'' {
            quote = Some(c);
            None
        } else {
            Some((i, c, before))
        }
    })
}

/// Static checks of one expression or template string written inside a YAML scalar.
pub struct ScalarChecker<'a> {
    env: &'a Environment<'static>,
    /// The YAML file's lines, to turn an offset inside a scalar into a file position.
    lines: Vec<&'a str>,
    /// How many more unknown filter or test names of this file get a did-you-mean: a bound
    /// for the file, not for each scalar (a file can hold thousands of scalars).
    suggestions: Cell<usize>,
}

/// Whether a scalar is a condition or a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    /// `when`, `if`, `key`.
    Expression,
    /// `subject`, `preheader`, profile values, webhook bodies.
    Template,
}

impl<'a> ScalarChecker<'a> {
    /// A checker for scalars of the YAML file `text`.
    pub fn new(env: &'a Environment<'static>, text: &'a str) -> Self {
        Self {
            env,
            // Lines as YAML numbers them, as the positions given to `check` are.
            lines: crate::workflow::yaml::yaml_lines(text).collect(),
            suggestions: Cell::new(calls::MAX_SUGGESTED),
        }
    }

    /// Checks syntax and names; returns the top-level names the scalar reads.
    pub fn check(
        &self,
        sink: &mut Sink,
        source: &str,
        pos: Pos,
        kind: ScalarKind,
        scope: &[&str],
    ) -> BTreeSet<String> {
        let bounded = match kind {
            ScalarKind::Expression => limits::check_expression(source),
            ScalarKind::Template => limits::check_template(source),
        };
        if let Err(e) = bounded {
            sink.error(self.pos_in_scalar(pos, source, e.offset), e.message);
            return BTreeSet::new();
        }
        let undeclared = match kind {
            ScalarKind::Expression => self
                .env
                .compile_expression(source)
                .map(|e| e.undeclared_variables(false)),
            ScalarKind::Template => self
                .env
                .template_from_str(source)
                .map(|t| t.undeclared_variables(false)),
        };
        let undeclared = match undeclared {
            Ok(u) => u,
            Err(e) => {
                let at = e
                    .range()
                    .map_or(pos, |r| self.pos_in_scalar(pos, source, r.start));
                let detail = e
                    .detail()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.kind().to_string());
                let what = if kind == ScalarKind::Expression {
                    "expression"
                } else {
                    "template"
                };
                sink.error(at, format!("{what} syntax error: {detail}"));
                return BTreeSet::new();
            }
        };
        let names = top_level_names(self.env, &undeclared);
        let calls = match kind {
            ScalarKind::Expression => scan::expression_calls(source),
            ScalarKind::Template => scan::template_calls(source),
        };
        let positions = self.positions(pos, source);
        for (offset, message) in
            calls::unknown_filters_and_tests(self.env, &calls, &self.suggestions)
        {
            sink.error(positions.at(offset), message);
        }
        let first_read = match kind {
            ScalarKind::Expression => scan::expression_paths(source),
            ScalarKind::Template => scan::template_paths(source),
        };
        let undefined = names.iter().filter(|n| !scope.contains(&n.as_str()));
        self.report_undefined(
            sink,
            undefined,
            &first_calls(&calls),
            &first_read,
            &positions,
        );
        names
    }

    /// Reports names read but not in scope: an unknown function where the name is called
    /// (`first_call`), else an undefined variable where it is first read (`first_read`).
    fn report_undefined<'n>(
        &self,
        sink: &mut Sink,
        names: impl Iterator<Item = &'n String>,
        first_call: &HashMap<&str, usize>,
        first_read: &HashMap<String, usize>,
        positions: &ScalarPositions,
    ) {
        for name in names {
            if let Some(&offset) = first_call.get(name.as_str()) {
                let message = calls::unknown_message(self.env, scan::CallKind::Function, name);
                sink.error(positions.at(offset), message);
                continue;
            }
            let at = first_read
                .get(name.as_str())
                .map_or(positions.pos, |&o| positions.at(o));
            if name == "event" {
                sink.error(
                    at,
                    "`event` is not available here: a date-triggered workflow has no trigger event",
                );
            } else {
                sink.error(at, undefined_name_message(name));
            }
        }
    }

    /// The file position of byte `offset` inside a scalar that starts at `pos`, when the
    /// scalar is on one line and written as it reads (plain or quoted without escapes);
    /// otherwise the scalar's own position.
    fn pos_in_scalar(&self, pos: Pos, value: &str, offset: usize) -> Pos {
        self.exact_pos_in_scalar(pos, value, offset).unwrap_or(pos)
    }

    /// The file position of byte `offset` inside a scalar that starts at `pos`, when the
    /// scalar is written as it reads (see `pos_in_scalar`).
    pub fn exact_pos_in_scalar(&self, pos: Pos, value: &str, offset: usize) -> Option<Pos> {
        self.positions(pos, value).exact(offset)
    }

    /// The positions inside a scalar that starts at `pos` and reads `value`: worked out once,
    /// so that placing thousands of problems in one long scalar stays linear.
    pub fn positions<'v>(&self, pos: Pos, value: &'v str) -> ScalarPositions<'v> {
        let start = self
            .lines
            .get(pos.line.saturating_sub(1) as usize)
            .and_then(|line| {
                let skip = pos.col.saturating_sub(1) as usize;
                let rest = line
                    .char_indices()
                    .nth(skip)
                    .map_or("", |(i, _)| &line[i..]);
                let quote = usize::from(rest.starts_with(['"', '\'']));
                let body = &rest[quote..];
                (!value.contains('\n') && body.starts_with(value)).then(|| pos.shifted(quote))
            });
        ScalarPositions {
            pos,
            value,
            start,
            columns: std::cell::OnceCell::new(),
        }
    }
}

/// Positions inside one scalar (see [`ScalarChecker::positions`]).
pub struct ScalarPositions<'v> {
    /// The scalar's own position.
    pos: Pos,
    value: &'v str,
    /// Where the value's first character is, when the scalar is written as it reads.
    start: Option<Pos>,
    /// The character count before each byte offset of `value`, built at the first use.
    columns: std::cell::OnceCell<Vec<u32>>,
}

impl ScalarPositions<'_> {
    /// The file position of byte `offset` of the value, when the scalar is written as it reads.
    /// An offset inside a character counts as that character.
    pub fn exact(&self, offset: usize) -> Option<Pos> {
        let start = self.start?;
        let columns = self.columns.get_or_init(|| {
            let mut columns = vec![0u32; self.value.len() + 1];
            let mut count = 0u32;
            for (i, c) in self.value.char_indices() {
                columns[i..i + c.len_utf8()].fill(count);
                count += 1;
            }
            columns[self.value.len()] = count;
            columns
        });
        let offset = offset.min(self.value.len());
        Some(start.shifted(columns[offset] as usize))
    }

    /// [`Self::exact`], else the scalar's own position.
    pub fn at(&self, offset: usize) -> Pos {
        self.exact(offset).unwrap_or(self.pos)
    }
}

#[cfg(test)]
mod tests;
