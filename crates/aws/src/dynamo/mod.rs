//! [`DynamoDbStore`]: the `Store` port on one DynamoDB table (the design: docs/ARCHITECTURE.md,
//! "DynamoDB table design").
//!
//! One table, keyed by `pk` and `sk`, with one sparse global secondary index (`sweep`) on
//! `gpk`/`gsk` that holds only the customers with a timer and the sends still to deliver, so
//! that firing timers and sweeping sends read only what is due, never a scan. A commit is one
//! `TransactWriteItems` ([`commit`]); claims and settlements of sends are single conditional
//! `UpdateItem`s. Errors map onto `StoreError` as [`error`]'s table says.

mod aside;
mod codec;
mod commit;
mod customers;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod item;
mod journal;
mod keys;
mod lookups;
mod meter;
mod sends;
mod table;

#[cfg(test)]
mod replay_tests;

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use chrono::{DateTime, Utc};
use nudge_core::journal::JournalEntry;
use nudge_core::store::{
    Commit, CommitOutcome, CustomerPage, CustomerRecord, DUE_SHARDS, DeadLetter, DuePage, Erased,
    Feedback, FeedbackCount, JournalPage, Parked, SendEntry, SendPage, Settle, Store, StoreError,
    due_shard, from_millis, to_millis,
};

use error::map_sdk_error;
use item::{Item, b, check_item_size, get_b, get_n, get_s, n, opt_s, s};
use keys::{
    ClaimNonces, Cursor, DEAD_PK, DeadLetterIds, GPK, GSK, PK, SK, STATE_SK, SWEEP_INDEX,
    customer_of, customer_pk, due_gpk, event_pk, meta_pk, parse_sort_time, until_bound,
};

pub use item::{MAX_ITEM_BYTES, MAX_TRANSACTION_ITEMS};
pub use keys::MAX_CUSTOMER_ID_BYTES;
pub use meter::{OperationCount, RequestMeter};
pub use table::create_table;

/// How long a processed event id is kept: 35 days. Its item guards against a second delivery
/// of the same event, so it must outlive every redelivery: SQS keeps a message at most 14
/// days, and a dead-letter queue redriven near the end of its own 14 days (a FIFO queue's
/// clock restarts there) makes 28; EventBridge retries for at most 24 hours and Shopify
/// retries a webhook 8 times over 4 hours. A week more covers an operator replaying a
/// dead-letter queue late. DynamoDB deletes expired items within days, without cost.
pub const PROCESSED_EVENT_TTL: Duration = Duration::from_secs(35 * 24 * 3600);

/// How long a send-log entry is kept after it is logged: 90 days. Long enough for every retry
/// (the runner gives up after about 17 hours), for a quarter's audit of what was sent and for
/// `explain`; short enough that a customer's partition stays bounded and storage small (an
/// entry holds its message, a few KB deflated: 150,000 emails a month keep about 1.7 GB).
pub const SEND_LOG_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// The sort key of a metadata item.
const META_SK: &str = "META";

/// The attribute of a dead letter that names its customer ([`DeadLetter::customer_id`]).
pub(crate) const DEAD_CUSTOMER: &str = "cust";

/// The `Store` port on a DynamoDB table made by [`create_table`].
///
/// - A commit is one `TransactWriteItems` whose `ClientRequestToken` is derived from the commit
///   (an SDK retry of a commit that went through is answered as done, not as a duplicate); its
///   cancellation reasons give `AlreadyProcessed` (the event's, which wins) or `Conflict` (the
///   customer's, or a transaction conflict). A commit of more than [`MAX_TRANSACTION_ITEMS`]
///   items or with an item over [`MAX_ITEM_BYTES`] is `TooLarge` before any request.
/// - Errors: throttling (and HTTP 429) is `Throttled`; 5xx, timeouts and connection failures
///   `Unavailable`; size refusals `TooLarge`; anything else (no table, no permission) `Failed`.
///   Messages name the operation, DynamoDB's code, the HTTP status and the request id, never
///   the service's text or a key.
/// - `due` and `pending_sends` read a global secondary index, which is eventually consistent:
///   an entry may show a moment late, or a moment after it moved. Both are hints: the runner
///   re-reads the customer before firing a timer, and a send is claimed by a conditional
///   update of its own item.
/// - Times are kept to the millisecond, from 1970 to 9999; a timer or send time outside that
///   range is `InvalidRequest` (it cannot be written into a sort key), as is a customer id over
///   [`MAX_CUSTOMER_ID_BYTES`] in a load or a commit.
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    /// Shared by clones, so that one writer's dead-letter ids keep increasing.
    ids: Arc<DeadLetterIds>,
    /// The nonces a send claim writes, to know its own claim when the SDK retries it.
    claims: Arc<ClaimNonces>,
}

