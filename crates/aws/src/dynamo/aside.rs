//! What the table keeps beside the customers: feedback counts per workflow step, inputs
//! parked until their order is linked, and the erasure of a customer.
//!
//! Items (docs/ARCHITECTURE.md, "DynamoDB table design"):
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | a feedback event counted | `F#<event id>` | `FEEDBACK` | `ttl` ([`PROCESSED_EVENT_TTL`]) |
//! | a feedback count | `FEEDBACK` | `<len>:<workflow><len>:<step><kind>` (lengths in bytes) | `wf`, `step`, `kind`, `n` |
//! | a parked input | `O#<order id>` | `P#<event id>` | `body` (as a state is stored), `exp` (ms), `ttl` (s) |
//! | a customer's order (reverse link) | `C#<customer id>` | `O#<order id>` | |
//!
//! Requests per call (each request is one attempt; the SDK's retries add more):
//!
//! - `record_feedback`: one `TransactWriteItems` of two items, the event's marker put on
//!   `attribute_not_exists` and the count's `ADD n 1` (4 write units: transactions cost
//!   double). A marker already there cancels the transaction (`false`, nothing counted). A
//!   `TransactionConflict` (another transaction on the same count at the same moment) sends it
//!   again, up to [`CONFLICT_ATTEMPTS`] times in all with a short random pause, then fails as
//!   `Unavailable` (retryable). The store sets no `ClientRequestToken` of its own (one derived
//!   from the event would make DynamoDB answer a second delivery within 10 minutes as a
//!   success): the SDK fills in a random one per call and keeps it across its own retries, so
//!   a retry of a transaction that went through (its answer lost) is answered as done, and a
//!   second delivery, a new call, meets the marker.
//! - `feedback_counts`: one strongly consistent `Query` of the `FEEDBACK` partition per MB
//!   (thousands of counts a page).
//! - `park`: one `PutItem` on `attribute_not_exists` (a failed condition is the first kept).
//! - `parked`: one strongly consistent `Query` of the order's `P#` items per MB; expired items
//!   are dropped here, since DynamoDB deletes them by TTL only within about two days.
//! - `unpark`: one `DeleteItem`.
//! - `link_order` (see [`lookups`](super::lookups)): two `PutItem`s, the customer's reverse
//!   item then the order's.
//! - `erase_customer`: one strongly consistent `Query` per MB of the customer's partition (keys
//!   only are returned; a state is up to 350 KB, a send a few KB), one conditional
//!   `DeleteItem` per order ever linked to them (`cust = <customer>`: an order linked to
//!   another customer since is theirs), then one `BatchWriteItem` per 25 items of the
//!   partition (the state, every send, the journal, the reverse items), sent again for the
//!   items DynamoDB leaves unprocessed, up to [`BATCH_ATTEMPTS`] times with a growing pause;
//!   then the dead letters naming them: one `Query` per MB of the whole `DEAD` partition,
//!   filtered on the letters' `cust` (so it reads, and is billed for, every dead letter kept:
//!   a letter is at most 256 KiB of body, so 1,000 letters of 1 KB are 250 read units, 1,000
//!   of the largest 64,000), and one `BatchWriteItem` per 25 of theirs. Dead letters are rare
//!   and erasures rarer: a replayed or read letter should be removed, which keeps it small.
//!
//! Limits: the counts share one partition, so all counting together is bound by one
//! partition's 1,000 write units a second: a count's update is 2 of them (a transaction bills
//! double; the marker is in its own partition), so about 500 feedback events a second, far above
//! a shop's mail volume; beyond, DynamoDB throttles (`Throttled`, retryable). An erasure is not atomic: it deletes the order links first and the
//! partition last, so an erasure that fails half-way leaves the reverse items that find the
//! rest, and running it again finishes it. A commit of the customer racing the erasure may
//! write again after it (the port says so). Orders linked before the reverse items existed
//! (before this version) have none, and are not found by an erasure.

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    DeleteRequest, Put, ReturnConsumedCapacity, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Utc};
use nudge_core::store::{
    Erased, Feedback, FeedbackCount, FeedbackKind, Parked, StoreError, from_millis, to_millis,
};

