//! The `update_profile` step: attributes to `set` (string values are templates), tags to add
//! and tags to remove. Identity and consent attributes are not a workflow's to write.

use crate::diagnostic::Sink;
use crate::workflow::model::{ProfileValue, TemplateText, UpdateProfile};
use crate::workflow::template::ScalarKind;
use crate::workflow::yaml::{Node, NodeValue};

use super::super::PROTECTED_ATTRIBUTES;
use super::super::map::Map;
use super::super::names::is_attribute_name;
use super::super::scalars::Scalars;
use super::super::values::tag_list;

/// Reads the body of an `update_profile` step, which must change something.
pub(super) fn update_profile(sink: &mut Sink, sc: &Scalars, node: &Node) -> Option<UpdateProfile> {
    let map = Map::of(sink, node, "`update_profile`")?;
    map.deny_unknown(
        sink,
        &["set", "add_tags", "remove_tags"],
        "`update_profile`",
    );
    let set = map
        .get("set")
        .map_or(Some(Vec::new()), |n| attributes_to_set(sink, sc, n));
    let add_tags = map
        .get("add_tags")
        .map_or(Some(Vec::new()), |n| tag_list(sink, n, "`add_tags`"));
    let remove_tags = map
        .get("remove_tags")
        .map_or(Some(Vec::new()), |n| tag_list(sink, n, "`remove_tags`"));
    let (add_tags, remove_tags) = (add_tags?, remove_tags?);
    if let Some(set) = &set
        && set.is_empty()
        && add_tags.is_empty()
        && remove_tags.is_empty()
    {
        sink.error(
            node.pos,
            "`update_profile` changes nothing; give it `set`, `add_tags` or `remove_tags`",
        );
        return None;
    }
    Some(UpdateProfile {
        set: set?,
        add_tags,
        remove_tags,
    })
}

/// `set`: attribute names with their values; `None` when any name is refused (each is
/// reported).
fn attributes_to_set(
    sink: &mut Sink,
    sc: &Scalars,
    node: &Node,
) -> Option<Vec<(String, ProfileValue)>> {
    let m = Map::of(sink, node, "`set`")?;
    let mut ok = true;
    let mut set = Vec::new();
    for (key, value) in m.entries {
        match settable_name(sink, key) {
            Some(name) => set.push((name.to_owned(), profile_value(sink, sc, value))),
            None => ok = false,
        }
    }
    ok.then_some(set)
}

/// The attribute a `set` key names, if a workflow may write it.
fn settable_name<'n>(sink: &mut Sink, key: &'n Node) -> Option<&'n str> {
    let Some(name) = key.as_str() else {
        sink.error(key.pos, "attribute names must be text");
        return None;
    };
    if PROTECTED_ATTRIBUTES.contains(&name) {
        sink.error(
            key.pos,
            format!(
                "`{name}` cannot be set by a workflow: identity and consent come from the customer"
            ),
        );
        None
    } else if name == "tags" {
        sink.error(
            key.pos,
            "change tags with `add_tags` and `remove_tags`, not `set`",
        );
        None
    } else if !is_attribute_name(name) {
        sink.error(
            key.pos,
            format!("attribute `{name}` may hold only lowercase letters, digits and `_`"),
        );
        None
    } else {
        Some(name)
    }
}

/// A value to set: a string is a template, anything else a literal.
fn profile_value(sink: &mut Sink, sc: &Scalars, value: &Node) -> ProfileValue {
    match &value.value {
        NodeValue::Str(s) => {
            sc.check(sink, s, value.pos, ScalarKind::Template);
            ProfileValue::Template(TemplateText {
                source: s.clone(),
                pos: value.pos,
            })
        }
        _ => ProfileValue::Literal(value.to_json()),
    }
}
