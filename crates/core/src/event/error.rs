//! Why a line is not an event, said in one line that names the event and the field and never
//! a customer's value.

use std::fmt;

use serde_json::Value;

use super::MAX_EVENT_BYTES;
use super::scan::scan_id;

/// The longest start of `bytes` that is valid UTF-8.
fn valid_prefix(bytes: &[u8]) -> &str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        // Safe to unwrap: the prefix up to `valid_up_to` is valid by definition.
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// At most this many characters of an id or a time are shown in an error message.
const SHOWN_CHARS: usize = 80;

/// Why a line is not a [`StoreEvent`](super::StoreEvent). Every message is one line, names the
/// event id when it could be read and the field at fault, and never includes a customer's
/// address or name.
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
    /// `time` is an RFC 3339 time outside the accepted range (see
    /// [`EARLIEST_TIME`](super::EARLIEST_TIME) and [`LATEST_TIME`](super::LATEST_TIME)).
    #[error("{}: time: {} is outside the accepted range, 1970-01-01T00:00:00Z up to (not including) 9000-01-01T00:00:00Z", Label(.event_id), Shown(.value))]
    TimeOutOfRange {
        /// The event id, when readable.
        event_id: Option<String>,
        /// The text found (not personal data, so it is shown, truncated).
        value: String,
    },
    /// The line is not valid UTF-8; rejected before parsing, never read lossily.
    #[error("{}: not valid UTF-8 (an invalid byte {at} bytes into the line)", Label(.event_id))]
    NotUtf8 {
        /// The id, when it could be read from the valid start of the line.
        event_id: Option<String>,
        /// Where the first invalid byte is, counted from the start of the line.
        at: usize,
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
            | EventError::TimeOutOfRange { event_id, .. }
            | EventError::NotUtf8 { event_id, .. }
            | EventError::BadDate { event_id, .. } => event_id.as_deref(),
        }
    }

    /// The error for a line of `bytes` bytes (without its line end), over [`MAX_EVENT_BYTES`],
    /// of which a reader kept only `head`, the first [`HEAD_BYTES`](super::HEAD_BYTES) or so
    /// (enough to find the id in): a reader need not hold the whole of a huge line.
    pub fn too_large(head: &[u8], bytes: usize) -> Self {
        EventError::TooLarge {
            event_id: scan_id(valid_prefix(head)),
            bytes,
        }
    }

    /// The error for a line that is not valid UTF-8 (`line`, without its line end).
    pub fn not_utf8(line: &[u8], error: std::str::Utf8Error) -> Self {
        // The id may come after the bad byte (producers that sort keys put it after
        // `detail`): it is read from a lossy copy, unless it is itself not UTF-8.
        let event_id =
            scan_id(&String::from_utf8_lossy(line)).filter(|id| !id.contains('\u{fffd}'));
        EventError::NotUtf8 {
            event_id,
            at: error.valid_up_to(),
        }
    }

    /// The full path of the field at fault (`time`, `detail.customer.id`, ...), when the problem
    /// is one field's rather than the whole line's.
    pub fn field(&self) -> Option<&str> {
        match self {
            EventError::TooLarge { .. }
            | EventError::NotUtf8 { .. }
            | EventError::NotJson { .. }
            | EventError::NotAnObject { .. } => None,
            EventError::MissingField { field, .. } | EventError::BadDate { field, .. } => {
                Some(field)
            }
            EventError::WrongType { field, .. } => Some(field),
            EventError::BadTime { .. } | EventError::TimeOutOfRange { .. } => Some("time"),
        }
    }
}

/// The event whose fields are being checked, for error messages.
pub(super) struct Ctx<'a> {
    pub(super) id: &'a str,
}

impl Ctx<'_> {
    /// `field` is absent.
    pub(super) fn missing(&self, field: &'static str) -> EventError {
        EventError::MissingField {
            event_id: Some(self.id.to_owned()),
            field,
        }
    }

    /// `field` should hold `expected` but holds `found`.
    pub(super) fn wrong(
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

/// What a value is, in words, for "found ..."; never the value itself.
pub(super) fn kind(v: &Value) -> &'static str {
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
pub(super) fn kind_of_bad_string(v: &Value) -> &'static str {
    match v {
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a blank string",
        other => kind(other),
    }
}

/// [`kind`] for a number: whole, negative, or neither.
pub(super) fn kind_of_number(n: &serde_json::Number) -> &'static str {
    if n.is_u64() {
        "a whole number"
    } else if n.is_i64() {
        "a negative number"
    } else {
        "a fractional or very large number"
    }
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

/// A value from the input shown in a message: in backticks, any email address in it replaced
/// by `[address]` ([`redact_text`](crate::journal::redact_text): these messages are logged
/// and kept as dead letters' reasons), control characters escaped (so the message stays on
/// one line) and cut to [`SHOWN_CHARS`] characters.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = crate::journal::redact_text(self.0);
        f.write_str("`")?;
        for c in shown.chars().take(SHOWN_CHARS) {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if shown.chars().nth(SHOWN_CHARS).is_some() {
            f.write_str("…")?;
        }
        f.write_str("`")
    }
}
