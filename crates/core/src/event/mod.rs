//! One store event: an EventBridge event (one JSON object per line) read into a [`StoreEvent`].
//!
//! The shape is an EventBridge event whose `detail` carries the customer:
//!
//! ```json
//! {"version": "0", "id": "5f1c...", "detail-type": "order.placed", "source": "store",
//!  "account": "123456789012", "time": "2026-03-01T10:00:00Z", "region": "eu-central-1",
//!  "resources": [], "detail": {"customer": {"id": "c-1001", "email": "ayse@example.com"},
//!  "order": {"id": "o-77", "total": 59.90, "currency": "TRY"}}}
//! ```
//!
//! [`parse_event`] checks what the runner relies on and nothing more:
//!
//! - required: `id` (a non-empty string, the idempotency key), `detail-type` (a non-empty
//!   string; any type is accepted, known or not), `time` (RFC 3339 with an offset, normalised to
//!   UTC), `detail` (an object), `detail.customer` (an object) and `detail.customer.id`;
//! - `detail.customer.id` is a non-empty string, or a non-negative whole number (Shopify's
//!   customer ids are integers), which is turned into its decimal string both in
//!   [`StoreEvent::customer_id`] and in `detail.customer.id`, so that templates, run keys and the
//!   store see one type whatever the source;
//! - the known profile fields of `detail.customer` are type-checked, because they end up in the
//!   stored profile and a wrong type there would break every later run: `email`, `first_name`,
//!   `last_name`, `timezone` (strings), `birthday` (a `YYYY-MM-DD` date, see [`Birthday`]),
//!   `accepts_marketing` (true/false), `orders_count` (a non-negative whole number) and `tags` (an
//!   array of strings). Each may be `null`, which clears the stored value. Other customer fields
//!   are custom attributes and are free;
//! - `source` is optional (a string); `version`, `account`, `region`, `resources` and the rest
//!   of `detail` (`order`, `shipment`, `review`, ...) are not checked here.
//!
//! Values are not judged beyond their type: an email address that is not valid, or a time zone
//! that is not an IANA name, is accepted here and dealt with where it is used (the sending
//! rules skip an invalid address; an invalid zone falls back to the store's).
//!
//! Errors are one line and name the event id (when it can be read, even from malformed JSON) and
//! the field with its full path. They end up in logs, so they describe the *type* of a bad value
//! and never echo a customer's value (address, name, birthday); the only value echoed is a bad
//! `time`, which is not personal data.

mod birthday;
pub mod catalog;
mod customer;
mod error;
mod scan;
mod strict;
mod time;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use birthday::Birthday;
pub use error::EventError;
pub use time::{EARLIEST_TIME, LATEST_TIME, TimeError, check_time_range, parse_time};

use error::{Ctx, kind, kind_of_bad_string};
use scan::scan_id;

/// The largest event accepted, in bytes: EventBridge's limit for one event (256 KB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// How much of an overlong line a reader keeps (see [`EventError::too_large`]): as much as is
/// scanned for its id.
pub const HEAD_BYTES: usize = scan::ID_SCAN_BYTES;

/// One store event, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreEvent {
    /// The idempotency key: the same id delivered twice has the effect of once.
    pub id: String,
    /// The canonical type (`detail-type`), e.g. `order.placed`; unknown types are kept as is.
    pub event_type: String,
    /// When it happened, in UTC.
    pub time: DateTime<Utc>,
    /// Who sent it (`source`), when given.
    pub source: Option<String>,
    /// `detail.customer.id` as a string (an integer id is turned into its decimal digits).
    pub customer_id: String,
    /// The event's `detail`, with `detail.customer.id` always a string (shared with the runs
    /// it starts and the template scopes that read it).
    pub detail: std::sync::Arc<Map<String, Value>>,
}

