//! [`SqliteStore`]: the [`Store`] in an embedded SQLite database, for the command line.
//!
//! One connection behind a mutex; every method does its (short, blocking) work inside its
//! future. The schema is versioned (`PRAGMA user_version`) and migrated when a database is
//! opened. Times are integer unix milliseconds.
//!
//! A commit per event costs more than the event, so [`SqliteStore::with_batch`] groups many
//! writes in one transaction. Inside a batch, commits are staged in memory: a commit checks
//! its conditions (the event not processed, the customer at the expected version) against the
//! staged writes and the database, and is then recorded whole in `Staged`, where the store
//! reads its own writes. When the batch ends the staged rows are written in key order, so that
//! each B-tree page is visited once per batch and a customer written many times is written
//! once, and the transaction commits. Random single-row writes (with their page splits and
//! savepoints) were most of the cost of a batched simulation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Commit, CommitOutcome, CustomerRecord, DeadLetter, SendRecord, SendStatus, Store, StoreError,
    from_millis, to_millis, validate_commit,
};

/// `PRAGMA application_id` of a Nudge store ("NUDG"), so that another application's database is
/// refused rather than written into.
const APPLICATION_ID: i64 = 0x4e55_4447;

/// How long a write waits for another connection's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one migration per version: `MIGRATIONS[i]` takes a database from version `i`
/// to `i + 1`. Append only; never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema. Times are unix milliseconds.
    "CREATE TABLE customers (
        customer_id TEXT PRIMARY KEY NOT NULL,
        version     INTEGER NOT NULL,
        state       BLOB NOT NULL,
        next_wake   INTEGER,          -- the customer's timer; NULL when none
        updated_at  INTEGER NOT NULL  -- wall clock of the last commit, for operators
    );
    CREATE INDEX customers_next_wake ON customers (next_wake, customer_id)
        WHERE next_wake IS NOT NULL;

    -- No foreign key: a commit marks its event before it creates the customer (so that a
    -- duplicate is found in one lookup), and a conflict rolls both back.
    CREATE TABLE processed_events (
        event_id     TEXT PRIMARY KEY NOT NULL,
        customer_id  TEXT NOT NULL,
        processed_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE sends (
        idempotency_key TEXT PRIMARY KEY NOT NULL,
        customer_id     TEXT NOT NULL REFERENCES customers (customer_id),
        workflow        TEXT NOT NULL,
        step            TEXT NOT NULL,
        category        TEXT NOT NULL,
        at              INTEGER NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
        message_id      TEXT
    ) WITHOUT ROWID;
    CREATE INDEX sends_customer ON sends (customer_id, at);

    CREATE TABLE dead_letters (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id    TEXT,
        source      TEXT NOT NULL,
        reason      TEXT NOT NULL,
        body        TEXT NOT NULL,
        received_at INTEGER NOT NULL
    );

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID;",
];

/// The [`Store`] in an SQLite database: a file ([`SqliteStore::open`]) or memory
/// ([`SqliteStore::in_memory`]).
///
/// With a batch of more than one ([`SqliteStore::with_batch`]) a write is durable only once its
/// batch is committed: every `n` writes, on [`Store::flush`], and (best effort) when the store
/// is dropped. Until then its commits are staged in memory (at most `n` of them). If SQLite
/// fails to write a batch (a full disk, say), the whole batch is rolled back and the call that
/// ended it fails with [`StoreError::BatchLost`], naming how many writes were lost; the store
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
    /// No rollback journal ([`SqliteStore::scratch`]): a failed write leaves the file
    /// untrustworthy.
    scratch: bool,
    /// A scratch store's write failed: every call fails from now on.
    unusable: bool,
    /// Transactions begun so far: tells which one a remembered read belongs to.
    transactions: u64,
    /// The version of the customer last read from the database, and the transaction it was
    /// read in: a commit that follows its load in the same write transaction (as every
    /// commit of a batch does) need not read the version again, since no other connection can
    /// write meanwhile. Forgotten on every write.
    last_read: Option<(String, u64, u64)>,
}

