//! The filters, tests and function calls a template or expression names, found by a scan of
//! its tags, with the byte offset of each name.
//!
//! minijinja's stable API gives no syntax tree, and an unknown filter or test only shows at
//! render time (`UnknownFilter` on every send). So `nudge validate` scans: inside `{{ }}` and
//! `{% %}` (not in `{# #}` comments, `{% raw %}` blocks or string literals) it finds `| name`,
//! `is [not] name`, `{% filter name %}` and `name(`. The scan may find more than minijinja
//! would (it does not parse), which is safe: a name found is only reported after the real
//! environment confirms it unknown (see `calls`). The same scan places the dotted paths a
//! template reads (see `reads`).

use std::collections::HashMap;

use super::code_chars;

/// What a name is used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `value | name`, `{% filter name %}`.
    Filter,
    /// `value is name`, `value is not name`.
    Test,
    /// `name(...)`: a function or macro call.
    Function,
}

/// One name used as a filter, test or function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Filter, test or function.
    pub kind: CallKind,
    /// The name as written, dotted parts joined by `.` (`foo.bar`).
    pub name: String,
    /// Byte offset of the name in the scanned source.
    pub offset: usize,
}

/// The names a template (a template file, a subject) uses as filters, tests and functions.
pub fn template_calls(source: &str) -> Vec<Call> {
    let mut out = Vec::new();
    for_each_tag(source, |body, base, filter_block| {
        scan_body(body, base, filter_block, &mut out);
    });
    out
}

/// Every dotted path read in the tags of a template (`customer.first_name`, and each of its
/// prefixes), with the byte offset of its first use: one pass, however many paths.
pub fn template_paths(source: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for_each_tag(source, |body, base, _| collect_paths(body, base, &mut out));
    out
}

/// Every dotted path an expression reads, with the byte offset of its first use.
pub fn expression_paths(source: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    collect_paths(source, 0, &mut out);
    out
}

/// Calls `f` with the body of every `{{ }}` and `{% %}` tag of `source` (not comments, not
/// what `{% raw %}` holds), its byte offset, and whether it is a `{% filter %}` tag.
fn for_each_tag(source: &str, mut f: impl FnMut(&str, usize, bool)) {
    let mut at = 0;
    while let Some(found) = source[at..].find('{') {
        let open = at + found;
        let rest = &source[open..];
        if rest.starts_with("{#") {
            at = source[open + 2..]
                .find("#}")
                .map_or(source.len(), |i| open + 2 + i + 2);
        } else if rest.starts_with("{{") || rest.starts_with("{%") {
            let statement = rest.starts_with("{%");
            let start = open + 2;
            let end = tag_end(source, start, if statement { "%}" } else { "}}" });
            let body = &source[start..end];
            let word = first_word(body);
            if statement && word == "raw" {
                at = after_endraw(source, end);
                continue;
            }
            f(body, start, statement && word == "filter");
            at = (end + 2).min(source.len());
        } else {
            at = open + 1;
        }
    }
}

/// Records the dotted paths of one tag body (at offset `base`): a name not after a `.`, and
/// each longer path it starts (`a`, `a.b`, `a.b.c`), at the offset of the name.
fn collect_paths(body: &str, base: usize, out: &mut HashMap<String, usize>) {
    let tokens = tokens(body);
    let mut i = 0;
    while i < tokens.len() {
        let after_dot = i > 0 && tokens[i - 1] == Token::Punct('.');
        let Some((_, offset, used)) = dotted_name(&tokens, i).filter(|_| !after_dot) else {
            i += 1;
            continue;
        };
        let mut path = String::new();
        for part in tokens[i..i + used].iter() {
            match part {
                // Only a path written as it reads (`a.b`, not `a . b`) can be pointed into.
                Token::Ident(name, _) => {
                    path.push_str(name);
                    if !body[offset..].starts_with(&path) {
                        break;
                    }
                    out.entry(path.clone()).or_insert(base + offset);
                }
                _ => path.push('.'),
            }
        }
        i += used;
    }
}

/// The names an expression (`when`, `if`, `key`) uses as filters, tests and functions.
pub fn expression_calls(source: &str) -> Vec<Call> {
    let mut out = Vec::new();
    scan_body(source, 0, false, &mut out);
    out
}

/// Where the tag whose body starts at `start` ends: the offset of `close` outside string
/// literals, or the end of the source.
fn tag_end(source: &str, start: usize, close: &str) -> usize {
    code_chars(&source[start..])
        .find(|(i, _, _)| source[start + i..].starts_with(close))
        .map_or(source.len(), |(i, _, _)| start + i)
}

/// The first word of a tag body, after whitespace control (`{%- raw %}`).
fn first_word(body: &str) -> &str {
    let body = body.trim_start_matches(['-', '+', '~']).trim_start();
    let len = body
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    &body[..len]
}

