//! Where customer state, timers, the send log and dead letters are kept.
//!
//! [`Store`] is the one interface (a port); its implementations live with their backends:
//! `nudge_local::SqliteStore` keeps everything in an embedded SQLite database (the command
//! line), and a DynamoDB implementation will keep it in a table (the Lambda functions).
//! `nudge_testkit::contract` is the test suite every implementation must pass. Each backend
//! maps its own failures onto [`StoreError`], whose kinds say whether a retry can help.
//!
//! The store does not know what a customer's state means: the engine owns that, and the runner
//! hands the store an opaque JSON blob with a version and a few indexed fields (the timer, the
//! processed event id, the emails decided). The unit of consistency is one customer: a
//! [`Commit`] is applied whole or not at all, and only if the customer is still at the version
//! the caller read. Every write is shaped so that DynamoDB can make it conditional, in one
//! `TransactWriteItems` per commit:
//!
//! - the customer item carries its `version`: the commit updates it on `version = :expected`,
//!   or puts it on `attribute_not_exists` when 0 is expected;
//! - the processed event id is an item put on `attribute_not_exists`;
//! - each send-log entry is keyed by its idempotency key and written with `if_not_exists` on
//!   every attribute rather than a condition, so that a key already logged changes nothing
//!   without cancelling the transaction (keys repeated within one commit are dropped before,
//!   first wins: a transaction cannot touch an item twice);
//! - which condition failed (the transaction's cancellation reasons) gives the outcome: the
//!   event's is [`CommitOutcome::AlreadyProcessed`], which wins over the customer's,
//!   [`CommitOutcome::Conflict`]. A lost race is an outcome, not an error: the caller reloads
//!   and decides again;
//! - the send log lives in the customer's partition, so [`Store::mark_send`] names the customer
//!   as well as the key: it updates on `attribute_exists` and status not `sent`; when that
//!   fails, a read tells an unknown key (an error) from one already sent (nothing to do);
//! - `due` is a query of one shard of a sparse index on the timer: customers are spread over
//!   [`DUE_SHARDS`] shards by [`due_shard`] (a stable hash of the customer id), and the index
//!   is keyed by shard, then time and customer; a page ends with an opaque cursor (DynamoDB's
//!   `LastEvaluatedKey`), so that firing due customers reads only the due ones, never a scan,
//!   and the shards can be read in parallel;
//! - dead letters get opaque string ids made by the store (no counter to contend on: DynamoDB
//!   can use the wall clock's milliseconds, a writer's random nonce and its own sequence).
//!
//! DynamoDB's limits bound what a commit may hold: an item is at most 400 KB (the state) and a
//! transaction at most 100 items (the sends).
//!
//! Times are kept with millisecond precision (SQLite stores integer unix milliseconds); a
//! sub-millisecond part is dropped.

use std::future::Future;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The number of shards of the due-timer index (see [`due_shard`]). Fixed: a customer's shard
/// is stored with its timer, so changing it means re-indexing every customer. 16 spreads a
/// DynamoDB index's writes over 16 partition keys (each takes 1,000 writes a second) and lets
/// up to 16 workers fire timers in parallel, while a sweep of every shard costs 16 queries.
pub const DUE_SHARDS: u16 = 16;

/// The due-timer shard of a customer, `0..DUE_SHARDS`: the first 8 bytes of SHA-256 over the
/// customer id, read big-endian, modulo [`DUE_SHARDS`]. SHA-256 is fixed by standard (as for
/// `ab_split`), so no compiler, platform or release moves a customer to another shard; std's
/// `DefaultHasher` promises no such thing.
pub fn due_shard(customer_id: &str) -> u16 {
    let digest = Sha256::digest(customer_id.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % u64::from(DUE_SHARDS)) as u16
}

/// One page of a shard's due timers ([`Store::due`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuePage {
    /// `(next_wake, customer_id)`, ordered by time and then customer id (byte order).
    pub due: Vec<(DateTime<Utc>, String)>,
    /// Where the next page starts, to pass back to [`Store::due`]; `None` when this page is
    /// the last. Opaque: only the store that made it reads it. A full page always has one,
    /// even when the page after it turns out empty.
    pub cursor: Option<String>,
}

/// A customer as stored: the engine's state and the version it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    /// Starts at 1 with the first commit and grows by one with every commit.
    pub version: u64,
    /// The engine's state as JSON bytes, exactly as the runner wrote it.
    pub state: Vec<u8>,
}