/// Commits of the open batch, in memory until the batch is written ([`Inner::spill`]). Every
/// entry is the outcome of a whole commit; nothing here is half of one.
#[derive(Default)]
struct Staged {
    /// The latest staged row of each customer written in the batch.
    customers: HashMap<String, StagedCustomer>,
    /// Event ids marked processed in the batch, with their customer.
    processed: HashMap<String, String>,
    /// Send-log entries logged in the batch, by idempotency key (the first wins).
    sends: HashMap<String, StagedSend>,
}

struct StagedCustomer {
    version: i64,
    state: Vec<u8>,
    next_wake: Option<i64>,
    updated_at: i64,
}

struct StagedSend {
    record: SendRecord,
    status: SendStatus,
    message_id: Option<String>,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.customers.is_empty() && self.processed.is_empty() && self.sends.is_empty()
    }

    fn clear(&mut self) {
        self.customers.clear();
        self.processed.clear();
        self.sends.clear();
    }
}

impl SqliteStore {
    /// The schema version this code writes; a database with a newer one is refused.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens (creating it if needed) the store in the file `path` and migrates its schema.
    ///
    /// Fails with [`StoreError::TooNew`] for a database written by a newer Nudge and
    /// [`StoreError::NotAStore`] for another application's database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn, true).map_err(open_err)?;
        migrate(&mut conn, path)?;
        Ok(Self::new(conn))
    }

    /// A new, empty store in memory, gone when dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        let path = Path::new(":memory:");
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open_in_memory().map_err(open_err)?;
        configure(&conn, false).map_err(open_err)?;
        migrate(&mut conn, path)?;
        Ok(Self::new(conn))
    }

    /// Groups `n` writes (commits, send marks, dead letters, metadata) in one transaction;
    /// 1 (the default, and what 0 means) commits every write on its own.
    pub fn with_batch(self, n: usize) -> Self {
        if let Ok(mut inner) = self.inner.lock() {
            inner.batch = n.max(1);
        }
        self
    }

    /// Keeps up to `kib` KiB of database pages in memory (24 MiB by default). Several stores
    /// of one process (a throwaway store per `simulate` shard) can share the default's memory.
    pub fn with_cache_kib(self, kib: usize) -> Self {
        let kib = i64::try_from(kib.max(1)).unwrap_or(i64::MAX);
        if let Err(e) = self.with(|inner| Ok(inner.conn.pragma_update(None, "cache_size", -kib)?)) {
            tracing::warn!(error = %e, "the store could not set its page cache size");
        }
        self
    }

    /// Stops waiting for the disk (`PRAGMA synchronous = OFF`), for a file that may be lost
    /// with the machine, where it makes batched writes several times faster
    /// ([`SqliteStore::scratch`] goes further). A crash of the process still loses nothing
    /// committed and never corrupts the file; a crash of the machine or a power loss may
    /// corrupt it.
    pub fn without_fsync(self) -> Self {
        let set = self.with(|inner| {
            // Changed outside any transaction, so a batch in progress is committed first.
            inner.commit_batch()?;
            Ok(inner.conn.pragma_update(None, "synchronous", "OFF")?)
        });
        if let Err(e) = set {
            tracing::warn!(error = %e, "the store could not turn fsync off");
        }
        self
    }

    /// For a file nobody reads after this process, such as the throwaway store of
    /// `nudge simulate`: no fsync ([`SqliteStore::without_fsync`]) and no journal at all, so a
    /// batch is written once, straight into the file (about 13% faster with 30,000 customers
    /// than through the WAL). Nothing can be rolled back: if writing a batch fails, the call
    /// reports the lost batch and every later call fails with [`StoreError::Unusable`]; a crash
    /// leaves a file that should be deleted. Not for a store kept across runs.
    pub fn scratch(self) -> Self {
        let store = self.without_fsync();
        let set = store.with(|inner| {
            inner.commit_batch()?;
            let mode: String =
                inner
                    .conn
                    .pragma_update_and_check(None, "journal_mode", "OFF", |row| row.get(0))?;
            inner.scratch = mode.eq_ignore_ascii_case("off");
            Ok(())
        });
        if let Err(e) = set {
            tracing::warn!(error = %e, "the store could not turn its journal off");
        }
        store
    }

    fn new(conn: Connection) -> Self {
        Self {
            inner: Mutex::new(Inner {
                conn,
                batch: 1,
                pending: 0,
                staged: Staged::default(),
                scratch: false,
                unusable: false,
                transactions: 0,
                last_read: None,
            }),
        }
    }

    /// Runs `f` on the connection.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.inner.lock().map_err(|_| StoreError::Poisoned)?;
        if inner.unusable {
            return Err(StoreError::Unusable);
        }
        let result = f(&mut inner);
        if inner.scratch && matches!(result, Err(StoreError::BatchLost { .. })) {
            // Without a journal nothing was rolled back: the file holds part of the batch.
            inner.unusable = true;
        }
        result
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
        if inner.unusable {
            return;
        }
        if let Err(e) = inner.commit_batch() {
            tracing::warn!(error = %e, "the store's last batch could not be committed");
        }
    }
}

