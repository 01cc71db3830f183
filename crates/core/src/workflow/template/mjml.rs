//! MJML compiled to HTML once, when workflows load, with errors placed at their line.

use crate::diagnostic::suggestion;
use crate::workflow::yaml::Pos;

use super::offset_to_pos;

/// MJML's elements; mrml silently drops elements it does not know, so we name them.
const MJML_ELEMENTS: &[&str] = &[
    "mjml",
    "mj-head",
    "mj-body",
    "mj-attributes",
    "mj-breakpoint",
    "mj-font",
    "mj-html-attributes",
    "mj-html-attribute",
    "mj-selector",
    "mj-preview",
    "mj-style",
    "mj-title",
    "mj-accordion",
    "mj-accordion-element",
    "mj-accordion-title",
    "mj-accordion-text",
    "mj-button",
    "mj-carousel",
    "mj-carousel-image",
    "mj-column",
    "mj-divider",
    "mj-group",
    "mj-hero",
    "mj-image",
    "mj-navbar",
    "mj-navbar-link",
    "mj-raw",
    "mj-section",
    "mj-social",
    "mj-social-element",
    "mj-spacer",
    "mj-table",
    "mj-text",
    "mj-wrapper",
    "mj-include",
    "mj-all",
    "mj-class",
];

/// MJML compiled to HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledMjml {
    /// The HTML, template tags intact.
    pub html: String,
    /// MJML's warnings (unknown attributes and the like), with positions.
    pub warnings: Vec<(Pos, String)>,
}

/// Why MJML did not compile, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MjmlError {
    /// Position in the MJML source.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

/// Compiles MJML to HTML, or names the first error and its position.
pub fn compile_mjml(source: &str) -> Result<CompiledMjml, MjmlError> {
    use mrml::prelude::parser::Error as E;
    let mut body = source.trim_start();
    while let Some(rest) = body.strip_prefix("<!--") {
        body = rest
            .split_once("-->")
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    if !body.starts_with("<mjml") {
        let first = source.len() - body.len();
        return Err(MjmlError {
            pos: offset_to_pos(source, first),
            message: "not an MJML document: it must start with <mjml>".to_owned(),
        });
    }
    for (offset, name) in element_names(source) {
        if name.starts_with("mj") && !MJML_ELEMENTS.contains(&name) {
            let hint = suggestion(name, MJML_ELEMENTS.iter().copied());
            return Err(MjmlError {
                pos: offset_to_pos(source, offset),
                message: format!("unknown MJML element `<{name}>`{hint}"),
            });
        }
    }
    // mrml parses by recursion: a document nested past the bound would overflow the stack.
    super::limits::check_mjml_depth(source).map_err(|e| MjmlError {
        pos: offset_to_pos(source, e.offset),
        message: e.message,
    })?;
    check_conditional_comments(source)?;
    check_text_angle_brackets(source)?;
    let parsed = parse_without_panic(source)?.map_err(|e| {
        let pos = match &e {
            E::UnexpectedElement { position, .. }
            | E::UnexpectedToken { position, .. }
            | E::MissingAttribute { position, .. }
            | E::InvalidAttribute { position, .. }
            | E::InvalidFormat { position, .. }
            | E::IncludeLoaderError { position, .. } => offset_to_pos(source, position.start),
            E::ParserError { source: inner, .. } => {
                let p = inner.pos();
                Pos::new(p.row, p.col)
            }
            E::EndOfStream { .. } | E::SizeLimit { .. } => offset_to_pos(source, source.len()),
            _ => Pos::new(1, 1),
        };
        let message = match &e {
            E::NoRootNode => "not an MJML document: it needs an <mjml> root element".to_owned(),
            E::UnexpectedToken { .. } => "invalid MJML: unexpected text or tag here; MJML allows text and template tags only inside content elements such as <mj-text> and <mj-button>".to_owned(),
            E::ParserError { source: inner, .. } => format!("invalid MJML: {}", html_parser_message(&inner.to_string())),
            other => format!("invalid MJML: {}", strip_position(&other.to_string())),
        };
        MjmlError { pos, message }
    })?;
    let warnings = parsed
        .warnings
        .iter()
        .map(|w| {
            (
                offset_to_pos(source, w.span.start),
                format!("MJML: {}", w.kind.as_str().replace('-', " ")),
            )
        })
        .collect();
    let html = parsed
        .element
        .render(&mrml::prelude::render::RenderOptions::default())
        .map_err(|e| MjmlError {
            pos: Pos::new(1, 1),
            message: format!("MJML could not be rendered: {e}"),
        })?;
    Ok(CompiledMjml { html, warnings })
}

/// Outlook's conditional comments (`<!--[if mso]>...<![endif]-->`, `<![if !mso]>...<![endif]>`)
/// as the HTML tokenizer under mrml (htmlparser 0.2) reads them: after one of these openings
/// it takes everything up to the next `]`, which must be followed by `>` or `-->`. It panics on
/// anything else (`<!--[if-->`, `<![endif]x`; found by fuzzing), so such a comment is an error
/// here first, wherever it stands.
fn check_conditional_comments(source: &str) -> Result<(), MjmlError> {
    // Each opening the tokenizer treats as a conditional comment, and how many bytes of it it
    // skips before reading up to `]`.
    const OPENINGS: [(&str, usize); 4] = [
        ("<!--[if", 5),
        ("<![if", 3),
        ("<![endif", 3),
        ("<!--<![endif", 7),
    ];
    for (start, _) in source.match_indices('<') {
        let here = &source[start..];
        let Some(skip) = OPENINGS
            .iter()
            .find_map(|(opening, skip)| here.starts_with(opening).then_some(*skip))
        else {
            continue;
        };
        let rest = &here[skip..];
        let well_formed = rest.find(']').is_some_and(|end| {
            let after = &rest[end + 1..];
            after.starts_with('>') || after.starts_with("-->")
        });
        if !well_formed {
            return Err(MjmlError {
                pos: offset_to_pos(source, start),
                message: "invalid MJML: a conditional comment must close its condition with \
                          `]>` or `]-->`, as in `<!--[if mso]>...<![endif]-->`"
                    .to_owned(),
            });
        }
    }
    Ok(())
}

/// The HTML tokenizer under mrml (htmlparser 0.2) looks two bytes back from the first `>` of a
/// text (for `]]>`) and panics when that cuts a character: `5€>` or `şa>` in a text (found
/// by fuzzing). Such a `>` is an error at it, with the way out (`&gt;`). Tags (`<...>`, quotes
/// respected) are skipped, so only text is checked, and only its first `>` as the tokenizer
/// does.
fn check_text_angle_brackets(source: &str) -> Result<(), MjmlError> {
    let mut in_tag = false;
    let mut quote = None;
    // Where the current text began, until its first `>` has been seen.
    let mut text_start = Some(0);
    for (i, b) in source.bytes().enumerate() {
        if in_tag {
            match (quote, b) {
                (Some(q), _) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'>') => {
                    in_tag = false;
                    text_start = Some(i + 1);
                }
                _ => {}
            }
        } else if b == b'<' {
            in_tag = true;
        } else if b == b'>'
            && let Some(start) = text_start.take()
            && i >= start + 2
            && !source.is_char_boundary(i - 2)
        {
            return Err(MjmlError {
                pos: offset_to_pos(source, i),
                message: "invalid MJML: the MJML parser cannot read a `>` right after a \
                          character such as `€` or `ş` in text; write `&gt;` instead"
                    .to_owned(),
            });
        }
    }
    Ok(())
}

