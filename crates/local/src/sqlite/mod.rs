//! [`SqliteStore`]: the [`Store`] in an embedded SQLite database, for the command line.
//!
//! One connection behind a mutex; every method does its (short, blocking) work inside its
//! future. The schema is versioned (`PRAGMA user_version`) and migrated when a database is
//! opened. Times are integer unix milliseconds.
//!
//! A commit per event costs more than the event, so [`SqliteOptions::batch`] groups many
//! writes in one transaction. Inside a batch, commits are staged in memory: a commit checks
//! its conditions (the event not processed, the customer at the expected version) against the
//! staged writes and the database, and is then recorded whole in `Staged`, where the store
//! reads its own writes. When the batch ends the staged rows are written in key order, so that
//! each B-tree page is visited once per batch and a customer written many times is written
//! once, and the transaction commits. Random single-row writes (with their page splits and
//! savepoints) were most of the cost of a batched simulation.

mod aside;
mod batch;
mod customers;
mod error;
mod journal;
mod schema;
mod sends;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use nudge_core::journal::JournalEntry;
use nudge_core::store::{
    Commit, CommitOutcome, CustomerPage, CustomerRecord, DUE_SHARDS, DeadLetter, DuePage, Erased,
    Feedback, FeedbackCount, JournalPage, Parked, SendEntry, SendPage, Settle, Store, StoreError,
    from_millis, to_millis, validate_commit,
};

use batch::{Staged, StagedCustomer};
use error::store_error;
use schema::MIGRATIONS;
pub use schema::{CACHE_KIB, OpenError};

/// How a [`SqliteStore`] is opened: every setting is applied when the store opens, or the
/// open fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Writes (commits, claims and settles of sends, order links, suppressions, dead letters,
    /// metadata, feedback counts, parked inputs, erasures) grouped in one transaction; 1
    /// (the default, and what 0 means) commits every write on its own.
    pub batch: usize,
    /// Database pages kept in memory, in KiB ([`CACHE_KIB`] by default). Several stores of
    /// one process (a throwaway store per `simulate` shard) can share the default's memory.
    pub cache_kib: usize,
    /// What a crash may cost.
    pub durability: Durability,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            batch: 1,
            cache_kib: CACHE_KIB,
            durability: Durability::Normal,
        }
    }
}

impl SqliteOptions {
    /// The writes per batch of `simulate`'s stores. A batch is staged in memory (about 1 KB
    /// per customer) and written in key order when full: 20,000 made a simulation of 10,000
    /// customers 1.3x faster than 2,000 (the store's share halved) for about 20 MB more
    /// memory. (Measured before `simulate` delivered its emails as it goes: delivering one
    /// commits the open batch first, so batches now mostly end at the first email of a round,
    /// and this size bounds the batches of inputs that send nothing.)
    pub const SIMULATE_BATCH: usize = 20_000;

    /// The options of one of `stores` throwaway stores of one process, such as `simulate`'s
    /// store per shard: batches of [`SqliteOptions::SIMULATE_BATCH`], the default page cache
    /// shared among the stores, and [`Durability::Scratch`].
    pub fn scratch(stores: usize) -> Self {
        Self {
            batch: Self::SIMULATE_BATCH,
            cache_kib: CACHE_KIB / stores.max(1),
            durability: Durability::Scratch,
        }
    }

    /// These options with [`SqliteOptions::batch`] set to `n`.
    pub fn batch(self, n: usize) -> Self {
        Self { batch: n, ..self }
    }

    /// These options with [`SqliteOptions::cache_kib`] set to `kib`.
    pub fn cache_kib(self, kib: usize) -> Self {
        Self {
            cache_kib: kib,
            ..self
        }
    }

    /// These options with [`SqliteOptions::durability`] set to `durability`.
    pub fn durability(self, durability: Durability) -> Self {
        Self { durability, ..self }
    }
}