/// The page cache of a store, in KiB, unless [`SqliteStore::with_cache_kib`] says otherwise.
pub const CACHE_KIB: usize = 24 * 1024;

/// Connection settings, before anything is read.
fn configure(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if file {
        // WAL: readers do not block the writer, and a commit is one append. Some file systems
        // cannot do it; SQLite then keeps its rollback journal, which is slower but correct.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "the store could not switch to WAL journaling");
        }
        // Checkpoints (copying the WAL into the database, with an fsync each) dominate the
        // cost of a batched simulation: one every 32768 pages (a WAL of up to 128 MiB)
        // rather than SQLite's default 1000 made it 1.6x faster with 100,000 customers.
        conn.pragma_update(None, "wal_autocheckpoint", 32_768)?;
    }
    // NORMAL with WAL: a power loss may lose the last commits, never corrupt the file.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Temporary tables and indexes (sorting) in memory, not in a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 24 MiB of page cache (negative: KiB): customers read again mostly stay in memory (the OS
    // keeps the rest). 64 MiB was no faster with 30,000 customers and cost 40 MB more; 16 MiB
    // was 10% slower.
    conn.pragma_update(None, "cache_size", -(CACHE_KIB as i64))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Brings the schema of the database at `path` to [`SqliteStore::SCHEMA_VERSION`], in one
/// transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    // IMMEDIATE: two processes opening the same new file must not both migrate it.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let pragma = |name| tx.pragma_query_value(None, name, |row| row.get::<_, i64>(0));
    let application_id = pragma("application_id").map_err(open_err)?;
    let version = pragma("user_version").map_err(open_err)?;
    let not_a_store = StoreError::NotAStore {
        path: path.to_path_buf(),
        found: application_id,
    };
    if application_id != APPLICATION_ID {
        // A database without our id is ours only if it is empty.
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(open_err)?;
        if application_id != 0 || version != 0 || objects != 0 {
            return Err(not_a_store);
        }
    }
    if version < 0 {
        return Err(not_a_store);
    }
    if version > SqliteStore::SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SqliteStore::SCHEMA_VERSION,
        });
    }
    if version == SqliteStore::SCHEMA_VERSION {
        return Ok(()); // the transaction ends with nothing written
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(open_err)?;
        tracing::debug!(to = from + 1, "store schema migrated");
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(open_err)?;
    tx.pragma_update(None, "user_version", SqliteStore::SCHEMA_VERSION)
        .map_err(open_err)?;
    tx.commit().map_err(open_err)
}

