//! The schema of a [`SqliteStore`](super::SqliteStore), its migrations, the connection's
//! settings, and what may go wrong when a store is opened.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nudge_core::store::due_shard;
use rusqlite::{Connection, TransactionBehavior};

use super::{Durability, SqliteStore};

/// Why a [`SqliteStore`] could not be opened. Mostly the file, its permissions or its contents
/// must change first; the exception is [`OpenError::Open`] for a database another process kept
/// locked past the busy timeout while opening it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database file could not be opened or prepared.
    #[error("cannot open the store {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database was written by a newer Nudge, with a schema this code does not know.
    #[error(
        "the store {} has schema version {found}, newer than this nudge supports ({supported}); \
         use a newer nudge or another --db file",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file.
        found: i64,
        /// The newest schema version this code knows.
        supported: i64,
    },
    /// A setting of [`SqliteOptions`](super::SqliteOptions) that SQLite could not apply.
    #[error("cannot {what} in the store {}: {reason}", path.display())]
    Setting {
        /// The database file.
        path: PathBuf,
        /// What could not be done.
        what: &'static str,
        /// What SQLite said or did instead.
        reason: String,
    },
    /// The file is an SQLite database of some other application.
    #[error("{} is not a Nudge store (SQLite application id {found:#x})", path.display())]
    NotAStore {
        /// The database file.
        path: PathBuf,
        /// The application id found in the file.
        found: i64,
    },
}

/// `PRAGMA application_id` of a Nudge store ("NUDG"), so that another application's database is
/// refused rather than written into.
const APPLICATION_ID: i64 = 0x4e55_4447;

/// How long a write waits for another connection's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one migration per version: `MIGRATIONS[i]` takes a database from version `i`
/// to `i + 1`. Append only; never edit a migration that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 2: due timers by shard (`nudge_core::store::due_shard`), paged by (time, customer).
    // The shards of customers already stored are filled in by `fill_due_shards`.
    "ALTER TABLE customers ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
    DROP INDEX customers_next_wake;
    CREATE INDEX customers_due ON customers (shard, next_wake, customer_id)
        WHERE next_wake IS NOT NULL;",
    // 3: the send log becomes the outbox of the send guarantee (each send keeps what delivery
    // needs: its kind, tags and payload, the MIME message; its claim and retries), with the
    // sends a sweep must look at on a partial index sharded like the timers; the order index
    // and the suppressions by address key. SQLite cannot change a CHECK constraint, so the
    // table is rebuilt. Rows of older versions kept no message, so none can be delivered now:
    // a `pending` one becomes `unknown` (it may or may not have left: the process that logged
    // it stopped before marking it), a `failed` one stays `failed`, both with a reason saying
    // so; a `sent` one stays `sent`.
    "CREATE TABLE sends_v3 (
        idempotency_key TEXT PRIMARY KEY NOT NULL,
        customer_id     TEXT NOT NULL REFERENCES customers (customer_id),
        shard           INTEGER NOT NULL, -- the customer's due shard
        workflow        TEXT NOT NULL,
        step            TEXT NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('email', 'webhook')),
        category        TEXT NOT NULL,
        tags            TEXT NOT NULL,    -- space-separated ([A-Za-z0-9_-] each)
        at              INTEGER NOT NULL,
        payload         BLOB NOT NULL,
        status          TEXT NOT NULL
            CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
        attempts        INTEGER NOT NULL,
        retry_at        INTEGER,          -- pending: deliverable from; sending: the lease's end
        message_id      TEXT,
        reason          TEXT,
        CHECK ((status IN ('pending', 'sending')) = (retry_at IS NOT NULL))
    ) WITHOUT ROWID;
    INSERT INTO sends_v3
        SELECT s.idempotency_key, s.customer_id,
               coalesce((SELECT c.shard FROM customers c WHERE c.customer_id = s.customer_id), 0),
               s.workflow, s.step, 'email', s.category, '', s.at, x'',
               CASE s.status WHEN 'pending' THEN 'unknown' ELSE s.status END,
               0, NULL, s.message_id,
               CASE s.status
                   WHEN 'pending' THEN 'logged by a version that kept no message: never delivered here, it may or may not have left'
                   WHEN 'failed' THEN 'failed under a version that kept no message: it cannot be retried'
               END
        FROM sends s;
    DROP TABLE sends;
    ALTER TABLE sends_v3 RENAME TO sends;
    CREATE INDEX sends_customer ON sends (customer_id, at, idempotency_key);
    CREATE INDEX sends_pending ON sends (shard, retry_at, customer_id, idempotency_key)
        WHERE status IN ('pending', 'sending');

    CREATE TABLE orders (
        order_id    TEXT PRIMARY KEY NOT NULL,
        customer_id TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE suppressions (
        address_key TEXT PRIMARY KEY NOT NULL, -- nudge_core::store::address_key: no address in clear
        reason      TEXT NOT NULL,
        at          INTEGER NOT NULL
    ) WITHOUT ROWID;",
    // 4: feedback counts per workflow step, with the feedback event ids counted (once each);
    // inputs parked until their order is linked; an index of orders by customer, so that
    // erasing a customer finds their order links.
    "CREATE TABLE feedback_events (
        event_id TEXT PRIMARY KEY NOT NULL,
        at       INTEGER NOT NULL  -- when the feedback happened
    ) WITHOUT ROWID;

    CREATE TABLE feedback_counts (
        workflow TEXT NOT NULL,
        step     TEXT NOT NULL,
        kind     TEXT NOT NULL CHECK (kind IN
            ('delivered', 'opened', 'clicked', 'bounced', 'complained', 'unsubscribed')),
        count    INTEGER NOT NULL,
        PRIMARY KEY (workflow, step, kind)
    ) WITHOUT ROWID;

    CREATE TABLE parked (
        order_id   TEXT NOT NULL,
        event_id   TEXT NOT NULL,
        body       TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (order_id, event_id)
    ) WITHOUT ROWID;

    CREATE INDEX orders_customer ON orders (customer_id);",
    // 5: the journal (`super::journal`).
    super::journal::MIGRATION,
    // 6: dead letters name the customer their input names (NULL when it names none, and for
    // the letters of older versions), indexed so that erasing a customer finds theirs.
    "ALTER TABLE dead_letters ADD COLUMN customer_id TEXT;
    CREATE INDEX dead_letters_customer ON dead_letters (customer_id)
        WHERE customer_id IS NOT NULL;",
];

