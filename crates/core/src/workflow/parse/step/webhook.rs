//! The `webhook` step: an https `url`, a `method`, a JSON `body` whose strings are templates,
//! and the name of the stored `secret` that signs it.

use crate::diagnostic::Sink;
use crate::workflow::model::{HttpMethod, Webhook};
use crate::workflow::template::ScalarKind;
use crate::workflow::yaml::{Node, NodeValue};

use super::super::map::Map;
use super::super::scalars::Scalars;
use super::super::values::{https_url, non_empty_string};

/// Reads the body of a `webhook` step.
pub(super) fn webhook(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<Webhook> {
    let map = Map::of(sink, node, "`webhook`")?;
    map.deny_unknown(sink, &["url", "method", "body", "secret"], "`webhook`");
    let url = map
        .required(sink, "url", node.pos, "`webhook`")
        .and_then(|n| https_url(sink, n, "webhook `url`"));
    let method = map
        .get("method")
        .map_or(Some(HttpMethod::Post), |n| method(sink, n));
    let body = map.get("body").map(|n| {
        body_templates(sink, sc, n);
        n.to_json()
    });
    let secret = match map.get("secret") {
        Some(n) => secret_name(sink, n).map(Some),
        None => Some(None),
    };
    Some(Webhook {
        url: url?,
        method: method?,
        body,
        secret: secret?,
    })
}

/// POST, PUT or PATCH, in any case.
fn method(sink: &mut Sink, node: &Node) -> Option<HttpMethod> {
    let text = node.as_scalar_text().unwrap_or_default();
    match text.to_ascii_uppercase().as_str() {
        "POST" => Some(HttpMethod::Post),
        "PUT" => Some(HttpMethod::Put),
        "PATCH" => Some(HttpMethod::Patch),
        _ => {
            sink.error(
                node.pos,
                format!("webhook `method` must be POST, PUT or PATCH, found `{text}`"),
            );
            None
        }
    }
}

/// Checks every string inside a webhook body as a template.
fn body_templates(sink: &mut Sink, sc: &Scalars, node: &Node) {
    match &node.value {
        NodeValue::Str(s) => sc.check(sink, s, node.pos, ScalarKind::Template),
        NodeValue::Seq(items) => items.iter().for_each(|i| body_templates(sink, sc, i)),
        NodeValue::Map(entries) => entries
            .iter()
            .for_each(|(_, v)| body_templates(sink, sc, v)),
        _ => {}
    }
}

/// The name of a stored secret. A value that cannot be a name is likely the secret itself,
/// pasted by mistake, so the error shows only its first characters.
fn secret_name(sink: &mut Sink, node: &Node) -> Option<String> {
    let name = non_empty_string(sink, node, "webhook `secret`")?;
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'));
    if !valid {
        sink.error(node.pos, format!("webhook `secret` names a stored secret (letters, digits, `-`, `_`, `/`), not the secret itself; found `{}`", redact(&name)));
        return None;
    }
    Some(name)
}

/// Shows only the first characters of a value that may be a secret pasted by mistake.
fn redact(text: &str) -> String {
    let head: String = text.chars().take(3).collect();
    format!("{head}…")
}
