//! One store event: an EventBridge event (one JSON object per line) read into a [`StoreEvent`].
//!
//! The shape is fixed by the contract (`shared/spec/events-and-cli.md`):
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

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

/// The largest event accepted, in bytes: EventBridge's limit for one event (256 KB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// How much of a line is scanned for an event id when the line is too large or not valid JSON.
/// EventBridge writes the id near the start, but producers that sort keys (serde_json's default
/// map does) put it after `detail`, so the scan goes well past the limit; it only looks at
/// bytes, which costs little next to reading the line.
const ID_SCAN_BYTES: usize = 4 * MAX_EVENT_BYTES;

/// At most this many characters of an id or a time are shown in an error message.
const SHOWN_CHARS: usize = 80;

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

/// Why a line is not a [`StoreEvent`]. Every message is one line, names the event id when it
/// could be read and the field at fault, and never includes a customer's address or name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Over [`MAX_EVENT_BYTES`]; rejected before parsing.
    #[error("{}: {bytes} bytes, over EventBridge's limit of {max} bytes", Label(.event_id), max = MAX_EVENT_BYTES)]
    TooLarge {
        /// The id, when it could be read from the start of the line.
        event_id: Option<String>,
        /// The size of the line (without its line ending).
        bytes: usize,
    },
    /// Not valid JSON.
    #[error("{}: not valid JSON: {reason}", Label(.event_id))]
    NotJson {
        /// The id, when it could be read before the point where the JSON breaks.
        event_id: Option<String>,
        /// What the JSON parser said, with the line and column.
        reason: String,
    },
    /// Valid JSON, but not an object.
    #[error("event: expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead (`an array`, `a string`, ...).
        found: &'static str,
    },
    /// A required field is absent.
    #[error("{}: {field}: missing (required)", Label(.event_id))]
    MissingField {
        /// The event id, when readable.
        event_id: Option<String>,
        /// The field's full path, e.g. `detail.customer.id`.
        field: &'static str,
    },
    /// A field holds a value of the wrong type (or an empty string where a value is required).
    #[error("{}: {field}: expected {expected}, found {found}", Label(.event_id))]
    WrongType {
        /// The event id, when readable.
        event_id: Option<String>,
        /// The field's full path, e.g. `detail.customer.accepts_marketing` or
        /// `detail.customer.tags[2]`.
        field: String,
        /// What the field must hold.
        expected: &'static str,
        /// What it holds, described by kind (`a string`, `a negative number`), never the value.
        found: &'static str,
    },
    /// `time` is a string but not an RFC 3339 time.
    #[error("{}: time: {} is not an RFC 3339 time with an offset, such as 2026-03-01T10:00:00Z", Label(.event_id), Shown(.value))]
    BadTime {
        /// The event id, when readable.
        event_id: Option<String>,
        /// The text found (not personal data, so it is shown, truncated).
        value: String,
    },
    /// A date field (`detail.customer.birthday`) is a string but not a `YYYY-MM-DD` date.
    #[error("{}: {field}: expected a date \"YYYY-MM-DD\" (or null), found a string that is not one", Label(.event_id))]
    BadDate {
        /// The event id, when readable.
        event_id: Option<String>,
        /// The field's full path.
        field: &'static str,
    },
}

impl EventError {
    /// The id of the event at fault, when it could be read.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            EventError::NotAnObject { .. } => None,
            EventError::TooLarge { event_id, .. }
            | EventError::NotJson { event_id, .. }
            | EventError::MissingField { event_id, .. }
            | EventError::WrongType { event_id, .. }
            | EventError::BadTime { event_id, .. }
            | EventError::BadDate { event_id, .. } => event_id.as_deref(),
        }
    }

    /// The full path of the field at fault (`time`, `detail.customer.id`, ...), when the problem
    /// is one field's rather than the whole line's.
    pub fn field(&self) -> Option<&str> {
        match self {
            EventError::TooLarge { .. }
            | EventError::NotJson { .. }
            | EventError::NotAnObject { .. } => None,
            EventError::MissingField { field, .. } | EventError::BadDate { field, .. } => {
                Some(field)
            }
            EventError::WrongType { field, .. } => Some(field),
            EventError::BadTime { .. } => Some("time"),
        }
    }
}

