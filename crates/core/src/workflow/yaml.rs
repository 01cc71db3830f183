//! A YAML document as a tree of nodes that each know their line and column.
//!
//! Workflow files are read in two passes: `serde-saphyr` turns the text into this tree (every
//! node wrapped in its [`serde_saphyr::Spanned`] location), then hand-written conversion in
//! [`crate::workflow::parse`] turns the tree into typed domain values, collecting every problem
//! instead of stopping at the first as `#[derive(Deserialize)]` would.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A 1-based line and column (in characters) in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
}

impl Pos {
    /// A position; `line` and `col` are 1-based.
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }

    /// This position moved `chars` characters to the right on the same line.
    pub fn shifted(self, chars: usize) -> Self {
        Self {
            line: self.line,
            col: self.col + chars as u32,
        }
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub value: NodeValue,
    /// The source characters of a plain scalar that YAML reads as a boolean or a number
    /// (`1.10`, `True`): where the language expects text, that is the text (see
    /// [`Node::plain_text`]).
    plain: Option<Box<str>>,
    /// Where such a scalar is in the source (bytes), until [`parse`] copies `plain` from it.
    span: Option<(usize, usize)>,
}

/// The value of a YAML node. Not `Value`: this crate also uses `serde_json::Value` and
/// `minijinja::Value`.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in document order; keys are nodes too so that they keep their positions.
    Map(Vec<(Node, Node)>),
}

impl NodeValue {
    /// How a marketer would name this kind of value in an error message.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeValue::Null => "nothing",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "a number",
            NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The text a plain scalar that YAML reads as a boolean or a number was written as
    /// (`1.10`, not `1.1`; `True`, not `true`). `None` for anything else, a string included.
    pub fn plain_text(&self) -> Option<&str> {
        match self.value {
            NodeValue::Bool(_) | NodeValue::Int(_) | NodeValue::Float(_) => self.plain.as_deref(),
            _ => None,
        }
    }

