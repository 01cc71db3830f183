//! What a [`SqliteStore`](super::SqliteStore) keeps beside the customers since schema 4:
//! feedback counts per workflow step, inputs parked until their order is linked, and the
//! erasure of a customer.
//!
//! - Feedback: `feedback_events` holds every feedback event id counted, `feedback_counts` one
//!   row per (workflow, step, kind). Counting inserts the id (`ON CONFLICT DO NOTHING`) and,
//!   only if it was new, adds one to the count, both under one savepoint: the id and the count
//!   change together or not at all. The ids are kept for good (SQLite has no TTL; the store is
//!   the command line's, whose inputs are bounded), which is more than the 35 days promised.
//! - Parked inputs: `parked`, keyed by (order, event id), read by a range of that key. An
//!   expired input is filtered out by `parked` but stays in the file until it is unparked (no
//!   TTL here either); parking the same (order, event id) again keeps the first, even expired.
//! - Erasure: the customer's sends, journal, state (and so its timer), order links (through the
//!   index `orders_customer`) and the dead letters naming them (through `dead_letters_customer`,
//!   schema 6) are deleted, and the processed event ids they consumed forget them
//!   (`customer_id` set to the empty string: the ids stay, so a redelivered event is still a
//!   duplicate), under one savepoint. Finding those ids reads the whole `processed_events` table
//!   (it has no index by customer, which every commit would pay for): erasure is rare.
//!
//! Every write here joins the open batch, like a commit, and writes the staged commits out
//! first ([`Inner::spill`]), so that it sees them.

use chrono::{DateTime, Utc};
use rusqlite::params;

use nudge_core::store::{
    Erased, Feedback, FeedbackCount, FeedbackKind, Parked, StoreError, from_millis, to_millis,
};

use super::Inner;
use super::error::store_error;