/// Parses one event, one line of a JSON-lines file.
///
/// A trailing line ending (`\n` or `\r\n`) and a leading byte-order mark are ignored; anything
/// else, including an empty line, must be one JSON object. Callers reading a file skip blank
/// lines themselves. See the [module documentation](self) for what is checked.
pub fn parse_event(text: &str) -> Result<StoreEvent, EventError> {
    let line = text.strip_prefix('\u{feff}').unwrap_or(text);
    let line = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(line);
    // Checked before parsing, so that a huge line costs no more than a byte scan for its id.
    if line.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            event_id: scan_id(line),
            bytes: line.len(),
        });
    }
    let value: Value = serde_json::from_str(line).map_err(|e| EventError::NotJson {
        event_id: scan_id(line),
        reason: e.to_string(),
    })?;
    let Value::Object(mut root) = value else {
        return Err(EventError::NotAnObject {
            found: kind(&value),
        });
    };

    // The id first: every later error names it.
    let id = match root.get("id") {
        None | Some(Value::Null) => {
            return Err(EventError::MissingField {
                event_id: None,
                field: "id",
            });
        }
        Some(v) => non_empty_string(v).ok_or_else(|| EventError::WrongType {
            event_id: None,
            field: "id".into(),
            expected: "a non-empty string",
            found: kind_of_bad_string(v),
        })?,
    };
    let ctx = Ctx { id: &id };

    let event_type = match root.get("detail-type") {
        None | Some(Value::Null) => return Err(ctx.missing("detail-type")),
        Some(v) => non_empty_string(v)
            .ok_or_else(|| ctx.wrong("detail-type", "a non-empty string", kind_of_bad_string(v)))?,
    };

    let time = match root.get("time") {
        None | Some(Value::Null) => return Err(ctx.missing("time")),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map_err(|_| EventError::BadTime {
                event_id: Some(id.clone()),
                value: s.clone(),
            })?
            .with_timezone(&Utc),
        Some(v) => return Err(ctx.wrong("time", "an RFC 3339 time string", kind(v))),
    };

    let source = match root.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => return Err(ctx.wrong("source", "a string", kind(v))),
    };

    let mut detail = match root.remove("detail") {
        None | Some(Value::Null) => return Err(ctx.missing("detail")),
        Some(Value::Object(map)) => map,
        Some(v) => return Err(ctx.wrong("detail", "an object", kind(&v))),
    };
    let customer = match detail.get_mut("customer") {
        None | Some(Value::Null) => return Err(ctx.missing("detail.customer")),
        Some(Value::Object(map)) => map,
        Some(v) => return Err(ctx.wrong("detail.customer", "an object", kind(v))),
    };
    let customer_id = customer_id(&ctx, customer)?;
    // One type downstream: an integer id becomes its string here too.
    customer.insert("id".into(), Value::String(customer_id.clone()));
    check_profile(&ctx, customer)?;

    Ok(StoreEvent {
        id,
        event_type,
        time,
        source,
        customer_id,
        detail: std::sync::Arc::new(detail),
    })
}

/// A birthday as profiles carry it, `YYYY-MM-DD`.
///
/// The month and day must make a date in a leap year, so 29 February is accepted whatever the
/// year: date triggers ignore the year (and fire on 28 February in years without a 29th), and
/// stores that ask only for a month and a day often store a placeholder year such as 1900,
/// which is not a leap year. Rejecting such a profile would send the whole event (an order, say)
/// to the dead letter for the sake of one optional field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Birthday {
    /// The year as written (`0000` to `9999`); not used by date triggers.
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to the length of the month in a leap year.
    pub day: u8,
}

impl Birthday {
    /// Reads exactly `YYYY-MM-DD` (four, two and two ASCII digits); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        // 2000 is a leap year, so this accepts 29 February and rejects 30 February or 31 April.
        NaiveDate::from_ymd_opt(2000, month, day)?;
        Some(Birthday {
            year: u16::try_from(year).ok()?,
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
        })
    }

    /// The birthday's date in `year`: 29 February falls on 28 February in years without one,
    /// as the contract's date triggers say. `None` only for years chrono cannot represent.
    pub fn in_year(self, year: i32) -> Option<NaiveDate> {
        let (month, day) = (u32::from(self.month), u32::from(self.day));
        NaiveDate::from_ymd_opt(year, month, day)
            .or_else(|| NaiveDate::from_ymd_opt(year, month, day - 1))
    }
}

