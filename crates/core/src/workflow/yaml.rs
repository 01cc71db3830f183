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
    /// The string held by a scalar, if it is one. Numbers and booleans are given back as the
    /// text a marketer would have typed, so that `wait: 3` can be reported as a bad duration
    /// rather than as a type error.
    pub fn as_scalar_text(&self) -> Option<String> {
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
        Ok(Node {
            pos: Pos::new(loc.line() as u32, loc.column() as u32),
            value: spanned.value,
        })
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
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    // `Options::default()` already rejects duplicate keys and bounds alias expansion (the
    // "billion laughs" budget); say so explicitly in case a default ever changes.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_depth = MAX_YAML_DEPTH;
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        budget: Some(budget),
    };
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|err| {
        let pos = err
            .location()
            .map(|l| Pos::new(l.line() as u32, l.column() as u32))
            .unwrap_or(Pos::new(1, 1));
        let message = budget_message(&err)
            .unwrap_or_else(|| bare_message(&err.without_snippet().to_string()));
        SyntaxError { pos, message }
    })
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
}
