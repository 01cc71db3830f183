//! What starts a run: a store event (`event`, `when`) or a yearly profile date (`date`, `at`,
//! `offset`, `when`); and the event filters that triggers, goals and `wait_for` share.

use crate::diagnostic::{Sink, did_you_mean};
use crate::workflow::model::{DateTrigger, EventFilter, Trigger};
use crate::workflow::units::{Duration, LocalTime};
use crate::workflow::yaml::Node;

use super::map::Map;
use super::names::is_attribute_name;
use super::scalars::{Scalars, expr};
use super::values::{duration, non_empty_string, string, time};
use crate::event::catalog;

/// `trigger`: exactly one of `event` and `date`.
pub(super) fn trigger(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<Trigger> {
    let map = Map::of(sink, node, "`trigger`")?;
    match (map.get("event"), map.get("date")) {
        (Some(_), Some(_)) => {
            let key = map.key_node("date").expect("present");
            sink.error(key.pos, "a trigger is either `event` or `date`, not both");
            None
        }
        (Some(_), None) => event_filter(sink, sc, node, "`trigger`").map(Trigger::Event),
        (None, Some(date)) => date_trigger(sink, sc, &map, date).map(Trigger::Date),
        (None, None) => {
            map.deny_unknown(
                sink,
                &["event", "date", "when", "at", "offset"],
                "`trigger`",
            );
            sink.error(
                node.pos,
                "`trigger` needs `event: <type>` or `date: customer.<attribute>`",
            );
            None
        }
    }
}

/// A date trigger; `date` is the node under its `date` key. `at` defaults to 09:00 and
/// `offset` to zero.
fn date_trigger(sink: &mut Sink, sc: &Scalars, map: &Map, date: &Node) -> Option<DateTrigger> {
    map.deny_unknown(sink, &["date", "at", "offset", "when"], "date `trigger`");
    let attribute = date_attribute(sink, date);
    let at = map
        .get("at")
        .map_or(LocalTime::from_hm(9, 0), |n| time(sink, n, "`at`"));
    let offset = map
        .get("offset")
        .map_or(Some(Duration::from_minutes(0)), |n| date_offset(sink, n));
    let when = map.get("when").and_then(|n| expr(sink, sc, n, "`when`"));
    Some(DateTrigger {
        attribute: attribute?,
        attribute_pos: date.pos,
        at: at?,
        offset: offset?,
        when,
    })
}

/// `customer.<attribute>`, for an attribute not known to hold something other than a date.
fn date_attribute(sink: &mut Sink, date: &Node) -> Option<String> {
    let text = string(sink, date, "`date`")?;
    match text.strip_prefix("customer.") {
        Some(a) if is_attribute_name(a) => {
            if catalog::is_non_date_attribute(a) {
                sink.error(
                    date.pos,
                    format!("`customer.{a}` is not a date; a date trigger needs a date attribute such as `customer.birthday`"),
                );
                return None;
            }
            Some(a.to_owned())
        }
        _ => {
            sink.error(
                date.pos,
                format!("`{text}` is not a profile attribute; write `customer.<attribute>`, e.g. `customer.birthday`"),
            );
            None
        }
    }
}

/// A signed shift from the date, within a year of it.
fn date_offset(sink: &mut Sink, node: &Node) -> Option<Duration> {
    let d = duration(sink, node, "`offset`", true)?;
    if d.minutes().abs() > 366 * 24 * 60 {
        sink.error(node.pos, "`offset` must be within a year of the date");
        return None;
    }
    Some(d)
}

/// `{event, when?}`: a trigger.
pub(super) fn event_filter(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
    what: &str,
) -> Option<EventFilter> {
    let map = Map::of(sink, node, what)?;
    map.deny_unknown(sink, &["event", "when"], what);
    filter_fields(sink, sc, &map, node, what, false)
}

/// `{event, when?, key?}`: a goal in `exit_when`.
pub(super) fn goal_filter(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<EventFilter> {
    const WHAT: &str = "a goal in `exit_when`";
    let map = Map::of(sink, node, WHAT)?;
    map.deny_unknown(sink, &["event", "when", "key"], WHAT);
    filter_fields(sink, sc, &map, node, WHAT, true)
}

/// The `event`, `when` and (`with_key`) `key` of the mapping `node`; the caller has reported
/// unknown keys. Whether an entry may have a `key` at all (the workflow must have one) is
/// checked with the whole workflow, in `key`.
pub(super) fn filter_fields(
    sink: &mut Sink,
    sc: &Scalars,
    map: &Map,
    node: &Node,
    what: &str,
    with_key: bool,
) -> Option<EventFilter> {
    let event_node = map.required(sink, "event", node.pos, what);
    let event = event_node.and_then(|n| event_type(sink, n));
    let when = map.get("when").and_then(|n| expr(sink, sc, n, "`when`"));
    let key = map
        .get("key")
        .filter(|_| with_key)
        .and_then(|n| expr(sink, sc, n, "`key`"));
    Some(EventFilter {
        event: event?,
        pos: event_node.map_or(node.pos, |n| n.pos),
        when,
        key,
    })
}

/// An event type. Custom types are allowed, so one close to a store event type is only a
/// warning.
pub(super) fn event_type(sink: &mut Sink, node: &Node) -> Option<String> {
    let ty = non_empty_string(sink, node, "`event`")?;
    if catalog::event_type(&ty).is_none()
        && let Some(near) = did_you_mean(&ty, catalog::event_type_names())
    {
        sink.warn(
            node.pos,
            format!("`{ty}` is not a store event type; did you mean `{near}`? (custom types are allowed)"),
        );
    }
    Some(ty)
}
