//! The `send_email` step: a template under `templates/`, a subject and optional preheader,
//! sender, reply-to and tags.

use crate::diagnostic::Sink;
use crate::workflow::model::SendEmail;
use crate::workflow::yaml::{Node, Pos};

use super::super::map::Map;
use super::super::scalars::{Scalars, template_text};
use super::super::values::{mailbox, message_tags, non_empty_string};

const KEYS: &[&str] = &[
    "template",
    "subject",
    "preheader",
    "from",
    "reply_to",
    "tags",
];

/// Reads the body of a `send_email` step.
pub(super) fn send_email(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<SendEmail> {
    let map = Map::of(sink, node, "`send_email`")?;
    map.deny_unknown(sink, KEYS, "`send_email`");
    let template = map
        .required(sink, "template", node.pos, "`send_email`")
        .and_then(|n| template_path(sink, n));
    let subject = map
        .required(sink, "subject", node.pos, "`send_email`")
        .and_then(|n| template_text(sink, sc, n, "`subject`"));
    let preheader = map
        .get("preheader")
        .and_then(|n| template_text(sink, sc, n, "`preheader`"));
    let from = map.get("from").map(|n| mailbox(sink, n, "`from`"));
    let reply_to = map.get("reply_to").map(|n| mailbox(sink, n, "`reply_to`"));
    let tags = match map.get("tags") {
        Some(n) => message_tags(sink, n, "`tags`"),
        None => Some(Vec::new()),
    };
    let (template, template_pos) = template?;
    Some(SendEmail {
        template,
        template_pos,
        subject: subject?,
        preheader,
        from: from.map_or(Some(None), |f| f.map(Some))?,
        reply_to: reply_to.map_or(Some(None), |f| f.map(Some))?,
        tags: tags?,
    })
}

/// The template's path, with where it was written: an `.mjml` or `.html` file that stays inside
/// `templates/`.
fn template_path(sink: &mut Sink, node: &Node) -> Option<(String, Pos)> {
    let path = non_empty_string(sink, node, "`template`")?;
    if !(path.ends_with(".mjml") || path.ends_with(".html")) {
        sink.error(
            node.pos,
            format!("template `{path}` must end in .mjml or .html"),
        );
        return None;
    }
    if path.starts_with('/') || path.split('/').any(|part| part == "..") {
        sink.error(
            node.pos,
            format!("template `{path}` must be a path inside templates/"),
        );
        return None;
    }
    Some((path, node.pos))
}