use super::error::{Class, applied, build, classify, map_sdk_error};
use super::item::{Item, b, check_item_size, get_b, get_n, get_s, n, s};
use super::journal::JOURNAL_SK_PREFIX;
use super::keys::{
    DEAD_PK, PK, SEND_SK_PREFIX, SK, STATE_SK, TTL, check_sort_key, customer_pk, order_pk,
};
use super::{DEAD_CUSTOMER, DynamoDbStore, PROCESSED_EVENT_TTL, codec};

/// How many times [`DynamoDbStore::erase_customer_inner`] reads the customer's partition
/// again after deleting what it found.
const ERASE_ROUNDS: usize = 3;

/// The partition of the feedback counts.
pub(super) const FEEDBACK_PK: &str = "FEEDBACK";
/// The sort key of a feedback event's marker.
const FEEDBACK_SK: &str = "FEEDBACK";
/// The sort key prefix of an order's parked inputs.
pub(super) const PARKED_SK_PREFIX: &str = "P#";
/// The sort key prefix of a customer's reverse order links.
pub(super) const ORDER_LINK_SK_PREFIX: &str = "O#";
/// The sort key of an order's item (its customer).
pub(super) const ORDER_SK: &str = "ORDER";
/// How many times `record_feedback` sends its transaction when it meets another transaction.
pub const CONFLICT_ATTEMPTS: usize = 5;
/// How many times an erasure sends a batch of deletes whose items DynamoDB left unprocessed.
pub const BATCH_ATTEMPTS: usize = 8;
/// The most requests one `BatchWriteItem` holds (DynamoDB's limit).
const BATCH_ITEMS: usize = 25;

/// The partition key of feedback event `id`'s marker.
pub(super) fn feedback_event_pk(id: &str) -> String {
    format!("F#{id}")
}

/// The sort key of the count of (`workflow`, `step`, `kind`): `<bytes>:<workflow>`, the same
/// for the step, then the kind, so that no id can run into another (the counts are sorted
/// when read, not by this key).
fn count_sk(workflow: &str, step: &str, kind: FeedbackKind) -> Result<String, StoreError> {
    check_sort_key(format!(
        "{}:{workflow}{}:{step}{}",
        workflow.len(),
        step.len(),
        kind.as_str()
    ))
}

/// The sort key of the input parked under `event_id`.
pub(super) fn parked_sk(event_id: &str) -> Result<String, StoreError> {
    check_sort_key(format!("{PARKED_SK_PREFIX}{event_id}"))
}

/// The sort key of a customer's reverse link to order `order_id`.
pub(super) fn order_link_sk(order_id: &str) -> Result<String, StoreError> {
    check_sort_key(format!("{ORDER_LINK_SK_PREFIX}{order_id}"))
}

/// What a cancelled feedback transaction means.
#[derive(Debug)]
pub(super) enum FeedbackCancelled {
    /// The event's marker is there: counted before.
    Counted,
    /// Another transaction touched an item: send it again.
    Conflict,
    /// A failure.
    Error(StoreError),
}

/// What the cancellation reasons `(code, message)` of a feedback transaction (the marker, then
/// the count) mean: the marker's failed condition wins, then a conflict anywhere, then another
/// code (throttling, size) as its error.
pub(super) fn classify_feedback_cancellation(
    reasons: &[(Option<&str>, Option<&str>)],
) -> FeedbackCancelled {
    if reasons
        .first()
        .is_some_and(|r| r.0 == Some("ConditionalCheckFailed"))
    {
        return FeedbackCancelled::Counted;
    }
    if reasons.iter().any(|r| r.0 == Some("TransactionConflict")) {
        return FeedbackCancelled::Conflict;
    }
    let other = reasons
        .iter()
        .find(|r| !matches!(r.0, None | Some("None")))
        .copied();
    let (code, message) = other.unwrap_or((None, None));
    let class = match classify(code, message, 400) {
        Class::Failed if code.is_some_and(|c| c.contains("Throughput")) => Class::Throttled,
        class => class,
    };
    FeedbackCancelled::Error(build(
        class,
        format!(
            "DynamoDB TransactWriteItems cancelled: {}",
            code.unwrap_or("without a reason")
        ),
        None,
    ))
}

