//! What the canonical events carry and what a customer profile holds: the one list that
//! `nudge validate` checks templates and keys against and that `docs/EVENTS.md` documents.
//!
//! Fields are dotted paths under the event's `detail` (`order.items`); a list's elements are
//! not described further (`order.items` is known, what an item holds is not checked). Every
//! event also carries `customer` (the profile fields it updates) and may carry `event_id`.
//! Custom event types (any other `detail-type`) are accepted and not checked.

/// A canonical event type and the fields of its `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// The `detail-type` (`order.placed`).
    pub name: &'static str,
    /// What it means, in one line.
    pub about: &'static str,
    /// The fields of `detail` besides `customer` and `event_id`, as dotted paths.
    pub fields: &'static [&'static str],
}

const ORDER_FULL: [&str; 6] = [
    "order",
    "order.id",
    "order.total",
    "order.currency",
    "order.items",
    "order.checkout_id",
];

/// The fields of `order.shipped` and `order.delivered`: the order and its shipment.
const SHIPPED_ORDER: [&str; 7] = [
    "order",
    "order.id",
    "order.items",
    "shipment",
    "shipment.carrier",
    "shipment.tracking_number",
    "shipment.tracking_url",
];

/// Every canonical event type, in the order `docs/EVENTS.md` lists them.
pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "customer.created",
        about: "a new customer account",
        fields: &[],
    },
    EventType {
        name: "customer.updated",
        about: "profile fields changed (consent, name, tags, ...)",
        fields: &[],
    },
    EventType {
        name: "order.placed",
        about: "an order was paid for",
        fields: &ORDER_FULL,
    },
    EventType {
        name: "order.cancelled",
        about: "an order was cancelled; Nudge takes it back out of the counted order facts",
        fields: &ORDER_FULL,
    },
    EventType {
        name: "order.shipped",
        about: "an order (or part of it) left the warehouse",
        fields: &SHIPPED_ORDER,
    },
    EventType {
        name: "order.delivered",
        about: "the carrier reported an order delivered",
        fields: &SHIPPED_ORDER,
    },
    EventType {
        name: "checkout.started",
        about: "a customer started (or changed) a checkout and has not paid yet",
        fields: &[
            "checkout",
            "checkout.id",
            "checkout.url",
            "checkout.total",
            "checkout.currency",
            "checkout.items",
        ],
    },
    EventType {
        name: "review.submitted",
        about: "the customer reviewed a product of an order",
        fields: &[
            "order",
            "order.id",
            "review",
            "review.sku",
            "review.rating",
            "review.title",
            "review.body",
        ],
    },
    EventType {
        name: "customer.unsubscribed",
        about: "the customer unsubscribed from marketing email",
        fields: &[],
    },
    EventType {
        name: "email.bounced",
        about: "an email bounced; `bounce_type: hard` suppresses all mail to the customer",
        fields: &["bounce_type"],
    },
    EventType {
        name: "email.complained",
        about: "the customer marked an email as spam; suppresses all mail to them",
        fields: &[],
    },
];

/// Fields every event's `detail` may carry, whatever its type.
pub const COMMON_FIELDS: &[&str] = &["customer", "event_id"];

/// The canonical customer attributes: what events may set and templates read.
pub const CUSTOMER_ATTRIBUTES: &[&str] = &[
    "id",
    "email",
    "first_name",
    "last_name",
    "timezone",
    "birthday",
    "accepts_marketing",
    "tags",
    "orders_count",
];

/// The order facts Nudge counts from the `order.placed` and `order.cancelled` events it sees.
pub const COUNTED_ATTRIBUTES: &[&str] = &[
    "orders_count",
    "total_spent",
    "first_order_at",
    "last_order_at",
];

/// The built-in customer attributes that hold dates (`YYYY-MM-DD` or RFC 3339): the only
/// built-in ones a date trigger may read.
pub const DATE_ATTRIBUTES: &[&str] = &["birthday", "first_order_at", "last_order_at"];

/// State Nudge keeps beside the profile under names a workflow might think are attributes.
const STATE_NAMES: &[&str] = &["unsubscribed", "suppressed"];

/// Whether `name` is a built-in attribute (canonical or counted, or one of Nudge's own state
/// names) that never holds a date.
pub fn is_non_date_attribute(name: &str) -> bool {
    !DATE_ATTRIBUTES.contains(&name)
        && CUSTOMER_ATTRIBUTES
            .iter()
            .chain(COUNTED_ATTRIBUTES)
            .chain(STATE_NAMES)
            .any(|a| *a == name)
}

/// The names of the canonical event types.
pub fn event_type_names() -> impl Iterator<Item = &'static str> {
    EVENT_TYPES.iter().map(|t| t.name)
}