/// What a crash may cost a [`SqliteStore`], traded against speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Write-ahead log, synced at checkpoints (`synchronous = NORMAL`): a crash of the process
    /// loses nothing committed; a power loss may lose the last commits, never corrupts the
    /// file. For a store kept across runs (`--db`). On a file system that cannot hold a WAL,
    /// SQLite keeps its rollback journal (slower, as safe), and the store logs a warning.
    #[default]
    Normal,
    /// No waiting for the disk (`synchronous = OFF`), for a file that may be lost with the
    /// machine, where it makes batched writes several times faster. A crash of the process
    /// still loses nothing committed and never corrupts the file; a crash of the machine or a
    /// power loss may corrupt it.
    NoSync,
    /// For a file nobody reads after this process, such as the throwaway store of
    /// `nudge simulate`: no fsync and no journal at all, so a batch is written once, straight
    /// into the file (about 13% faster with 30,000 customers than through the WAL). Nothing
    /// can be rolled back: if writing a batch fails, the call reports the lost writes and every
    /// later call fails with [`StoreError::Unusable`]; a crash leaves a file that should be
    /// deleted. Opening fails if SQLite cannot turn the journal off.
    Scratch,
}

/// The [`Store`] in an SQLite database: a file ([`SqliteStore::open`]) or memory
/// ([`SqliteStore::in_memory`]).
///
/// With a batch of more than one ([`SqliteOptions::batch`]) a write is durable only once its
/// batch is committed: every `n` writes, on [`Store::flush`], and (best effort) when the store
/// is dropped. Until then its commits are staged in memory (at most `n` of them). If SQLite
/// fails to write a batch (a full disk, say), the whole batch is rolled back and the call that
/// ended it fails with [`StoreError::WritesLost`], naming how many writes were lost; the store
/// then goes on from what is durable. A batch holds the database's write lock, so other
/// connections to the same file wait for it; batching is for a single writer such as
/// `nudge simulate`.
pub struct SqliteStore {
    inner: Mutex<Inner>,
}

/// The connection and the state of the open batch.
struct Inner {
    conn: Connection,
    /// Writes per transaction (at least 1).
    batch: usize,
    /// Writes in the open transaction.
    pending: usize,
    /// Commits of the open transaction not yet written to the database.
    staged: Staged,
    /// No rollback journal ([`Durability::Scratch`]): a failed write leaves the file
    /// untrustworthy.
    scratch: bool,
    /// Why every call fails from now on, once the file can no longer be trusted (a scratch
    /// store's write failed, or a failed batch could not be rolled back).
    unusable: Option<&'static str>,
    /// Transactions begun so far: tells which one a remembered read belongs to.
    transactions: u64,
    /// The version of the customer last read from the database, and the transaction it was
    /// read in: a commit that follows its load in the same write transaction (as every
    /// commit of a batch does) need not read the version again, since no other connection can
    /// write meanwhile. Forgotten on every write.
    last_read: Option<(String, u64, u64)>,
}

impl SqliteStore {
    /// The schema version this code writes; a database with a newer one is refused.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens (creating it if needed) the store in the file `path` with the default
    /// [`SqliteOptions`] and migrates its schema.
    ///
    /// Fails with [`OpenError::TooNew`] for a database written by a newer Nudge and
    /// [`OpenError::NotAStore`] for another application's database.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating it if needed) the store in the file `path` with `options`, and
    /// migrates its schema. Every option is applied or the open fails: a store never runs
    /// with settings other than those asked for.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self, OpenError> {
        let conn = Connection::open(path).map_err(|source| OpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::prepare(conn, path, true, options)
    }

    /// A new, empty store in memory with the default [`SqliteOptions`], gone when dropped.
    pub fn in_memory() -> Result<Self, OpenError> {
        Self::in_memory_with(SqliteOptions::default())
    }