/// A feedback count as stored.
pub(super) fn feedback_count(item: &Item) -> Result<FeedbackCount, StoreError> {
    let kind = get_s(item, "kind")?;
    Ok(FeedbackCount {
        workflow: get_s(item, "wf")?.to_owned(),
        step: get_s(item, "step")?.to_owned(),
        kind: FeedbackKind::from_name(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown feedback kind `{kind}`")))?,
        count: get_n(item, "n")?,
    })
}

/// A parked input as stored.
pub(super) fn parked_input(order_id: &str, item: &Item) -> Result<Parked, StoreError> {
    let event_id = get_s(item, SK)?
        .strip_prefix(PARKED_SK_PREFIX)
        .ok_or_else(|| {
            StoreError::Corrupt("an item read as a parked input has another sort key".to_owned())
        })?;
    let body = String::from_utf8(codec::decode(get_b(item, "body")?)?)
        .map_err(|_| StoreError::Corrupt("a parked input's body is not UTF-8".to_owned()))?;
    Ok(Parked {
        order_id: order_id.to_owned(),
        event_id: event_id.to_owned(),
        body,
        expires_at: from_millis(get_n(item, "exp")?)?,
    })
}

/// The item of `parked`: its body stored like a state, its expiry in milliseconds and as a TTL
/// (unix seconds, rounded up, so that DynamoDB never deletes it before it expires).
pub(super) fn parked_item(parked: &Parked) -> Result<Item, StoreError> {
    let ms = to_millis(parked.expires_at);
    let ttl = ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0);
    let item: Item = [
        (PK.to_owned(), s(order_pk(&parked.order_id))),
        (SK.to_owned(), s(parked_sk(&parked.event_id)?)),
        ("body".to_owned(), b(codec::encode(parked.body.as_bytes()))),
        ("exp".to_owned(), n(ms)),
        (TTL.to_owned(), n(ttl.max(0))),
    ]
    .into();
    check_item_size(&item, "the parked input")?;
    Ok(item)
}

