//! Bounds checked before a template or expression is handed to minijinja or mrml. Both parse
//! by recursion, so text nested deeply enough (thousands of `<mj-wrapper>`, `{{ 1 + 1 + ... }}`
//! with a hundred thousand terms) would overflow the stack and abort the process; a cheap scan
//! finds such text first and reports it at its line and column instead.

/// How deeply MJML elements (and the HTML inside `<mj-text>`) may nest. mrml parses and
/// renders element trees by recursion, about 20 KiB of stack a level unoptimised; 50 levels fit
/// in half of a 2 MiB thread stack, and real emails nest a dozen or two.
pub const MAX_MJML_DEPTH: usize = 50;

/// How many operators (`+`, `~`, `|`, `.`, `==`, `and`, brackets, ...) one `{{ }}` or `{% %}`
/// tag, or one condition, may hold. minijinja builds and compiles an expression's tree by
/// recursion, one level per operator in a chain such as `a | f | f | ...`; this bound keeps
/// that depth far from the stack's end on every thread Nudge renders on.
pub const MAX_EXPRESSION_OPERATORS: usize = 300;

/// How deeply brackets (`(`, `[`, `{`) may nest in one tag or condition. minijinja allows
/// about 75 levels, each costing more than 14 KiB of stack unoptimised; real expressions nest
/// a few.
pub const MAX_BRACKET_DEPTH: usize = 30;

/// How deeply `{% if %}`, `{% for %}` and the other blocks may nest in one template.
/// minijinja allows about 150 levels and compiles them by recursion, which needs more than
/// 1 MiB of stack unoptimised; real templates nest a handful.
pub const MAX_BLOCK_DEPTH: usize = 50;

/// Where and why text is over a bound: a byte offset into it and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    /// Byte offset in the text where the bound is crossed.
    pub offset: usize,
    /// What is too large, and the bound.
    pub message: String,
}

/// Checks every tag of a template (`{{ }}`, `{% %}`; comments are skipped) against
/// [`MAX_EXPRESSION_OPERATORS`] and [`MAX_BRACKET_DEPTH`], and the nesting of its blocks
/// against [`MAX_BLOCK_DEPTH`].
pub fn check_template(source: &str) -> Result<(), OverLimit> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(found) = source[at..].find('{') {
        let open = at + found;
        let rest = &source[open..];
        let close = if rest.starts_with("{{") {
            "}}"
        } else if rest.starts_with("{%") {
            "%}"
        } else if rest.starts_with("{#") {
            at = rest.find("#}").map_or(source.len(), |i| open + i + 2);
            continue;
        } else {
            at = open + 1;
            continue;
        };
        let end = check_tokens(source, open + 2, Some(close))?;
        if close == "%}" {
            depth = block_depth(&source[open + 2..end], depth);
            if depth > MAX_BLOCK_DEPTH {
                return Err(OverLimit {
                    offset: open,
                    message: format!(
                        "blocks nest too deeply: more than {MAX_BLOCK_DEPTH} levels of {{% if %}}, {{% for %}} and the like"
                    ),
                });
            }
        }
        at = (end + close.len()).min(source.len());
    }
    Ok(())
}

/// Checks a condition (the whole text is one expression) against
/// [`MAX_EXPRESSION_OPERATORS`] and [`MAX_BRACKET_DEPTH`].
pub fn check_expression(source: &str) -> Result<(), OverLimit> {
    check_tokens(source, 0, None).map(|_| ())
}

/// Counts the operators and bracket levels from `start` up to `close` (outside string
/// literals) or the end; returns where the tag's inside ends (at `close`, or the end of the
/// text). Characters are walked, never bytes, so any script is safe.
fn check_tokens(source: &str, start: usize, close: Option<&str>) -> Result<usize, OverLimit> {
    let mut operators = 0usize;
    let mut brackets = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut word = String::new();
    let chars = source[start..].char_indices().map(|(i, c)| (start + i, c));
    for (i, c) in chars {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        if close.is_some_and(|close| source[i..].starts_with(close)) {
            return Ok(i);
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        operators += usize::from(is_word_operator(&std::mem::take(&mut word)));
        operators += usize::from(is_operator(c));
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => brackets += 1,
            ')' | ']' | '}' => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        if brackets > MAX_BRACKET_DEPTH {
            return Err(OverLimit {
                offset: i,
                message: format!(
                    "brackets nest too deeply: more than {MAX_BRACKET_DEPTH} levels in one tag or condition"
                ),
            });
        }
        if operators > MAX_EXPRESSION_OPERATORS {
            return Err(OverLimit {
                offset: i,
                message: format!(
                    "expression too long: more than {MAX_EXPRESSION_OPERATORS} operators in one tag or condition; split it with {{% set %}}"
                ),
            });
        }
    }
    Ok(source.len())
}

/// The block depth after a `{% %}` tag whose inside is `tag`, from `depth` before it.
fn block_depth(tag: &str, depth: usize) -> usize {
    let body = tag.trim_start_matches(['-', '+', '~']).trim_start();
    let word = &body[..body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len())];
    match word {
        "if" | "for" | "macro" | "call" | "filter" | "with" | "block" | "autoescape" | "raw" => {
            depth + 1
        }
        // `{% set x %}...{% endset %}` is a block; `{% set x = 1 %}` is not.
        "set" if !body.contains('=') => depth + 1,
        w if w.starts_with("end") => depth.saturating_sub(1),
        _ => depth,
    }
}

/// `and`, `or`, `not`, `is`, `in`, and `if`/`else` of `a if b else c`.
fn is_word_operator(word: &str) -> bool {
    matches!(word, "and" | "or" | "not" | "is" | "in" | "if" | "else")
}

/// Characters that build an expression's tree one level deeper; separators and closing
/// brackets do not.
fn is_operator(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, ',' | ':' | ')' | ']' | '}' | '"' | '\''))
}

/// Elements that never have content in HTML, so never open a level.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Checks how deeply the elements of an MJML document nest, against [`MAX_MJML_DEPTH`].
/// Comments and self-closed or void elements open no level; a closing tag closes up to its
/// opening one, as a parser would.
pub fn check_mjml_depth(source: &str) -> Result<(), OverLimit> {
    let mut open: Vec<&str> = Vec::new();
    let mut at = 0;
    while let Some(found) = source[at..].find('<') {
        let lt = at + found;
        let rest = &source[lt + 1..];
        if rest.starts_with("!--") {
            at = rest.find("-->").map_or(source.len(), |i| lt + 1 + i + 3);
            continue;
        }
        let tag_end = rest.find('>').map_or(source.len(), |i| lt + 1 + i);
        at = tag_end.max(lt + 1);
        if let Some(closing) = rest.strip_prefix('/') {
            let name = element_name(closing);
            if let Some(level) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                open.truncate(level);
            }
            continue;
        }
        let name = element_name(rest);
        let self_closed = source[lt..tag_end].ends_with('/');
        if name.is_empty() || self_closed || VOID_ELEMENTS.contains(&name) {
            continue;
        }
        open.push(name);
        if open.len() > MAX_MJML_DEPTH {
            return Err(OverLimit {
                offset: lt,
                message: format!(
                    "elements nest too deeply: more than {MAX_MJML_DEPTH} levels of MJML and HTML tags"
                ),
            });
        }
    }
    Ok(())
}

/// The element name at the start of `text` (`mj-text`, `div`), empty when none.
fn element_name(text: &str) -> &str {
    let len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':'))
        .unwrap_or(text.len());
    if text.starts_with(|c: char| c.is_ascii_alphabetic()) {
        &text[..len]
    } else {
        ""
    }
}
