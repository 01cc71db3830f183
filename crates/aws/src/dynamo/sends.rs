//! The send log, the outbox of the send guarantee: one item per idempotency key in the
//! customer's partition (`sk` `S#<key>`), on the sweep index (partition `send#<shard>`, sort
//! key `retry_at` + customer + key) while it is pending or claimed. A claim and a settlement are
//! each one conditional `UpdateItem`; the old item comes back with the answer (on success for a
//! claim, on a failed condition for both), so an unknown key is told from a send that is not
//! claimable without another read.
//!
//! A claim also writes its own nonce (`cid`) and what it replaced (`pst` the status, `prt` the
//! `retry_at`): when DynamoDB applied a claim but its answer was lost (a 500, a timeout), the
//! SDK's retry fails the condition on that very claim, and the item it returns, `sending` with
//! this call's nonce, tells the claim is ours and what the entry was before it. A settlement
//! removes the three.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use chrono::{DateTime, Utc};
use nudge_core::store::{
    SendEntry, SendKind, SendPage, SendRecord, SendStatus, Settle, StoreError, from_millis,
    to_millis,
};

use super::error::{Written, conditional_write, map_sdk_error};
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
/// The attribute holding the nonce of the claim that set `sending` (while claimed).
const CLAIM: &str = "cid";
/// The attribute holding the status a claim replaced (while claimed).
const PREVIOUS_STATUS: &str = "pst";
/// The attribute holding the `retry_at` a claim replaced (while claimed).
const PREVIOUS_RETRY: &str = "prt";

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
    let key = key.strip_prefix(SEND_SK_PREFIX).ok_or_else(|| {
        StoreError::Corrupt("an item read as a send has another sort key".to_owned())
    })?;
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
        let nonce = self.claims.next();
        // `pst` and `prt` read the status and `retry_at` the claim replaces (an update's
        // operands are the item before it; they are also listed first). The nonce's own
        // condition makes even a claim whose lease is already over apply once per call.
        let result = self
            .update_send(customer_id, key)
            .update_expression(
                "SET pst = #s, prt = #r, cid = :cid, #s = :sending, #r = :lease, \
                 att = att + :one, gpk = :gpk, gsk = :gsk",
            )
            .condition_expression(
                "attribute_exists(pk) AND (#s = :pending OR #s = :sending) AND #r <= :now \
                 AND (attribute_not_exists(cid) OR cid <> :cid)",
            )
            .expression_attribute_values(":cid", s(nonce.clone()))
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
        match updated(key, result)? {
            Ok(output) => {
                let old = output.attributes.unwrap_or_default();
                send_entry(&old).map(Some)
            }
            Err(item) if is_own_claim(&item, &nonce) => before_own_claim(&item).map(Some),
            Err(_) => Ok(None),
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
                            "SET #s = :to, mid = if_not_exists(mid, :m) \
                             REMOVE #r, gpk, gsk, cid, pst, prt",
                        )
                        .expression_attribute_values(":m", s(id)),
                    None => {
                        request.update_expression("SET #s = :to REMOVE #r, gpk, gsk, cid, pst, prt")
                    }
                }
            }
            Settle::Retry { at, reason, lease } => {
                let (gpk, gsk) = send_keys(customer_id, key, at)?;
                request
                    .condition_expression("attribute_exists(pk) AND #s = :sending AND #r = :lease")
                    .expression_attribute_values(":lease", n(to_millis(lease)))
                    .update_expression(
                        "SET #s = :to, #r = :at, why = :why, gpk = :gpk, gsk = :gsk \
                         REMOVE cid, pst, prt",
                    )
                    .expression_attribute_values(":sending", sending)
                    .expression_attribute_values(":to", s(SendStatus::Pending.as_str()))
                    .expression_attribute_values(":at", n(to_millis(at)))
                    .expression_attribute_values(":why", s(reason))
                    .expression_attribute_values(":gpk", s(gpk))
                    .expression_attribute_values(":gsk", s(gsk))
            }
            Settle::Failed { reason, lease } | Settle::Unknown { reason, lease } => request
                .condition_expression("attribute_exists(pk) AND #s = :sending AND #r = :lease")
                .expression_attribute_values(":lease", n(to_millis(lease)))
                .update_expression("SET #s = :to, why = :why REMOVE #r, gpk, gsk, cid, pst, prt")
                .expression_attribute_values(":sending", sending)
                .expression_attribute_values(":to", s(settle.status().as_str()))
                .expression_attribute_values(":why", s(reason)),
        };
        Ok(updated(key, request.send().await)?.is_ok())
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
                    StoreError::Corrupt("an item on the send sweep is not a send".to_owned())
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