/// The version whose migration added `customers.shard`: a database migrated past it from an
/// older version gets its customers' shards computed (SQLite cannot compute SHA-256).
const SHARD_VERSION: usize = 2;

/// The page cache of a store, in KiB, unless [`SqliteOptions::cache_kib`](super::SqliteOptions::cache_kib) says otherwise.
///
/// 24 MiB: customers read again mostly stay in memory (the OS keeps the rest). 64 MiB was no
/// faster with 30,000 customers and cost 40 MB more; 16 MiB was 10% slower.
pub const CACHE_KIB: usize = 24 * 1024;

/// Connection settings, before anything is read.
pub(super) fn configure(conn: &Connection, file: bool, cache_kib: usize) -> rusqlite::Result<()> {
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
    // Negative: KiB.
    let kib = i64::try_from(cache_kib.max(1)).unwrap_or(i64::MAX);
    conn.pragma_update(None, "cache_size", -kib)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Brings the schema of the database at `path` to [`SqliteStore::SCHEMA_VERSION`], in one
/// transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let open_err = |source| OpenError::Open {
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
    let not_a_store = OpenError::NotAStore {
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
        return Err(OpenError::TooNew {
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
        if from + 1 == SHARD_VERSION {
            fill_due_shards(&tx).map_err(open_err)?;
        }
        tracing::debug!(to = from + 1, "store schema migrated");
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(open_err)?;
    tx.pragma_update(None, "user_version", SqliteStore::SCHEMA_VERSION)
        .map_err(open_err)?;
    tx.commit().map_err(open_err)
}

/// Sets every stored customer's due shard, in the migration's transaction.
fn fill_due_shards(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let ids: Vec<String> = tx
        .prepare("SELECT customer_id FROM customers")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare("UPDATE customers SET shard = ?2 WHERE customer_id = ?1")?;
    for id in &ids {
        update.execute(rusqlite::params![id, due_shard(id)])?;
    }
    Ok(())
}

/// Applies `durability` to a migrated database (outside any transaction).
pub(super) fn set_durability(
    conn: &Connection,
    path: &Path,
    durability: Durability,
) -> Result<(), OpenError> {
    let failed = |what, reason: String| OpenError::Setting {
        path: path.to_path_buf(),
        what,
        reason,
    };
    if durability == Durability::Normal {
        return Ok(());
    }
    conn.pragma_update(None, "synchronous", "OFF")
        .map_err(|e| failed("turn fsync off", e.to_string()))?;
    if durability == Durability::Scratch {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "OFF", |row| row.get(0))
            .map_err(|e| failed("turn its journal off", e.to_string()))?;
        if !mode.eq_ignore_ascii_case("off") {
            return Err(failed(
                "turn its journal off",
                format!("SQLite kept journal mode `{mode}`"),
            ));
        }
    }
    Ok(())
}
