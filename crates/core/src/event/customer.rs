//! `detail.customer`: its id and the types of the known profile fields.

use serde_json::{Map, Value};

use super::Birthday;
use super::error::{Ctx, EventError, kind, kind_of_bad_string, kind_of_number};
use super::non_empty_string;

/// Checks `detail.customer` (an object with an id, and known profile fields of the right types)
/// and returns the customer id; an integer id is written back as its string, so that
/// templates, run keys and the store see one type whatever the source.
pub(super) fn check(ctx: &Ctx<'_>, detail: &mut Map<String, Value>) -> Result<String, EventError> {
    let customer = match detail.get_mut("customer") {
        None | Some(Value::Null) => return Err(ctx.missing("detail.customer")),
        Some(Value::Object(map)) => map,
        Some(v) => return Err(ctx.wrong("detail.customer", "an object", kind(v))),
    };
    let customer_id = customer_id(ctx, customer)?;
    customer.insert("id".into(), Value::String(customer_id.clone()));
    check_profile(ctx, customer)?;
    Ok(customer_id)
}

/// `detail.customer.id`: a non-empty string, or a non-negative whole number as its digits.
fn customer_id(ctx: &Ctx<'_>, customer: &Map<String, Value>) -> Result<String, EventError> {
    const FIELD: &str = "detail.customer.id";
    const EXPECTED: &str = "a non-empty string or a non-negative whole number";
    match customer.get("id") {
        None | Some(Value::Null) => Err(ctx.missing(FIELD)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) => Ok(n.to_string()),
            None => Err(ctx.wrong(FIELD, EXPECTED, kind_of_number(n))),
        },
        Some(v) => {
            non_empty_string(v).ok_or_else(|| ctx.wrong(FIELD, EXPECTED, kind_of_bad_string(v)))
        }
    }
}

/// Type-checks the known profile fields; other fields are custom attributes and are free.
fn check_profile(ctx: &Ctx<'_>, customer: &Map<String, Value>) -> Result<(), EventError> {
    const STRING: &str = "a string (or null)";
    for (name, field) in [
        ("email", "detail.customer.email"),
        ("first_name", "detail.customer.first_name"),
        ("last_name", "detail.customer.last_name"),
        ("timezone", "detail.customer.timezone"),
    ] {
        match customer.get(name) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(v) => return Err(ctx.wrong(field, STRING, kind(v))),
        }
    }

    match customer.get("birthday") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if Birthday::parse(s).is_none() {
                return Err(EventError::BadDate {
                    event_id: Some(ctx.id.to_owned()),
                    field: "detail.customer.birthday",
                });
            }
        }
        Some(v) => {
            return Err(ctx.wrong(
                "detail.customer.birthday",
                "a date \"YYYY-MM-DD\" (or null)",
                kind(v),
            ));
        }
    }

    match customer.get("accepts_marketing") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(v) => {
            return Err(ctx.wrong(
                "detail.customer.accepts_marketing",
                "true/false (or null)",
                kind(v),
            ));
        }
    }

    match customer.get("orders_count") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.is_u64() => {}
        Some(v) => {
            let found = match v {
                Value::Number(n) => kind_of_number(n),
                other => kind(other),
            };
            return Err(ctx.wrong(
                "detail.customer.orders_count",
                "a non-negative whole number (or null)",
                found,
            ));
        }
    }

    match customer.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tags)) => {
            if let Some((i, v)) = tags.iter().enumerate().find(|(_, v)| !v.is_string()) {
                return Err(ctx.wrong(format!("detail.customer.tags[{i}]"), "a string", kind(v)));
            }
        }
        Some(v) => {
            return Err(ctx.wrong(
                "detail.customer.tags",
                "an array of strings (or null)",
                kind(v),
            ));
        }
    }
    Ok(())
}