/// Parses one event, one line of a JSON-lines file.
///
/// A trailing line ending (`\n` or `\r\n`) is ignored; anything else, including an empty line
/// or a byte-order mark, must be one JSON object (a byte-order mark is ignored at the start of
/// a *file*, by its reader, not at the start of every line). An object with a key repeated in
/// it is refused (which of the two would count is anybody's guess). Callers reading a file skip
/// blank lines themselves. See the [module documentation](self) for what is checked.
pub fn parse_event(text: &str) -> Result<StoreEvent, EventError> {
    let mut root = json_object(without_line_ending(text))?;
    // The id first: every later error names it.
    let id = event_id(&root)?;
    let ctx = Ctx { id: &id };
    let event_type = event_type(&ctx, &root)?;
    let time = time(&ctx, &root)?;
    let source = source(&ctx, &root)?;
    let mut detail = match root.remove("detail") {
        None | Some(Value::Null) => return Err(ctx.missing("detail")),
        Some(Value::Object(map)) => map,
        Some(v) => return Err(ctx.wrong("detail", "an object", kind(&v))),
    };
    let customer_id = customer::check(&ctx, &mut detail)?;
    Ok(StoreEvent {
        id,
        event_type,
        time,
        source,
        customer_id,
        detail: std::sync::Arc::new(detail),
    })
}

/// The customer an input names, read leniently, for a dead letter of an input that did not
/// parse ([`crate::store::DeadLetter::customer_id`]): `detail.customer.id` of a JSON object,
/// as [`parse_event`] would read it (a non-empty string, or a non-negative whole number as its
/// digits), whatever else is wrong with the input. `None` when the text is not JSON or names
/// no customer there.
pub fn customer_named(text: &str) -> Option<String> {
    let root: Value = serde_json::from_str(without_line_ending(text)).ok()?;
    match root.get("detail")?.get("customer")?.get("id")? {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        v => non_empty_string(v),
    }
}

/// `text` without a trailing `\n` or `\r\n`.
fn without_line_ending(line: &str) -> &str {
    line.strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(line)
}

/// The line as a JSON object, if it is one and not over [`MAX_EVENT_BYTES`].
fn json_object(line: &str) -> Result<Map<String, Value>, EventError> {
    // Checked before parsing, so that a huge line costs no more than a byte scan for its id.
    if line.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            event_id: scan_id(line),
            bytes: line.len(),
        });
    }
    let value: Value = strict::from_str(line).map_err(|e| EventError::NotJson {
        event_id: scan_id(line),
        reason: e.to_string(),
    })?;
    match value {
        Value::Object(root) => Ok(root),
        other => Err(EventError::NotAnObject {
            found: kind(&other),
        }),
    }
}

/// `id`, a non-empty string.
fn event_id(root: &Map<String, Value>) -> Result<String, EventError> {
    match root.get("id") {
        None | Some(Value::Null) => Err(EventError::MissingField {
            event_id: None,
            field: "id",
        }),
        Some(v) => non_empty_string(v).ok_or_else(|| EventError::WrongType {
            event_id: None,
            field: "id".into(),
            expected: "a non-empty string",
            found: kind_of_bad_string(v),
        }),
    }
}

/// `detail-type`, a non-empty string.
fn event_type(ctx: &Ctx<'_>, root: &Map<String, Value>) -> Result<String, EventError> {
    match root.get("detail-type") {
        None | Some(Value::Null) => Err(ctx.missing("detail-type")),
        Some(v) => non_empty_string(v)
            .ok_or_else(|| ctx.wrong("detail-type", "a non-empty string", kind_of_bad_string(v))),
    }
}

/// `time`, an RFC 3339 time with an offset, in UTC, within [`EARLIEST_TIME`]..[`LATEST_TIME`].
fn time(ctx: &Ctx<'_>, root: &Map<String, Value>) -> Result<DateTime<Utc>, EventError> {
    match root.get("time") {
        None | Some(Value::Null) => Err(ctx.missing("time")),
        Some(Value::String(s)) => parse_time(s).map_err(|e| match e {
            TimeError::NotRfc3339 => EventError::BadTime {
                event_id: Some(ctx.id.to_owned()),
                value: s.clone(),
            },
            TimeError::OutOfRange => EventError::TimeOutOfRange {
                event_id: Some(ctx.id.to_owned()),
                value: s.clone(),
            },
        }),
        Some(v) => Err(ctx.wrong("time", "an RFC 3339 time string", kind(v))),
    }
}

/// `source`, an optional string.
fn source(ctx: &Ctx<'_>, root: &Map<String, Value>) -> Result<Option<String>, EventError> {
    match root.get("source") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(ctx.wrong("source", "a string", kind(v))),
    }
}

/// The string in `v` when it is a string with something other than white space in it.
fn non_empty_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