    /// A new, empty store in memory with `options`, gone when dropped.
    pub fn in_memory_with(options: SqliteOptions) -> Result<Self, OpenError> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| OpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::prepare(conn, path, false, options)
    }

    /// Configures a new connection, migrates its schema and applies `options`.
    fn prepare(
        mut conn: Connection,
        path: &Path,
        file: bool,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        schema::configure(&conn, file, options.cache_kib).map_err(|source| OpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        schema::migrate(&mut conn, path)?;
        schema::set_durability(&conn, path, options.durability)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                conn,
                batch: options.batch.max(1),
                pending: 0,
                staged: Staged::default(),
                scratch: options.durability == Durability::Scratch,
                unusable: None,
                transactions: 0,
                last_read: None,
            }),
        })
    }

    /// Runs `f` on the connection.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.inner.lock().map_err(|_| {
            StoreError::Unusable("a thread panicked while it used the store".to_owned())
        })?;
        if let Some(why) = inner.unusable {
            return Err(StoreError::Unusable(why.to_owned()));
        }
        let result = f(&mut inner).map_err(|e| inner.lost_batch(e));
        if inner.scratch && matches!(result, Err(StoreError::WritesLost { .. })) {
            // Without a journal nothing was rolled back: the file holds part of the batch.
            inner.unusable = Some(
                "the scratch store failed to write, and without a journal its file can no longer be trusted",
            );
        }
        result
    }
}

impl Inner {
    /// `error` as the call's error, unless SQLite rolled the open batch back on its own while
    /// failing (it does after some I/O, disk-full and out-of-memory errors): then the writes
    /// the batch held are lost, and the call says so now rather than as a retryable failure,
    /// with `error` as the cause.
    fn lost_batch(&mut self, error: StoreError) -> StoreError {
        if matches!(error, StoreError::WritesLost { .. })
            || self.pending == 0
            || !self.conn.is_autocommit()
        {
            return error;
        }
        self.staged.clear();
        StoreError::WritesLost {
            lost: std::mem::take(&mut self.pending),
            source: Some(Box::new(error)),
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("SqliteStore");
        if let Ok(inner) = self.inner.try_lock() {
            d.field("path", &inner.conn.path())
                .field("batch", &inner.batch)
                .field("pending", &inner.pending);
        }
        d.finish_non_exhaustive()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // A poisoned store stopped in the middle of something: leave its batch uncommitted.
        let Ok(inner) = self.inner.get_mut() else {
            return;
        };
        if inner.unusable.is_some() {
            return;
        }
        if let Err(e) = inner.commit_batch() {
            tracing::warn!(error = %e, "the store's last batch could not be committed");
        }
    }
}

impl Inner {
    fn load(&mut self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        if let Some(c) = self.staged.customers.get(customer_id) {
            return Ok(Some(CustomerRecord {
                version: c.version as u64,
                state: c.state.clone(),
            }));
        }
        let row = self
            .conn
            .prepare_cached("SELECT version, state FROM customers WHERE customer_id = ?1")
            .map_err(store_error)?
            .query_row([customer_id], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .optional()
            .map_err(store_error)?;
        let record = row
            .map(|(version, state)| {
                Ok::<_, StoreError>(CustomerRecord {
                    version: stored_version(customer_id, version)?,
                    state,
                })
            })
            .transpose()?;
        self.last_read = (!self.conn.is_autocommit()).then(|| {
            let version = record.as_ref().map_or(0, |r| r.version);
            (customer_id.to_owned(), version, self.transactions)
        });
        Ok(record)
    }

    /// The customer's current version (staged or stored); 0 when there is no such customer.
    fn version(&self, customer_id: &str) -> Result<u64, StoreError> {
        if let Some(c) = self.staged.customers.get(customer_id) {
            return Ok(c.version as u64);
        }
        if let Some((id, version, transaction)) = &self.last_read
            && id == customer_id
            && *transaction == self.transactions
            && !self.conn.is_autocommit()
        {
            return Ok(*version);
        }
        let version = self
            .conn
            .prepare_cached("SELECT version FROM customers WHERE customer_id = ?1")
            .map_err(store_error)?
            .query_row([customer_id], |row| row.get::<_, i64>(0))
            .optional()
            .map_err(store_error)?;
        version.map_or(Ok(0), |v| stored_version(customer_id, v))
    }

    /// Runs one statement without parameters or rows (transaction control), prepared once.
    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    fn commit(&mut self, commit: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        validate_commit(commit)?;
        // The write lock first: the conditions checked below must still hold when the staged
        // rows are written.
        self.begin_write()?;
        let result = self.stage(commit);
        let wrote = matches!(result, Ok(CommitOutcome::Committed { .. }));
        // Always end the write, so that a failed commit leaves no empty transaction open.
        let end = self.end_write(wrote);
        let outcome = result?;
        end?;
        Ok(outcome)
    }

    /// Checks a commit's conditions and stages it whole, or not at all.
    fn stage(&mut self, commit: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        if let Some(event_id) = commit.event_id
            && self.is_processed(event_id)?
        {
            return Ok(CommitOutcome::AlreadyProcessed);
        }
        if self.version(commit.customer_id)? != commit.expected_version {
            return Ok(CommitOutcome::Conflict);
        }
        // No customer can be at a version whose successor SQLite cannot hold.
        let Some(version) = commit
            .expected_version
            .checked_add(1)
            .and_then(|v| i64::try_from(v).ok())
        else {
            return Ok(CommitOutcome::Conflict);
        };
        self.last_read = None;
        let staged = &mut self.staged;
        staged.customers.insert(
            commit.customer_id.to_owned(),
            StagedCustomer {
                version,
                state: commit.state.to_vec(),
                next_wake: commit.next_wake.map(to_millis),
                updated_at: to_millis(Utc::now()),
            },
        );
        if let Some(event_id) = commit.event_id {
            staged
                .processed
                .insert(event_id.to_owned(), commit.customer_id.to_owned());
        }
        for send in commit.sends {
            // A key logged earlier in the batch stays as it is; one already in the database
            // is kept by the spill (`ON CONFLICT DO NOTHING`).
            staged
                .sends
                .entry(send.idempotency_key.clone())
                .or_insert_with(|| send.clone());
        }
        staged.journal.push(journal::StagedJournal {
            customer_id: commit.customer_id.to_owned(),
            version,
            entries: nudge_core::journal::encode(commit.journal),
        });
        Ok(CommitOutcome::Committed {
            version: version as u64,
        })
    }

    fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        if self.staged.processed.contains_key(event_id) {
            return Ok(true);
        }
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM processed_events WHERE event_id = ?1)")
            .and_then(|mut s| s.query_row([event_id], |row| row.get(0)))
            .map_err(store_error)
    }