/// `mrml::parse`, with a panic inside it (a bug of the parser, on some malformed document not
/// known yet) turned into an error at the document's start: validation reports it and goes
/// on, where the panic would have ended the command. (Under the fuzzer a panic aborts even
/// here, so the fuzzer still finds such documents.)
pub(super) fn parse_without_panic(
    source: &str,
) -> Result<
    Result<mrml::prelude::parser::ParseOutput<mrml::mjml::Mjml>, mrml::prelude::parser::Error>,
    MjmlError,
> {
    std::panic::catch_unwind(|| mrml::parse(source)).map_err(|_| MjmlError {
        pos: Pos::new(1, 1),
        message: "invalid MJML: the MJML parser failed on this document; check that its tags and \
                  comments are closed"
            .to_owned(),
    })
}

/// Opening element names with their byte offsets (`<mj-text ...>` gives `mj-text`).
fn element_names(source: &str) -> impl Iterator<Item = (usize, &str)> {
    source.match_indices('<').filter_map(move |(i, _)| {
        let rest = &source[i + 1..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        (len > 0).then(|| (i + 1, &rest[..len]))
    })
}

/// htmlparser says "invalid attribute at 4:10 cause expected quote mark not 'x' at 4:15";
/// we print our own position: "invalid attribute: expected quote mark not 'x'".
fn html_parser_message(msg: &str) -> String {
    let strip_at = |part: &str| -> String {
        match part.rsplit_once(" at ") {
            Some((head, tail)) if tail.chars().all(|c| c.is_ascii_digit() || c == ':') => {
                head.to_owned()
            }
            _ => part.to_owned(),
        }
    };
    msg.split(" cause ")
        .map(strip_at)
        .collect::<Vec<_>>()
        .join(": ")
}

/// mrml appends "at position 12..20" (bytes); we print a line and column instead.
fn strip_position(msg: &str) -> &str {
    msg.split(" at position ").next().unwrap_or(msg)
}