/// A random pause of up to `attempt` × 20 ms, so that writers that met do not meet again.
async fn pause(attempt: usize) {
    let ms = fastrand::u64(5..=20 * attempt as u64 + 5);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl DynamoDbStore {
    /// See `Store::record_feedback` and the module docs.
    pub(super) async fn record_feedback_inner(
        &self,
        feedback: &Feedback<'_>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now().timestamp();
        let marker: Item = [
            (PK.to_owned(), s(feedback_event_pk(feedback.event_id))),
            (SK.to_owned(), s(FEEDBACK_SK)),
            ("at".to_owned(), n(to_millis(feedback.at))),
            (
                TTL.to_owned(),
                n(now + PROCESSED_EVENT_TTL.as_secs() as i64),
            ),
        ]
        .into();
        check_item_size(&marker, "the feedback event item")?;
        let sk = count_sk(feedback.workflow, feedback.step, feedback.kind)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(marker))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Failed {
                message: format!("the feedback marker's request: {e}"),
                source: None,
            })?;
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(FEEDBACK_PK))
            .key(SK, s(sk))
            .update_expression("SET #w = :w, #s = :s, #k = :k ADD #n :one")
            .expression_attribute_names("#w", "wf")
            .expression_attribute_names("#s", "step")
            .expression_attribute_names("#k", "kind")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":w", s(feedback.workflow))
            .expression_attribute_values(":s", s(feedback.step))
            .expression_attribute_values(":k", s(feedback.kind.as_str()))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| StoreError::Failed {
                message: format!("the feedback count's request: {e}"),
                source: None,
            })?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(true),
                Err(err) => err,
            };
            let cancelled = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    let reasons: Vec<_> = e
                        .cancellation_reasons()
                        .iter()
                        .map(|r| (r.code(), r.message()))
                        .collect();
                    classify_feedback_cancellation(&reasons)
                }
                _ => return Err(map_sdk_error("TransactWriteItems", err)),
            };
            match cancelled {
                FeedbackCancelled::Counted => return Ok(false),
                FeedbackCancelled::Error(e) => return Err(e),
                FeedbackCancelled::Conflict if attempt < CONFLICT_ATTEMPTS => {
                    pause(attempt).await;
                }
                FeedbackCancelled::Conflict => {}
            }
        }
        Err(StoreError::Unavailable {
            message: format!(
                "DynamoDB TransactWriteItems: the feedback count met other transactions \
                 {CONFLICT_ATTEMPTS} times"
            ),
            source: None,
        })
    }

    /// See `Store::feedback_counts`.
    pub(super) async fn feedback_counts_inner(&self) -> Result<Vec<FeedbackCount>, StoreError> {
        let mut counts = Vec::new();
        for item in self.partition(FEEDBACK_PK.to_owned(), None, None).await? {
            counts.push(feedback_count(&item)?);
        }
        counts.sort_unstable();
        Ok(counts)
    }

    /// See `Store::park`.
    pub(super) async fn park_inner(&self, parked: &Parked) -> Result<(), StoreError> {
        let item = parked_item(parked)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => Ok(()),
                _ => Err(map_sdk_error("PutItem", err)),
            },
        }
    }

    /// See `Store::parked`.
    pub(super) async fn parked_inner(
        &self,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Parked>, StoreError> {
        let items = self
            .partition(order_pk(order_id), Some(PARKED_SK_PREFIX), None)
            .await?;
        let mut parked = Vec::new();
        for item in &items {
            let input = parked_input(order_id, item)?;
            if input.expires_at > now {
                parked.push(input);
            }
        }
        Ok(parked)
    }

    /// See `Store::unpark`.
    pub(super) async fn unpark_inner(
        &self,
        order_id: &str,
        event_id: &str,
    ) -> Result<(), StoreError> {
        // An event id no sort key can hold was never parked.
        let Ok(sk) = parked_sk(event_id) else {
            return Ok(());
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(order_pk(order_id)))
            .key(SK, s(sk))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| map_sdk_error("DeleteItem", e))?;
        Ok(())
    }

    /// See `Store::erase_customer` and the module docs: the order links first, then every item
    /// of the customer's partition.
    /// (Each round: one `Query` of the partition, then its deletes; the last round's `Query`
    /// finds it empty.)
    pub(super) async fn erase_customer_inner(
        &self,
        customer_id: &str,
    ) -> Result<Erased, StoreError> {
        let pk = customer_pk(customer_id);
        let mut erased = Erased::default();
        // The partition is read again after each round of deletes: a commit that raced the
        // first read (a new send, a moved state) is found and erased by the next round, rather
        // than left for the sweep to send to an erased customer. Rounds end when the partition
        // reads empty; a customer still being written after `ERASE_ROUNDS` rounds keeps what
        // the last commits wrote (the port's documented race).
        for _ in 0..ERASE_ROUNDS {
            let items = self.partition(pk.clone(), None, Some("pk, sk")).await?;
            if items.is_empty() {
                break;
            }
            let mut keys = Vec::with_capacity(items.len());
            for item in items {
                let sk = get_s(&item, SK)?.to_owned();
                if sk == STATE_SK {
                    erased.state = true;
                } else if sk.starts_with(SEND_SK_PREFIX) {
                    erased.sends += 1;
                } else if sk.starts_with(JOURNAL_SK_PREFIX) {
                    erased.journal_commits += 1;
                } else if let Some(order) = sk.strip_prefix(ORDER_LINK_SK_PREFIX)
                    && self.unlink_order(order, customer_id).await?
                {
                    erased.orders += 1;
                }
                keys.push(sk);
            }
            for chunk in keys.chunks(BATCH_ITEMS) {
                self.delete_batch(&pk, chunk).await?;
            }
        }
        erased.dead_letters = self.erase_dead_letters(customer_id).await?;
        Ok(erased)
    }

    /// Deletes the dead letters naming `customer_id`: a `Query` of the whole `DEAD` partition
    /// filtered on their `cust` (keys only returned, but every letter is read and billed), then
    /// one `BatchWriteItem` per 25 found. How many it deleted.
    async fn erase_dead_letters(&self, customer_id: &str) -> Result<usize, StoreError> {
        let mut ids = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .filter_expression("#c = :c")
                .expression_attribute_names("#c", DEAD_CUSTOMER)
                .expression_attribute_values(":p", s(DEAD_PK))
                .expression_attribute_values(":c", s(customer_id))
                .projection_expression("sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| map_sdk_error("Query", e))?;
            for item in output.items.unwrap_or_default() {
                ids.push(get_s(&item, SK)?.to_owned());
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        for chunk in ids.chunks(BATCH_ITEMS) {
            self.delete_batch(DEAD_PK, chunk).await?;
        }
        Ok(ids.len())
    }

    /// Deletes order `order_id`'s item if it still links to `customer_id`; whether it did.
    async fn unlink_order(&self, order_id: &str, customer_id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(order_pk(order_id)))
            .key(SK, s(ORDER_SK))
            .condition_expression("cust = :c")
            .expression_attribute_values(":c", s(customer_id))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        applied("DeleteItem", result, |e| {
            e.is_conditional_check_failed_exception()
        })
    }

    /// Deletes the items (`pk`, each of `sks`) in one `BatchWriteItem` (at most 25), sending
    /// again what DynamoDB leaves unprocessed.
    async fn delete_batch(&self, pk: &str, sks: &[String]) -> Result<(), StoreError> {
        let mut requests = sks
            .iter()
            .map(|sk| {
                let delete = DeleteRequest::builder()
                    .key(PK, s(pk))
                    .key(SK, s(sk.clone()))
                    .build()
                    .map_err(|e| StoreError::Failed {
                        message: format!("a delete request: {e}"),
                        source: None,
                    })?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for attempt in 1..=BATCH_ATTEMPTS {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| map_sdk_error("BatchWriteItem", e))?;
            requests = output
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            if attempt < BATCH_ATTEMPTS {
                pause(attempt * attempt).await;
            }
        }
        Err(StoreError::Throttled {
            message: format!(
                "DynamoDB BatchWriteItem: {} deletes still unprocessed after {BATCH_ATTEMPTS} \
                 attempts",
                requests.len()
            ),
            source: None,
        })
    }

    /// Every item of partition `pk` (whose sort key starts with `prefix`, when given), read
    /// strongly consistent a page at a time, with only `attributes` when given.
    pub(super) async fn partition(
        &self,
        pk: String,
        prefix: Option<&str>,
        attributes: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        self.partition_live(pk, prefix, attributes, None).await
    }

    /// As [`DynamoDbStore::partition`]; with `live_at` (unix seconds), only the items whose
    /// `ttl` is after it (a filter expression: DynamoDB removes expired items only within days).
    pub(super) async fn partition_live(
        &self,
        pk: String,
        prefix: Option<&str>,
        attributes: Option<&str>,
        live_at: Option<i64>,
    ) -> Result<Vec<Item>, StoreError> {
        let condition = if prefix.is_some() {
            "pk = :p AND begins_with(sk, :s)"
        } else {
            "pk = :p"
        };
        let mut values: Item = [(":p".to_owned(), s(pk))].into();
        if let Some(prefix) = prefix {
            values.insert(":s".to_owned(), s(prefix));
        }
        let (filter, names) = match live_at {
            Some(now) => {
                values.insert(":now".to_owned(), n(now));
                (
                    Some("#ttl > :now".to_owned()),
                    Some([("#ttl".to_owned(), TTL.to_owned())].into()),
                )
            }
            None => (None, None),
        };
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_projection_expression(attributes.map(str::to_owned))
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(names.clone())
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| map_sdk_error("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const CCF: (Option<&str>, Option<&str>) = (Some("ConditionalCheckFailed"), None);
    const OK: (Option<&str>, Option<&str>) = (Some("None"), None);
    const CONFLICT: (Option<&str>, Option<&str>) = (Some("TransactionConflict"), None);

    #[test]
    fn a_feedback_transaction_cancelled_on_its_marker_was_counted_before() {
        assert!(matches!(
            classify_feedback_cancellation(&[CCF, OK]),
            FeedbackCancelled::Counted
        ));
        assert!(matches!(
            classify_feedback_cancellation(&[CCF, CONFLICT]),
            FeedbackCancelled::Counted
        ));
        assert!(matches!(
            classify_feedback_cancellation(&[OK, CONFLICT]),
            FeedbackCancelled::Conflict
        ));
        assert!(matches!(
            classify_feedback_cancellation(&[(Some("ThrottlingError"), None), OK]),
            FeedbackCancelled::Error(StoreError::Throttled { .. })
        ));
        assert!(matches!(
            classify_feedback_cancellation(&[OK, (Some("ProvisionedThroughputExceeded"), None)]),
            FeedbackCancelled::Error(StoreError::Throttled { .. })
        ));
        assert!(matches!(
            classify_feedback_cancellation(&[]),
            FeedbackCancelled::Error(StoreError::Failed { .. })
        ));
    }

    #[test]
    fn count_keys_keep_ids_apart_and_refuse_what_no_key_holds() {
        let a = count_sk("a1:b", "c", FeedbackKind::Opened).unwrap();
        let b = count_sk("a", "b1:c", FeedbackKind::Opened).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            count_sk("w", "s", FeedbackKind::Clicked).unwrap(),
            "1:w1:sclicked"
        );
        assert!(matches!(
            count_sk(&"w".repeat(1100), "s", FeedbackKind::Clicked),
            Err(StoreError::InvalidRequest(_))
        ));
    }

    #[test]
    fn parked_items_round_trip_and_expire_no_earlier_than_asked() {
        let parked = Parked {
            order_id: "1001".to_owned(),
            event_id: "e-1".to_owned(),
            body: "{\"note\":\"ş\"}".to_owned(),
            expires_at: Utc.timestamp_millis_opt(10_001).unwrap(),
        };
        let item = parked_item(&parked).unwrap();
        assert_eq!(item[TTL], n(11));
        assert_eq!(item[SK], s("P#e-1"));
        assert_eq!(parked_input("1001", &item).unwrap(), parked);
        let whole = Parked {
            expires_at: Utc.timestamp_millis_opt(10_000).unwrap(),
            ..parked
        };
        assert_eq!(parked_item(&whole).unwrap()[TTL], n(10));
        let mut broken = item.clone();
        broken.insert(SK.to_owned(), s("ORDER"));
        assert!(matches!(
            parked_input("1001", &broken),
            Err(StoreError::Corrupt(_))
        ));
        let mut broken = item;
        broken.insert("body".to_owned(), b(codec::encode(&[0xff])));
        assert!(matches!(
            parked_input("1001", &broken),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn feedback_counts_read_back_and_refuse_unknown_kinds() {
        let item: Item = [
            ("wf".to_owned(), s("w")),
            ("step".to_owned(), s("s")),
            ("kind".to_owned(), s("bounced")),
            ("n".to_owned(), n(7)),
        ]
        .into();
        assert_eq!(
            feedback_count(&item).unwrap(),
            FeedbackCount {
                workflow: "w".to_owned(),
                step: "s".to_owned(),
                kind: FeedbackKind::Bounced,
                count: 7
            }
        );
        let mut odd = item;
        odd.insert("kind".to_owned(), s("Bounced"));
        assert!(matches!(feedback_count(&odd), Err(StoreError::Corrupt(_))));
    }
}
