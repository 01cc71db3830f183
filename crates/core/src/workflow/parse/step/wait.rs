//! The `wait` step: a duration (`wait: 3d`) or a local time (`wait: {until: "09:00"}`).

use crate::diagnostic::Sink;
use crate::workflow::model::Wait;
use crate::workflow::units::Duration;
use crate::workflow::yaml::{Node, NodeValue, Pos};

use super::super::map::Map;
use super::super::values::{positive_duration, time};

const YEAR_MINUTES: i64 = 365 * 24 * 60;

/// Reads the body of a `wait` step.
pub(super) fn wait(sink: &mut Sink, node: &Node) -> Option<Wait> {
    if let NodeValue::Map(_) = node.value {
        let map = Map::of(sink, node, "`wait`")?;
        map.deny_unknown(sink, &["until"], "`wait`");
        let until = map.required(sink, "until", node.pos, "`wait`")?;
        return time(sink, until, "`until`").map(Wait::Until);
    }
    let d = positive_duration(sink, node, "`wait`")?;
    warn_over_a_year(sink, node.pos, "wait", d);
    Some(Wait::For(d))
}

/// Warns when a pause under `key`, written at `pos`, is longer than a year: allowed, but rarely
/// meant.
pub(super) fn warn_over_a_year(sink: &mut Sink, pos: Pos, key: &str, d: Duration) {
    if d.minutes() > YEAR_MINUTES {
        sink.warn(
            pos,
            format!("`{key}: {d}` is longer than a year; is that intended?"),
        );
    }
}