    /// A page of shard `shard`'s due timers (see [`Store::due`]). The cursor is the last row
    /// of the page, `<next_wake millis>/<customer id>`; the next page starts after it, through
    /// the index on `(shard, next_wake, customer_id)`.
    fn due(
        &mut self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DuePage, StoreError> {
        if shard >= DUE_SHARDS {
            return Err(StoreError::InvalidRequest(format!(
                "due shard {shard} is out of range (0..{DUE_SHARDS})"
            )));
        }
        let after = cursor.map(parse_due_cursor).transpose()?;
        self.spill()?;
        let limit = limit.max(1);
        let sql = if after.is_some() {
            DUE_AFTER
        } else {
            DUE_FIRST
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(store_error)?;
        let (after_at, after_id) = after.unzip();
        let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query(params![
                shard,
                to_millis(until),
                after_at,
                after_id,
                sql_limit
            ])
            .map_err(store_error)?;
        let mut page = DuePage::default();
        while let Some(row) = rows.next().map_err(store_error)? {
            page.due.push((
                from_millis(row.get(0).map_err(store_error)?)?,
                row.get(1).map_err(store_error)?,
            ));
        }
        if page.due.len() == limit {
            page.cursor = page
                .due
                .last()
                .map(|(at, id)| format!("{}/{id}", to_millis(*at)));
        }
        Ok(page)
    }

    /// See [`Store::set_aside`]: the timer is taken out only if it is still at `due`; the
    /// version stays (the state did not change), so no commit in flight is made to conflict.
    fn set_aside(&mut self, customer_id: &str, due: DateTime<Utc>) -> Result<bool, StoreError> {
        self.begin_write()?;
        let result = self.spill().and_then(|()| {
            self.conn
                .prepare_cached(
                    "UPDATE customers SET next_wake = NULL
                     WHERE customer_id = ?1 AND next_wake = ?2",
                )
                .and_then(|mut s| s.execute(params![customer_id, to_millis(due)]))
                .map_err(store_error)
        });
        let taken = matches!(result, Ok(n) if n > 0);
        let end = self.end_write(taken);
        result?;
        end?;
        Ok(taken)
    }

    fn record_dead_letter(&mut self, letter: &DeadLetter) -> Result<String, StoreError> {
        self.begin_write()?;
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO dead_letters (event_id, customer_id, source, reason, body, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    letter.event_id,
                    letter.customer_id,
                    letter.source,
                    letter.reason,
                    letter.stored_body(),
                    to_millis(letter.received_at),
                ])
            })
            .map(|_| self.conn.last_insert_rowid());
        self.end_write(inserted.is_ok())?;
        dead_letter_id(inserted.map_err(store_error)?)
    }

    /// At most `limit` dead letters whose row id is over `after`, by row id.
    fn dead_letters_from(&self, after: i64, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, event_id, customer_id, source, reason, body, received_at
                 FROM dead_letters WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(store_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query([after, limit]).map_err(store_error)?;
        let mut letters = Vec::new();
        while let Some(row) = rows.next().map_err(store_error)? {
            letters.push(DeadLetter {
                id: dead_letter_id(row.get(0).map_err(store_error)?)?,
                event_id: row.get(1).map_err(store_error)?,
                customer_id: row.get(2).map_err(store_error)?,
                source: row.get(3).map_err(store_error)?,
                reason: row.get(4).map_err(store_error)?,
                body: row.get(5).map_err(store_error)?,
                received_at: from_millis(row.get(6).map_err(store_error)?)?,
            });
        }
        Ok(letters)
    }

    fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters_from(0, limit)
    }

    /// See [`Store::dead_letters_after`]: an `after` that is no id of this store's shape is
    /// [`StoreError::InvalidRequest`].
    fn dead_letters_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let after = match after {
            None => 0,
            Some(id) => dead_letter_rowid(id).ok_or_else(|| {
                StoreError::InvalidRequest(format!(
                    "`{}` is not a dead letter id of this store",
                    id.escape_debug()
                ))
            })?,
        };
        self.dead_letters_from(after, limit.max(1))
    }

    fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        let Some(rowid) = dead_letter_rowid(id) else {
            return Ok(None);
        };
        let letter = self.dead_letters_from(rowid - 1, 1)?.pop();
        Ok(letter.filter(|l| l.id == id))
    }

    fn remove_dead_letter(&mut self, id: &str) -> Result<bool, StoreError> {
        let Some(rowid) = dead_letter_rowid(id) else {
            return Ok(false);
        };
        self.begin_write()?;
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM dead_letters WHERE id = ?1")
            .and_then(|mut s| s.execute([rowid]));
        let removed = matches!(deleted, Ok(n) if n > 0);
        self.end_write(removed)?;
        deleted.map_err(store_error)?;
        Ok(removed)
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row([key], |row| row.get(0)).optional())
            .map_err(store_error)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.begin_write()?;
        let set = self
            .conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute([key, value]));
        self.end_write(set.is_ok())?;
        set.map_err(store_error)?;
        Ok(())
    }
}