/// An email the engine decided to send, as kept in the send log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecord {
    /// Unique within the customer's send log: a second record with the same key is ignored.
    /// (The runner's keys, `<run id>.<step>`, have run ids that hash the customer, so they are
    /// unique across the store too; a store may enforce either.)
    pub idempotency_key: String,
    /// The customer the email is for; must be the customer of the [`Commit`] that logs it.
    pub customer_id: String,
    /// The workflow id.
    pub workflow: String,
    /// The step id within the workflow.
    pub step: String,
    /// `"marketing"` or `"transactional"`.
    pub category: String,
    /// When the engine decided to send it (millisecond precision).
    pub at: DateTime<Utc>,
}

/// One atomic write of one customer: the new state, its timer, the event it consumed and the
/// emails it decided.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// The customer written.
    pub customer_id: &'a str,
    /// The version the caller loaded; 0 when the customer does not exist yet.
    pub expected_version: u64,
    /// The new state (JSON bytes).
    pub state: &'a [u8],
    /// The customer's single timer: when the engine must be woken next; `None` clears it.
    pub next_wake: Option<DateTime<Utc>>,
    /// When set, marks this event id processed in the same atomic write. Event ids are global
    /// (not per customer). If the id was already processed the commit writes nothing and
    /// returns [`CommitOutcome::AlreadyProcessed`].
    pub event_id: Option<&'a str>,
    /// Appended to the send log with status [`SendStatus::Pending`]. A key already in the log
    /// (from an earlier commit or earlier in this slice) is ignored: never a second entry, and
    /// the existing entry (its status included) is left as it is.
    pub sends: &'a [SendRecord],
}

/// What a [`Store::commit`] did. These are domain outcomes, not errors.
#[must_use = "a commit may not have been applied: Conflict means reload and retry"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Everything was written; the customer is now at `version`.
    Committed {
        /// The customer's new version (`expected_version + 1`).
        version: u64,
    },
    /// The event id was already processed: nothing was written. Takes precedence over
    /// [`CommitOutcome::Conflict`] when both apply, so a duplicate is never retried.
    AlreadyProcessed,
    /// The customer is not at `expected_version` (a concurrent writer got there first, or the
    /// customer exists although 0 was expected): nothing was written; reload and retry.
    Conflict,
}

/// An input that could not be processed, kept rather than dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Assigned by the store: an opaque, non-empty string, never reused; the letters one writer
    /// records one after the other get increasing ids (byte order). Ignored when recording.
    pub id: String,
    /// The event id, when the input had a readable one.
    pub event_id: Option<String>,
    /// Where the input came from, e.g. `events.jsonl:12` or `eventbridge`.
    pub source: String,
    /// Why it was rejected.
    pub reason: String,
    /// The input as received, truncated to [`DeadLetter::MAX_BODY_BYTES`] by the store.
    pub body: String,
    /// When it was received (millisecond precision).
    pub received_at: DateTime<Utc>,
}

impl DeadLetter {
    /// The most of a body a store keeps: 256 KiB, EventBridge's event size limit, which also
    /// fits a DynamoDB item (400 KB).
    pub const MAX_BODY_BYTES: usize = 256 * 1024;

    /// The body as a store keeps it: at most [`DeadLetter::MAX_BODY_BYTES`] bytes, cut at a
    /// character boundary.
    pub fn stored_body(&self) -> &str {
        truncate_at_char_boundary(&self.body, Self::MAX_BODY_BYTES)
    }
}

/// Where an email of the send log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Decided and logged, not yet handed to the mailer (or the outcome is unknown).
    Pending,
    /// Accepted by the mailer. Final: a later mark is ignored, so the log never invites a
    /// second send of mail that already left.
    Sent,
    /// The mailer refused it; may later become `Sent` (a retry) or go back to `Pending`.
    Failed,
}

impl SendStatus {
    /// The name stored for the status: `pending`, `sent` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Pending => "pending",
            SendStatus::Sent => "sent",
            SendStatus::Failed => "failed",
        }
    }

    /// The status named `name` (see [`SendStatus::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(SendStatus::Pending),
            "sent" => Some(SendStatus::Sent),
            "failed" => Some(SendStatus::Failed),
            _ => None,
        }
    }
}