    /// The string held by a scalar, if it is one. Numbers and booleans are given back as the
    /// text a marketer typed, so that `wait: 3` can be reported as a bad duration rather than as
    /// a type error.
    pub fn as_scalar_text(&self) -> Option<String> {
        if let Some(text) = self.plain_text() {
            return Some(text.to_owned());
        }
        match &self.value {
            NodeValue::Str(s) => Some(s.clone()),
            NodeValue::Int(i) => Some(i.to_string()),
            NodeValue::Float(f) => Some(f.to_string()),
            NodeValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The string, if this node is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key`, if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// This node as plain JSON (positions dropped), for templates and the JSON Schema.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            NodeValue::Null => J::Null,
            NodeValue::Bool(b) => J::Bool(*b),
            NodeValue::Int(i) => J::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            NodeValue::Str(s) => J::String(s.clone()),
            NodeValue::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<NodeValue>::deserialize(deserializer)?;
        let loc = spanned.referenced;
        // Where the scalar itself is written: for an alias (`*name`), at its anchor.
        let defined = spanned.defined.span();
        let span = match spanned.value {
            NodeValue::Bool(_) | NodeValue::Int(_) | NodeValue::Float(_) => defined
                .byte_offset()
                .zip(defined.byte_len())
                .map(|(at, len)| (at as usize, len as usize)),
            _ => None,
        };
        Ok(Node {
            pos: Pos::new(loc.line() as u32, loc.column() as u32),
            value: spanned.value,
            plain: None,
            span,
        })
    }
}

impl Node {
    /// Copies each boolean's and number's source characters out of `text`, which it was read
    /// from. A scalar whose characters are not plain (a tag applied to quoted text) keeps none.
    fn keep_plain_text(&mut self, text: &str) {
        if let Some((at, len)) = self.span.take() {
            self.plain = text
                .get(at..at + len)
                .filter(|t| !t.is_empty() && !t.starts_with(['"', '\'', '!']))
                .map(Into::into);
        }
        match &mut self.value {
            NodeValue::Seq(items) => items.iter_mut().for_each(|i| i.keep_plain_text(text)),
            NodeValue::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.keep_plain_text(text);
                v.keep_plain_text(text);
            }),
            _ => {}
        }
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeValueVisitor)
    }
}

struct NodeValueVisitor;

impl<'de> Visitor<'de> for NodeValueVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValue, E> {
        i64::try_from(v)
            .map(NodeValue::Int)
            .or(Ok(NodeValue::Float(v as f64)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeValue, E> {
        i64::try_from(v)
            .map(NodeValue::Int)
            .or(Ok(NodeValue::Float(v as f64)))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeValue, E> {
        i64::try_from(v)
            .map(NodeValue::Int)
            .or(Ok(NodeValue::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// What it found wrong.
    pub message: String,
}

/// How deeply YAML values (mappings and lists) may nest. The deepest shipped workflow nests 11
/// levels, and a branch inside a branch adds 3; serde-saphyr's default (64) lets a debug
/// build overflow the 2 MiB stack of a spawned thread or a Tokio worker (found by the property
/// tests at 50 levels), where 32 levels use well under half of it.
pub const MAX_YAML_DEPTH: usize = 32;

/// Parses YAML text into a positioned tree. Duplicate keys are syntax errors: a marketer who
/// writes `subject:` twice means one of them, and silently taking either would hide the mistake.
///
/// Booleans are YAML 1.2's (`true`, `false`): `yes`, `no`, `on`, `off`, `y` and `n` are text, as
/// a marketer writing `name: yes` or `id: n` means. A plain scalar read as a boolean or a number
/// keeps its source characters ([`Node::plain_text`]), so that where text is expected,
/// `subject: 1.10` is `1.10`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    // `Options::default()` already rejects duplicate keys and bounds alias expansion (the
    // "billion laughs" budget); say so explicitly in case a default ever changes.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_depth = MAX_YAML_DEPTH;
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        budget: Some(budget),
        strict_booleans: true,
    };
    let mut node = serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|err| {
        let pos = err
            .location()
            .map(|l| Pos::new(l.line() as u32, l.column() as u32))
            .unwrap_or(Pos::new(1, 1));
        let message = budget_message(&err)
            .unwrap_or_else(|| bare_message(&err.without_snippet().to_string()));
        explained(text, SyntaxError { pos, message })
    })?;
    node.keep_plain_text(text);
    Ok(node)
}

/// The parser's error, pointed and worded for the two mistakes marketers make most: a tab in
/// the indentation (which the parser reports wherever its scan stopped, often the line above)
/// and a colon and space inside a plain value (`subject: Sale: 10% off`).
fn explained(text: &str, err: SyntaxError) -> SyntaxError {
    if let Some(pos) = indenting_tab(text, &err) {
        let message = "invalid YAML: a tab in the indentation; indent with spaces, not tabs";
        return SyntaxError {
            pos,
            message: message.to_owned(),
        };
    }
    if err
        .message
        .ends_with("mapping values are not allowed in this context")
    {
        let line = yaml_lines(text).nth(err.pos.line.saturating_sub(1) as usize);
        if let Some((pos, key, value)) = line.and_then(|l| colon_in_value(l, err.pos.line)) {
            let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
            return SyntaxError {
                pos,
                message: format!(
                    "invalid YAML: `: ` inside a value starts another key; put the text in quotes: {key}: \"{quoted}\""
                ),
            };
        }
    }
    err
}

/// The tab in the indentation that caused `err`: on the line of the error or the next (a tab
/// ends or continues the scalar before it), or, when the parser names the tab, the first one.
fn indenting_tab(text: &str, err: &SyntaxError) -> Option<Pos> {
    if err.message.contains("duplicate") {
        return None;
    }
    let tabs: Vec<Pos> = yaml_lines(text)
        .enumerate()
        .filter_map(|(i, line)| {
            let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
            let col = line[..indent].find('\t')?;
            Some(Pos::new(i as u32 + 1, col as u32 + 1))
        })
        .collect();
    let near = tabs
        .iter()
        .find(|p| (err.pos.line..=err.pos.line + 1).contains(&p.line));
    match near {
        Some(p) => Some(*p),
        None if err.message.contains("tab") => tabs.first().copied(),
        None => None,
    }
}

/// The lines of `text` as YAML numbers them (and so the parser's positions): `\r\n`, a lone
/// `\r` and `\n` each end one. `str::lines` does not end a line at a lone `\r`, which would
/// point a hint at the wrong line.
pub(crate) fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find(['\r', '\n']) {
            Some(i) => {
                let skip = if text[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&text[i + skip..]);
                Some(&text[..i])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// `key: value` on a block line (`- ` items too) whose plain value holds `: `: where the value
/// starts, the key and the value as written.
fn colon_in_value(line: &str, number: u32) -> Option<(Pos, &str, &str)> {
    let body = line.trim_start();
    let body = body.strip_prefix("- ").map_or(body, str::trim_start);
    let (key, rest) = body.split_once(": ")?;
    // A comment after the value is not part of it.
    let value = rest.split(" #").next().unwrap_or(rest).trim();
    let plain = !key.is_empty()
        && !key.starts_with(['"', '\'', '{', '[', '#'])
        && !value.starts_with(['"', '\'', '{', '[', '|', '>', '&', '*', '!']);
    if !plain || !value.contains(": ") {
        return None;
    }
    // Columns count characters: the value starts after everything before it on the line.
    let start = line.len() - rest.trim_start().len();
    let col = line[..start].chars().count() as u32 + 1;
    Some((Pos::new(number, col), key, value))
}

/// A plain sentence for a breached parsing budget (serde-saphyr prints its debug form): an
/// alias bomb, a file of too many values, or nesting too deep.
fn budget_message(err: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let mut err = err;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = err {
        err = error;
    }
    let E::Budget { breach, .. } = err else {
        return None;
    };
    let what = match breach {
        B::Depth { .. } => "values are nested too deeply",
        B::Aliases { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => {
            "too many aliases (`*name`) and merges (`<<`); write the values out instead"
        }
        B::Nodes { .. } | B::Events { .. } | B::Anchors { .. } | B::ScalarBytes { .. } => {
            "the file holds too many values once its aliases (`*name`) are expanded; write the values out instead"
        }
        _ => "the file is too large or too complex to read",
    };
    Some(format!("invalid YAML: {what}"))
}

/// serde-saphyr's message without the `error: line L column C: ` prefix (we print our own
/// position) or advice addressed to programmers rather than to the author of the file.
fn bare_message(text: &str) -> String {
    let mut msg = text.trim().strip_prefix("error: ").unwrap_or(text.trim());
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
    {
        msg = after;
    }
    let msg = msg.lines().next().unwrap_or(msg);
    let msg = msg.split(", set DuplicateKeyPolicy").next().unwrap_or(msg);
    let msg = match msg.rsplit_once(" at line ") {
        Some((head, tail)) if tail.contains(", column ") => head,
        _ => msg,
    };
    format!("invalid YAML: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the property tests: 50 levels overflowed a 2 MiB stack in a debug build. Up to
    /// the limit parses on such a stack (a spawned thread's, a Tokio worker's); one more is a
    /// plain error.
    #[test]
    fn nesting_up_to_the_limit_fits_a_small_stack_and_deeper_is_an_error() {
        let nested = |levels: usize| "{a: ".repeat(levels) + "1" + &"}".repeat(levels);
        let at_limit = nested(MAX_YAML_DEPTH);
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || parse(&at_limit).map(drop))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(parsed.is_ok(), "{parsed:?}");
        let err = parse(&nested(MAX_YAML_DEPTH + 1)).unwrap_err();
        assert_eq!(err.message, "invalid YAML: values are nested too deeply");
    }

    #[test]
    fn keys_and_values_keep_their_positions() {
        let node = parse("id: x\nsteps:\n  - wait: 3d\n    id: w\n").unwrap();
        let map = node.as_map().unwrap();
        assert_eq!(map[0].0.pos, Pos::new(1, 1));
        assert_eq!(map[0].1.pos, Pos::new(1, 5));
        let steps = &map[1].1;
        let NodeValue::Seq(items) = &steps.value else {
            panic!("{steps:?}")
        };
        let step = items[0].as_map().unwrap();
        assert_eq!(step[0].0.pos, Pos::new(3, 5));
        assert_eq!(step[0].1.pos, Pos::new(3, 11));
        assert_eq!(step[1].1.pos, Pos::new(4, 9));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let node = parse("name: \"Kahve Dükkanı\"\nx: ü: 1\n").unwrap_err();
        assert_eq!(node.pos.line, 2);
        let ok = parse("a: \"ü\"\nb: { c: 1, d: \"ğğ\", e: 2 }\n").unwrap();
        let b = ok.get("b").unwrap();
        let e = b
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_str() == Some("e"))
            .unwrap();
        assert_eq!(e.0.pos, Pos::new(2, 21));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 3, "{err:?}");
        assert_eq!(err.message, "invalid YAML: duplicate mapping key: a");
    }

    #[test]
    fn syntax_errors_have_a_plain_message_and_position() {
        let err = parse("a: [1, 2\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(1, 4));
        assert_eq!(err.message, "invalid YAML: unclosed bracket '['");
    }

    #[test]
    fn alias_bombs_are_refused_in_a_plain_sentence() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.message,
            "invalid YAML: the file holds too many values once its aliases (`*name`) are expanded; write the values out instead"
        );
    }

    #[test]
    fn scalars_keep_their_types() {
        let node = parse("a: 3d\nb: 3\nc: true\nd: \"09:00\"\ne: 09:00\nf: ~\n").unwrap();
        assert_eq!(node.get("a").unwrap().value, NodeValue::Str("3d".into()));
        assert_eq!(node.get("b").unwrap().value, NodeValue::Int(3));
        assert_eq!(node.get("c").unwrap().value, NodeValue::Bool(true));
        assert_eq!(node.get("d").unwrap().value, NodeValue::Str("09:00".into()));
        assert_eq!(node.get("e").unwrap().value, NodeValue::Str("09:00".into()));
        assert_eq!(node.get("f").unwrap().value, NodeValue::Null);
    }

    #[test]
    fn booleans_are_yaml_1_2_and_plain_scalars_keep_their_characters() {
        let node = parse("a: 1.10\nb: True\nc: yes\nd: n\ne: \"1.10\"\nf: &x 0x1F\ng: *x\nh: No\n")
            .unwrap();
        let get = |k| node.get(k).unwrap();
        assert_eq!(get("a").value, NodeValue::Float(1.1));
        assert_eq!(get("a").plain_text(), Some("1.10"));
        assert_eq!(get("a").as_scalar_text().as_deref(), Some("1.10"));
        assert_eq!(get("b").value, NodeValue::Bool(true));
        assert_eq!(get("b").plain_text(), Some("True"));
        assert_eq!(get("c").value, NodeValue::Str("yes".into()));
        assert_eq!(get("d").value, NodeValue::Str("n".into()));
        assert_eq!(get("h").value, NodeValue::Str("No".into()));
        // Quoted text is a string already, with no plain characters to keep.
        assert_eq!(get("e").value, NodeValue::Str("1.10".into()));
        assert_eq!(get("e").plain_text(), None);
        // An alias gives the characters written at its anchor.
        assert_eq!(get("f").plain_text(), Some("0x1F"));
        assert_eq!(get("g").plain_text(), Some("0x1F"));
    }

    #[test]
    fn a_tab_in_the_indentation_is_reported_at_the_tab() {
        let tab = "indent with spaces, not tabs";
        let err = parse("id: x\nsteps:\n  - id: a\n\t  wait: 3d\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(4, 1), "{err:?}");
        assert!(err.message.ends_with(tab), "{err:?}");
        let err = parse("a: 1\n  \tb: 2\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(2, 3), "{err:?}");
        assert!(err.message.ends_with(tab), "{err:?}");
        let err = parse("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(2, 1), "{err:?}");
        assert!(err.message.ends_with(tab), "{err:?}");
    }

    #[test]
    fn a_colon_in_a_plain_value_says_to_quote_it() {
        let err = parse("id: x\nsubject: Sale: 10% off # spring\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(2, 10), "{err:?}");
        assert!(
            err.message
                .ends_with(r#"put the text in quotes: subject: "Sale: 10% off""#),
            "{err:?}"
        );
        let err = parse("steps:\n  - subject: Ünal: \"50%\" off\n").unwrap_err();
        assert_eq!(err.pos, Pos::new(2, 14), "{err:?}");
        assert!(
            err.message
                .ends_with(r#"put the text in quotes: subject: "Ünal: \"50%\" off""#),
            "{err:?}"
        );
    }

    /// Found by the property test below: a lone `\r` ends a line for YAML but not for
    /// `str::lines`, so the hints looked at the wrong line.
    #[test]
    fn hints_count_lines_as_yaml_does() {
        let err = parse("id: \rsubject: \n\t  id: \n").unwrap_err();
        assert_eq!(err.pos, Pos::new(3, 1), "{err:?}");
        assert!(err.message.ends_with("not tabs"), "{err:?}");
        let err = parse("id: x\rsubject: Sale: 10% off\r").unwrap_err();
        assert_eq!(err.pos, Pos::new(2, 10), "{err:?}");
        assert!(
            err.message
                .ends_with(r#"put the text in quotes: subject: "Sale: 10% off""#),
            "{err:?}"
        );
    }

    /// Every node with source characters kept, with its position.
    fn plain_scalars(node: &Node, out: &mut Vec<(Pos, String)>) {
        if let Some(text) = node.plain_text() {
            out.push((node.pos, text.to_owned()));
        }
        match &node.value {
            NodeValue::Seq(items) => items.iter().for_each(|i| plain_scalars(i, out)),
            NodeValue::Map(entries) => entries.iter().for_each(|(k, v)| {
                plain_scalars(k, out);
                plain_scalars(v, out);
            }),
            _ => {}
        }
    }

    /// A block line of a workflow-like file: indentation (spaces and tabs), maybe a list
    /// dash, a key and a value, from pieces that make the hints fire (tabs, `: ` in values,
    /// non-ASCII text, numbers and YAML 1.1 booleans).
    fn line() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let indent = prop::sample::select(vec!["", "  ", "    ", "\t", "  \t", "\t  "]);
        let dash = prop::sample::select(vec!["", "- "]);
        let key = prop::sample::select(vec!["id", "subject", "şehir", "name", "ü"]);
        let value = prop::sample::select(vec![
            "",
            "x",
            "1.10",
            "yes",
            "Sale: 10% off",
            "Ünal: \"50%\" off",
            "çay ☕: sıcak",
            "a\tb",
            "\"q: x\"",
            "x # c: d",
            "True",
            "0x1F",
            "-3",
            "{a: ş, b: 1.10}",
            "[ü, 012, no]",
        ]);
        (indent, dash, key, value).prop_map(|(i, d, k, v)| format!("{i}{d}{k}: {v}"))
    }

    proptest::proptest! {
        /// Any such file: a syntax error is inside the text (1-based line and column, in
        /// characters, lines ended as YAML ends them), the tab hint points at a tab, and the
        /// colon hint at the first character of the value it quotes; a file that parses has
        /// each number's and boolean's source characters at its position.
        #[test]
        fn hints_point_at_what_they_name(
            lines in proptest::collection::vec(line(), 1..6),
            ends in proptest::collection::vec(proptest::sample::select(vec!["\n", "\r\n", "\r"]), 6),
        ) {
            let text: String = lines.iter().zip(&ends).map(|(l, e)| format!("{l}{e}")).collect();
            let all: Vec<&str> = yaml_lines(&text).collect();
            let err = match parse(&text) {
                Ok(node) => {
                    // Every number's or boolean's source characters are where its position
                    // says (line and column in characters, after tabs and non-ASCII text).
                    let mut plain = Vec::new();
                    plain_scalars(&node, &mut plain);
                    for (pos, chars) in plain {
                        let line = all.get(pos.line as usize - 1).copied().unwrap_or("");
                        let at: String = line.chars().skip(pos.col as usize - 1).collect();
                        proptest::prop_assert!(at.starts_with(&chars), "{chars:?} at {pos:?} in {text:?}");
                    }
                    return Ok(());
                }
                Err(err) => err,
            };
            proptest::prop_assert!(err.pos.line >= 1 && err.pos.col >= 1, "{err:?}");
            let line = all.get(err.pos.line as usize - 1).copied().unwrap_or("");
            let at: String = line.chars().skip(err.pos.col as usize - 1).collect();
            proptest::prop_assert!(line.chars().count() + 1 >= err.pos.col as usize, "{err:?} in {text:?}");
            if err.message.ends_with("not tabs") {
                proptest::prop_assert!(at.starts_with('\t'), "{err:?} at {at:?} in {text:?}");
            }
            if let Some((_, quoted)) = err.message.split_once(": \"") {
                let first = quoted.chars().next().unwrap_or('"');
                proptest::prop_assert!(at.starts_with(first), "{err:?} at {at:?} in {text:?}");
            }
        }
    }
}