impl Inner {
    /// Runs `f` under a savepoint inside the open write transaction: whatever `f` wrote is
    /// rolled back if it fails, so that a write of several statements is whole or absent.
    fn atomically<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.exec("SAVEPOINT aside").map_err(store_error)?;
        match f(self) {
            Ok(value) => {
                self.exec("RELEASE aside").map_err(store_error)?;
                Ok(value)
            }
            Err(e) => {
                // Best effort: if SQLite rolled the whole transaction back on its own, there is
                // no savepoint left, and the batch's loss is reported by `lost_batch`.
                let _ = self
                    .exec("ROLLBACK TO aside")
                    .and_then(|()| self.exec("RELEASE aside"));
                Err(e)
            }
        }
    }

    /// Runs the write `f` in the open batch (see the module docs); `wrote` says from its result
    /// whether it changed anything (a write that changed nothing does not count in the batch).
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
        wrote: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError> {
        self.begin_write()?;
        let result = self.spill().and_then(|()| self.atomically(f));
        let end = self.end_write(result.as_ref().is_ok_and(wrote));
        let value = result?;
        end?;
        Ok(value)
    }

    /// See [`Store::record_feedback`](nudge_core::store::Store::record_feedback).
    pub(super) fn record_feedback(&mut self, feedback: &Feedback<'_>) -> Result<bool, StoreError> {
        self.write(
            |inner| {
                let new = inner
                    .conn
                    .prepare_cached(
                        "INSERT INTO feedback_events (event_id, at) VALUES (?1, ?2)
                         ON CONFLICT (event_id) DO NOTHING",
                    )
                    .and_then(|mut s| s.execute(params![feedback.event_id, to_millis(feedback.at)]))
                    .map_err(store_error)?;
                if new == 0 {
                    return Ok(false);
                }
                inner
                    .conn
                    .prepare_cached(
                        "INSERT INTO feedback_counts (workflow, step, kind, count)
                         VALUES (?1, ?2, ?3, 1)
                         ON CONFLICT (workflow, step, kind) DO UPDATE SET count = count + 1",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            feedback.workflow,
                            feedback.step,
                            feedback.kind.as_str()
                        ])
                    })
                    .map_err(store_error)?;
                Ok(true)
            },
            |counted| *counted,
        )
    }

    /// See [`Store::feedback_counts`](nudge_core::store::Store::feedback_counts): every row,
    /// sorted here (the kinds' order is [`FeedbackKind::ALL`]'s, not their names').
    pub(super) fn feedback_counts(&mut self) -> Result<Vec<FeedbackCount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT workflow, step, kind, count FROM feedback_counts")
            .map_err(store_error)?;
        let mut rows = stmt.query([]).map_err(store_error)?;
        let mut counts = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            let kind: String = row.get(2).map_err(store_error)?;
            let count: i64 = row.get(3).map_err(store_error)?;
            counts.push(FeedbackCount {
                workflow: row.get(0).map_err(store_error)?,
                step: row.get(1).map_err(store_error)?,
                kind: FeedbackKind::from_name(&kind).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown feedback kind `{kind}`"))
                })?,
                count: u64::try_from(count)
                    .map_err(|_| StoreError::Corrupt(format!("a feedback count of {count}")))?,
            });
        }
        counts.sort_unstable();
        Ok(counts)
    }

    /// See [`Store::park`](nudge_core::store::Store::park).
    pub(super) fn park(&mut self, parked: &Parked) -> Result<(), StoreError> {
        self.write(
            |inner| {
                inner
                    .conn
                    .prepare_cached(
                        "INSERT INTO parked (order_id, event_id, body, expires_at)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (order_id, event_id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            parked.order_id,
                            parked.event_id,
                            parked.body,
                            to_millis(parked.expires_at)
                        ])
                    })
                    .map_err(store_error)
            },
            |n| *n > 0,
        )
        .map(drop)
    }

    /// See [`Store::parked`](nudge_core::store::Store::parked).
    pub(super) fn parked(
        &mut self,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Parked>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT event_id, body, expires_at FROM parked
                 WHERE order_id = ?1 AND expires_at > ?2 ORDER BY event_id",
            )
            .map_err(store_error)?;
        let mut rows = stmt
            .query(params![order_id, to_millis(now)])
            .map_err(store_error)?;
        let mut parked = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            parked.push(Parked {
                order_id: order_id.to_owned(),
                event_id: row.get(0).map_err(store_error)?,
                body: row.get(1).map_err(store_error)?,
                expires_at: from_millis(row.get(2).map_err(store_error)?)?,
            });
        }
        Ok(parked)
    }

    /// See [`Store::unpark`](nudge_core::store::Store::unpark).
    pub(super) fn unpark(&mut self, order_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.write(
            |inner| {
                inner
                    .conn
                    .prepare_cached("DELETE FROM parked WHERE order_id = ?1 AND event_id = ?2")
                    .and_then(|mut s| s.execute([order_id, event_id]))
                    .map_err(store_error)
            },
            |n| *n > 0,
        )
        .map(drop)
    }

    /// See [`Store::erase_customer`](nudge_core::store::Store::erase_customer): the sends first
    /// (they refer to the customer), then the state, the order links, and the customer's name
    /// on the processed event ids.
    pub(super) fn erase_customer(&mut self, customer_id: &str) -> Result<Erased, StoreError> {
        // A version remembered from a load is no longer the customer's.
        self.last_read = None;
        self.write(
            |inner| {
                let delete = |sql: &str| {
                    inner
                        .conn
                        .prepare_cached(sql)
                        .and_then(|mut s| s.execute([customer_id]))
                        .map_err(store_error)
                };
                let sends = delete("DELETE FROM sends WHERE customer_id = ?1")?;
                let journal_commits = delete("DELETE FROM journal WHERE customer_id = ?1")?;
                let state = delete("DELETE FROM customers WHERE customer_id = ?1")?;
                let orders = delete("DELETE FROM orders WHERE customer_id = ?1")?;
                let dead_letters = delete("DELETE FROM dead_letters WHERE customer_id = ?1")?;
                let events =
                    delete("UPDATE processed_events SET customer_id = '' WHERE customer_id = ?1")?;
                Ok((
                    Erased {
                        state: state > 0,
                        sends,
                        orders,
                        journal_commits,
                        dead_letters,
                    },
                    events,
                ))
            },
            |(erased, events)| *erased != Erased::default() || *events > 0,
        )
        .map(|(erased, _)| erased)
    }
}
