//! The send log: one item per idempotency key in the customer's partition (`sk` `S#<key>`),
//! and on the sweep index while it is still to be delivered.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};
use nudge_core::store::{SendRecord, SendStatus, StoreError, from_millis, to_millis};

use super::error::map_sdk_error;
use super::item::{Item, get_n, get_s, n, s};
use super::keys::{GPK, GSK, PK, SEND_SK_PREFIX, SK, TTL, customer_pk, send_keys, send_sk};
use super::{DynamoDbStore, SEND_LOG_TTL};

/// The attribute holding a send's status.
const STATUS: &str = "stat";

/// A send-log entry as first written (pending), expiring [`SEND_LOG_TTL`] after `now` (unix
/// seconds). Pending entries are on the sweep index.
pub(super) fn send_item(send: &SendRecord, now: i64) -> Result<Item, StoreError> {
    let (gpk, gsk) = send_keys(&send.customer_id, &send.idempotency_key, send.at)?;
    Ok([
        (PK.to_owned(), s(customer_pk(&send.customer_id))),
        (SK.to_owned(), s(send_sk(&send.idempotency_key))),
        ("wf".to_owned(), s(send.workflow.clone())),
        ("step".to_owned(), s(send.step.clone())),
        ("cat".to_owned(), s(send.category.clone())),
        ("at".to_owned(), n(to_millis(send.at))),
        (STATUS.to_owned(), s(SendStatus::Pending.as_str())),
        (GPK.to_owned(), s(gpk)),
        (GSK.to_owned(), s(gsk)),
        (TTL.to_owned(), n(now + SEND_LOG_TTL.as_secs() as i64)),
    ]
    .into())
}

/// A send-log entry as stored.
fn send_entry(customer_id: &str, item: &Item) -> Result<(SendRecord, SendStatus), StoreError> {
    let key = get_s(item, SK)?;
    let key = key
        .strip_prefix(SEND_SK_PREFIX)
        .ok_or_else(|| StoreError::Corrupt(format!("`{key}` is not a send-log key")))?;
    let status = get_s(item, STATUS)?;
    let status = SendStatus::from_name(status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown send status `{status}`")))?;
    let record = SendRecord {
        idempotency_key: key.to_owned(),
        customer_id: customer_id.to_owned(),
        workflow: get_s(item, "wf")?.to_owned(),
        step: get_s(item, "step")?.to_owned(),
        category: get_s(item, "cat")?.to_owned(),
        at: from_millis(get_n(item, "at")?)?,
    };
    Ok((record, status))
}

impl DynamoDbStore {
    /// The send log of `customer_id`: a strongly consistent query of its partition's `S#`
    /// items, ordered by time and key.
    pub(super) async fn sends_inner(
        &self,
        customer_id: &str,
    ) -> Result<Vec<(SendRecord, SendStatus)>, StoreError> {
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
                entries.push(send_entry(customer_id, &item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        entries.sort_by(|a, b| (a.0.at, &a.0.idempotency_key).cmp(&(b.0.at, &b.0.idempotency_key)));
        Ok(entries)
    }

    /// One conditional update: the entry exists and is not sent. A failed condition with no
    /// old item is an unknown key; with one, an entry already sent (nothing to do).
    pub(super) async fn mark_send_inner(
        &self,
        customer_id: &str,
        key: &str,
        status: SendStatus,
        message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut update = "SET #s = :s".to_owned();
        if message_id.is_some() {
            update.push_str(", mid = :m");
        }
        if status != SendStatus::Pending {
            update.push_str(" REMOVE gpk, gsk");
        }
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(customer_pk(customer_id)))
            .key(SK, s(send_sk(key)))
            .update_expression(update)
            .condition_expression("attribute_exists(pk) AND #s <> :sent")
            .expression_attribute_names("#s", STATUS)
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":sent", s(SendStatus::Sent.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let request = match message_id {
            Some(id) => request.expression_attribute_values(":m", s(id)),
            None => request,
        };
        let result = request.send().await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    if e.item().is_some() {
                        Ok(())
                    } else {
                        Err(StoreError::UnknownSend(key.to_owned()))
                    }
                }
                _ => Err(map_sdk_error("UpdateItem", err)),
            },
        }
    }
}
