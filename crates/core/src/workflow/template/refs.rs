//! The templates a template names in `{% include %}`, `{% import %}`, `{% from %}` and
//! `{% extends %}`, found by a scan of its tags so that a missing one is a validation error
//! at its spot rather than a `render_error` on every send.

/// A template named by another, with the byte offset of its quoted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    /// Byte offset of the opening quote of the name.
    pub offset: usize,
    /// The name as written (`partials/footer.html`).
    pub name: String,
    /// Whether the named template renders in the naming one's context (`include`, `extends`:
    /// it sees the same `event`), rather than being imported for its macros.
    pub same_context: bool,
}

/// Names given as string literals (one, or a list for `include`) in the tags of `source`.
/// A name built at run time (`{% include "x/" ~ lang %}`) cannot be seen and is left out, and
/// so is an `include ... ignore missing`, which allows the name to be missing.
pub fn template_refs(source: &str) -> Vec<TemplateRef> {
    let mut refs = Vec::new();
    let mut at = 0;
    while let Some(found) = source[at..].find("{%") {
        let start = at + found + 2;
        let end = source[start..]
            .find("%}")
            .map_or(source.len(), |i| start + i);
        at = end;
        let tag = &source[start..end];
        let body = tag.trim_start_matches(['-', '+', '~']).trim_start();
        let word_len = body
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(body.len());
        if !matches!(&body[..word_len], "include" | "import" | "from" | "extends")
            || tag.contains("ignore missing")
        {
            continue;
        }
        let rest = body[word_len..].trim_start();
        let (literals, single) = match rest.strip_prefix('[') {
            Some(list) => (list, false),
            None => (rest, true),
        };
        // `literals` is a suffix of the tag, which ends at `end`.
        let same_context = matches!(&body[..word_len], "include" | "extends");
        let first = refs.len();
        collect_literals(literals, end - literals.len(), single, &mut refs);
        for r in &mut refs[first..] {
            r.same_context = same_context;
        }
    }
    refs
}

/// The string literals at the start of `text` (offset `base` in the source): just the first
/// when `single` (then only if nothing but the tag's end or `as`/`import` follows), else a
/// comma-separated list up to `]`.
fn collect_literals(text: &str, base: usize, single: bool, out: &mut Vec<TemplateRef>) {
    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        let skipped = rest.len() - rest.trim_start().len();
        pos += skipped;
        let Some((name, len)) = string_literal(&text[pos..]) else {
            return;
        };
        let after = text[pos + len..].trim_start();
        if single {
            // `{% include "a" ~ x %}` is built at run time: not a name to check.
            let dynamic = !(after.is_empty()
                || after.starts_with("as ")
                || after.starts_with("import ")
                || after.starts_with("with ")
                || after.starts_with("without "));
            if !dynamic {
                out.push(TemplateRef {
                    offset: base + pos,
                    name,
                    same_context: false,
                });
            }
            return;
        }
        out.push(TemplateRef {
            offset: base + pos,
            name,
            same_context: false,
        });
        pos += len;
        let rest = &text[pos..];
        match rest.trim_start().strip_prefix(',') {
            Some(after_comma) => pos += rest.len() - after_comma.len(),
            None => return,
        }
    }
}

/// A quoted string at the start of `text`, unescaped, with its length in bytes (quotes
/// included); backslash escapes a character, as in minijinja.
fn string_literal(text: &str) -> Option<(String, usize)> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut value = String::new();
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => {
                value.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            _ if c == quote => return Some((value, i + 1)),
            _ => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(source: &str) -> Vec<(usize, String)> {
        template_refs(source)
            .into_iter()
            .map(|r| (r.offset, r.name))
            .collect()
    }

    #[test]
    fn literal_names_of_every_kind_of_tag_are_found() {
        let src = "{% extends 'base.html' %}\n{% include \"a.html\" %}{%- include ['b.html', \"c.html\"] -%}\n{% import 'm.html' as m %}{% from 'f.html' import x %}";
        let found = names(src);
        let at = |needle: &str| src.find(needle).unwrap();
        assert_eq!(
            found,
            vec![
                (at("'base"), "base.html".to_owned()),
                (at("\"a.html"), "a.html".to_owned()),
                (at("'b.html"), "b.html".to_owned()),
                (at("\"c.html"), "c.html".to_owned()),
                (at("'m.html"), "m.html".to_owned()),
                (at("'f.html"), "f.html".to_owned()),
            ]
        );
    }

    #[test]
    fn included_and_extended_templates_share_the_context_imported_ones_do_not() {
        let src =
            "{% extends 'a' %}{% include ['b', 'c'] %}{% import 'd' as m %}{% from 'e' import x %}";
        let shared: Vec<(String, bool)> = template_refs(src)
            .into_iter()
            .map(|r| (r.name, r.same_context))
            .collect();
        let expected = [
            ("a", true),
            ("b", true),
            ("c", true),
            ("d", false),
            ("e", false),
        ];
        assert_eq!(shared, expected.map(|(n, s)| (n.to_owned(), s)).to_vec());
    }

    #[test]
    fn dynamic_names_and_ignore_missing_are_left_out() {
        assert!(names("{% include 'x/' ~ lang ~ '.html' %}").is_empty());
        assert!(names("{% include name %}").is_empty());
        assert!(names("{% include 'gone.html' ignore missing %}").is_empty());
        assert!(names("{{ 'include' }} {% if x %}{% endif %}").is_empty());
    }
}