/// The error a backend's own failure is carried in (an SQLite or SDK error), for
/// [`std::error::Error::source`]. Nothing decides on it: [`StoreError`]'s variant says what
/// kind of failure it was.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store failure, in terms every backend maps its own errors onto, so that the runner and
/// the functions decide without knowing the backend: [`StoreError::is_retryable`] says whether
/// the same call may succeed later. Lost races and duplicates are not errors (see
/// [`CommitOutcome`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not do it now: unreachable, timed out, busy or locked past its wait,
    /// out of disk or memory. The same call may succeed later.
    #[error("the store is unavailable: {message}")]
    Unavailable {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BackendError>,
    },
    /// The backend refused the call for exceeding its capacity or rate; the same call may
    /// succeed after backing off.
    #[error("the store is throttling requests: {message}")]
    Throttled {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BackendError>,
    },
    /// A write larger than the backend accepts (an item, a row or a transaction). Retrying
    /// cannot help.
    #[error("too large for the store: {message}")]
    TooLarge {
        /// What was too large, and the limit.
        message: String,
        /// The backend's error, when it said so itself.
        #[source]
        source: Option<BackendError>,
    },
    /// A call the store cannot answer as asked: a due shard out of range, a cursor it did not
    /// hand out. Retrying cannot help.
    #[error("invalid store request: {0}")]
    InvalidRequest(String),
    /// Stored data this code cannot read (a bad status, time or version, a damaged file).
    /// Retrying cannot help.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// Writes that the store had reported as done were lost (a batch rolled back before it
    /// was made durable). The store goes on from what is durable; the inputs behind the lost
    /// writes must be applied again. Retrying the failed call cannot bring them back.
    #[error("the store rolled back a batch: {lost} writes reported as done were lost")]
    WritesLost {
        /// How many writes had been reported as done.
        lost: usize,
        /// The backend's error, when the loss was seen as one.
        #[source]
        source: Option<BackendError>,
    },
    /// The store can no longer be used in this process (a thread panicked while it held the
    /// store; a store without a journal failed to write). Open it again, or start over.
    #[error("the store is unusable: {0}")]
    Unusable(String),
    /// Any other failure of the backend that retrying will not mend: a refused write (a
    /// read-only file, missing permissions), a misconfiguration, a bug.
    #[error("the store failed: {message}")]
    Failed {
        /// What the backend said.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BackendError>,
    },
    /// [`Store::mark_send`] named an idempotency key that is not in the customer's send log.
    #[error("no email with idempotency key `{0}` in the customer's send log")]
    UnknownSend(String),
    /// A commit that can never be applied: it logs a send for another customer.
    #[error("invalid commit for customer `{customer_id}`: {reason}")]
    InvalidCommit {
        /// The customer of the commit.
        customer_id: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl StoreError {
    /// Whether the same call may succeed if made again later, after a back-off:
    /// [`StoreError::Unavailable`] and [`StoreError::Throttled`]. Everything else fails again
    /// the same way, or (for [`StoreError::WritesLost`]) needs its inputs applied again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Throttled { .. }
        )
    }
}

