//! Thin public wrappers of the adapter's pure decoders, for the fuzz targets (`fuzz/`) and
//! tests only: hidden from the docs and not part of the crate's API (they may change at any
//! time). Each reads what DynamoDB hands back, so each must give a value or a `StoreError`,
//! never a panic, on any input.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nudge_core::store::{DeadLetter, FeedbackCount, Parked, SendEntry, StoreError};

pub use aws_sdk_dynamodb::primitives::Blob;
pub use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{self, Cursor};
use super::{aside, codec, sends};

/// A stored Binary value (a state or a payload) as stored: a format byte and the value.
pub fn encode_value(value: &[u8]) -> Vec<u8> {
    codec::encode(value)
}

/// The value a stored Binary value holds; a damaged one is `StoreError::Corrupt`.
pub fn decode_value(stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    codec::decode(stored)
}

/// The `(gsk, pk, sk)` keys an opaque page cursor names; a foreign one is `InvalidRequest`.
pub fn decode_cursor(text: &str) -> Result<(String, String, String), StoreError> {
    Cursor::decode(text).map(|c| (c.gsk, c.pk, c.sk))
}

/// The opaque page cursor of a page's last `(gsk, pk, sk)` keys.
pub fn encode_cursor(gsk: &str, pk: &str, sk: &str) -> String {
    Cursor {
        gsk: gsk.to_owned(),
        pk: pk.to_owned(),
        sk: sk.to_owned(),
    }
    .encode()
}

/// The time at the start of a sweep sort key.
pub fn parse_sort_time(key: &str) -> Result<DateTime<Utc>, StoreError> {
    keys::parse_sort_time(key)
}

/// The customer id of a customer partition key.
pub fn customer_of(pk: &str) -> Result<&str, StoreError> {
    keys::customer_of(pk)
}

/// A send-log entry read from a stored item.
pub fn send_entry(item: &HashMap<String, AttributeValue>) -> Result<SendEntry, StoreError> {
    sends::send_entry(item)
}

/// A dead letter read from a stored item.
pub fn dead_letter(item: &HashMap<String, AttributeValue>) -> Result<DeadLetter, StoreError> {
    super::dead_letter(item)
}

/// A feedback count read from a stored item.
pub fn feedback_count(item: &HashMap<String, AttributeValue>) -> Result<FeedbackCount, StoreError> {
    aside::feedback_count(item)
}

/// An input parked for `order_id`, read from a stored item.
pub fn parked_input(
    order_id: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<Parked, StoreError> {
    aside::parked_input(order_id, item)
}