impl Inner {
    /// Opens the batch transaction if none is open.
    fn begin_write(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            if self.pending > 0 {
                // SQLite rolled the batch back on its own (after an I/O error, say).
                self.staged.clear();
                let lost = std::mem::take(&mut self.pending);
                return Err(StoreError::BatchLost { lost, source: None });
            }
            // IMMEDIATE takes the write lock now, so that a read followed by a write cannot
            // fail half-way because another connection wrote in between.
            self.exec("BEGIN IMMEDIATE")?;
            self.transactions += 1;
        }
        Ok(())
    }

    /// Counts a write (if `wrote`) and commits the batch when it is full, or when it holds
    /// nothing, so that no lock is held for nothing.
    fn end_write(&mut self, wrote: bool) -> Result<(), StoreError> {
        if wrote {
            self.pending += 1;
        }
        if self.pending == 0 || self.pending >= self.batch {
            self.commit_batch()?;
        }
        Ok(())
    }

    /// Writes the staged commits and commits the open transaction, if any.
    fn commit_batch(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            self.staged.clear();
            let lost = std::mem::take(&mut self.pending);
            return match lost {
                0 => Ok(()),
                lost => Err(StoreError::BatchLost { lost, source: None }),
            };
        }
        self.spill()?;
        match self.exec("COMMIT") {
            Ok(()) => {
                self.pending = 0;
                Ok(())
            }
            // Still open (the database was busy): the next write or flush tries again.
            Err(e) if !self.conn.is_autocommit() => Err(e.into()),
            Err(e) => Err(StoreError::BatchLost {
                lost: std::mem::take(&mut self.pending),
                source: Some(e),
            }),
        }
    }

    /// Writes the staged commits into the open transaction, in key order, and empties the
    /// stage. A failure here rolls the whole transaction back (it would otherwise hold part of
    /// some commits) and reports the batch lost.
    fn spill(&mut self) -> Result<(), StoreError> {
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
                if !self.conn.is_autocommit() {
                    let _ = self.exec("ROLLBACK");
                }
                Err(StoreError::BatchLost {
                    lost: std::mem::take(&mut self.pending),
                    source: Some(e),
                })
            }
        }
    }

    fn load(&mut self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        if let Some(c) = self.staged.customers.get(customer_id) {
            return Ok(Some(CustomerRecord {
                version: c.version as u64,
                state: c.state.clone(),
            }));
        }
        let row = self
            .conn
            .prepare_cached("SELECT version, state FROM customers WHERE customer_id = ?1")?
            .query_row([customer_id], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .optional()?;
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
            .prepare_cached("SELECT version FROM customers WHERE customer_id = ?1")?
            .query_row([customer_id], |row| row.get::<_, i64>(0))
            .optional()?;
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
                .or_insert_with(|| StagedSend {
                    record: send.clone(),
                    status: SendStatus::Pending,
                    message_id: None,
                });
        }
        Ok(CommitOutcome::Committed {
            version: version as u64,
        })
    }

    fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        if self.staged.processed.contains_key(event_id) {
            return Ok(true);
        }
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM processed_events WHERE event_id = ?1)")?
            .query_row([event_id], |row| row.get(0))?)
    }

    fn due(
        &mut self,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
        self.spill()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT next_wake, customer_id FROM customers
             WHERE next_wake IS NOT NULL AND next_wake <= ?1
             ORDER BY next_wake, customer_id LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![to_millis(until), limit])?;
        let mut due = Vec::new();
        while let Some(row) = rows.next()? {
            due.push((from_millis(row.get(0)?)?, row.get(1)?));
        }
        Ok(due)
    }

    fn mark_send(
        &mut self,
        key: &str,
        status: SendStatus,
        message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        // Logged in this batch and not before (else the spill drops the staged entry, and the
        // stored one is the one to mark): marked in memory. A send is final.
        if self.staged.sends.contains_key(key) && !self.send_is_stored(key)? {
            self.begin_write()?;
            let staged = self.staged.sends.get_mut(key).expect("checked above");
            let wrote = staged.status != SendStatus::Sent;
            if wrote {
                staged.status = status;
                if let Some(id) = message_id {
                    staged.message_id = Some(id.to_owned());
                }
            }
            return self.end_write(wrote);
        }
        self.begin_write()?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE sends SET status = ?2, message_id = coalesce(?3, message_id)
                 WHERE idempotency_key = ?1 AND status <> 'sent'",
            )
            .and_then(|mut s| s.execute(params![key, status.as_str(), message_id]));
        let known = match &changed {
            Ok(0) => self.send_is_stored(key),
            Ok(_) => Ok(true),
            Err(_) => Ok(false),
        };
        let wrote = matches!(changed, Ok(n) if n > 0);
        self.end_write(wrote)?;
        changed?;
        match known? {
            // Not updated but known: it was sent already, which is final.
            true => Ok(()),
            false => Err(StoreError::UnknownSend(key.to_owned())),
        }
    }

    /// Whether the send log in the database has `key`.
    fn send_is_stored(&self, key: &str) -> rusqlite::Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM sends WHERE idempotency_key = ?1)")?
            .query_row([key], |row| row.get::<_, bool>(0))
    }

    fn sends(&mut self, customer_id: &str) -> Result<Vec<(SendRecord, SendStatus)>, StoreError> {
        self.spill()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT idempotency_key, workflow, step, category, at, status FROM sends
             WHERE customer_id = ?1 ORDER BY at, idempotency_key",
        )?;
        let mut rows = stmt.query([customer_id])?;
        let mut sends = Vec::new();
        while let Some(row) = rows.next()? {
            let status: String = row.get(5)?;
            let status = SendStatus::from_name(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown send status `{status}`")))?;
            let record = SendRecord {
                idempotency_key: row.get(0)?,
                customer_id: customer_id.to_owned(),
                workflow: row.get(1)?,
                step: row.get(2)?,
                category: row.get(3)?,
                at: from_millis(row.get(4)?)?,
            };
            sends.push((record, status));
        }
        Ok(sends)
    }

    fn record_dead_letter(&mut self, letter: &DeadLetter) -> Result<u64, StoreError> {
        self.begin_write()?;
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO dead_letters (event_id, source, reason, body, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    letter.event_id,
                    letter.source,
                    letter.reason,
                    letter.stored_body(),
                    to_millis(letter.received_at),
                ])
            })
            .map(|_| self.conn.last_insert_rowid());
        self.end_write(inserted.is_ok())?;
        let id = inserted?;
        u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("dead letter id {id}")))
    }

    fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, event_id, source, reason, body, received_at FROM dead_letters
             ORDER BY id LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query([limit])?;
        let mut letters = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            letters.push(DeadLetter {
                id: u64::try_from(id)
                    .map_err(|_| StoreError::Corrupt(format!("dead letter id {id}")))?,
                event_id: row.get(1)?,
                source: row.get(2)?,
                reason: row.get(3)?,
                body: row.get(4)?,
                received_at: from_millis(row.get(5)?)?,
            });
        }
        Ok(letters)
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?)
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
        set?;
        Ok(())
    }
}

