//! The sweeps of a `simulate` run's send log: before the run, what a stopped run left
//! ([`resume_sends`]); after it, the emails whose delivery failed and wait for a retry
//! ([`retry_pending`]).

use chrono::{DateTime, Utc};

use nudge_core::mail::Mailer;
use nudge_core::runner::{DeliveryOutcome, Runner};
use nudge_core::store::{DUE_SHARDS, SendKind, SendRecord, SendStatus, Settle, Store};

use super::{SimulateError, runtime, stored_clock};
use crate::LocalMailer;

/// Sends read per page of a shard's pending sends.
const PAGE: usize = 1000;

/// A send a sweep settled: what it was, when (the sweep's clock), and what became of it.
#[derive(Debug, Clone)]
pub struct Swept {
    /// The send as logged (its payload is the MIME message).
    pub record: SendRecord,
    /// The virtual time it was settled at.
    pub at: DateTime<Utc>,
    /// What became of it.
    pub outcome: DeliveryOutcome,
    /// It was found already delivered (its file was in the outbox): settled sent, not
    /// delivered again.
    pub found: bool,
}

/// Settles what a stopped run (killed, or stopped by an error) left in the store of `runner`,
/// before a run on that store goes on: every send still pending, and every claim.
///
/// A `--db` store is used by one process at a time (the command locks it), so a claim found
/// now is the stopped run's, whatever its lease says: it is not waited for. `mailer` tells for
/// sure whether each claimed send left ([`LocalMailer::delivered`]): one that did is settled
/// sent; one that did not is put back to pending, and then delivered with the rest. Marketing
/// email included: the outbox knows it was never written, so writing it now writes it once.
/// `mailer` is the runner's. Returns what became of each, in the order delivered.
pub fn resume_sends<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    mailer: &LocalMailer,
) -> Result<Vec<Swept>, SimulateError> {
    let rt = runtime();
    let store = runner.store();
    let left = rt.block_on(pending(store))?;
    if left.is_empty() {
        return Ok(Vec::new());
    }
    let clock = stored_clock(store, &rt)?;
    let mut swept = Vec::new();
    let mut records = Vec::new();
    for (_, customer, key) in &left {
        let entries = rt.block_on(store.sends(customer))?;
        let Some(entry) = entries
            .into_iter()
            .find(|e| &e.record.idempotency_key == key)
        else {
            continue;
        };
        // Decided by a run without an outbox (no message was built): that run records its
        // emails as sent, and so does this one, whatever mailer it has now.
        if entry.record.payload.is_empty() && entry.record.kind == SendKind::Email {
            let recorded = Settle::Sent { message_id: None };
            rt.block_on(store.settle_send(customer, key, recorded))?;
            continue;
        }
        let lease_end = entry.retry_at.unwrap_or(entry.record.at);
        // A mailer that cannot tell now leaves the claim to the runner's own takeover once
        // the lease has ended (its lookup, then the category's rule).
        if entry.status == SendStatus::Sending
            && let Ok(found) = rt.block_on(mailer.delivered(&entry.record))
        {
            let settle = match &found {
                Some(receipt) => Settle::Sent {
                    message_id: Some(&receipt.message_id),
                },
                // As the dead run's claim: its lease is the entry's `retry_at`.
                None => Settle::Retry {
                    at: lease_end,
                    reason: "the run that claimed it stopped before delivering it",
                    lease: lease_end,
                },
            };
            rt.block_on(store.settle_send(customer, key, settle))?;
            if let Some(receipt) = found {
                swept.push(Swept {
                    at: clock.unwrap_or(entry.record.at).max(entry.record.at),
                    record: entry.record,
                    outcome: DeliveryOutcome::Sent {
                        message_id: Some(receipt.message_id),
                    },
                    found: true,
                });
                continue;
            }
        }
        records.push((lease_end, entry.record));
    }
    swept.extend(deliver(runner, records, clock, &rt)?);
    rt.block_on(store.flush())?;
    Ok(swept)
}

/// Delivers, after a run, every send still pending in the stores of `runners` (their
/// delivery failed during the run, and waits for a retry), at the run's clock `clock` (or
/// each one's retry time, if later). Returns what became of each: those whose delivery fails
/// again stay pending ([`DeliveryOutcome::Retry`]) for a later run on the same store.
pub fn retry_pending<S: Store, M: Mailer>(
    runners: &[Runner<'_, S, M>],
    clock: Option<DateTime<Utc>>,
) -> Result<Vec<Swept>, SimulateError> {
    let rt = runtime();
    let mut swept = Vec::new();
    for runner in runners {
        let store = runner.store();
        let left = rt.block_on(pending(store))?;
        let mut records = Vec::new();
        for (retry_at, customer, key) in left {
            let entries = rt.block_on(store.sends(&customer))?;
            if let Some(entry) = entries
                .into_iter()
                .find(|e| e.record.idempotency_key == key)
            {
                records.push((retry_at, entry.record));
            }
        }
        swept.extend(deliver(runner, records, clock, &rt)?);
        rt.block_on(store.flush())?;
    }
    Ok(swept)
}

/// Delivers `records` (each with the time it may be delivered from) at the later of `clock`
/// and the latest of those times, in one round of the runner's delivery.
fn deliver<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    records: Vec<(DateTime<Utc>, SendRecord)>,
    clock: Option<DateTime<Utc>>,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<Swept>, SimulateError> {
    let Some(latest) = records.iter().map(|(at, _)| *at).max() else {
        return Ok(Vec::new());
    };
    let at = clock.map_or(latest, |c| c.max(latest));
    let keys: Vec<_> = records
        .iter()
        .map(|(_, r)| (r.customer_id.as_str(), r.idempotency_key.as_str()))
        .collect();
    let deliveries = rt.block_on(runner.deliver(&keys, at))?;
    let mut records: std::collections::HashMap<String, SendRecord> = records
        .into_iter()
        .map(|(_, r)| (r.idempotency_key.clone(), r))
        .collect();
    Ok(deliveries
        .into_iter()
        .filter_map(|d| {
            let record = records.remove(&d.idempotency_key)?;
            Some(Swept {
                record,
                at,
                outcome: d.outcome,
                found: false,
            })
        })
        .collect())
}

/// Every send of `store` that is pending or claimed, whatever its time: `(retry_at,
/// customer, key)`, shard by shard.
async fn pending<S: Store>(
    store: &S,
) -> Result<Vec<(DateTime<Utc>, String, String)>, SimulateError> {
    let mut all = Vec::new();
    for shard in 0..DUE_SHARDS {
        let mut cursor = None;
        loop {
            let page = store
                .pending_sends(shard, DateTime::<Utc>::MAX_UTC, PAGE, cursor.as_deref())
                .await?;
            all.extend(page.due);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok(all)
}