/// The first page of a shard's due timers (`?3`, `?4`: no cursor). Two statements rather than
/// one with `?3 IS NULL OR ...`: a row value bound alone is a range of the index, so a page
/// starts where the last ended instead of filtering from the shard's first timer.
const DUE_FIRST: &str = "SELECT next_wake, customer_id FROM customers
     WHERE shard = ?1 AND next_wake IS NOT NULL AND next_wake <= ?2 AND ?3 IS NULL AND ?4 IS NULL
     ORDER BY next_wake, customer_id LIMIT ?5";

/// A later page of a shard's due timers: after the cursor's `(next_wake, customer_id)`.
const DUE_AFTER: &str = "SELECT next_wake, customer_id FROM customers
     WHERE shard = ?1 AND next_wake IS NOT NULL AND next_wake <= ?2
       AND (next_wake, customer_id) > (?3, ?4)
     ORDER BY next_wake, customer_id LIMIT ?5";

/// A dead letter's id as the store hands it out: its row id, zero-padded to 20 digits so that
/// the ids' byte order is the order recorded.
fn dead_letter_id(rowid: i64) -> Result<String, StoreError> {
    if rowid <= 0 {
        return Err(StoreError::Corrupt(format!("dead letter id {rowid}")));
    }
    Ok(format!("{rowid:020}"))
}

