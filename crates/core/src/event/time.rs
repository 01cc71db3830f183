//! The times Nudge accepts: RFC 3339 with an offset, within a documented range.
//!
//! The range keeps every time the engine derives from an accepted one writable: the store
//! keeps times as unix milliseconds and the simulation clock as RFC 3339 text, whose year has
//! four digits. An event in year 9999 would put the clock (the last event + 365 days) in year
//! 10000, which RFC 3339 cannot write and no later run could read.

use chrono::{DateTime, Utc};

/// The earliest time accepted: 1970-01-01T00:00:00Z, the unix epoch. Nothing a store sends
/// happened before it; an earlier time is a typo or a zero value.
pub const EARLIEST_TIME: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The first time no longer accepted: 9000-01-01T00:00:00Z. It leaves a thousand years of
/// room for what is derived from an accepted time (the default end of a simulation, a year
/// after the last event; the waits of a workflow) before year 10000, past which RFC 3339
/// cannot write a time.
pub const LATEST_TIME: DateTime<Utc> = match DateTime::from_timestamp(221_845_392_000, 0) {
    Some(t) => t,
    None => panic!("9000-01-01 is a valid time"),
};

/// Why a text is not an accepted time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not RFC 3339 with an offset.
    #[error("not an RFC 3339 time with an offset, such as 2026-03-01T10:00:00Z")]
    NotRfc3339,
    /// RFC 3339, but outside [`EARLIEST_TIME`]..[`LATEST_TIME`].
    #[error(
        "outside the accepted range, 1970-01-01T00:00:00Z up to (not including) 9000-01-01T00:00:00Z"
    )]
    OutOfRange,
}

/// Parses an RFC 3339 time with an offset into UTC, if it is within the accepted range.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, TimeError> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| TimeError::NotRfc3339)?
        .with_timezone(&Utc);
    check_time_range(t)
}

/// `t`, if it is within the accepted range.
pub fn check_time_range(t: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    if (EARLIEST_TIME..LATEST_TIME).contains(&t) {
        Ok(t)
    } else {
        Err(TimeError::OutOfRange)
    }
}