impl fmt::Display for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The event whose fields are being checked, for error messages.
struct Ctx<'a> {
    id: &'a str,
}

impl Ctx<'_> {
    fn missing(&self, field: &'static str) -> EventError {
        EventError::MissingField {
            event_id: Some(self.id.to_owned()),
            field,
        }
    }

    fn wrong(
        &self,
        field: impl Into<String>,
        expected: &'static str,
        found: &'static str,
    ) -> EventError {
        EventError::WrongType {
            event_id: Some(self.id.to_owned()),
            field: field.into(),
            expected,
            found,
        }
    }
}

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

/// The string in `v` when it is a string with something other than white space in it.
fn non_empty_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// What a value is, in words, for "found ..."; never the value itself.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) => kind_of_number(n),
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// [`kind`] for a value that should have been a non-empty string.
fn kind_of_bad_string(v: &Value) -> &'static str {
    match v {
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a blank string",
        other => kind(other),
    }
}

fn kind_of_number(n: &serde_json::Number) -> &'static str {
    if n.is_u64() {
        "a whole number"
    } else if n.is_i64() {
        "a negative number"
    } else {
        "a fractional or very large number"
    }
}

/// Reads the top-level `"id"` string from text that may not be valid JSON (truncated, say), so
/// that even a broken event can be named in the error and found in the dead letter. Looks only
/// at the start of the line and only at keys of the outermost object.
fn scan_id(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let end = bytes.len().min(ID_SCAN_BYTES);
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut depth = 1usize;
    let mut expect_key = true;
    while i < end {
        match bytes[i] {
            b'"' => {
                let close = string_end(bytes, i)?;
                if depth == 1 && expect_key {
                    expect_key = false;
                    let colon = skip_ws(bytes, close);
                    if bytes.get(colon) == Some(&b':') && &bytes[i + 1..close - 1] == b"id" {
                        let start = skip_ws(bytes, colon + 1);
                        if bytes.get(start) != Some(&b'"') {
                            return None;
                        }
                        let stop = string_end(bytes, start)?;
                        // Decodes escapes; the slice is a complete JSON string.
                        return serde_json::from_str::<String>(text.get(start..stop)?)
                            .ok()
                            .filter(|id| !id.trim().is_empty());
                    }
                }
                i = close;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1).filter(|d| *d > 0)?,
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index just past the closing quote of the JSON string that opens at `open`.
fn string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// `event \`ID\``, or `event (id unreadable)`, for the start of a message.
struct Label<'a>(&'a Option<String>);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "event {}", Shown(id)),
            None => f.write_str("event (id unreadable)"),
        }
    }
}

