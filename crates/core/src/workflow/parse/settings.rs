//! `settings.yaml`: the store's details, the default sender, time zone, send window and
//! frequency cap, and the unsubscribe page.

use crate::diagnostic::Sink;
use crate::diagnostic::suggestion;
use crate::event::catalog::{COUNTED_ATTRIBUTES, CUSTOMER_ATTRIBUTES};
use crate::workflow::model::{
    AttributeKind, DeclaredAttribute, FrequencyCap, SendWindow, Settings, StoreDetails,
};
use crate::workflow::units::{Duration, LocalTime};
use crate::workflow::yaml::{Node, NodeValue};

use super::map::Map;
use super::names::is_attribute_name;
use super::values::{
    https_url, list, mailbox, non_empty_string, positive_duration, send_window, timezone,
};

const SETTINGS_KEYS: &[&str] = &[
    "store",
    "from",
    "reply_to",
    "timezone",
    "send_window",
    "frequency_cap",
    "unsubscribe_url",
    "currency",
    "profile",
];

/// Parses `settings.yaml`. `has_marketing` says whether any workflow is marketing, which makes
/// the postal address and unsubscribe page required.
pub fn settings(sink: &mut Sink, root: &Node, has_marketing: bool) -> Option<Settings> {
    let map = Map::of(sink, root, "settings.yaml")?;
    map.deny_unknown(sink, SETTINGS_KEYS, "settings.yaml");
    let top = root.pos;

    let store = map
        .required(sink, "store", top, "settings.yaml")
        .and_then(|n| store_details(sink, n, has_marketing));
    let from = map
        .required(sink, "from", top, "settings.yaml")
        .and_then(|n| mailbox(sink, n, "`from`"));
    let reply_to = map.get("reply_to").map(|n| mailbox(sink, n, "`reply_to`"));
    let tz = map
        .required(sink, "timezone", top, "settings.yaml")
        .and_then(|n| timezone(sink, n));
    let window = match map.get("send_window") {
        Some(n) => send_window(sink, n, "`send_window`"),
        None => Some(default_send_window()),
    };
    let cap = match map.get("frequency_cap") {
        Some(n) => frequency_cap(sink, n),
        None => Some(default_frequency_cap()),
    };
    // Each read reports its own problems; `?` comes after all of them, so every one is shown.
    let currency = map.get("currency").map(|n| currency(sink, n));
    let profile = match map.get("profile") {
        Some(n) => declared_attributes(sink, n),
        None => Some(Vec::new()),
    };
    let unsubscribe = unsubscribe_url(sink, &map)?;
    Some(Settings {
        store: store?,
        from: from?,
        reply_to: match reply_to {
            Some(r) => Some(r?),
            None => None,
        },
        timezone: tz?,
        send_window: window?,
        frequency_cap: cap?,
        unsubscribe_url: unsubscribe,
        currency: match currency {
            Some(c) => Some(c?),
            None => None,
        },
        profile: profile?,
    })
}

/// `currency`: an ISO 4217 code, three letters (`TRY`, `eur` is read as `EUR`).
fn currency(sink: &mut Sink, node: &Node) -> Option<String> {
    let text = non_empty_string(sink, node, "`currency`")?;
    if text.len() == 3 && text.chars().all(|c| c.is_ascii_alphabetic()) {
        Some(text.to_ascii_uppercase())
    } else {
        sink.error(
            node.pos,
            "`currency` must be a three-letter ISO 4217 code, such as `EUR` or `TRY`",
        );
        None
    }
}

