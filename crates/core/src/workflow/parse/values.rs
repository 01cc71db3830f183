//! Readers shared by settings, workflows and steps: text, booleans, lists, durations, times,
//! time zones, email addresses, https URLs, send windows and tag lists.
//!
//! Each returns the value when its node is usable and otherwise files a diagnostic at the node
//! and returns `None`.

use chrono_tz::Tz;

use super::map::Map;
use crate::diagnostic::{Sink, suggestion};
use crate::mail::{MAX_MESSAGE_TAG_CHARS, is_message_tag};
use crate::workflow::model::{Mailbox, SendWindow};
use crate::workflow::units::{Duration, LocalTime};
use crate::workflow::yaml::{Node, NodeValue};

/// A string node's text. A plain scalar that YAML reads as a boolean or a number is text here,
/// exactly as written (`subject: 1.10` is `1.10`, `subject: True` is `True`).
pub(super) fn string(sink: &mut Sink, node: &Node, what: &str) -> Option<String> {
    match (&node.value, node.plain_text()) {
        (NodeValue::Str(s), _) => Some(s.clone()),
        (_, Some(text)) => Some(text.to_owned()),
        (other, None) => {
            sink.error(
                node.pos,
                format!("{what} must be text, found {}", other.kind()),
            );
            None
        }
    }
}

/// A string node's text, which must hold more than white space.
pub(super) fn non_empty_string(sink: &mut Sink, node: &Node, what: &str) -> Option<String> {
    let s = string(sink, node, what)?;
    if s.trim().is_empty() {
        sink.error(node.pos, format!("{what} must not be empty"));
        return None;
    }
    Some(s)
}

/// `true` or `false` (YAML 1.2's booleans): `yes`, `no`, `on` and `off` are text, refused
/// with the word to write instead.
pub(super) fn boolean(sink: &mut Sink, node: &Node, what: &str) -> Option<bool> {
    match &node.value {
        NodeValue::Bool(b) => Some(*b),
        NodeValue::Str(s) => {
            let hint = match s.trim().to_ascii_lowercase().as_str() {
                "yes" | "y" | "on" => "; write `true`",
                "no" | "n" | "off" => "; write `false`",
                _ => "",
            };
            let found = if s.contains('\n') || s.chars().count() > 40 {
                "text".to_owned()
            } else {
                format!("`{s}`")
            };
            sink.error(
                node.pos,
                format!("{what} must be true or false, found {found}{hint}"),
            );
            None
        }
        other => {
            sink.error(
                node.pos,
                format!("{what} must be true or false, found {}", other.kind()),
            );
            None
        }
    }
}

/// A sequence node's items.
pub(super) fn list<'n>(sink: &mut Sink, node: &'n Node, what: &str) -> Option<&'n [Node]> {
    match &node.value {
        NodeValue::Seq(items) => Some(items),
        other => {
            sink.error(
                node.pos,
                format!("{what} must be a list, found {}", other.kind()),
            );
            None
        }
    }
}

/// A duration such as `3d`; `signed` allows a leading `-` (offsets before a date).
pub(super) fn duration(sink: &mut Sink, node: &Node, what: &str, signed: bool) -> Option<Duration> {
    let Some(text) = node.as_scalar_text() else {
        sink.error(
            node.pos,
            format!(
                "{what} must be a duration such as 3d, found {}",
                node.value.kind()
            ),
        );
        return None;
    };
    let parsed = if signed {
        Duration::parse_signed(&text)
    } else {
        Duration::parse(&text)
    };
    match parsed {
        Ok(d) => Some(d),
        Err(e) => {
            sink.error(node.pos, format!("bad {what}: {e}"));
            None
        }
    }
}

/// A duration that must be longer than zero.
pub(super) fn positive_duration(sink: &mut Sink, node: &Node, what: &str) -> Option<Duration> {
    let d = duration(sink, node, what, false)?;
    if d.is_zero() {
        sink.error(node.pos, format!("{what} must be longer than zero"));
        return None;
    }
    Some(d)
}

