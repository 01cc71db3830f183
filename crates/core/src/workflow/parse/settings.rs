//! `settings.yaml`: the store's details, the default sender, time zone, send window and
//! frequency cap, and the unsubscribe page.

use crate::diagnostic::Sink;
use crate::workflow::model::{FrequencyCap, SendWindow, Settings, StoreDetails};
use crate::workflow::units::{Duration, LocalTime};
use crate::workflow::yaml::{Node, NodeValue, Pos};

use super::map::Map;
use super::values::{
    https_url, mailbox, non_empty_string, positive_duration, send_window, timezone,
};

const SETTINGS_KEYS: &[&str] = &[
    "store",
    "from",
    "reply_to",
    "timezone",
    "send_window",
    "frequency_cap",
    "unsubscribe_url",
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
    let unsubscribe = unsubscribe_url(sink, &map, top, has_marketing)?;
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

/// `unsubscribe_url`: `None` when the URL is unusable, `Some(None)` when there is none (an
/// error too when any workflow is marketing).
fn unsubscribe_url(
    sink: &mut Sink,
    map: &Map,
    top: Pos,
    has_marketing: bool,
) -> Option<Option<url::Url>> {
    match map.get("unsubscribe_url") {
        Some(n) => https_url(sink, n, "`unsubscribe_url`").map(Some),
        None => {
            if has_marketing {
                sink.error(top, "settings.yaml is missing `unsubscribe_url`: marketing email must offer one-click unsubscribe");
            }
            Some(None)
        }
    }
}