/// The canonical event type named `name`, if it is one.
pub fn event_type(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|t| t.name == name)
}

/// What the catalog says about a path under an event's `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldCheck {
    /// The event type carries it (or something under it: a list's elements, a customer field).
    Known,
    /// A custom event type: nothing is known, nothing is checked.
    Unchecked,
    /// The event type does not carry it; `known` lists what it carries at that level.
    Unknown {
        /// The longest known prefix of the path (`order` for `order.itemz`), empty at the top.
        parent: String,
        /// The fields known one level below `parent`.
        known: Vec<&'static str>,
    },
}

/// Whether events of type `event_type` carry `path` (`["order", "items"]`). Under `customer`
/// every attribute is accepted here: customer attributes are checked as `customer.*`.
pub fn check_field(event_type: &str, path: &[&str]) -> FieldCheck {
    let Some(ty) = self::event_type(event_type) else {
        return FieldCheck::Unchecked;
    };
    let Some(first) = path.first() else {
        return FieldCheck::Known;
    };
    if COMMON_FIELDS.contains(first) {
        return FieldCheck::Known;
    }
    let all = || COMMON_FIELDS.iter().chain(ty.fields.iter()).copied();
    let mut parent = String::new();
    for depth in 1..=path.len() {
        let prefix = path[..depth].join(".");
        if !all().any(|f| f == prefix) {
            let below = |f: &&'static str| {
                let rest = if parent.is_empty() {
                    Some(*f)
                } else {
                    f.strip_prefix(parent.as_str())
                        .and_then(|r| r.strip_prefix('.'))
                };
                rest.filter(|r| !r.contains('.'))
            };
            let known = all().filter(|f| below(f).is_some()).collect::<Vec<_>>();
            // A known field with nothing known below it (`order.items`) holds anything.
            if depth > 1 && known.is_empty() {
                return FieldCheck::Known;
            }
            let known = known
                .into_iter()
                .map(|f| f.rsplit('.').next().unwrap_or(f))
                .collect();
            return FieldCheck::Unknown { parent, known };
        }
        parent = prefix;
    }
    FieldCheck::Known
}

/// Whether events of type `event_type` may carry the value at `path`: `true` for custom types
/// and for canonical types that carry it.
pub fn may_carry(event_type: &str, path: &[&str]) -> bool {
    !matches!(check_field(event_type, path), FieldCheck::Unknown { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fields_and_what_lies_below_a_leaf_are_known() {
        assert_eq!(
            check_field("order.placed", &["order", "id"]),
            FieldCheck::Known
        );
        assert_eq!(
            check_field("order.placed", &["order", "items", "0"]),
            FieldCheck::Known
        );
        assert_eq!(
            check_field("order.shipped", &["customer", "nickname"]),
            FieldCheck::Known
        );
        assert_eq!(
            check_field("order.shipped", &["event_id"]),
            FieldCheck::Known
        );
        assert_eq!(
            check_field("my.custom", &["anything", "at", "all"]),
            FieldCheck::Unchecked
        );
    }

    #[test]
    fn unknown_fields_name_their_level_and_its_fields() {
        match check_field("order.placed", &["order", "itemz"]) {
            FieldCheck::Unknown { parent, known } => {
                assert_eq!(parent, "order");
                assert!(known.contains(&"items") && known.contains(&"checkout_id"));
            }
            other => panic!("{other:?}"),
        }
        match check_field("order.placed", &["checkout", "id"]) {
            FieldCheck::Unknown { parent, known } => {
                assert_eq!(parent, "");
                assert!(known.contains(&"order") && known.contains(&"customer"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!may_carry("order.placed", &["checkout", "id"]));
        assert!(may_carry("order.placed", &["order", "checkout_id"]));
        assert!(may_carry("checkout.started", &["checkout", "id"]));
    }

    #[test]
    fn dates_are_told_from_the_other_built_in_attributes() {
        for a in [
            "birthday",
            "first_order_at",
            "last_order_at",
            "pet_birthday",
        ] {
            assert!(!is_non_date_attribute(a), "{a}");
        }
        for a in [
            "id",
            "email",
            "first_name",
            "orders_count",
            "total_spent",
            "tags",
            "suppressed",
        ] {
            assert!(is_non_date_attribute(a), "{a}");
        }
    }

    #[test]
    fn every_type_has_a_unique_name_and_parents_before_children() {
        let mut names: Vec<_> = EVENT_TYPES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENT_TYPES.len());
        for t in EVENT_TYPES {
            for f in t.fields {
                if let Some((parent, _)) = f.rsplit_once('.') {
                    assert!(
                        t.fields.contains(&parent),
                        "{}: {f} without {parent}",
                        t.name
                    );
                }
            }
        }
    }
}