/// The row id of the dead letter `id` ([`dead_letter_id`]'s shape), if it has that shape.
fn dead_letter_rowid(id: &str) -> Option<i64> {
    if id.len() != 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok().filter(|&n: &i64| n > 0)
}

/// The `(next_wake millis, customer id)` a cursor of [`Inner::due`] names.
fn parse_due_cursor(cursor: &str) -> Result<(i64, &str), StoreError> {
    cursor
        .split_once('/')
        .and_then(|(at, id)| Some((at.parse().ok()?, id)))
        // Not quoted: a cursor names a customer, whose id may hold an address.
        .ok_or_else(|| StoreError::InvalidRequest("not a due cursor of this store".to_owned()))
}

/// A stored version as the store hands it out.
fn stored_version(customer_id: &str, version: i64) -> Result<u64, StoreError> {
    u64::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("customer `{customer_id}` has version {version}")))
}

impl Store for SqliteStore {
    async fn load(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        self.with(|inner| inner.load(customer_id))
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.with(|inner| inner.commit(&commit))
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.with(|inner| inner.is_processed(event_id))
    }

    async fn due(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DuePage, StoreError> {
        self.with(|inner| inner.due(shard, until, limit, cursor))
    }

    async fn sends(&self, customer_id: &str) -> Result<Vec<SendEntry>, StoreError> {
        self.with(|inner| inner.sends(customer_id))
    }

    async fn set_aside(&self, customer_id: &str, due: DateTime<Utc>) -> Result<bool, StoreError> {
        self.with(|inner| inner.set_aside(customer_id, due))
    }

    async fn claim_send(
        &self,
        customer_id: &str,
        idempotency_key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        self.with(|inner| inner.claim_send(customer_id, idempotency_key, now, lease_until))
    }

    async fn settle_send(
        &self,
        customer_id: &str,
        idempotency_key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        self.with(|inner| inner.settle_send(customer_id, idempotency_key, settle))
    }

    async fn pending_sends(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SendPage, StoreError> {
        self.with(|inner| inner.pending_sends(shard, until, limit, cursor))
    }

    async fn link_order(&self, order_id: &str, customer_id: &str) -> Result<(), StoreError> {
        self.with(|inner| inner.link_order(order_id, customer_id))
    }

    async fn order_customer(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        self.with(|inner| inner.order_customer(order_id))
    }

    async fn suppress(
        &self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|inner| inner.suppress(address_key, reason, at))
    }

    async fn suppression(
        &self,
        address_key: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        self.with(|inner| inner.suppression(address_key))
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<String, StoreError> {
        self.with(|inner| inner.record_dead_letter(letter))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.with(|inner| inner.dead_letters(limit))
    }

    async fn dead_letters_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.with(|inner| inner.dead_letters_after(after, limit))
    }

    async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.with(|inner| inner.dead_letter(id))
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|inner| inner.remove_dead_letter(id))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|inner| inner.get_meta(key))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|inner| inner.set_meta(key, value))
    }

    async fn record_feedback(&self, feedback: &Feedback<'_>) -> Result<bool, StoreError> {
        self.with(|inner| inner.record_feedback(feedback))
    }

    async fn feedback_counts(&self) -> Result<Vec<FeedbackCount>, StoreError> {
        self.with(Inner::feedback_counts)
    }

    async fn park(&self, parked: &Parked) -> Result<(), StoreError> {
        self.with(|inner| inner.park(parked))
    }

    async fn parked(&self, order_id: &str, now: DateTime<Utc>) -> Result<Vec<Parked>, StoreError> {
        self.with(|inner| inner.parked(order_id, now))
    }

    async fn unpark(&self, order_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.with(|inner| inner.unpark(order_id, event_id))
    }

    async fn erase_customer(&self, customer_id: &str) -> Result<Erased, StoreError> {
        self.with(|inner| inner.erase_customer(customer_id))
    }

    async fn journal(&self, customer_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.with(|inner| inner.journal(customer_id))
    }

    async fn journal_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<JournalPage, StoreError> {
        self.with(|inner| inner.journal_page(since, cursor, limit))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.with(Inner::commit_batch)
    }

    async fn customers(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<CustomerPage, StoreError> {
        self.with(|inner| inner.customers(cursor, limit))
    }
}
