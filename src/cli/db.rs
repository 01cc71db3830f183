//! `--db STORE` of the commands that read a store (`plan`, `explain`, `report`) or operate on
//! one (`erase`, `dead-letters`): a path names
//! the embedded SQLite store (one `simulate --db` wrote), `dynamodb://TABLE` the deployed table,
//! reached with the usual AWS environment (region, credentials, `AWS_ENDPOINT_URL`).
//!
//! `plan`, `explain` and `report` only read the store. The one write opening can make: a SQLite store written
//! by an older `nudge` has its schema upgraded first (as `simulate` does), since this code
//! reads only the current schema; the file is never created.
//!
//! The store trait's methods return `impl Future`, so it is not object-safe: a command is
//! written once, generic over `S: Store`, and [`with_store!`] calls it with whichever store was
//! opened.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use nudge_aws::DynamoDbStore;
use nudge_core::store::Store;
use nudge_local::simulate::CLOCK_KEY;
use nudge_local::{OpenError, SqliteStore};

/// The scheme that names a DynamoDB table.
const DYNAMODB_SCHEME: &str = "dynamodb://";

/// Where a command's store is, as `--db` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DbSpec {
    /// The embedded store in this file.
    Sqlite(PathBuf),
    /// The DynamoDB table of this name.
    DynamoDb(String),
}

impl DbSpec {
    /// Reads a `--db` value (clap's value parser).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text.strip_prefix(DYNAMODB_SCHEME) {
            Some(table) if is_table_name(table) => Ok(DbSpec::DynamoDb(table.to_owned())),
            Some(table) => Err(format!(
                "`{table}` is not a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ - .)"
            )),
            None if text.is_empty() => Err("an empty path names no store".to_owned()),
            None => Ok(DbSpec::Sqlite(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for DbSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbSpec::Sqlite(path) => write!(f, "{}", path.display()),
            DbSpec::DynamoDb(table) => write!(f, "{DYNAMODB_SCHEME}{table}"),
        }
    }
}

/// DynamoDB's rule for table names.
fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A store a command reads, opened.
pub(crate) enum OpenedDb {
    /// The embedded store (boxed: it is several times the size of the other).
    Sqlite(Box<SqliteStore>),
    /// The deployed table.
    DynamoDb(DynamoDbStore),
}

/// Why a `--db` store could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// No file at the path: a read-only command never creates a store.
    #[error("no store at {}: give a file that `nudge simulate --db` wrote", .0.display())]
    Missing(PathBuf),
    /// The SQLite store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The SQLite store is in use, or cannot be locked.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A SQLite store's lock: an exclusive lock on the file `<db>.lock` beside it, taken before
/// the store is opened and held until the command ends, by every command that writes the
/// store (`simulate --db`, `erase`, `dead-letters replay`). Two such runs on one store would
/// each apply events, fire timers or erase with batches the other does not see, so a second
/// is refused at once. The operating system releases the lock when the process ends, however
/// it ends, so a crashed run never blocks the next; the (empty) lock file stays and may be
/// deleted when no run is going. The reading commands (`plan`, `explain`, `report`,
/// `dead-letters list`) take no lock: each read sees committed data.
pub(crate) struct StoreLock {
    /// Held open: closing it releases the lock.
    _file: std::fs::File,
}

/// Why a store's lock was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// Another process holds it.
    #[error("the store {} is in use by another nudge process (it holds {}); wait for it to end, or use another --db", db.display(), lock.display())]
    InUse {
        /// The store.
        db: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock the store with {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl StoreLock {
    /// Locks the store in `db`, or says that another process uses it.
    pub(crate) fn take(db: &Path) -> Result<Self, LockError> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path);
        let file = match file {
            Ok(file) => file,
            Err(source) => return Err(LockError::Io { path, source }),
        };
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::InUse {
                db: db.to_path_buf(),
                lock: path,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }
}

/// Opens the store `spec` names, to read it. A DynamoDB table is not contacted here: the
/// first read says whether it is reachable.
pub(crate) async fn open(spec: &DbSpec) -> Result<OpenedDb, DbError> {
    match spec {
        DbSpec::Sqlite(path) => Ok(OpenedDb::Sqlite(Box::new(open_sqlite(path)?))),
        DbSpec::DynamoDb(table) => {
            let clients = nudge_aws::Clients::from_env(None).await;
            Ok(OpenedDb::DynamoDb(clients.store(table)))
        }
    }
}

/// Opens the store `spec` names, to write it: a SQLite store is locked first ([`StoreLock`],
/// held as long as the returned lock lives); a DynamoDB table has no such lock (its writes are
/// conditional, as the functions' are).
pub(crate) async fn open_to_write(spec: &DbSpec) -> Result<(OpenedDb, Option<StoreLock>), DbError> {
    let lock = match spec {
        DbSpec::Sqlite(path) if path.is_file() => Some(StoreLock::take(path)?),
        _ => None,
    };
    Ok((open(spec).await?, lock))
}

fn open_sqlite(path: &Path) -> Result<SqliteStore, DbError> {
    if !path.is_file() {
        return Err(DbError::Missing(path.to_path_buf()));
    }
    Ok(SqliteStore::open(path)?)
}

/// Runs `$body` with `$store` bound to the opened store, whichever it is:
/// `with_store!(opened, store => explain(&store, ...).await)`.
macro_rules! with_store {
    ($opened:expr, $store:ident => $body:expr) => {
        match $opened {
            $crate::cli::db::OpenedDb::Sqlite($store) => {
                let $store = *$store;
                $body
            }
            $crate::cli::db::OpenedDb::DynamoDb($store) => $body,
        }
    };
}
pub(crate) use with_store;

/// The store's "now": the virtual clock a `simulate --db` run left in it (as `nudge plan`
/// reads it), else the wall clock (a deployed table has no such clock).
pub(crate) async fn clock<S: Store>(store: &S) -> Result<DateTime<Utc>, String> {
    let Some(text) = store.get_meta(CLOCK_KEY).await.map_err(|e| e.to_string())? else {
        return Ok(Utc::now());
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("the store's clock (`{CLOCK_KEY}`) is not an RFC 3339 time: {e}"))
}

/// The runtime of a command that reads a store (the AWS SDK needs tokio).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_is_a_path_or_a_dynamodb_table() {
        assert_eq!(
            DbSpec::parse("state.db"),
            Ok(DbSpec::Sqlite("state.db".into()))
        );
        assert_eq!(
            DbSpec::parse("dynamodb://nudge-prod"),
            Ok(DbSpec::DynamoDb("nudge-prod".into()))
        );
        assert_eq!(
            DbSpec::parse("dynamodb://nudge-prod").unwrap().to_string(),
            "dynamodb://nudge-prod"
        );
        assert!(DbSpec::parse("dynamodb://a").is_err());
        assert!(DbSpec::parse("dynamodb://no/slash").is_err());
        assert!(DbSpec::parse("").is_err());
    }

    #[test]
    fn a_missing_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        let error = runtime()
            .unwrap()
            .block_on(open(&DbSpec::Sqlite(path.clone())))
            .err()
            .unwrap();
        assert!(matches!(error, DbError::Missing(_)), "{error}");
        assert!(!path.exists());
    }
}