/// A local time of day (`"09:00"`).
pub(super) fn time(sink: &mut Sink, node: &Node, what: &str) -> Option<LocalTime> {
    let Some(text) = node.as_scalar_text() else {
        sink.error(
            node.pos,
            format!(
                "{what} must be a time such as \"09:00\", found {}",
                node.value.kind()
            ),
        );
        return None;
    };
    match LocalTime::parse(&text) {
        Ok(t) => Some(t),
        Err(e) => {
            sink.error(node.pos, format!("bad {what}: {e}"));
            None
        }
    }
}

/// An IANA time zone name, with the nearest known name when it is not one.
pub(super) fn timezone(sink: &mut Sink, node: &Node) -> Option<Tz> {
    let text = non_empty_string(sink, node, "`timezone`")?;
    match text.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
            sink.error(
                node.pos,
                format!("unknown time zone `{text}`{}", suggestion(&text, names)),
            );
            None
        }
    }
}

/// Parses `Name <address>` or a bare address.
pub fn mailbox(sink: &mut Sink, node: &Node, what: &str) -> Option<Mailbox> {
    let text = non_empty_string(sink, node, what)?;
    match Mailbox::parse(&text) {
        Some(m) => Some(m),
        None => {
            sink.error(
                node.pos,
                format!("{what} `{text}` is not an email address; write `Name <name@example.com>` or `name@example.com`"),
            );
            None
        }
    }
}

