//! Readers shared by settings, workflows and steps: text, booleans, lists, durations, times,
//! time zones, email addresses, https URLs, send windows and tag lists.
//!
//! Each returns the value when its node is usable and otherwise files a diagnostic at the node
//! and returns `None`.

use chrono_tz::Tz;

use super::map::Map;
use crate::diagnostic::{Sink, suggestion};
use crate::workflow::model::{Mailbox, SendWindow};
use crate::workflow::units::{Duration, LocalTime};
use crate::workflow::yaml::{Node, NodeValue};

/// A string node's text.
pub(super) fn string(sink: &mut Sink, node: &Node, what: &str) -> Option<String> {
    match &node.value {
        NodeValue::Str(s) => Some(s.clone()),
        other => {
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

/// `true` or `false`.
pub(super) fn boolean(sink: &mut Sink, node: &Node, what: &str) -> Option<bool> {
    match &node.value {
        NodeValue::Bool(b) => Some(*b),
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

/// A list of non-empty tags; `None` when any is bad (each is reported).
pub(super) fn tag_list(sink: &mut Sink, node: &Node, what: &str) -> Option<Vec<String>> {
    let items = list(sink, node, what)?;
    let mut ok = true;
    let mut tags = Vec::new();
    for item in items {
        match non_empty_string(sink, item, "a tag") {
            Some(t) => tags.push(t),
            None => ok = false,
        }
    }
    ok.then_some(tags)
}
