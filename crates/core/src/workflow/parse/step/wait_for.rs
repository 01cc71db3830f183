//! The `wait_for` step: wait for an event (`event`, `when`, its own `key`) up to a `timeout`.

use crate::diagnostic::Sink;
use crate::workflow::model::WaitFor;
use crate::workflow::yaml::Node;

use super::super::map::Map;
use super::super::scalars::Scalars;
use super::super::trigger::filter_fields;
use super::super::values::positive_duration;
use super::wait::warn_over_a_year;

/// Reads the body of a `wait_for` step.
pub(super) fn wait_for(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<WaitFor> {
    let map = Map::of(sink, node, "`wait_for`")?;
    map.deny_unknown(sink, &["event", "when", "key", "timeout"], "`wait_for`");
    let filter = filter_fields(sink, sc, &map, node, "`wait_for`", true);
    let timeout = map
        .required_hint(
            sink,
            "timeout",
            node.pos,
            "`wait_for`",
            ": how long to wait before going on",
        )
        .and_then(|n| {
            let d = positive_duration(sink, n, "`timeout`")?;
            warn_over_a_year(sink, n.pos, "timeout", d);
            Some(d)
        });
    Some(WaitFor {
        filter: filter?,
        timeout: timeout?,
    })
}
