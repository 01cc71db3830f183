//! The send log of a [`SqliteStore`](super::SqliteStore) as the outbox of the send guarantee
//! (claims, settles, the sweep's index), and the two small indexes beside it: orders to
//! customers, and suppressed addresses.
//!
//! Every write here joins the open batch, like a commit: it is durable once the batch is
//! committed ([`Store::flush`](nudge_core::store::Store::flush)). Sends logged in the open
//! batch are still staged in memory; a read or write of the send log first writes the stage
//! into the open transaction ([`Inner::spill`]), where SQL sees it.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use nudge_core::store::{
    DUE_SHARDS, SendEntry, SendKind, SendPage, SendRecord, SendStatus, Settle, StoreError,
    from_millis, to_millis,
};

use super::Inner;
use super::error::store_error;

/// Tags as stored: space-separated (a tag is `[A-Za-z0-9_-]{1,64}`, so it holds no space).
pub(super) fn join_tags(tags: &[String]) -> String {
    tags.join(" ")
}

/// Tags as stored, back as a list.
fn split_tags(text: &str) -> Vec<String> {
    text.split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The columns [`entry`] reads, in its order.
const COLUMNS: &str = "idempotency_key, customer_id, workflow, step, kind, category, tags, at,
     payload, status, attempts, retry_at, message_id, reason";

/// A row of [`COLUMNS`] as a [`SendEntry`].
fn entry(row: &Row<'_>) -> Result<SendEntry, StoreError> {
    let get_text = |i| row.get::<_, String>(i).map_err(store_error);
    let kind = get_text(4)?;
    let kind = SendKind::from_name(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown send kind `{kind}`")))?;
    let status = get_text(9)?;
    let status = SendStatus::from_name(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown send status `{status}`")))?;
    let attempts: i64 = row.get(10).map_err(store_error)?;
    let retry_at: Option<i64> = row.get(11).map_err(store_error)?;
    Ok(SendEntry {
        record: SendRecord {
            idempotency_key: get_text(0)?,
            customer_id: get_text(1)?,
            workflow: get_text(2)?,
            step: get_text(3)?,
            kind,
            category: get_text(5)?,
            tags: split_tags(&get_text(6)?),
            at: from_millis(row.get(7).map_err(store_error)?)?,
            payload: row.get(8).map_err(store_error)?,
        },
        status,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("a send has {attempts} attempts")))?,
        retry_at: retry_at.map(from_millis).transpose()?,
        message_id: row.get(12).map_err(store_error)?,
        reason: row.get(13).map_err(store_error)?,
    })
}

/// The first page of a shard's deliverable sends (`?3`..`?5`: no cursor); as for the due
/// timers, two statements, so that a later page is a range of the index from its cursor. The
/// status test repeats the partial index's, which lets SQLite use it.
pub(super) const PENDING_FIRST: &str = "SELECT retry_at, customer_id, idempotency_key FROM sends
     WHERE shard = ?1 AND status IN ('pending', 'sending') AND retry_at <= ?2
       AND ?3 IS NULL AND ?4 IS NULL AND ?5 IS NULL
     ORDER BY retry_at, customer_id, idempotency_key LIMIT ?6";

/// A later page: after the cursor's `(retry_at, customer_id, idempotency_key)`.
pub(super) const PENDING_AFTER: &str = "SELECT retry_at, customer_id, idempotency_key FROM sends
     WHERE shard = ?1 AND status IN ('pending', 'sending') AND retry_at <= ?2
       AND (retry_at, customer_id, idempotency_key) > (?3, ?4, ?5)
     ORDER BY retry_at, customer_id, idempotency_key LIMIT ?6";

/// A page's cursor: its last row, as JSON (`[retry_at millis, customer, key]`), since ids may
/// hold any separator.
fn pending_cursor(at: DateTime<Utc>, customer: &str, key: &str) -> String {
    serde_json::to_string(&(to_millis(at), customer, key)).expect("a tuple serializes")
}

/// The row a cursor of [`pending_cursor`] names.
fn parse_pending_cursor(cursor: &str) -> Result<(i64, String, String), StoreError> {
    serde_json::from_str(cursor).map_err(|_| {
        // Not quoted: a cursor names a customer, whose id may hold an address.
        StoreError::InvalidRequest("not a pending-sends cursor of this store".to_owned())
    })
}

impl Inner {
    /// The entry `key` of `customer_id`'s send log (after writing out the stage), or
    /// [`StoreError::UnknownSend`].
    fn send_entry(&mut self, customer_id: &str, key: &str) -> Result<SendEntry, StoreError> {
        self.spill()?;
        let sql =
            format!("SELECT {COLUMNS} FROM sends WHERE idempotency_key = ?1 AND customer_id = ?2");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(store_error)?;
        let mut rows = stmt.query([key, customer_id]).map_err(store_error)?;
        match rows.next().map_err(store_error)? {
            Some(row) => entry(row),
            None => Err(StoreError::UnknownSend(key.to_owned())),
        }
    }

    pub(super) fn sends(&mut self, customer_id: &str) -> Result<Vec<SendEntry>, StoreError> {
        self.spill()?;
        let sql = format!(
            "SELECT {COLUMNS} FROM sends WHERE customer_id = ?1 ORDER BY at, idempotency_key"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(store_error)?;
        let mut rows = stmt.query([customer_id]).map_err(store_error)?;
        let mut sends = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            sends.push(entry(row)?);
        }
        Ok(sends)
    }

    /// See [`Store::claim_send`](nudge_core::store::Store::claim_send). The write lock is taken
    /// before the entry is read, so the check and the update are one atomic step.
    pub(super) fn claim_send(
        &mut self,
        customer_id: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        self.begin_write()?;
        let result = self.claim_in_transaction(customer_id, key, now, lease_until);
        let end = self.end_write(matches!(result, Ok(Some(_))));
        let claimed = result?;
        end?;
        Ok(claimed)
    }

    fn claim_in_transaction(
        &mut self,
        customer_id: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        let before = self.send_entry(customer_id, key)?;
        let claimable = !before.status.is_final() && before.retry_at.is_some_and(|at| at <= now);
        if !claimable {
            return Ok(None);
        }
        self.conn
            .prepare_cached(
                "UPDATE sends SET status = 'sending', retry_at = ?3, attempts = attempts + 1
                 WHERE idempotency_key = ?1 AND customer_id = ?2",
            )
            .and_then(|mut s| s.execute(params![key, customer_id, to_millis(lease_until)]))
            .map_err(store_error)?;
        Ok(Some(before))
    }

    /// See [`Store::settle_send`](nudge_core::store::Store::settle_send).
    pub(super) fn settle_send(
        &mut self,
        customer_id: &str,
        key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        self.begin_write()?;
        let result = self.settle_in_transaction(customer_id, key, settle);
        let end = self.end_write(matches!(result, Ok(true)));
        let applied = result?;
        end?;
        Ok(applied)
    }

    fn settle_in_transaction(
        &mut self,
        customer_id: &str,
        key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        let before = self.send_entry(customer_id, key)?;
        let applies = match settle {
            // The mail left, whatever the log said: only a send already sent stays as it is.
            Settle::Sent { .. } => before.status != SendStatus::Sent,
            // Only while the settling claim still holds it (not taken over since).
            Settle::Retry { lease, .. }
            | Settle::Failed { lease, .. }
            | Settle::Unknown { lease, .. } => {
                before.status == SendStatus::Sending && before.retry_at == Some(lease)
            }
        };
        if !applies {
            return Ok(false);
        }
        let (retry_at, message_id, reason) = match settle {
            Settle::Sent { message_id } => (None, message_id, None),
            Settle::Retry { at, reason, .. } => (Some(to_millis(at)), None, Some(reason)),
            Settle::Failed { reason, .. } | Settle::Unknown { reason, .. } => {
                (None, None, Some(reason))
            }
        };
        // The first message id is kept; a reason stays until another replaces it (a send
        // sent after a retry keeps why the retry was needed).
        self.conn
            .prepare_cached(
                "UPDATE sends SET status = ?3, retry_at = ?4,
                     message_id = coalesce(message_id, ?5), reason = coalesce(?6, reason)
                 WHERE idempotency_key = ?1 AND customer_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key,
                    customer_id,
                    settle.status().as_str(),
                    retry_at,
                    message_id,
                    reason,
                ])
            })
            .map_err(store_error)?;
        Ok(true)
    }

    /// See [`Store::pending_sends`](nudge_core::store::Store::pending_sends): a range of the
    /// partial index `sends_pending`, from the cursor on.
    pub(super) fn pending_sends(
        &mut self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SendPage, StoreError> {
        if shard >= DUE_SHARDS {
            return Err(StoreError::InvalidRequest(format!(
                "due shard {shard} is out of range (0..{DUE_SHARDS})"
            )));
        }
        let after = cursor.map(parse_pending_cursor).transpose()?;
        self.spill()?;
        let limit = limit.max(1);
        let sql = if after.is_some() {
            PENDING_AFTER
        } else {
            PENDING_FIRST
        };
        let (after_at, after_customer, after_key) = match after {
            Some((at, c, k)) => (Some(at), Some(c), Some(k)),
            None => (None, None, None),
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(store_error)?;
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query(params![
                shard,
                to_millis(until),
                after_at,
                after_customer,
                after_key,
                sql_limit
            ])
            .map_err(store_error)?;
        let mut page = SendPage::default();
        while let Some(row) = rows.next().map_err(store_error)? {
            page.due.push((
                from_millis(row.get(0).map_err(store_error)?)?,
                row.get(1).map_err(store_error)?,
                row.get(2).map_err(store_error)?,
            ));
        }
        if page.due.len() == limit {
            page.cursor = page.due.last().map(|(at, c, k)| pending_cursor(*at, c, k));
        }
        Ok(page)
    }

    pub(super) fn link_order(
        &mut self,
        order_id: &str,
        customer_id: &str,
    ) -> Result<(), StoreError> {
        self.begin_write()?;
        let linked = self
            .conn
            .prepare_cached(
                "INSERT INTO orders (order_id, customer_id) VALUES (?1, ?2)
                 ON CONFLICT (order_id) DO UPDATE SET customer_id = excluded.customer_id",
            )
            .and_then(|mut s| s.execute([order_id, customer_id]));
        self.end_write(linked.is_ok())?;
        linked.map_err(store_error)?;
        Ok(())
    }

    pub(super) fn order_customer(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT customer_id FROM orders WHERE order_id = ?1")
            .and_then(|mut s| s.query_row([order_id], |row| row.get(0)).optional())
            .map_err(store_error)
    }

    pub(super) fn suppress(
        &mut self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.begin_write()?;
        // The first suppression is kept: a later bounce of the same address changes nothing.
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO suppressions (address_key, reason, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (address_key) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![address_key, reason, to_millis(at)]));
        self.end_write(matches!(inserted, Ok(n) if n > 0))?;
        inserted.map_err(store_error)?;
        Ok(())
    }

    pub(super) fn suppression(
        &self,
        address_key: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let row = self
            .conn
            .prepare_cached("SELECT reason, at FROM suppressions WHERE address_key = ?1")
            .and_then(|mut s| {
                s.query_row([address_key], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .optional()
            })
            .map_err(store_error)?;
        row.map(|(reason, at)| Ok((reason, from_millis(at)?)))
            .transpose()
    }
}