/// A value from the input shown in a message: in backticks, control characters escaped (so the
/// message stays on one line) and cut to [`SHOWN_CHARS`] characters.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        for c in self.0.chars().take(SHOWN_CHARS) {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if self.0.chars().nth(SHOWN_CHARS).is_some() {
            f.write_str("…")?;
        }
        f.write_str("`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A change to a valid event's JSON.
    type Edit = fn(&mut Value);

    /// A valid event with `f` applied to its JSON.
    fn event_with(f: impl FnOnce(&mut Value)) -> String {
        let mut v = json!({
            "version": "0", "id": "ev-1", "detail-type": "order.placed", "source": "store",
            "account": "123456789012", "time": "2026-03-01T13:00:00+03:00",
            "region": "eu-central-1", "resources": [],
            "detail": {
                "customer": {"id": "c-1001", "email": "ayse@example.com", "first_name": "Ayşe",
                             "last_name": "Yılmaz", "timezone": "Europe/Istanbul",
                             "birthday": "1991-06-14", "accepts_marketing": true,
                             "orders_count": 1, "tags": ["newsletter"], "loyalty_tier": "gold"},
                "order": {"id": "o-77", "total": 59.90, "currency": "TRY"}}
        });
        f(&mut v);
        v.to_string()
    }

    fn customer(v: &mut Value) -> &mut Map<String, Value> {
        v["detail"]["customer"].as_object_mut().unwrap()
    }

    fn err(text: &str) -> EventError {
        parse_event(text).expect_err("should be rejected")
    }

    /// Every message is one line and never shows the customer's address or name.
    fn assert_discreet(e: &EventError) {
        let msg = e.to_string();
        assert!(!msg.contains('\n') && !msg.contains('\r'), "{msg}");
        for secret in ["ayse@example.com", "Ayşe", "Yılmaz", "1991-06-14"] {
            assert!(!msg.contains(secret), "{msg} shows {secret}");
        }
    }

    #[test]
    fn reads_a_complete_event() {
        let e = parse_event(&event_with(|_| {})).unwrap();
        assert_eq!(e.id, "ev-1");
        assert_eq!(e.event_type, "order.placed");
        assert_eq!(e.time.to_rfc3339(), "2026-03-01T10:00:00+00:00");
        assert_eq!(e.source.as_deref(), Some("store"));
        assert_eq!(e.customer_id, "c-1001");
        assert_eq!(e.detail["order"]["id"], "o-77");
        assert_eq!(e.detail["customer"]["loyalty_tier"], "gold");
    }

    #[test]
    fn reads_a_minimal_event_and_unknown_types() {
        let text = r#"{"id":"x","detail-type":"loyalty.points_earned","time":"2026-01-05T00:00:00Z","detail":{"customer":{"id":"c-1"}}}"#;
        let e = parse_event(text).unwrap();
        assert_eq!(e.event_type, "loyalty.points_earned");
        assert_eq!(e.source, None);
        assert_eq!(e.customer_id, "c-1");
    }

    #[test]
    fn accepts_null_profile_fields_and_a_line_ending() {
        let text = event_with(|v| {
            for f in [
                "email",
                "first_name",
                "last_name",
                "timezone",
                "birthday",
                "accepts_marketing",
                "orders_count",
                "tags",
            ] {
                customer(v).insert(f.into(), Value::Null);
            }
        });
        let e = parse_event(&format!("\u{feff}{text}\r\n")).unwrap();
        assert!(e.detail["customer"]["email"].is_null());
    }

    #[test]
    fn accepts_values_checked_only_where_used() {
        // An invalid address and an invalid zone are the sending rules' and the clock's to
        // handle, not reasons to drop the event.
        let text = event_with(|v| {
            customer(v).insert("email".into(), json!("not an address"));
            customer(v).insert("timezone".into(), json!("UTC+03:00"));
            customer(v).insert("tags".into(), json!([]));
            customer(v).insert("orders_count".into(), json!(0));
        });
        parse_event(&text).unwrap();
    }

    #[test]
    fn turns_an_integer_customer_id_into_its_string() {
        let text = event_with(|v| {
            customer(v).insert("id".into(), json!(7_418_530_234_567_u64));
        });
        let e = parse_event(&text).unwrap();
        assert_eq!(e.customer_id, "7418530234567");
        assert_eq!(e.detail["customer"]["id"], "7418530234567");
    }

    #[test]
    fn normalises_time_to_utc() {
        let text = event_with(|v| v["time"] = json!("2026-03-29T02:30:00-04:00"));
        let e = parse_event(&text).unwrap();
        assert_eq!(e.time.to_rfc3339(), "2026-03-29T06:30:00+00:00");
    }

    #[test]
    fn birthdays_accept_29_february_in_any_year() {
        for ok in ["1992-02-29", "1900-02-29", "1991-06-14", "0000-12-31"] {
            assert!(Birthday::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "1991-02-30",
            "1991-04-31",
            "1991-13-01",
            "1991-00-10",
            "1991-06-00",
            "91-06-14",
            "1991/06/14",
            "1991-6-14",
            "14.06.1991",
            "1991-06-14T00:00:00",
            "+991-06-14",
            "",
        ] {
            assert!(Birthday::parse(bad).is_none(), "{bad}");
        }
        let b = Birthday::parse("1992-02-29").unwrap();
        assert_eq!((b.year, b.month, b.day), (1992, 2, 29));
        assert_eq!(b.to_string(), "1992-02-29");
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(b.in_year(2026), date(2026, 2, 28));
        assert_eq!(b.in_year(2028), date(2028, 2, 29));
        let placeholder = Birthday::parse("1900-02-29").unwrap();
        assert_eq!(placeholder.in_year(2027), date(2027, 2, 28));
        assert_eq!(
            Birthday::parse("1991-06-14").unwrap().in_year(2026),
            date(2026, 6, 14)
        );
        let text = event_with(|v| {
            customer(v).insert("birthday".into(), json!("1992-02-29"));
        });
        parse_event(&text).unwrap();
    }

    #[test]
    fn rejects_a_line_over_the_limit_before_parsing() {
        // Valid JSON, but too large; the id is still read from the line, even after a large
        // `detail` (as producers that sort keys write it).
        let big = format!(
            r#"{{"detail": {{"customer": {{"id": "c-1", "email": "ayse@example.com"}}, "note": "{}"}}, "id": "ev-1", "detail-type": "order.placed", "time": "2026-03-01T10:00:00Z"}}"#,
            "x".repeat(MAX_EVENT_BYTES)
        );
        let e = err(&big);
        assert!(matches!(e, EventError::TooLarge { .. }));
        assert_eq!(e.event_id(), Some("ev-1"));
        assert_eq!(e.field(), None);
        assert_discreet(&e);
        assert!(
            e.to_string()
                .contains("over EventBridge's limit of 262144 bytes")
        );
        // Not JSON at all and too large: rejected for its size, without parsing.
        let e = err(&"[".repeat(MAX_EVENT_BYTES + 1));
        assert_eq!(
            e,
            EventError::TooLarge {
                event_id: None,
                bytes: MAX_EVENT_BYTES + 1
            }
        );
        // Exactly at the limit is fine (the padding makes the line exactly MAX_EVENT_BYTES).
        let base = event_with(|v| v["detail"]["order"]["note"] = json!(""));
        let pad = MAX_EVENT_BYTES - base.len();
        let exact = event_with(|v| v["detail"]["order"]["note"] = json!("x".repeat(pad)));
        assert_eq!(exact.len(), MAX_EVENT_BYTES);
        parse_event(&format!("{exact}\n")).unwrap();
    }

    #[test]
    fn rejects_malformed_json_naming_the_id_when_readable() {
        let text = r#"{"version": "0", "id": "ev-1", "detail-type": "order.placed", "time": "2026-03-01T10:00:00Z", "detail": {"customer": {"id": "c-1", "email": "ayse@exa"#;
        let e = err(text);
        assert!(matches!(e, EventError::NotJson { .. }), "{e:?}");
        assert_eq!(e.event_id(), Some("ev-1"));
        assert!(
            e.to_string().starts_with("event `ev-1`: not valid JSON: "),
            "{e}"
        );
        assert_discreet(&e);

        let e = err("{\"detail\": {\"customer\": {\"id\": \"c-1\"}}, \"id\": \"late\", oops}");
        assert_eq!(e.event_id(), Some("late"));
        // A nested `id` is not the event's.
        let e = err("{\"detail\": {\"customer\": {\"id\": \"c-1\"");
        assert_eq!(e.event_id(), None);
        assert_eq!(
            e.to_string().split(':').next(),
            Some("event (id unreadable)")
        );
        let e = err("");
        assert!(matches!(e, EventError::NotJson { event_id: None, .. }));
        let e = err("{\"id\": \"a\\\"b\", ");
        assert_eq!(e.event_id(), Some("a\"b"));
    }

    #[test]
    fn rejects_json_that_is_not_an_object() {
        for (text, found) in [
            ("[]", "an array"),
            ("\"x\"", "a string"),
            ("3", "a whole number"),
            ("null", "null"),
        ] {
            let e = err(text);
            assert_eq!(e, EventError::NotAnObject { found });
            assert_eq!(e.event_id(), None);
        }
        assert_eq!(
            err("[]").to_string(),
            "event: expected a JSON object, found an array"
        );
    }

    #[test]
    fn rejects_missing_required_fields() {
        let cases: [(&str, Edit); 6] = [
            ("id", |v| {
                v.as_object_mut().unwrap().remove("id");
            }),
            ("detail-type", |v| {
                v.as_object_mut().unwrap().remove("detail-type");
            }),
            ("time", |v| v["time"] = Value::Null),
            ("detail", |v| {
                v.as_object_mut().unwrap().remove("detail");
            }),
            ("detail.customer", |v| {
                v["detail"].as_object_mut().unwrap().remove("customer");
            }),
            ("detail.customer.id", |v| {
                customer(v).remove("id");
            }),
        ];
        for (field, f) in cases {
            let e = err(&event_with(f));
            assert!(matches!(e, EventError::MissingField { .. }), "{e:?}");
            assert_eq!(e.field(), Some(field));
            assert_eq!(
                e.event_id(),
                if field == "id" { None } else { Some("ev-1") }
            );
            assert_discreet(&e);
        }
        assert_eq!(
            err(&event_with(|v| {
                customer(v).remove("id");
            }))
            .to_string(),
            "event `ev-1`: detail.customer.id: missing (required)"
        );
        assert_eq!(
            err(&event_with(|v| {
                v.as_object_mut().unwrap().remove("id");
            }))
            .to_string(),
            "event (id unreadable): id: missing (required)"
        );
    }

    #[test]
    fn rejects_wrong_types_with_the_full_field_path() {
        let cases: [(Edit, &str, &str); 19] = [
            (|v| v["id"] = json!(17), "id", "a whole number"),
            (|v| v["id"] = json!(""), "id", "an empty string"),
            (
                |v| v["detail-type"] = json!(["order.placed"]),
                "detail-type",
                "an array",
            ),
            (
                |v| v["detail-type"] = json!("  "),
                "detail-type",
                "a blank string",
            ),
            (
                |v| v["time"] = json!(1_772_359_200),
                "time",
                "a whole number",
            ),
            (|v| v["source"] = json!(true), "source", "a boolean"),
            (|v| v["detail"] = json!("{}"), "detail", "a string"),
            (
                |v| v["detail"]["customer"] = json!("c-1"),
                "detail.customer",
                "a string",
            ),
            (
                |v| v["detail"]["customer"]["id"] = json!(""),
                "detail.customer.id",
                "an empty string",
            ),
            (
                |v| v["detail"]["customer"]["id"] = json!(-4),
                "detail.customer.id",
                "a negative number",
            ),
            (
                |v| v["detail"]["customer"]["id"] = json!(4.5),
                "detail.customer.id",
                "a fractional or very large number",
            ),
            (
                |v| v["detail"]["customer"]["email"] = json!(["ayse@example.com"]),
                "detail.customer.email",
                "an array",
            ),
            (
                |v| v["detail"]["customer"]["first_name"] = json!({"tr": "Ayşe"}),
                "detail.customer.first_name",
                "an object",
            ),
            (
                |v| v["detail"]["customer"]["timezone"] = json!(3),
                "detail.customer.timezone",
                "a whole number",
            ),
            (
                |v| v["detail"]["customer"]["accepts_marketing"] = json!("yes"),
                "detail.customer.accepts_marketing",
                "a string",
            ),
            (
                |v| v["detail"]["customer"]["orders_count"] = json!(-1),
                "detail.customer.orders_count",
                "a negative number",
            ),
            (
                |v| v["detail"]["customer"]["orders_count"] = json!("3"),
                "detail.customer.orders_count",
                "a string",
            ),
            (
                |v| v["detail"]["customer"]["tags"] = json!("vip"),
                "detail.customer.tags",
                "a string",
            ),
            (
                |v| v["detail"]["customer"]["tags"] = json!(["vip", 2]),
                "detail.customer.tags[1]",
                "a whole number",
            ),
        ];
        for (f, field, found) in cases {
            let e = err(&event_with(f));
            let EventError::WrongType { found: got, .. } = &e else {
                panic!("{field}: {e:?}");
            };
            assert_eq!((e.field(), *got), (Some(field), found), "{e}");
            assert_discreet(&e);
        }
        assert_eq!(
            err(&event_with(|v| {
                customer(v).insert("accepts_marketing".into(), json!("true"));
            }))
            .to_string(),
            "event `ev-1`: detail.customer.accepts_marketing: expected true/false (or null), found a string"
        );
        // Birthdays of the wrong type are wrong types; strings that are no date are bad dates.
        let e = err(&event_with(|v| {
            customer(v).insert("birthday".into(), json!(19910614));
        }));
        assert_eq!(e.field(), Some("detail.customer.birthday"));
        assert!(matches!(e, EventError::WrongType { .. }));
    }

    #[test]
    fn rejects_bad_times_and_dates() {
        for bad in [
            "2026-03-01",
            "2026-03-01T10:00:00",
            "yesterday",
            "2026-02-30T10:00:00Z",
        ] {
            let e = err(&event_with(|v| v["time"] = json!(bad)));
            assert!(matches!(e, EventError::BadTime { .. }), "{bad}");
            assert_eq!(e.field(), Some("time"));
            assert_eq!(e.event_id(), Some("ev-1"));
        }
        assert_eq!(
            err(&event_with(|v| v["time"] = json!("2026-03-01"))).to_string(),
            "event `ev-1`: time: `2026-03-01` is not an RFC 3339 time with an offset, such as 2026-03-01T10:00:00Z"
        );
        let e = err(&event_with(|v| {
            customer(v).insert("birthday".into(), json!("1991-02-30"));
        }));
        assert_eq!(
            e,
            EventError::BadDate {
                event_id: Some("ev-1".into()),
                field: "detail.customer.birthday"
            }
        );
        assert_eq!(
            e.to_string(),
            "event `ev-1`: detail.customer.birthday: expected a date \"YYYY-MM-DD\" (or null), found a string that is not one"
        );
        assert_discreet(&e);
    }

    #[test]
    fn messages_stay_on_one_line_and_short() {
        let e = err(&event_with(|v| {
            v["id"] = json!(format!("evil\nid\u{7}{}", "x".repeat(500)));
            v["time"] = json!("not\na time");
        }));
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.starts_with("event `evil\\nid\\u{7}xxx"), "{msg}");
        assert!(msg.len() < 300, "{msg}");
        // The id itself is kept whole for the dead letter.
        assert_eq!(e.event_id().map(str::len), Some(4 + 1 + 2 + 1 + 500));
    }

    #[test]
    fn every_line_of_the_sample_is_a_valid_event() {
        let sample = include_str!("../../../events/sample.jsonl");
        let mut count = 0;
        for (n, line) in sample.lines().enumerate() {
            let e = parse_event(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
            let v: Value = serde_json::from_str(line).unwrap();
            for field in [
                "version",
                "id",
                "detail-type",
                "source",
                "account",
                "time",
                "region",
                "resources",
                "detail",
            ] {
                assert!(v.get(field).is_some(), "line {}: no {field}", n + 1);
            }
            assert_eq!(e.source.as_deref(), Some("store"), "line {}", n + 1);
            if let Some(email) = e.detail["customer"].get("email").and_then(Value::as_str) {
                assert!(
                    [
                        ".example.com",
                        "@example.com",
                        "@example.org",
                        "@example.net"
                    ]
                    .iter()
                    .any(|d| email.ends_with(d)),
                    "line {}: {email}",
                    n + 1
                );
            }
            count += 1;
        }
        assert!(count > 200, "{count} events");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>().prop_map(|n| json!(n)),
                ".{0,12}".prop_map(Value::String),
                Just(json!("1992-02-29")),
                Just(json!("2026-03-01T10:00:00Z")),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z_.-]{1,8}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let text = String::from_utf8_lossy(&bytes);
                let _ = parse_event(&text).map_err(|e| (e.to_string(), e.event_id().map(str::len)));
            }

            #[test]
            fn arbitrary_field_values_never_panic(
                field in prop_oneof![
                    Just("id"), Just("detail-type"), Just("time"), Just("source"), Just("detail"),
                    Just("customer"), Just("customer.id"), Just("email"), Just("birthday"),
                    Just("accepts_marketing"), Just("orders_count"), Just("tags"), Just("custom"),
                ],
                value in json_value(),
                cut in any::<prop::sample::Index>(),
            ) {
                let text = event_with(|v| match field {
                    "customer" => v["detail"]["customer"] = value,
                    "customer.id" => v["detail"]["customer"]["id"] = value,
                    "email" | "birthday" | "accepts_marketing" | "orders_count" | "tags" | "custom" => {
                        v["detail"]["customer"][field] = value;
                    }
                    top => v[top] = value,
                });
                match parse_event(&text) {
                    Ok(e) => prop_assert!(!e.customer_id.is_empty()),
                    Err(e) => {
                        let msg = e.to_string();
                        prop_assert!(!msg.contains('\n'));
                        prop_assert!(!msg.contains("ayse@example.com"));
                    }
                }
                // Any prefix of the line (a truncated write) is rejected, never a panic.
                let mut at = cut.index(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let _ = parse_event(&text[..at]).map(|e| e.id);
            }
        }
    }
}
