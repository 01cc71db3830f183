//! [`Store::customers`](nudge_core::store::Store::customers) on DynamoDB: every customer's
//! state item, read by a paginated `Scan` of the table filtered to state items (`sk =
//! "STATE"`), projecting only the key, the version and the state.
//!
//! Cost: a full read of the table. A `Scan` is billed for every item it reads, the send log,
//! processed event ids and the rest included, before the filter drops them: one read unit per
//! 8 KB read (eventually consistent). A customer with a 1 KB state and 10 send-log entries of
//! about 4 KB (ARCHITECTURE.md's measured sizes) is about 5 read units, so 100,000 such
//! customers are about 500,000 read units, well under a dollar on demand; requests are one
//! per `limit` items read or per MB. It is made for `nudge plan` on a pull request, never for
//! the hot path. Reads are eventually consistent: a state committed a moment ago may show its
//! previous version.
//!
//! DynamoDB's `Limit` counts items read, not items kept, so a page holds at most `limit`
//! customers and may hold fewer (even none) with a cursor; pages come in the table's hash
//! order, and each page is sorted by customer id.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use nudge_core::store::{CustomerPage, CustomerRecord, StoreError};

use super::error::map_sdk_error;
use super::item::{Item, get_b, get_n, get_s, s};
use super::keys::{PK, SK, STATE_SK, customer_of, decode_scan_cursor, encode_scan_cursor};
use super::{DynamoDbStore, codec};

/// What marks a customers cursor of this store (then the hex of the last key read).
const CURSOR_TAG: &str = "s1";

impl DynamoDbStore {
    /// See [`Store::customers`](nudge_core::store::Store::customers).
    pub(super) async fn customers_inner(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<CustomerPage, StoreError> {
        let mut start = cursor.map(decode_cursor).transpose()?;
        let limit = limit.max(1);
        let mut page = CustomerPage::default();
        loop {
            let want = i32::try_from(limit - page.customers.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :state")
                .projection_expression("#pk, v, st")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":state", s(STATE_SK))
                .set_exclusive_start_key(start)
                .limit(want)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| map_sdk_error("Scan", e))?;
            for item in output.items.unwrap_or_default() {
                page.customers.push(customer(&item)?);
            }
            start = output.last_evaluated_key;
            // `Limit` caps the items read, so the page never holds more than asked for.
            if page.customers.len() >= limit || start.is_none() {
                break;
            }
        }
        page.customers.sort_by(|a, b| a.0.cmp(&b.0));
        page.cursor = start.map(|key| encode_cursor(&key)).transpose()?;
        Ok(page)
    }
}

/// A state item as `(customer id, record)`.
fn customer(item: &Item) -> Result<(String, CustomerRecord), StoreError> {
    let id = customer_of(get_s(item, PK)?)?.to_owned();
    let record = CustomerRecord {
        version: get_n(item, "v")?,
        state: codec::decode(get_b(item, "st")?)?,
    };
    Ok((id, record))
}

/// The cursor naming the table key `key` (`pk` and `sk`).
fn encode_cursor(key: &Item) -> Result<String, StoreError> {
    encode_scan_cursor(CURSOR_TAG, key)
}

/// The table key a cursor of [`encode_cursor`] names.
fn decode_cursor(text: &str) -> Result<Item, StoreError> {
    decode_scan_cursor(CURSOR_TAG, text, "customers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let key: Item = [
            (PK.to_owned(), s("C#c-1.x")),
            (SK.to_owned(), s("S#r.step")),
        ]
        .into();
        let text = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&text).unwrap(), key);
        for bad in ["", "s1.", "s1.zz.00", "d1.00.00", "s1.00"] {
            assert!(
                matches!(decode_cursor(bad), Err(StoreError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }
}