/// The offset just after the `{% endraw %}` that closes a raw block whose opening tag body
/// ends at `from`; the end of the source when there is none.
fn after_endraw(source: &str, from: usize) -> usize {
    let mut at = from;
    while let Some(found) = source[at..].find("{%") {
        let start = at + found + 2;
        let end = tag_end(source, start, "%}");
        if first_word(&source[start..end]) == "endraw" {
            return (end + 2).min(source.len());
        }
        at = start;
    }
    source.len()
}

/// A token of a tag body: an identifier (with its offset in the body) or one character of
/// punctuation. Strings and numbers are skipped: nothing in them is a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str, usize),
    Punct(char),
    Literal,
}

fn tokens(body: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '"' || c == '\'' {
            let mut escaped = false;
            for (_, s) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if s == '\\' {
                    escaped = true;
                } else if s == c {
                    break;
                }
            }
            out.push(Token::Literal);
        } else if c.is_alphabetic() || c == '_' || c.is_ascii_digit() {
            let mut end = i + c.len_utf8();
            while let Some(&(j, n)) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                end = j + n.len_utf8();
                chars.next();
            }
            if c.is_ascii_digit() {
                out.push(Token::Literal);
            } else {
                out.push(Token::Ident(&body[i..end], i));
            }
        } else {
            out.push(Token::Punct(c));
        }
    }
    out
}

/// A name made of identifiers joined by dots at `tokens[at..]`, with its offset and how many
/// tokens it took.
fn dotted_name(tokens: &[Token], at: usize) -> Option<(String, usize, usize)> {
    let Some(Token::Ident(first, offset)) = tokens.get(at) else {
        return None;
    };
    let mut name = (*first).to_owned();
    let mut used = 1;
    while let (Some(Token::Punct('.')), Some(Token::Ident(part, _))) =
        (tokens.get(at + used), tokens.get(at + used + 1))
    {
        name.push('.');
        name.push_str(part);
        used += 2;
    }
    Some((name, *offset, used))
}

/// Words that may stand before `(` without being called.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "elif",
    "for",
    "recursive",
    "macro",
    "call",
    "set",
    "with",
    "filter",
    "include",
    "import",
    "from",
    "extends",
    "block",
    "as",
];