/// A stored version as the store hands it out.
fn stored_version(customer_id: &str, version: i64) -> Result<u64, StoreError> {
    u64::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("customer `{customer_id}` has version {version}")))
}

/// Writes staged commits in key order: customers first (the send log refers to them), then the
/// processed event ids and the send log.
fn write_staged(conn: &Connection, staged: &Staged) -> rusqlite::Result<()> {
    let mut customers: Vec<_> = staged.customers.iter().collect();
    customers.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut upsert = conn.prepare_cached(
        "INSERT INTO customers (customer_id, version, state, next_wake, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (customer_id) DO UPDATE SET version = excluded.version,
             state = excluded.state, next_wake = excluded.next_wake,
             updated_at = excluded.updated_at",
    )?;
    for (id, c) in customers {
        upsert.execute(params![id, c.version, c.state, c.next_wake, c.updated_at])?;
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
        "INSERT INTO sends
             (idempotency_key, customer_id, workflow, step, category, at, status, message_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )?;
    for (key, send) in sends {
        let r = &send.record;
        insert.execute(params![
            key,
            r.customer_id,
            r.workflow,
            r.step,
            r.category,
            to_millis(r.at),
            send.status.as_str(),
            send.message_id,
        ])?;
    }
    Ok(())
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
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
        self.with(|inner| inner.due(until, limit))
    }

    async fn mark_send(
        &self,
        idempotency_key: &str,
        status: SendStatus,
        message_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with(|inner| inner.mark_send(idempotency_key, status, message_id))
    }

    async fn sends(&self, customer_id: &str) -> Result<Vec<(SendRecord, SendStatus)>, StoreError> {
        self.with(|inner| inner.sends(customer_id))
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<u64, StoreError> {
        self.with(|inner| inner.record_dead_letter(letter))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.with(|inner| inner.dead_letters(limit))
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|inner| inner.get_meta(key))
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|inner| inner.set_meta(key, value))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.with(Inner::commit_batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit<'a>(customer_id: &'a str, expected_version: u64) -> Commit<'a> {
        Commit {
            customer_id,
            expected_version,
            state: b"{}",
            next_wake: None,
            event_id: None,
            sends: &[],
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_page_cache_is_24_mib_unless_set() {
        let cache = |store: &SqliteStore| {
            store
                .with(|inner| {
                    Ok(inner
                        .conn
                        .pragma_query_value(None, "cache_size", |r| r.get::<_, i64>(0))?)
                })
                .unwrap()
        };
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(cache(&store), -24 * 1024);
        assert_eq!(cache(&store.with_cache_kib(12 * 1024)), -12 * 1024);
    }

    /// A commit right after its load in the open batch skips reading the version again; the
    /// version it remembers is only ever that customer's, and only from inside the batch.
    #[test]
    fn the_version_remembered_from_a_load_is_only_used_for_its_customer_and_batch() {
        block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let store = SqliteStore::open(&path).unwrap().with_batch(10);
            for id in ["a", "b"] {
                assert!(matches!(
                    store.commit(commit(id, 0)).await.unwrap(),
                    CommitOutcome::Committed { .. }
                ));
            }
            store.flush().await.unwrap();
            // In a batch: the load of `a` is remembered; `c` does not exist.
            assert!(matches!(
                store.commit(commit("b", 1)).await.unwrap(),
                CommitOutcome::Committed { .. }
            ));
            assert_eq!(store.load("a").await.unwrap().unwrap().version, 1);
            assert_eq!(
                store.commit(commit("c", 1)).await.unwrap(),
                CommitOutcome::Conflict
            );
            assert_eq!(store.load("a").await.unwrap().unwrap().version, 1);
            assert_eq!(
                store.commit(commit("a", 1)).await.unwrap(),
                CommitOutcome::Committed { version: 2 }
            );
            assert_eq!(
                store.commit(commit("a", 1)).await.unwrap(),
                CommitOutcome::Conflict
            );
            store.flush().await.unwrap();

            // Outside a batch, another connection may write between a load and a commit.
            assert_eq!(store.load("a").await.unwrap().unwrap().version, 2);
            let other = SqliteStore::open(&path).unwrap();
            assert!(matches!(
                other.commit(commit("a", 2)).await.unwrap(),
                CommitOutcome::Committed { version: 3 }
            ));
            drop(other);
            assert_eq!(
                store.commit(commit("a", 2)).await.unwrap(),
                CommitOutcome::Conflict
            );
        });
    }

    #[test]
    fn a_batch_rolled_back_by_sqlite_is_reported_not_hidden() {
        block_on(async {
            let store = SqliteStore::in_memory().unwrap().with_batch(10);
            for id in ["a", "b"] {
                let outcome = store.commit(commit(id, 0)).await.unwrap();
                assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
            }
            // What SQLite does after some I/O errors: the whole transaction is gone.
            store
                .with(|inner| Ok(inner.conn.execute_batch("ROLLBACK")?))
                .unwrap();
            let err = store.commit(commit("c", 0)).await.unwrap_err();
            assert!(
                matches!(err, StoreError::BatchLost { lost: 2, .. }),
                "got {err:?}"
            );
            // Reported once; the store goes on.
            assert_eq!(
                store.commit(commit("c", 0)).await.unwrap(),
                CommitOutcome::Committed { version: 1 }
            );
            store.flush().await.unwrap();
            assert_eq!(store.load("a").await.unwrap(), None);
        });
    }

    #[test]
    fn flush_reports_a_lost_batch() {
        block_on(async {
            let store = SqliteStore::in_memory().unwrap().with_batch(10);
            store.set_meta("k", "v").await.unwrap();
            store
                .with(|inner| Ok(inner.conn.execute_batch("ROLLBACK")?))
                .unwrap();
            let err = store.flush().await.unwrap_err();
            assert!(
                matches!(err, StoreError::BatchLost { lost: 1, .. }),
                "got {err:?}"
            );
            store.flush().await.unwrap();
        });
    }

    #[test]
    fn without_fsync_commits_the_open_batch_and_turns_sync_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"))
            .unwrap()
            .with_batch(10);
        let synchronous = |store: &SqliteStore| {
            store
                .with(|i| {
                    Ok(i.conn
                        .pragma_query_value(None, "synchronous", |r| r.get::<_, i64>(0))?)
                })
                .unwrap()
        };
        assert_eq!(synchronous(&store), 1, "NORMAL by default");
        block_on(async {
            let outcome = store.commit(commit("a", 0)).await.unwrap();
            assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
        });
        let store = store.without_fsync();
        assert_eq!(synchronous(&store), 0, "OFF");
        assert!(store.with(|i| Ok(i.conn.is_autocommit())).unwrap());
    }

    #[test]
    fn a_scratch_store_writes_without_a_journal_and_stops_after_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path).unwrap().with_batch(10).scratch();
        let mode = |store: &SqliteStore| {
            store
                .with(|i| {
                    Ok(i.conn
                        .pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))?)
                })
                .unwrap()
        };
        assert_eq!(mode(&store), "off");
        store
            .with(|i| {
                Ok(i.conn.execute_batch(
                    "CREATE TRIGGER boom BEFORE INSERT ON sends WHEN NEW.workflow = 'boom'
                     BEGIN SELECT RAISE(ABORT, 'boom'); END",
                )?)
            })
            .unwrap();
        block_on(async {
            let outcome = store.commit(commit("a", 0)).await.unwrap();
            assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
            store.flush().await.unwrap();
            let seen: i64 = Connection::open(&path)
                .unwrap()
                .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
                .unwrap();
            assert_eq!(seen, 1, "a flushed batch is in the file");

            let boom = [SendRecord {
                idempotency_key: "k".into(),
                customer_id: "a".into(),
                workflow: "boom".into(),
                step: "s".into(),
                category: "marketing".into(),
                at: DateTime::from_timestamp(0, 0).unwrap(),
            }];
            let failing = Commit {
                sends: &boom,
                ..commit("a", 1)
            };
            assert_eq!(
                store.commit(failing).await.unwrap(),
                CommitOutcome::Committed { version: 2 }
            );
            let err = store.flush().await.unwrap_err();
            assert!(
                matches!(err, StoreError::BatchLost { lost: 1, .. }),
                "{err:?}"
            );
            // Nothing was rolled back, so nothing may be trusted any more.
            let err = store.load("a").await.unwrap_err();
            assert!(matches!(err, StoreError::Unusable), "{err:?}");
            let err = store.commit(commit("b", 0)).await.unwrap_err();
            assert!(matches!(err, StoreError::Unusable), "{err:?}");
        });
    }

    #[test]
    fn no_transaction_stays_open_without_a_write() {
        let store = SqliteStore::in_memory().unwrap().with_batch(10);
        block_on(async {
            let outcome = store.commit(commit("a", 0)).await.unwrap();
            assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
            assert!(!store.with(|i| Ok(i.conn.is_autocommit())).unwrap());
            store.flush().await.unwrap();
            assert!(store.with(|i| Ok(i.conn.is_autocommit())).unwrap());
            // A conflict writes nothing, so it leaves no transaction open.
            assert_eq!(
                store.commit(commit("a", 0)).await.unwrap(),
                CommitOutcome::Conflict
            );
            assert!(store.with(|i| Ok(i.conn.is_autocommit())).unwrap());
        });
    }
}