/// `profile`: the store's own customer attributes, `[{name: loyalty_tier, type: text}]`.
/// A name must be an attribute name, declared once, and not a canonical or counted one.
fn declared_attributes(sink: &mut Sink, node: &Node) -> Option<Vec<DeclaredAttribute>> {
    let items = list(sink, node, "`profile`")?;
    let mut out: Vec<DeclaredAttribute> = Vec::new();
    let mut ok = true;
    for item in items {
        match declared_attribute(sink, item, &out) {
            Some(a) => out.push(a),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn declared_attribute(
    sink: &mut Sink,
    node: &Node,
    before: &[DeclaredAttribute],
) -> Option<DeclaredAttribute> {
    let m = Map::of(sink, node, "an entry of `profile`")?;
    m.deny_unknown(sink, &["name", "type"], "an entry of `profile`");
    let name_node = m.required(sink, "name", node.pos, "an entry of `profile`");
    let name = name_node.and_then(|n| non_empty_string(sink, n, "`name`"));
    let kind = m
        .required(sink, "type", node.pos, "an entry of `profile`")
        .and_then(|n| {
            let text = non_empty_string(sink, n, "`type`")?;
            let found = AttributeKind::ALL.iter().find(|(k, _)| *k == text);
            if found.is_none() {
                let names = AttributeKind::ALL.iter().map(|(k, _)| *k);
                sink.error(
                    n.pos,
                    format!(
                        "unknown attribute type `{text}`{} (types: text, number, boolean, date, list)",
                        suggestion(&text, names)
                    ),
                );
            }
            found.map(|(_, k)| *k)
        });
    let (name, name_node) = (name?, name_node?);
    if !is_attribute_name(&name) {
        sink.error(
            name_node.pos,
            format!("`{name}` is not an attribute name: lowercase letters, digits and `_`, not starting with a digit"),
        );
        return None;
    }
    if CUSTOMER_ATTRIBUTES.contains(&name.as_str()) || COUNTED_ATTRIBUTES.contains(&name.as_str()) {
        sink.error(
            name_node.pos,
            format!("`{name}` is a built-in customer attribute: it needs no declaration"),
        );
        return None;
    }
    if let Some(first) = before.iter().find(|a| a.name == name) {
        sink.error(
            name_node.pos,
            format!(
                "`{name}` is declared twice (first at line {})",
                first.pos.line
            ),
        );
        return None;
    }
    Some(DeclaredAttribute {
        name,
        kind: kind?,
        pos: name_node.pos,
    })
}

/// Sending hours when `settings.yaml` gives none: 09:00 to 21:00.
fn default_send_window() -> SendWindow {
    SendWindow {
        start: LocalTime::from_hm(9, 0).expect("valid"),
        end: LocalTime::from_hm(21, 0).expect("valid"),
    }
}

/// The cap when `settings.yaml` gives none: one marketing email per 16 hours.
fn default_frequency_cap() -> FrequencyCap {
    FrequencyCap {
        max: 1,
        per: Duration::from_minutes(16 * 60),
    }
}

/// `store`: name, https URL (kept without a trailing `/`) and postal address, which marketing
/// email must carry.
fn store_details(sink: &mut Sink, node: &Node, has_marketing: bool) -> Option<StoreDetails> {
    let m = Map::of(sink, node, "`store`")?;
    m.deny_unknown(sink, &["name", "url", "postal_address"], "`store`");
    let name = m
        .required(sink, "name", node.pos, "`store`")
        .and_then(|n| non_empty_string(sink, n, "`store.name`"));
    let url = m
        .required(sink, "url", node.pos, "`store`")
        .and_then(|n| https_url(sink, n, "`store.url`"));
    let postal = match m.get("postal_address") {
        Some(n) => Some(non_empty_string(sink, n, "`store.postal_address`")?),
        None if has_marketing => {
            sink.error(node.pos, "`store` is missing `postal_address`: marketing email must carry the store's postal address");
            None
        }
        None => None,
    };
    Some(StoreDetails {
        name: name?,
        url: url?.as_str().trim_end_matches('/').to_owned(),
        postal_address: postal,
    })
}

/// `frequency_cap`: `max` emails (1 to 1000) `per` a positive duration.
fn frequency_cap(sink: &mut Sink, node: &Node) -> Option<FrequencyCap> {
    let m = Map::of(sink, node, "`frequency_cap`")?;
    m.deny_unknown(sink, &["max", "per"], "`frequency_cap`");
    let max = m
        .required(sink, "max", node.pos, "`frequency_cap`")
        .and_then(|n| match n.value {
            NodeValue::Int(i) if (1..=1000).contains(&i) => Some(i as u32),
            _ => {
                sink.error(
                    n.pos,
                    "`frequency_cap.max` must be a whole number from 1 to 1000",
                );
                None
            }
        });
    let per = m
        .required(sink, "per", node.pos, "`frequency_cap`")
        .and_then(|n| positive_duration(sink, n, "`frequency_cap.per`"));
    Some(FrequencyCap {
        max: max?,
        per: per?,
    })
}

/// `unsubscribe_url`: `None` when the URL is unusable, `Some(None)` when there is none. It is
/// optional: without it the deployed functions link to the `unsubscribe` function's own URL
/// (the SAM template passes it in), and `simulate` to `NUDGE_UNSUBSCRIBE_URL` or a placeholder.
fn unsubscribe_url(sink: &mut Sink, map: &Map) -> Option<Option<url::Url>> {
    match map.get("unsubscribe_url") {
        Some(n) => https_url(sink, n, "`unsubscribe_url`").map(Some),
        None => Some(None),
    }
}