/// An absolute `https://` URL with a host.
pub(super) fn https_url(sink: &mut Sink, node: &Node, what: &str) -> Option<url::Url> {
    let text = non_empty_string(sink, node, what)?;
    match url::Url::parse(text.trim()) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Some(u),
        Ok(u) => {
            sink.error(
                node.pos,
                format!(
                    "{what} must be an https:// address, found `{}://`",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            sink.error(node.pos, format!("{what} `{text}` is not a URL: {e}"));
            None
        }
    }
}

/// `{start, end}` sending hours; equal ends are refused, since such a window never opens.
pub(super) fn send_window(sink: &mut Sink, node: &Node, what: &str) -> Option<SendWindow> {
    let map = Map::of(sink, node, what)?;
    map.deny_unknown(sink, &["start", "end"], what);
    let start = map
        .required(sink, "start", node.pos, what)
        .and_then(|n| time(sink, n, "window start"));
    let end = map
        .required(sink, "end", node.pos, what)
        .and_then(|n| time(sink, n, "window end"));
    let (start, end) = (start?, end?);
    if start == end {
        sink.error(
            node.pos,
            format!("{what} starts and ends at {start}: it would never open"),
        );
        return None;
    }
    Some(SendWindow { start, end })
}

/// A list of non-empty tags (a customer's, for `add_tags` and `remove_tags`); `None` when any
/// is bad (each is reported).
pub(super) fn tag_list(sink: &mut Sink, node: &Node, what: &str) -> Option<Vec<String>> {
    checked_tags(sink, node, what, |_| true)
}

/// `send_email.tags`: each must match `[A-Za-z0-9_-]{1,64}`, the tag alphabet of Amazon SES,
/// which refuses the whole message for a tag outside it. `None` when any is bad (each is
/// reported at the tag).
pub(super) fn message_tags(sink: &mut Sink, node: &Node, what: &str) -> Option<Vec<String>> {
    checked_tags(sink, node, what, is_message_tag)
}

/// A list of non-empty tags that each pass `valid` (reported with the message-tag rule
/// otherwise).
fn checked_tags(
    sink: &mut Sink,
    node: &Node,
    what: &str,
    valid: impl Fn(&str) -> bool,
) -> Option<Vec<String>> {
    let items = list(sink, node, what)?;
    let mut ok = true;
    let mut tags = Vec::new();
    for item in items {
        match non_empty_string(sink, item, "a tag") {
            Some(t) if valid(&t) => tags.push(t),
            Some(t) => {
                sink.error(
                    item.pos,
                    format!(
                        "tag `{t}` may hold only letters A-Z and a-z, digits, `_` and `-`, at most {MAX_MESSAGE_TAG_CHARS} of them ([A-Za-z0-9_-]{{1,{MAX_MESSAGE_TAG_CHARS}}}, the tag alphabet of Amazon SES)"
                    ),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(tags)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::diagnostic::Diagnostic;
    use crate::workflow::yaml;

    /// What `read` makes of the value of `key: <value>`, and the messages it filed.
    fn read<T>(
        value: &str,
        read: impl Fn(&mut Sink, &Node) -> Option<T>,
    ) -> (Option<T>, Vec<String>) {
        let root = yaml::parse(&format!("key: {value}\n")).unwrap();
        let mut out: Vec<Diagnostic> = Vec::new();
        let got = read(
            &mut Sink::new(Path::new("w.yaml"), &mut out),
            root.get("key").unwrap(),
        );
        (got, out.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn plain_scalars_are_text_exactly_as_written() {
        for (value, text) in [
            ("1.10", "1.10"),
            ("No", "No"),
            ("yes", "yes"),
            ("n", "n"),
            ("True", "True"),
            ("false", "false"),
            ("007", "007"),
            ("1e3", "1e3"),
            ("\"1.10\"", "1.10"),
        ] {
            let (got, errors) = read(value, |s, n| string(s, n, "`subject`"));
            assert_eq!(got.as_deref(), Some(text), "{value}: {errors:?}");
        }
        let (got, errors) = read("[a]", |s, n| string(s, n, "`subject`"));
        assert_eq!(got, None);
        assert_eq!(
            errors,
            ["w.yaml:1:6: error: `subject` must be text, found a list"]
        );
    }

    #[test]
    fn message_tags_match_the_ses_alphabet() {
        let tags = |s: &mut Sink, n: &Node| message_tags(s, n, "`tags`");
        let long = "a".repeat(64);
        let (got, errors) = read(&format!("[spring-sale, Promo_2026, {long}]"), tags);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(got.unwrap().len(), 3);
        let (got, errors) = read(&format!("[ok, summer sale, kış, {long}b]"), tags);
        assert_eq!(got, None);
        let rule = "may hold only letters A-Z and a-z, digits, `_` and `-`, at most 64 of them \
                    ([A-Za-z0-9_-]{1,64}, the tag alphabet of Amazon SES)";
        assert_eq!(
            errors,
            [
                format!("w.yaml:1:11: error: tag `summer sale` {rule}"),
                format!("w.yaml:1:24: error: tag `kış` {rule}"),
                format!("w.yaml:1:29: error: tag `{long}b` {rule}"),
            ]
        );
        // A customer's own tags (`add_tags`) may hold any text.
        let (got, _) = read("[summer sale]", |s, n| tag_list(s, n, "`add_tags`"));
        assert_eq!(got, Some(vec!["summer sale".to_owned()]));
    }

    #[test]
    fn only_true_and_false_are_booleans() {
        assert_eq!(
            read("true", |s, n| boolean(s, n, "`enabled`")).0,
            Some(true)
        );
        assert_eq!(
            read("false", |s, n| boolean(s, n, "`enabled`")).0,
            Some(false)
        );
        for (value, hint) in [
            ("yes", "`yes`; write `true`"),
            ("Off", "`Off`; write `false`"),
        ] {
            let (got, errors) = read(value, |s, n| boolean(s, n, "`enabled`"));
            assert_eq!(got, None);
            assert_eq!(
                errors,
                [format!(
                    "w.yaml:1:6: error: `enabled` must be true or false, found {hint}"
                )]
            );
        }
    }
}