/// What a conditional update of send `key` answered: `Ok` with its output when applied,
/// `Err` with the entry's item as it is when the condition failed on an existing entry,
/// `UnknownSend` when it failed on none, or another error.
fn updated(
    key: &str,
    result: Result<
        UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<Result<UpdateItemOutput, Item>, StoreError> {
    let written = conditional_write("UpdateItem", result, |e| match e {
        UpdateItemError::ConditionalCheckFailedException(e) => Some(e.item().cloned()),
        _ => None,
    })?;
    match written {
        Written::Applied(output) => Ok(Ok(output)),
        Written::ConditionFailed(Some(item)) => Ok(Err(item)),
        Written::ConditionFailed(None) => Err(StoreError::UnknownSend(key.to_owned())),
    }
}

/// Whether a send's item is held by the claim that wrote `nonce`: `sending`, with that nonce.
fn is_own_claim(item: &Item, nonce: &str) -> bool {
    let sending =
        matches!(item.get(STATUS), Some(AttributeValue::S(s)) if s == SendStatus::Sending.as_str());
    sending && matches!(item.get(CLAIM), Some(AttributeValue::S(c)) if c == nonce)
}

/// The entry as it was before the claim that holds `item` (see [`is_own_claim`]): the status
/// and `retry_at` the claim replaced, one attempt fewer; the rest a claim leaves as it is.
fn before_own_claim(item: &Item) -> Result<SendEntry, StoreError> {
    let mut entry = send_entry(item)?;
    let name = get_s(item, PREVIOUS_STATUS)?;
    entry.status = match SendStatus::from_name(name) {
        Some(status @ (SendStatus::Pending | SendStatus::Sending)) => status,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "a claim replaced the status `{name}`, which is not claimable"
            )));
        }
    };
    entry.attempts = entry
        .attempts
        .checked_sub(1)
        .ok_or_else(|| StoreError::Corrupt("a claimed send has no attempt".to_owned()))?;
    entry.retry_at = Some(from_millis(get_n(item, PREVIOUS_RETRY)?)?);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Send `k-1` of `c-1` as the claim of nonce `n-1` left it, having replaced `previous`
    /// (status, `retry_at` in ms) on its `attempts`-th claim.
    fn claimed(previous: &str, retry: i64, attempts: u32) -> Item {
        let record = SendRecord {
            idempotency_key: "k-1".to_owned(),
            customer_id: "c-1".to_owned(),
            workflow: "w".to_owned(),
            step: "s".to_owned(),
            kind: SendKind::Email,
            category: "marketing".to_owned(),
            tags: vec!["t".to_owned()],
            at: Utc.timestamp_millis_opt(1_000).unwrap(),
            payload: b"mime".to_vec(),
        };
        let mut item = send_item(&record, 0).unwrap();
        item.insert(STATUS.to_owned(), s(SendStatus::Sending.as_str()));
        item.insert(RETRY.to_owned(), n(900_000));
        item.insert("att".to_owned(), n(attempts));
        item.insert("why".to_owned(), s("smtp 451"));
        item.insert(CLAIM.to_owned(), s("n-1"));
        item.insert(PREVIOUS_STATUS.to_owned(), s(previous));
        item.insert(PREVIOUS_RETRY.to_owned(), n(retry));
        item
    }

    #[test]
    fn only_a_sending_item_with_the_calls_nonce_is_its_own_claim() {
        let item = claimed("pending", 5_000, 1);
        assert!(is_own_claim(&item, "n-1"));
        assert!(!is_own_claim(&item, "n-2"), "another call's claim");
        let mut settled = item.clone();
        settled.insert(STATUS.to_owned(), s(SendStatus::Pending.as_str()));
        assert!(!is_own_claim(&settled, "n-1"), "not held any more");
        let mut old = item;
        old.remove(CLAIM);
        assert!(!is_own_claim(&old, "n-1"), "a claim without a nonce");
    }

    #[test]
    fn the_entry_before_a_first_claim_is_pending_with_no_attempt() {
        let before = before_own_claim(&claimed("pending", 5_000, 1)).unwrap();
        assert_eq!(before.status, SendStatus::Pending);
        assert_eq!(before.attempts, 0);
        assert_eq!(before.retry_at, Utc.timestamp_millis_opt(5_000).single());
        assert_eq!(before.reason.as_deref(), Some("smtp 451"));
        assert_eq!(before.message_id, None);
        assert_eq!(before.record.idempotency_key, "k-1");
        assert_eq!(before.record.customer_id, "c-1");
        assert_eq!(before.record.payload, b"mime");
        assert_eq!(before.record.tags, ["t"]);
    }

    #[test]
    fn the_entry_before_a_take_over_is_the_expired_claim() {
        let before = before_own_claim(&claimed("sending", 7_000, 3)).unwrap();
        assert_eq!(before.status, SendStatus::Sending);
        assert_eq!(before.attempts, 2);
        assert_eq!(before.retry_at, Utc.timestamp_millis_opt(7_000).single());
    }

    #[test]
    fn a_claim_that_cannot_be_undone_is_corrupt() {
        let cases = [
            ("a final status replaced", claimed("sent", 5_000, 1)),
            ("no attempt", claimed("pending", 5_000, 0)),
            ("an unknown status", claimed("paused", 5_000, 1)),
        ];
        for (what, item) in cases {
            let result = before_own_claim(&item);
            assert!(
                matches!(result, Err(StoreError::Corrupt(_))),
                "{what}: {result:?}"
            );
        }
        for missing in [PREVIOUS_STATUS, PREVIOUS_RETRY] {
            let mut item = claimed("pending", 5_000, 1);
            item.remove(missing);
            let result = before_own_claim(&item);
            assert!(
                matches!(result, Err(StoreError::Corrupt(_))),
                "{missing}: {result:?}"
            );
        }
    }
}