/// Persistence for the runner: customers (state, version, timer), processed event ids, the
/// send log, dead letters and a little metadata.
///
/// Every method takes `&self` and returns a `Send` future, so a store can be shared by the
/// tasks of a multi-threaded runtime. An implementation must pass `nudge_testkit::contract::run_all`.
pub trait Store: Send + Sync {
    /// The customer `customer_id`, or `None` if nothing was committed for it yet.
    fn load(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Option<CustomerRecord>, StoreError>> + Send;

    /// Applies `commit` atomically if the customer is at `commit.expected_version` and
    /// `commit.event_id` (if any) was not processed yet; otherwise writes nothing and says why.
    fn commit(
        &self,
        commit: Commit<'_>,
    ) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;

    /// Whether `event_id` was marked processed by a commit.
    fn is_processed(&self, event_id: &str)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of the timers of shard `shard` (`0..DUE_SHARDS`; the customers `c` with
    /// `due_shard(c) == shard`) due at or before `until`: at most `limit` of them (0 is read
    /// as 1), ordered by time and then customer id (byte order), starting after `cursor` (a
    /// previous page's, for the same shard and `until`; `None` for the first page). Reading
    /// every page gives every customer of the shard due by `until` that was not written
    /// meanwhile, once. A shard out of range or a cursor this store did not make is
    /// [`StoreError::InvalidRequest`].
    fn due(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<DuePage, StoreError>> + Send;

    /// Records what became of an email in the send log of `customer_id`. `Sent` is final: once
    /// sent, later marks are ignored (the first `message_id` is kept). A `message_id` of `None`
    /// keeps the one stored. A key not in that customer's log (an unknown key, or another
    /// customer's) is [`StoreError::UnknownSend`] and changes nothing.
    fn mark_send(
        &self,
        customer_id: &str,
        idempotency_key: &str,
        status: SendStatus,
        message_id: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The send log of one customer, ordered by `at` and then idempotency key (for audits and
    /// tests).
    fn sends(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Vec<(SendRecord, SendStatus)>, StoreError>> + Send;

    /// Keeps `letter` (its `id` is ignored, its body truncated to
    /// [`DeadLetter::MAX_BODY_BYTES`]) and returns the id it was given.
    fn record_dead_letter(
        &self,
        letter: &DeadLetter,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The first `limit` dead letters by id (byte order): oldest first, for one writer.
    fn dead_letters(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// The metadata value under `key` (`simulate` keeps its virtual clock here).
    fn get_meta(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Sets the metadata value under `key`, replacing any earlier one.
    fn set_meta(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes everything written so far durable (SQLite: commits the open batch). Safe to call
    /// at any time and repeatedly.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Every timer due at or before `until`, from every shard, a page of `page` at a time, ordered
/// by time and then customer id: for a caller that wants them all at once (`simulate` loading a
/// `--db` store's timers, tests); a deployment reads shard by shard instead.
pub async fn all_due<S: Store>(
    store: &S,
    until: DateTime<Utc>,
    page: usize,
) -> Result<Vec<(DateTime<Utc>, String)>, StoreError> {
    let mut due = Vec::new();
    for shard in 0..DUE_SHARDS {
        let mut cursor = None;
        loop {
            let next = store.due(shard, until, page, cursor.as_deref()).await?;
            due.extend(next.due);
            match next.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    due.sort_unstable();
    Ok(due)
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `at` as unix milliseconds, the precision every store keeps.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The time `millis` unix milliseconds name.
pub fn from_millis(millis: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::Corrupt(format!("time {millis} ms is out of range")))
}

/// Checks what a store must refuse, before anything is written.
pub fn validate_commit(commit: &Commit<'_>) -> Result<(), StoreError> {
    match commit
        .sends
        .iter()
        .find(|s| s.customer_id != commit.customer_id)
    {
        Some(send) => Err(StoreError::InvalidCommit {
            customer_id: commit.customer_id.to_owned(),
            reason: format!(
                "send `{}` is for another customer (`{}`)",
                send.idempotency_key, send.customer_id
            ),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_at_char_boundary("abc", 3), "abc");
        assert_eq!(truncate_at_char_boundary("abc", 2), "ab");
        // "ş" is two bytes: cutting inside it drops it whole.
        assert_eq!(truncate_at_char_boundary("aş", 2), "a");
        assert_eq!(truncate_at_char_boundary("", 0), "");
    }

    #[test]
    fn only_an_unavailable_or_throttled_store_is_worth_a_retry() {
        let message = || "m".to_owned();
        let retryable = [
            StoreError::Unavailable {
                message: message(),
                source: None,
            },
            StoreError::Throttled {
                message: message(),
                source: None,
            },
        ];
        let final_ = [
            StoreError::TooLarge {
                message: message(),
                source: None,
            },
            StoreError::Corrupt(message()),
            StoreError::WritesLost {
                lost: 1,
                source: None,
            },
            StoreError::Unusable(message()),
            StoreError::Failed {
                message: message(),
                source: None,
            },
            StoreError::UnknownSend(message()),
            StoreError::InvalidRequest(message()),
            StoreError::InvalidCommit {
                customer_id: message(),
                reason: message(),
            },
        ];
        assert!(retryable.iter().all(StoreError::is_retryable));
        assert!(!final_.iter().any(StoreError::is_retryable));
    }

    #[test]
    fn due_shards_are_stable_and_spread() {
        // Pinned: a changed hash would move stored customers to other shards.
        let pinned: Vec<u16> = ["c1", "c2", "customer-42", ""]
            .iter()
            .map(|id| due_shard(id))
            .collect();
        assert_eq!(pinned, [11, 13, 5, 4]);
        let mut counts = [0usize; DUE_SHARDS as usize];
        for i in 0..1600 {
            counts[usize::from(due_shard(&format!("c{i}")))] += 1;
        }
        assert!(
            counts.iter().all(|&n| (60..=140).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn status_names_round_trip() {
        for s in [SendStatus::Pending, SendStatus::Sent, SendStatus::Failed] {
            assert_eq!(SendStatus::from_name(s.as_str()), Some(s));
        }
        assert_eq!(SendStatus::from_name("Sent"), None);
    }
}