/// A DynamoDB client on `config` (see `config_loader`), counting its requests and their
/// consumed capacity in `meter` when one is given.
pub fn dynamodb_client(config: &SdkConfig, meter: Option<&RequestMeter>) -> Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(config);
    if let Some(meter) = meter {
        builder = builder.interceptor(meter.clone());
    }
    Client::from_conf(builder.build())
}

impl DynamoDbStore {
    /// A store on table `table` (see [`create_table`]) through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDbStore {
            client,
            table: table.into(),
            ids: Arc::new(DeadLetterIds::new()),
            claims: Arc::new(ClaimNonces::new()),
        }
    }

    /// The item under (`pk`, `sk`), read strongly consistent, with only `attributes`.
    async fn get(
        &self,
        pk: String,
        sk: &str,
        attributes: &str,
    ) -> Result<Option<Item>, StoreError> {
        self.get_named(pk, sk, attributes, ("#pk", PK)).await
    }

    /// As [`DynamoDbStore::get`], with `name` bound in `attributes` (for a reserved word).
    async fn get_named(
        &self,
        pk: String,
        sk: &str,
        attributes: &str,
        name: (&str, &str),
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .projection_expression(attributes)
            .set_expression_attribute_names(
                attributes
                    .contains(name.0)
                    .then(|| [(name.0.to_owned(), name.1.to_owned())].into()),
            )
            .set_expression_attribute_names(
                attributes
                    .contains(name.0)
                    .then(|| [(name.0.to_owned(), name.1.to_owned())].into()),
            )
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| map_sdk_error("GetItem", e))?;
        Ok(output.item)
    }

    /// Puts `item` unconditionally.
    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| map_sdk_error("PutItem", e))?;
        Ok(())
    }

    /// One page of the sweep index's partition `gpk` (of due shard `shard`) up to `until`: at
    /// most `limit` items (0 read as 1) after `cursor`, and the cursor after the last one when
    /// the page is full. Index reads are eventually consistent (see the docs): what they return
    /// is a hint the caller checks against the item itself.
    async fn sweep(
        &self,
        gpk: String,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        if shard >= DUE_SHARDS {
            return Err(StoreError::InvalidRequest(format!(
                "due shard {shard} is out of range (0..{DUE_SHARDS})"
            )));
        }
        let mut start = match cursor {
            None => None,
            Some(text) => Some(start_key(&gpk, shard, Cursor::decode(text)?)?),
        };
        let limit = limit.max(1);
        let bound = until_bound(until)?;
        let mut items = Vec::new();
        loop {
            let want = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(SWEEP_INDEX)
                .key_condition_expression("gpk = :p AND gsk < :u")
                .expression_attribute_values(":p", s(gpk.clone()))
                .expression_attribute_values(":u", s(bound.clone()))
                .set_exclusive_start_key(start)
                .limit(want)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| map_sdk_error("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if items.len() >= limit || start.is_none() {
                break;
            }
        }
        items.truncate(limit);
        let next = match items.last() {
            Some(last) if items.len() == limit => Some(
                Cursor {
                    gsk: get_s(last, GSK)?.to_owned(),
                    pk: get_s(last, PK)?.to_owned(),
                    sk: get_s(last, SK)?.to_owned(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok((items, next))
    }

    async fn is_processed_inner(&self, event_id: &str) -> Result<bool, StoreError> {
        let item = self.get(event_pk(event_id), commit::EVENT_SK, "pk").await?;
        Ok(item.is_some())
    }

    async fn load_inner(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        keys::check_customer_id(customer_id)?;
        let Some(item) = self
            .get(customer_pk(customer_id), STATE_SK, "v, st")
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(CustomerRecord {
            version: get_n(&item, "v")?,
            state: codec::decode(get_b(&item, "st")?)?,
        }))
    }

    /// One conditional `UpdateItem` removing the timer's index keys if the timer is still at
    /// `due` (its sort key is exactly that time and customer); the version is not touched.
    async fn set_aside_inner(
        &self,
        customer_id: &str,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // A time no sort key can hold is no customer's stored timer.
        let Ok((_, gsk)) = keys::timer_keys(customer_id, due) else {
            return Ok(false);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(customer_pk(customer_id)))
            .key(SK, s(STATE_SK))
            .update_expression("REMOVE gpk, gsk")
            .condition_expression("gsk = :gsk")
            .expression_attribute_values(":gsk", s(gsk))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        error::applied("UpdateItem", result, |e| {
            e.is_conditional_check_failed_exception()
        })
    }

    async fn due_inner(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DuePage, StoreError> {
        let (items, cursor) = self
            .sweep(due_gpk(shard), shard, until, limit, cursor)
            .await?;
        let due = items
            .iter()
            .map(|item| {
                let customer = customer_of(get_s(item, PK)?)?.to_owned();
                Ok((parse_sort_time(get_s(item, GSK)?)?, customer))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(DuePage { due, cursor })
    }

    async fn record_dead_letter_inner(&self, letter: &DeadLetter) -> Result<String, StoreError> {
        let id = self.ids.next(Utc::now());
        let mut item: Item = [
            (PK.to_owned(), s(DEAD_PK)),
            (SK.to_owned(), s(id.clone())),
            ("src".to_owned(), s(letter.source.clone())),
            ("why".to_owned(), s(letter.reason.clone())),
            (
                "body".to_owned(),
                b(codec::encode(letter.stored_body().as_bytes())),
            ),
            ("at".to_owned(), n(to_millis(letter.received_at))),
        ]
        .into();
        if let Some(event) = &letter.event_id {
            item.insert("eid".to_owned(), s(event.clone()));
        }
        if let Some(customer) = &letter.customer_id {
            item.insert(DEAD_CUSTOMER.to_owned(), s(customer.clone()));
        }
        check_item_size(&item, "the dead letter")?;
        self.put(item).await?;
        Ok(id)
    }

    async fn dead_letters_inner(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.dead_letters_after_inner(None, limit).await
    }

    /// One strongly consistent `Query` of the `DEAD` partition per page of DynamoDB's (1 MB),
    /// from after `after` (a sort key bound: any string will do), until `limit` are read.
    async fn dead_letters_after_inner(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let limit = limit.max(1);
        let mut letters = Vec::new();
        let mut start = None;
        let condition = if after.is_some() {
            "pk = :p AND sk > :a"
        } else {
            "pk = :p"
        };
        let mut values: Item = [(":p".to_owned(), s(DEAD_PK))].into();
        if let Some(after) = after {
            values.insert(":a".to_owned(), s(after));
        }
        while letters.len() < limit {
            let want = i32::try_from(limit - letters.len()).unwrap_or(i32::MAX);
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .limit(want)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| map_sdk_error("Query", e))?;
            for item in output.items.unwrap_or_default() {
                letters.push(dead_letter(&item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        letters.truncate(limit);
        Ok(letters)
    }

    /// One strongly consistent `GetItem`.
    async fn dead_letter_inner(&self, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        if id.is_empty() {
            return Ok(None);
        }
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(DEAD_PK))
            .key(SK, s(id))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| map_sdk_error("GetItem", e))?;
        output.item.as_ref().map(dead_letter).transpose()
    }

    /// One `DeleteItem` on `attribute_exists(pk)`: a failed condition is a letter not there.
    async fn remove_dead_letter_inner(&self, id: &str) -> Result<bool, StoreError> {
        if id.is_empty() {
            return Ok(false);
        }
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(DEAD_PK))
            .key(SK, s(id))
            .condition_expression("attribute_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        error::applied("DeleteItem", result, |e| {
            e.is_conditional_check_failed_exception()
        })
    }
}

/// The `ExclusiveStartKey` of a page after `cursor` in sweep partition `gpk`; a cursor of
/// another shard is refused.
fn start_key(gpk: &str, shard: u16, cursor: Cursor) -> Result<Item, StoreError> {
    // A timer's cursor names a state item, a send's a send-log entry: one handed out by `due`
    // is refused by `pending_sends` and the other way round, as is another shard's.
    let timers = gpk == due_gpk(shard);
    let kind_matches = if timers {
        cursor.sk == STATE_SK
    } else {
        cursor.sk.starts_with(keys::SEND_SK_PREFIX)
    };
    if !kind_matches || due_shard(customer_of(&cursor.pk)?) != shard {
        return Err(StoreError::InvalidRequest(format!(
            "the cursor is not one of this index and due shard {shard}"
        )));
    }
    Ok([
        (GPK.to_owned(), s(gpk)),
        (GSK.to_owned(), s(cursor.gsk)),
        (PK.to_owned(), s(cursor.pk)),
        (SK.to_owned(), s(cursor.sk)),
    ]
    .into())
}

/// A dead letter as stored.
fn dead_letter(item: &Item) -> Result<DeadLetter, StoreError> {
    let body = String::from_utf8(codec::decode(get_b(item, "body")?)?)
        .map_err(|_| StoreError::Corrupt("a dead letter's body is not UTF-8".to_owned()))?;
    Ok(DeadLetter {
        id: get_s(item, SK)?.to_owned(),
        event_id: opt_s(item, "eid"),
        customer_id: opt_s(item, DEAD_CUSTOMER),
        source: get_s(item, "src")?.to_owned(),
        reason: get_s(item, "why")?.to_owned(),
        body,
        received_at: from_millis(get_n(item, "at")?)?,
    })
}

impl Store for DynamoDbStore {
    async fn load(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        self.load_inner(customer_id).await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.commit_inner(commit).await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.is_processed_inner(event_id).await
    }

    async fn due(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DuePage, StoreError> {
        self.due_inner(shard, until, limit, cursor).await
    }

    async fn sends(&self, customer_id: &str) -> Result<Vec<SendEntry>, StoreError> {
        self.sends_inner(customer_id).await
    }

    async fn set_aside(&self, customer_id: &str, due: DateTime<Utc>) -> Result<bool, StoreError> {
        self.set_aside_inner(customer_id, due).await
    }

    async fn claim_send(
        &self,
        customer_id: &str,
        idempotency_key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        self.claim_send_inner(customer_id, idempotency_key, now, lease_until)
            .await
    }

    async fn settle_send(
        &self,
        customer_id: &str,
        idempotency_key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        self.settle_send_inner(customer_id, idempotency_key, settle)
            .await
    }

    async fn pending_sends(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SendPage, StoreError> {
        self.pending_sends_inner(shard, until, limit, cursor).await
    }

    async fn link_order(&self, order_id: &str, customer_id: &str) -> Result<(), StoreError> {
        self.link_order_inner(order_id, customer_id).await
    }

    async fn order_customer(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        self.order_customer_inner(order_id).await
    }

    async fn suppress(
        &self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.suppress_inner(address_key, reason, at).await
    }

    async fn suppression(
        &self,
        address_key: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        self.suppression_inner(address_key).await
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<String, StoreError> {
        self.record_dead_letter_inner(letter).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters_inner(limit).await
    }

    async fn dead_letters_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters_after_inner(after, limit).await
    }

    async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.dead_letter_inner(id).await
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        self.remove_dead_letter_inner(id).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let item = self.get(meta_pk(key), META_SK, "val").await?;
        item.map(|i| get_s(&i, "val").map(str::to_owned))
            .transpose()
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let item: Item = [
            (PK.to_owned(), s(meta_pk(key))),
            (SK.to_owned(), s(META_SK)),
            ("val".to_owned(), s(value)),
        ]
        .into();
        check_item_size(&item, "the metadata item")?;
        self.put(item).await
    }

    async fn record_feedback(&self, feedback: &Feedback<'_>) -> Result<bool, StoreError> {
        self.record_feedback_inner(feedback).await
    }

    async fn feedback_counts(&self) -> Result<Vec<FeedbackCount>, StoreError> {
        self.feedback_counts_inner().await
    }

    async fn park(&self, parked: &Parked) -> Result<(), StoreError> {
        self.park_inner(parked).await
    }

    async fn parked(&self, order_id: &str, now: DateTime<Utc>) -> Result<Vec<Parked>, StoreError> {
        self.parked_inner(order_id, now).await
    }

    async fn unpark(&self, order_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.unpark_inner(order_id, event_id).await
    }

    async fn erase_customer(&self, customer_id: &str) -> Result<Erased, StoreError> {
        self.erase_customer_inner(customer_id).await
    }

    async fn journal(&self, customer_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_inner(customer_id).await
    }

    async fn journal_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<JournalPage, StoreError> {
        self.journal_page_inner(since, cursor, limit).await
    }

    /// Every write is durable when DynamoDB acknowledges it: nothing to do.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn customers(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<CustomerPage, StoreError> {
        self.customers_inner(cursor, limit).await
    }
}
