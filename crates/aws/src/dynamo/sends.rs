//! The send log, the outbox of the send guarantee: one item per idempotency key in the
//! customer's partition (`sk` `S#<key>`), on the sweep index (partition `send#<shard>`, sort
//! key `retry_at` + customer + key) while it is pending or claimed. A claim and a settlement are
//! each one conditional `UpdateItem`; the old item comes back with the answer (on success for a
//! claim, on a failed condition for both), so an unknown key is told from a send that is not
//! claimable without another read.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use chrono::{DateTime, Utc};
use nudge_core::store::{
    SendEntry, SendKind, SendPage, SendRecord, SendStatus, Settle, StoreError, from_millis,
    to_millis,
};

use super::error::map_sdk_error;
use super::item::{Item, b, get_b, get_n, get_s, n, opt_n, opt_s, s};
use super::keys::{
    GPK, GSK, PK, SEND_SK_PREFIX, SK, TTL, customer_of, customer_pk, parse_sort_time, send_gpk,
    send_keys, send_sk,
};
use super::{DynamoDbStore, SEND_LOG_TTL, codec};

/// The attribute holding a send's status.
const STATUS: &str = "stat";
/// The attribute holding `retry_at` (unix milliseconds), while pending or claimed.
const RETRY: &str = "retry";

/// A send-log entry as a commit first writes it: pending, no attempts, deliverable at its
/// `at` (so on the sweep index at that time), expiring [`SEND_LOG_TTL`] after `now` (unix
/// seconds). The payload is stored like the state (format byte, deflated when that pays).
pub(super) fn send_item(send: &SendRecord, now: i64) -> Result<Item, StoreError> {
    let (gpk, gsk) = send_keys(&send.customer_id, &send.idempotency_key, send.at)?;
    let tags = send.tags.iter().map(|t| s(t.clone())).collect();
    Ok([
        (PK.to_owned(), s(customer_pk(&send.customer_id))),
        (SK.to_owned(), s(send_sk(&send.idempotency_key))),
        ("wf".to_owned(), s(send.workflow.clone())),
        ("step".to_owned(), s(send.step.clone())),
        ("kind".to_owned(), s(send.kind.as_str())),
        ("cat".to_owned(), s(send.category.clone())),
        ("tags".to_owned(), AttributeValue::L(tags)),
        ("at".to_owned(), n(to_millis(send.at))),
        ("body".to_owned(), b(codec::encode(&send.payload))),
        (STATUS.to_owned(), s(SendStatus::Pending.as_str())),
        ("att".to_owned(), n(0)),
        (RETRY.to_owned(), n(to_millis(send.at))),
        (GPK.to_owned(), s(gpk)),
        (GSK.to_owned(), s(gsk)),
        (TTL.to_owned(), n(now + SEND_LOG_TTL.as_secs() as i64)),
    ]
    .into())
}

