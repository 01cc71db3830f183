//! Batching in a [`SqliteStore`](super::SqliteStore): commits staged in memory while their
//! batch is open, written in key order in one transaction when it ends.
//!
//! Inside a batch a commit checks its conditions (the event not processed, the customer at
//! the expected version) against the staged writes and the database, and is then recorded
//! whole in [`Staged`], where the store reads its own writes. When the batch ends the staged
//! rows are written in key order, so that each B-tree page is visited once per batch and a
//! customer written many times is written once. A batch SQLite fails to write is rolled back
//! whole and reported as [`StoreError::WritesLost`], never half-kept.

use std::collections::HashMap;

use chrono::Utc;
use rusqlite::{Connection, params};

use nudge_core::store::{SendRecord, SendStatus, StoreError, due_shard, to_millis};

use super::sends::join_tags;

use super::Inner;
use super::error::store_error;
use super::journal::{self, StagedJournal};

/// Commits of the open batch, in memory until the batch is written ([`Inner::spill`]). Every
/// entry is the outcome of a whole commit; nothing here is half of one.
#[derive(Default)]
pub(super) struct Staged {
    /// The latest staged row of each customer written in the batch.
    pub(super) customers: HashMap<String, StagedCustomer>,
    /// Event ids marked processed in the batch, with their customer.
    pub(super) processed: HashMap<String, String>,
    /// Send-log entries logged in the batch, by idempotency key (the first wins), all
    /// pending: a claim or a settle writes the stage out first ([`Inner::spill`]).
    pub(super) sends: HashMap<String, SendRecord>,
    /// Each commit's journal, in commit order (see `super::journal`).
    pub(super) journal: Vec<StagedJournal>,
}

pub(super) struct StagedCustomer {
    pub(super) version: i64,
    pub(super) state: Vec<u8>,
    pub(super) next_wake: Option<i64>,
    pub(super) updated_at: i64,
}

impl Staged {
    pub(super) fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.processed.is_empty()
            && self.sends.is_empty()
            && self.journal.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.customers.clear();
        self.processed.clear();
        self.sends.clear();
        self.journal.clear();
    }
}

impl Inner {
    /// Opens the batch transaction if none is open.
    pub(super) fn begin_write(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            if self.pending > 0 {
                // SQLite rolled the batch back on its own (after an I/O error, say).
                self.staged.clear();
                let lost = std::mem::take(&mut self.pending);
                return Err(StoreError::WritesLost { lost, source: None });
            }
            // IMMEDIATE takes the write lock now, so that a read followed by a write cannot
            // fail half-way because another connection wrote in between.
            self.exec("BEGIN IMMEDIATE").map_err(store_error)?;
            self.transactions += 1;
        }
        Ok(())
    }

    /// Counts a write (if `wrote`) and commits the batch when it is full, or when it holds
    /// nothing, so that no lock is held for nothing.
    pub(super) fn end_write(&mut self, wrote: bool) -> Result<(), StoreError> {
        if wrote {
            self.pending += 1;
        }
        if self.pending == 0 || self.pending >= self.batch {
            self.commit_batch()?;
        }
        Ok(())
    }

    /// Writes the staged commits and commits the open transaction, if any.
    pub(super) fn commit_batch(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            self.staged.clear();
            let lost = std::mem::take(&mut self.pending);
            return match lost {
                0 => Ok(()),
                lost => Err(StoreError::WritesLost { lost, source: None }),
            };
        }
        self.spill()?;
        match self.exec("COMMIT") {
            Ok(()) => {
                self.pending = 0;
                Ok(())
            }
            // Still open (the database was busy): the next write or flush tries again.
            Err(e) if !self.conn.is_autocommit() => Err(store_error(e)),
            Err(e) => Err(StoreError::WritesLost {
                lost: std::mem::take(&mut self.pending),
                source: Some(Box::new(e)),
            }),
        }
    }

    /// Writes the staged commits into the open transaction, in key order, and empties the
    /// stage. A failure here rolls the whole transaction back (it would otherwise hold part of
    /// some commits) and reports the batch lost.
    pub(super) fn spill(&mut self) -> Result<(), StoreError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        self.last_read = None;
        let staged = std::mem::take(&mut self.staged);
        match write_staged(&self.conn, &staged) {
            Ok(()) => {
                // Keep the maps' capacity for the next batch.
                self.staged = staged;
                self.staged.clear();
                Ok(())
            }
            Err(e) => {
                if !self.conn.is_autocommit() && self.exec("ROLLBACK").is_err() {
                    // Part of the batch may still be in the open transaction, and a later
                    // COMMIT would keep it: nothing the store holds can be trusted.
                    self.unusable =
                        Some("a batch that failed to be written could not be rolled back");
                }
                Err(StoreError::WritesLost {
                    lost: std::mem::take(&mut self.pending),
                    source: Some(Box::new(e)),
                })
            }
        }
    }
}

/// Writes staged commits in key order: customers first (the send log refers to them), then the
/// processed event ids, the send log and the journal.
fn write_staged(conn: &Connection, staged: &Staged) -> rusqlite::Result<()> {
    let mut customers: Vec<_> = staged.customers.iter().collect();
    customers.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut upsert = conn.prepare_cached(
        "INSERT INTO customers (customer_id, version, state, next_wake, updated_at, shard)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (customer_id) DO UPDATE SET version = excluded.version,
             state = excluded.state, next_wake = excluded.next_wake,
             updated_at = excluded.updated_at",
    )?;
    for (id, c) in customers {
        // The shard never changes: an update leaves it as inserted.
        upsert.execute(params![
            id,
            c.version,
            c.state,
            c.next_wake,
            c.updated_at,
            due_shard(id)
        ])?;
    }
    let mut processed: Vec<_> = staged.processed.iter().collect();
    processed.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let now = to_millis(Utc::now());
    let mut mark = conn.prepare_cached(
        "INSERT INTO processed_events (event_id, customer_id, processed_at)
         VALUES (?1, ?2, ?3) ON CONFLICT (event_id) DO NOTHING",
    )?;
    for (event_id, customer_id) in processed {
        mark.execute(params![event_id, customer_id, now])?;
    }
    let mut sends: Vec<_> = staged.sends.iter().collect();
    sends.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut insert = conn.prepare_cached(
        "INSERT INTO sends (idempotency_key, customer_id, shard, workflow, step, kind, category,
             tags, at, payload, status, attempts, retry_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?9)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )?;
    for (key, r) in sends {
        // Pending, deliverable at once: `retry_at` is the time it was decided.
        insert.execute(params![
            key,
            r.customer_id,
            due_shard(&r.customer_id),
            r.workflow,
            r.step,
            r.kind.as_str(),
            r.category,
            join_tags(&r.tags),
            to_millis(r.at),
            r.payload,
            SendStatus::Pending.as_str(),
        ])?;
    }
    journal::write_staged(conn, &staged.journal)
}
