//! The journal in a [`SqliteStore`](super::SqliteStore) (see `nudge_core::journal`): one row
//! per commit that journaled something, `(customer_id, version)` → the commit's entries as
//! [`nudge_core::journal::encode`] makes them (a JSON array of at most
//! [`MAX_JOURNAL_BYTES`](nudge_core::journal::MAX_JOURNAL_BYTES)).
//!
//! Written with the commit: a commit stages its entries beside its state (`Staged::journal`),
//! and the batch writes them in the same transaction as the state, then deletes the customer's
//! rows of versions at or below `version - JOURNAL_COMMITS`: a customer keeps the entries of
//! their last [`JOURNAL_COMMITS`] commits, never more, and a commit that is not applied
//! (a duplicate, a conflict) writes none.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use nudge_core::journal::{self, JOURNAL_COMMITS, JournalEntry};
use nudge_core::store::{JournalPage, StoreError};

use super::Inner;
use super::error::store_error;

/// One commit's journal, staged until its batch is written.
pub(super) struct StagedJournal {
    /// The customer.
    pub(super) customer_id: String,
    /// The version the commit wrote.
    pub(super) version: i64,
    /// The encoded entries; empty when the commit journaled nothing (it still prunes).
    pub(super) entries: Vec<u8>,
}

/// The schema's journal table (migration 5).
pub(super) const MIGRATION: &str = "CREATE TABLE journal (
        customer_id TEXT NOT NULL,
        version     INTEGER NOT NULL, -- the customer's version the commit wrote
        entries     BLOB NOT NULL,    -- nudge_core::journal::encode: a JSON array
        PRIMARY KEY (customer_id, version)
    ) WITHOUT ROWID;";

/// Writes staged journals in commit order, then prunes each customer written to their last
/// [`JOURNAL_COMMITS`] versions. Runs inside the batch's transaction, after the customers.
pub(super) fn write_staged(conn: &Connection, staged: &[StagedJournal]) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO journal (customer_id, version, entries) VALUES (?1, ?2, ?3)",
    )?;
    let mut latest = std::collections::BTreeMap::new();
    for j in staged {
        if !j.entries.is_empty() {
            insert.execute(params![j.customer_id, j.version, j.entries])?;
        }
        let v = latest.entry(j.customer_id.as_str()).or_insert(j.version);
        *v = (*v).max(j.version);
    }
    let mut prune =
        conn.prepare_cached("DELETE FROM journal WHERE customer_id = ?1 AND version <= ?2")?;
    let keep = i64::try_from(JOURNAL_COMMITS).unwrap_or(i64::MAX);
    for (customer_id, version) in latest {
        prune.execute(params![customer_id, version.saturating_sub(keep)])?;
    }
    Ok(())
}

impl Inner {
    /// See `Store::journal`.
    pub(super) fn journal(&mut self, customer_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.spill()?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, entries FROM journal WHERE customer_id = ?1 ORDER BY version",
            )
            .map_err(store_error)?;
        let mut rows = stmt.query([customer_id]).map_err(store_error)?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            let version: i64 = row.get(0).map_err(store_error)?;
            let bytes: Vec<u8> = row.get(1).map_err(store_error)?;
            entries.extend(decoded(customer_id, version, &bytes)?);
        }
        Ok(entries)
    }

    /// See `Store::journal_page`: rows in `(customer_id, version)` order; the cursor is the
    /// last row's `<version>/<customer id>`.
    pub(super) fn journal_page(
        &mut self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<JournalPage, StoreError> {
        let after = cursor.map(parse_cursor).transpose()?;
        self.spill()?;
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let (after_id, after_version) = after.unzip();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT customer_id, version, entries FROM journal
                 WHERE ?1 IS NULL OR (customer_id, version) > (?1, ?2)
                 ORDER BY customer_id, version LIMIT ?3",
            )
            .map_err(store_error)?;
        let mut rows = stmt
            .query(params![after_id, after_version, limit])
            .map_err(store_error)?;
        let mut page = JournalPage::default();
        let mut count = 0;
        let mut last = None;
        while let Some(row) = rows.next().map_err(store_error)? {
            let customer_id: String = row.get(0).map_err(store_error)?;
            let version: i64 = row.get(1).map_err(store_error)?;
            let bytes: Vec<u8> = row.get(2).map_err(store_error)?;
            for entry in decoded(&customer_id, version, &bytes)? {
                if since.is_none_or(|s| entry.at >= s) {
                    page.entries.push((customer_id.clone(), entry));
                }
            }
            count += 1;
            last = Some((customer_id, version));
        }
        if count == limit {
            page.cursor = last.map(|(id, v)| format!("{v}/{id}"));
        }
        Ok(page)
    }
}

/// A row's entries, or why they cannot be read (naming the version, not the customer, whose
/// id may hold an address).
fn decoded(customer_id: &str, version: i64, bytes: &[u8]) -> Result<Vec<JournalEntry>, StoreError> {
    journal::decode(bytes).map_err(|e| {
        let customer = nudge_core::engine::customer_ref(customer_id);
        StoreError::Corrupt(format!(
            "the journal of customer {customer} at version {version} is unreadable ({:?})",
            e.classify()
        ))
    })
}

/// `<version>/<customer id>` as [`Inner::journal_page`] makes it.
fn parse_cursor(cursor: &str) -> Result<(&str, i64), StoreError> {
    cursor
        .split_once('/')
        .and_then(|(v, id)| Some((id, v.parse().ok()?)))
        .ok_or_else(|| StoreError::InvalidRequest("not a journal cursor of this store".to_owned()))
}