/// A send-log entry as stored.
pub(super) fn send_entry(item: &Item) -> Result<SendEntry, StoreError> {
    let key = get_s(item, SK)?;
    let key = key
        .strip_prefix(SEND_SK_PREFIX)
        .ok_or_else(|| StoreError::Corrupt(format!("`{key}` is not a send-log key")))?;
    let name = get_s(item, STATUS)?;
    let status = SendStatus::from_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown send status `{name}`")))?;
    let name = get_s(item, "kind")?;
    let kind = SendKind::from_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown send kind `{name}`")))?;
    let tags = match item.get("tags") {
        Some(AttributeValue::L(tags)) => tags
            .iter()
            .map(|t| match t {
                AttributeValue::S(t) => Ok(t.clone()),
                _ => Err(StoreError::Corrupt(
                    "a send's tag is not a string".to_owned(),
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(StoreError::Corrupt("a send has no tag list".to_owned())),
    };
    let record = SendRecord {
        idempotency_key: key.to_owned(),
        customer_id: customer_of(get_s(item, PK)?)?.to_owned(),
        workflow: get_s(item, "wf")?.to_owned(),
        step: get_s(item, "step")?.to_owned(),
        kind,
        category: get_s(item, "cat")?.to_owned(),
        tags,
        at: from_millis(get_n(item, "at")?)?,
        payload: codec::decode(get_b(item, "body")?)?,
    };
    Ok(SendEntry {
        record,
        status,
        attempts: get_n(item, "att")?,
        retry_at: opt_n(item, RETRY)?.map(from_millis).transpose()?,
        message_id: opt_s(item, "mid"),
        reason: opt_s(item, "why"),
    })
}

impl DynamoDbStore {
    /// The send log of `customer_id`: a strongly consistent query of its partition's `S#`
    /// items, ordered by time and key.
    pub(super) async fn sends_inner(
        &self,
        customer_id: &str,
    ) -> Result<Vec<SendEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":p", s(customer_pk(customer_id)))
                .expression_attribute_values(":s", s(SEND_SK_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| map_sdk_error("Query", e))?;
            for item in output.items.unwrap_or_default() {
                entries.push(send_entry(&item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        entries.sort_by(|a, b| {
            (a.record.at, &a.record.idempotency_key).cmp(&(b.record.at, &b.record.idempotency_key))
        });
        Ok(entries)
    }

    /// An `UpdateItem` of the send `key` of `customer_id`, with the status attribute's name
    /// bound to `#s` and `retry_at`'s to `#r`, returning the old item on a failed condition.
    fn update_send(&self, customer_id: &str, key: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(customer_pk(customer_id)))
            .key(SK, s(send_sk(key)))
            .expression_attribute_names("#s", STATUS)
            .expression_attribute_names("#r", RETRY)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// See `Store::claim_send`: one conditional update, returning the entry as it was.
    pub(super) async fn claim_send_inner(
        &self,
        customer_id: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        let (gpk, gsk) = send_keys(customer_id, key, lease_until)?;
        let result = self
            .update_send(customer_id, key)
            .update_expression(
                "SET #s = :sending, #r = :lease, att = att + :one, gpk = :gpk, gsk = :gsk",
            )
            .condition_expression(
                "attribute_exists(pk) AND (#s = :pending OR #s = :sending) AND #r <= :now",
            )
            .expression_attribute_values(":sending", s(SendStatus::Sending.as_str()))
            .expression_attribute_values(":pending", s(SendStatus::Pending.as_str()))
            .expression_attribute_values(":lease", n(to_millis(lease_until)))
            .expression_attribute_values(":now", n(to_millis(now)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":gpk", s(gpk))
            .expression_attribute_values(":gsk", s(gsk))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let old = output.attributes.unwrap_or_default();
                send_entry(&old).map(Some)
            }
            Err(err) => not_applied(key, err).map(|()| None),
        }
    }

    /// See `Store::settle_send`: one conditional update.
    pub(super) async fn settle_send_inner(
        &self,
        customer_id: &str,
        key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        let sending = s(SendStatus::Sending.as_str());
        let request = self.update_send(customer_id, key);
        let request = match settle {
            Settle::Sent { message_id } => {
                let request = request
                    .condition_expression("attribute_exists(pk) AND #s <> :to")
                    .expression_attribute_values(":to", s(SendStatus::Sent.as_str()));
                match message_id {
                    Some(id) => request
                        .update_expression(
                            "SET #s = :to, mid = if_not_exists(mid, :m) REMOVE #r, gpk, gsk",
                        )
                        .expression_attribute_values(":m", s(id)),
                    None => request.update_expression("SET #s = :to REMOVE #r, gpk, gsk"),
                }
            }
            Settle::Retry { at, reason } => {
                let (gpk, gsk) = send_keys(customer_id, key, at)?;
                request
                    .condition_expression("attribute_exists(pk) AND #s = :sending")
                    .update_expression("SET #s = :to, #r = :at, why = :why, gpk = :gpk, gsk = :gsk")
                    .expression_attribute_values(":sending", sending)
                    .expression_attribute_values(":to", s(SendStatus::Pending.as_str()))
                    .expression_attribute_values(":at", n(to_millis(at)))
                    .expression_attribute_values(":why", s(reason))
                    .expression_attribute_values(":gpk", s(gpk))
                    .expression_attribute_values(":gsk", s(gsk))
            }
            Settle::Failed { reason } | Settle::Unknown { reason } => request
                .condition_expression("attribute_exists(pk) AND #s = :sending")
                .update_expression("SET #s = :to, why = :why REMOVE #r, gpk, gsk")
                .expression_attribute_values(":sending", sending)
                .expression_attribute_values(":to", s(settle.status().as_str()))
                .expression_attribute_values(":why", s(reason)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) => not_applied(key, err).map(|()| false),
        }
    }

    /// See `Store::pending_sends`: a page of the sweep index's `send#<shard>` partition.
    pub(super) async fn pending_sends_inner(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SendPage, StoreError> {
        let (items, cursor) = self
            .sweep(send_gpk(shard), shard, until, limit, cursor)
            .await?;
        let due = items
            .iter()
            .map(|item| {
                let customer = customer_of(get_s(item, PK)?)?.to_owned();
                let key = get_s(item, SK)?;
                let key = key.strip_prefix(SEND_SK_PREFIX).ok_or_else(|| {
                    StoreError::Corrupt(format!("`{key}` on the send sweep is not a send"))
                })?;
                Ok((
                    parse_sort_time(get_s(item, GSK)?)?,
                    customer,
                    key.to_owned(),
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(SendPage { due, cursor })
    }
}

/// What a failed conditional update of send `key` means: the condition failed on an existing
/// entry (`Ok`: not applicable), on none (`UnknownSend`), or another error.
fn not_applied(
    key: &str,
    err: aws_sdk_dynamodb::error::SdkError<
        UpdateItemError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> Result<(), StoreError> {
    match err.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(e)) => match e.item() {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownSend(key.to_owned())),
        },
        _ => Err(map_sdk_error("UpdateItem", err)),
    }
}