/// Scans one tag body at offset `base`; `filter_block` when it is `{% filter ... %}`, whose
/// first name is a filter.
fn scan_body(body: &str, base: usize, filter_block: bool, out: &mut Vec<Call>) {
    let tokens = tokens(body);
    let push = |out: &mut Vec<Call>, kind, at: usize| -> usize {
        match dotted_name(&tokens, at) {
            Some((name, offset, used)) => {
                out.push(Call {
                    kind,
                    name,
                    offset: base + offset,
                });
                used
            }
            None => 0,
        }
    };
    let mut i = 0;
    if filter_block {
        // `filter` itself (after any whitespace control), then the first filter of the chain.
        let word = tokens
            .iter()
            .position(|t| matches!(t, Token::Ident(..)))
            .unwrap_or(0);
        i = word + 1 + push(out, CallKind::Filter, word + 1);
    }
    while i < tokens.len() {
        let after_dot = i > 0 && tokens[i - 1] == Token::Punct('.');
        // `{% macro name(args) %}` defines `name`: not a call.
        let defined = i > 0 && matches!(tokens[i - 1], Token::Ident("macro", _));
        match tokens[i] {
            Token::Punct('|') => i += 1 + push(out, CallKind::Filter, i + 1),
            Token::Ident("is", _) if !after_dot => {
                let at = if matches!(tokens.get(i + 1), Some(Token::Ident("not", _))) {
                    i + 2
                } else {
                    i + 1
                };
                i = at + push(out, CallKind::Test, at);
            }
            Token::Ident(name, offset)
                if !after_dot
                    && !defined
                    && !KEYWORDS.contains(&name)
                    && tokens.get(i + 1) == Some(&Token::Punct('(')) =>
            {
                out.push(Call {
                    kind: CallKind::Function,
                    name: name.to_owned(),
                    offset: base + offset,
                });
                i += 1;
            }
            _ => i += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(calls: Vec<Call>) -> Vec<(CallKind, String, usize)> {
        calls
            .into_iter()
            .map(|c| (c.kind, c.name, c.offset))
            .collect()
    }

    #[test]
    fn filters_tests_and_calls_are_found_at_their_names() {
        let src =
            "{{ total | money }} {% if x is not evn and y is defined %}{{ fmt(a) | e }}{% endif %}";
        let at = |needle: &str| src.find(needle).unwrap();
        assert_eq!(
            found(template_calls(src)),
            vec![
                (CallKind::Filter, "money".to_owned(), at("money")),
                (CallKind::Test, "evn".to_owned(), at("evn")),
                (CallKind::Test, "defined".to_owned(), at("defined")),
                (CallKind::Function, "fmt".to_owned(), at("fmt")),
                (CallKind::Filter, "e".to_owned(), at("e }}")),
            ]
        );
    }

    #[test]
    fn filter_blocks_chains_and_dotted_names() {
        let src = "{%- filter upper | trimm -%}x{% endfilter %}{{ a|b.c(1)|d }}";
        let at = |needle: &str| src.find(needle).unwrap();
        assert_eq!(
            found(template_calls(src)),
            vec![
                (CallKind::Filter, "upper".to_owned(), at("upper")),
                (CallKind::Filter, "trimm".to_owned(), at("trimm")),
                (CallKind::Filter, "b.c".to_owned(), at("b.c")),
                (CallKind::Filter, "d".to_owned(), at("d }}")),
            ]
        );
    }

    #[test]
    fn names_inside_strings_comments_and_raw_blocks_are_not_found() {
        let src = "{{ 'a | money' ~ \"x is evn\" ~ 'it\\'s | f(' }}{# {{ b | money }} #}\
                   {% raw %}{{ c | money }}{% endraw %}| money is odd f(x)";
        assert!(template_calls(src).is_empty(), "{:?}", template_calls(src));
        // A closing `}}` inside a string does not end the tag.
        let src = "{{ '}}' | money }}";
        assert_eq!(
            found(template_calls(src)),
            vec![(
                CallKind::Filter,
                "money".to_owned(),
                src.find("money").unwrap()
            )]
        );
    }

    #[test]
    fn non_ascii_text_around_names_keeps_byte_offsets() {
        let src = "<p>Merhaba Ayşe, çay ☕</p>{{ 'Günaydın' ~ ad | büyük }}{% if ğ is çift %}";
        let calls = template_calls(src);
        assert_eq!(calls.len(), 2);
        assert_eq!(&src[calls[0].offset..][..calls[0].name.len()], "büyük");
        assert_eq!(calls[1].kind, CallKind::Test);
        assert_eq!(&src[calls[1].offset..][..calls[1].name.len()], "çift");
    }

    #[test]
    fn paths_are_placed_at_their_first_use_outside_strings_and_comments() {
        let src = "{# event.order.id #}<p>Sipariş {{ 'event.order.id' ~ event.order.id }}</p>{{ event.order.id | e }}{{ x.event.order }}";
        let paths = template_paths(src);
        let first = src.find("event.order.id }}").unwrap();
        assert_eq!(paths.get("event"), Some(&first));
        assert_eq!(paths.get("event.order"), Some(&first));
        assert_eq!(paths.get("event.order.id"), Some(&first));
        assert_eq!(paths.get("x.event"), Some(&src.find("x.event").unwrap()));
        assert_eq!(paths.get("order"), None);
        let paths = expression_paths("customer.tags and customer.first_name == 'customer.x'");
        assert_eq!(paths.get("customer.first_name"), Some(&18));
        assert_eq!(paths.get("customer.x"), None);
    }

    #[test]
    fn unterminated_tags_comments_and_raw_blocks_end_the_scan() {
        for src in [
            "{{ a | b",
            "{% if x is",
            "{# {{ a | b }}",
            "{% raw %}{{ a | b }}",
            "{{ 'a | b }}",
        ] {
            let calls = template_calls(src);
            assert!(calls.len() <= 2, "{src}: {calls:?}");
        }
        assert_eq!(template_calls("{{ a | b")[0].name, "b");
        assert!(template_calls("{% raw %}{{ a | b }}").is_empty());
    }

    proptest::proptest! {
        /// Any text: the scan ends, and every name it finds is in the source at its offset.
        #[test]
        fn every_found_name_is_where_it_is_said_to_be(
            src in "[a-zç|.()'\"\\{}%# ]{0,80}"
        ) {
            for call in template_calls(&src).into_iter().chain(expression_calls(&src)) {
                let first = call.name.split('.').next().unwrap_or_default();
                proptest::prop_assert!(src[call.offset..].starts_with(first), "{call:?}");
            }
            for (path, offset) in template_paths(&src).into_iter().chain(expression_paths(&src)) {
                proptest::prop_assert!(src[offset..].starts_with(&path), "{path} at {offset}");
            }
        }
    }

    #[test]
    fn methods_keywords_and_attributes_are_not_calls() {
        let src = "{{ x.upper() }}{% if (a) and not (b) %}{% macro m(a) %}{% endmacro %}{{ y.is }}";
        assert!(template_calls(src).is_empty(), "{:?}", template_calls(src));
        let src = "customer.tags | lenght > 0 or now()";
        assert_eq!(
            found(expression_calls(src)),
            vec![
                (
                    CallKind::Filter,
                    "lenght".to_owned(),
                    src.find("lenght").unwrap()
                ),
                (
                    CallKind::Function,
                    "now".to_owned(),
                    src.find("now").unwrap()
                ),
            ]
        );
    }
}
