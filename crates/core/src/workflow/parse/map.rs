//! [`Map`]: a mapping node being read, which finds keys, reports missing ones at the mapping
//! and unknown ones at the key, with the nearest allowed name.

use crate::diagnostic::{Sink, did_you_mean, suggestion};
use crate::workflow::yaml::{Node, NodeValue, Pos};

/// A mapping node being read: looks keys up and reports unknown ones.
pub(super) struct Map<'n> {
    /// The mapping's entries, in document order.
    pub(super) entries: &'n [(Node, Node)],
}

impl<'n> Map<'n> {
    /// `node` as a mapping, or an error naming `what` was expected.
    pub(super) fn of(sink: &mut Sink, node: &'n Node, what: &str) -> Option<Self> {
        match &node.value {
            NodeValue::Map(entries) => Some(Self { entries }),
            other => {
                sink.error(
                    node.pos,
                    format!("{what} must be a mapping, found {}", other.kind()),
                );
                None
            }
        }
    }

    /// The value under `key`, if present.
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node itself, to point at the key rather than its value.
    pub(super) fn key_node(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// The value under `key`, or an error at the mapping (`at`) that it is missing. When a
    /// misspelt key is there instead, its own error ("did you mean") says it all.
    pub(super) fn required(
        &self,
        sink: &mut Sink,
        key: &str,
        at: Pos,
        what: &str,
    ) -> Option<&'n Node> {
        self.required_hint(sink, key, at, what, "")
    }

    /// [`Map::required`] with a hint appended to the message.
    pub(super) fn required_hint(
        &self,
        sink: &mut Sink,
        key: &str,
        at: Pos,
        what: &str,
        hint: &str,
    ) -> Option<&'n Node> {
        let found = self.get(key);
        let misspelt = || {
            self.entries
                .iter()
                .any(|(k, _)| k.as_str().is_some_and(|k| did_you_mean(k, [key]).is_some()))
        };
        if found.is_none() && !misspelt() {
            sink.error(at, format!("{what} is missing `{key}`{hint}"));
        }
        found
    }

    /// Reports every key not in `allowed`, at the key, with the nearest allowed name.
    pub(super) fn deny_unknown(&self, sink: &mut Sink, allowed: &[&str], what: &str) {
        for (key, _) in self.entries {
            match key.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => sink.error(
                    key.pos,
                    format!(
                        "unknown key `{k}` in {what}{}",
                        suggestion(k, allowed.iter().copied())
                    ),
                ),
                None => sink.error(key.pos, format!("keys in {what} must be names")),
            }
        }
    }
}
