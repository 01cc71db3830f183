//! Where customer state, timers, the send log and dead letters are kept.
//!
//! [`Store`] is the one interface (a port); its implementations live with their backends:
//! `nudge_local::SqliteStore` keeps everything in an embedded SQLite database (the command
//! line), and `nudge_aws::DynamoDbStore` keeps it in one DynamoDB table (the Lambda functions).
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
//! - each send-log entry is keyed by its idempotency key and put on `attribute_not_exists`; a
//!   key already logged cancels the transaction, which names the entry, and the commit is sent
//!   again without it (keys repeated within one commit are dropped before, first wins: a
//!   transaction cannot touch an item twice). An update with `if_not_exists` on every
//!   attribute would not cancel, but it would put a settled send back on the sweep index;
//! - which condition failed (the transaction's cancellation reasons) gives the outcome: the
//!   event's is [`CommitOutcome::AlreadyProcessed`], which wins over the customer's,
//!   [`CommitOutcome::Conflict`]. A lost race is an outcome, not an error: the caller reloads
//!   and decides again;
//! - the send log is the outbox of the send guarantee: it lives in the customer's partition,
//!   so [`Store::claim_send`] and [`Store::settle_send`] name the customer as well as the key,
//!   and each is one conditional update of one entry (on DynamoDB, the old item returned on a
//!   failed condition tells an unknown key from one another sender holds); the entries a sweep
//!   must look at (pending, or claimed) are on a sparse index sharded like the timers
//!   ([`Store::pending_sends`]);
//! - `due` is a query of one shard of a sparse index on the timer: customers are spread over
//!   [`DUE_SHARDS`] shards by [`due_shard`] (a stable hash of the customer id), and the index
//!   is keyed by shard, then time and customer; a page ends with an opaque cursor (on DynamoDB
//!   made from the last item's keys), so that firing due customers reads only the due ones, never a scan,
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

use crate::journal::JournalEntry;

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

/// One page of every customer's state ([`Store::customers`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerPage {
    /// `(customer_id, record)`, ordered by customer id (byte order) within the page.
    pub customers: Vec<(String, CustomerRecord)>,
    /// Where the next page starts, to pass back to [`Store::customers`]; `None` when this page
    /// is the last. Opaque: only the store that made it reads it. A page may hold fewer
    /// customers than asked for (even none) and still have a cursor.
    pub cursor: Option<String>,
}

/// What a send-log entry delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendKind {
    /// An email: the payload is its MIME message, byte for byte what the mailer sends.
    Email,
    /// A webhook call: the payload is a [`WebhookRequest`](crate::webhook::WebhookRequest) as
    /// JSON.
    Webhook,
}

impl SendKind {
    /// The name stored for the kind: `email` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            SendKind::Email => "email",
            SendKind::Webhook => "webhook",
        }
    }

    /// The kind named `name` (see [`SendKind::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "email" => Some(SendKind::Email),
            "webhook" => Some(SendKind::Webhook),
            _ => None,
        }
    }
}

/// Something the engine decided to send (an email or a webhook call), as a commit logs it: the
/// send log is the outbox of the send guarantee (docs/ARCHITECTURE.md), so the record holds
/// everything delivery needs, and delivery never renders again.
#[derive(Clone, PartialEq, Eq)]
pub struct SendRecord {
    /// Unique within the customer's send log: a second record with the same key is ignored.
    /// (The runner's keys, `<run id>.<step>`, have run ids that hash the customer, so they are
    /// unique across the store too; a store may enforce either.)
    pub idempotency_key: String,
    /// The customer it is for; must be the customer of the [`Commit`] that logs it.
    pub customer_id: String,
    /// The workflow id.
    pub workflow: String,
    /// The step id within the workflow.
    pub step: String,
    /// An email or a webhook call.
    pub kind: SendKind,
    /// `"marketing"` or `"transactional"` for an email, `"webhook"` for a webhook call: what
    /// decides whether a send whose outcome is unknown is made again ([`SendStatus::Unknown`]).
    pub category: String,
    /// The step's tags (`[A-Za-z0-9_-]{1,64}` each): SES message tags.
    pub tags: Vec<String>,
    /// When the engine decided to send it (millisecond precision).
    pub at: DateTime<Utc>,
    /// What is delivered: the MIME message of an email exactly as built, or a webhook call's
    /// request as JSON (see [`SendKind`]).
    pub payload: Vec<u8>,
}

impl SendRecord {
    /// Whether a send whose outcome is unknown (its sender stopped after claiming it) is made
    /// again: transactional email and webhook calls yes (at least once: the customer needs
    /// the shipment update, and a webhook's receiver de-duplicates on `Idempotency-Key`),
    /// marketing email no (at most once: a second newsletter is worse than none).
    pub fn resend_when_unknown(&self) -> bool {
        self.category != "marketing"
    }
}

/// Without the payload, which holds the message and its address.
impl std::fmt::Debug for SendRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendRecord")
            .field("idempotency_key", &self.idempotency_key)
            .field("workflow", &self.workflow)
            .field("step", &self.step)
            .field("kind", &self.kind)
            .field("category", &self.category)
            .field("tags", &self.tags)
            .field("at", &self.at)
            .field("payload_bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

/// A send as the store keeps it: the record, where its delivery stands, and what delivery
/// learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEntry {
    /// What was logged.
    pub record: SendRecord,
    /// Where delivery stands.
    pub status: SendStatus,
    /// How often it was claimed ([`Store::claim_send`]): 0 when logged.
    pub attempts: u32,
    /// [`SendStatus::Pending`]: deliverable from then on; [`SendStatus::Sending`]: when the
    /// claim's lease ends. `None` once final.
    pub retry_at: Option<DateTime<Utc>>,
    /// [`SendStatus::Sent`]: the id the mailer gave (SES's message id).
    pub message_id: Option<String>,
    /// Why it failed, is unknown, or was put back for a retry (no customer data).
    pub reason: Option<String>,
}

/// What became of a claimed send ([`Store::settle_send`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle<'a> {
    /// The mailer (or the webhook's receiver) took it. Applies from every status but
    /// [`SendStatus::Sent`] (the message left, whatever the log said): the first id is kept.
    Sent {
        /// The mailer's id for it.
        message_id: Option<&'a str>,
    },
    /// A failure that may pass: back to [`SendStatus::Pending`], deliverable again at `at`.
    /// Applies only to a send still held by the claim whose lease ends at `lease` (in
    /// [`SendStatus::Sending`] with that `retry_at`): a sender whose claim was taken over
    /// cannot put the send back while its new holder is sending it.
    Retry {
        /// When to try again.
        at: DateTime<Utc>,
        /// Why it failed this time.
        reason: &'a str,
        /// The end of the settling claim's lease, as [`Store::claim_send`] set it.
        lease: DateTime<Utc>,
    },
    /// Refused for good, or retries ran out: [`SendStatus::Failed`]. Applies only to a send
    /// still held by the claim whose lease ends at `lease`.
    Failed {
        /// Why.
        reason: &'a str,
        /// The end of the settling claim's lease.
        lease: DateTime<Utc>,
    },
    /// Its outcome is unknown and it is not made again: [`SendStatus::Unknown`]. Applies only
    /// to a send still held by the claim whose lease ends at `lease`.
    Unknown {
        /// Why.
        reason: &'a str,
        /// The end of the settling claim's lease.
        lease: DateTime<Utc>,
    },
}

impl Settle<'_> {
    /// The end of the lease of the claim this settle is tied to (`None` for [`Settle::Sent`],
    /// which applies whoever holds the send).
    pub fn lease(&self) -> Option<DateTime<Utc>> {
        match *self {
            Settle::Sent { .. } => None,
            Settle::Retry { lease, .. }
            | Settle::Failed { lease, .. }
            | Settle::Unknown { lease, .. } => Some(lease),
        }
    }

    /// The status this settles a send in.
    pub fn status(&self) -> SendStatus {
        match self {
            Settle::Sent { .. } => SendStatus::Sent,
            Settle::Retry { .. } => SendStatus::Pending,
            Settle::Failed { .. } => SendStatus::Failed,
            Settle::Unknown { .. } => SendStatus::Unknown,
        }
    }
}

/// One page of a shard's deliverable sends ([`Store::pending_sends`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendPage {
    /// `(retry_at, customer_id, idempotency_key)`, ordered by all three (byte order).
    pub due: Vec<(DateTime<Utc>, String, String)>,
    /// Where the next page starts, as for [`DuePage::cursor`].
    pub cursor: Option<String>,
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
    /// Appended to the send log with status [`SendStatus::Pending`], no attempts, and
    /// `retry_at` at the record's `at` (deliverable at once). A key already in the log (from an
    /// earlier commit or earlier in this slice) is ignored: never a second entry, and the
    /// existing entry (its status included) is left as it is.
    pub sends: &'a [SendRecord],
    /// The customer's journal entries of this input, in order (see [`crate::journal`]):
    /// written with the commit or not at all, and kept for the customer's last
    /// [`JOURNAL_COMMITS`](crate::journal::JOURNAL_COMMITS) commits (the entries of older
    /// ones are pruned by the same write). A commit with no entries keeps no journal record
    /// but still counts as one of the commits.
    pub journal: &'a [JournalEntry],
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
    /// The customer the input names, when it names one (read leniently from an input that
    /// did not parse: [`crate::event::customer_named`]); [`Store::erase_customer`] removes the
    /// dead letters naming the customer it erases.
    pub customer_id: Option<String>,
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

/// Where a send of the send log stands. `Pending` and `Sending` are in the sweep's index
/// ([`Store::pending_sends`]); the other three are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    /// Logged, not delivered yet: deliverable from its `retry_at` on.
    Pending,
    /// Claimed by a sender until its `retry_at` (the lease): being delivered, or its sender
    /// stopped (then the claim expires and a sweep settles it).
    Sending,
    /// Accepted by the mailer (or the webhook's receiver). Final.
    Sent,
    /// Refused for good, or retries ran out. Final.
    Failed,
    /// Its sender stopped while it was claimed and it is not made again
    /// ([`SendRecord::resend_when_unknown`]): it may or may not have left. Final.
    Unknown,
}

impl SendStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SendStatus; 5] = [
        SendStatus::Pending,
        SendStatus::Sending,
        SendStatus::Sent,
        SendStatus::Failed,
        SendStatus::Unknown,
    ];

    /// The name stored for the status: `pending`, `sending`, `sent`, `failed` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Pending => "pending",
            SendStatus::Sending => "sending",
            SendStatus::Sent => "sent",
            SendStatus::Failed => "failed",
            SendStatus::Unknown => "unknown",
        }
    }

    /// The status named `name` (see [`SendStatus::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        SendStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Sent, failed or unknown: nothing changes it any more.
    pub fn is_final(self) -> bool {
        !matches!(self, SendStatus::Pending | SendStatus::Sending)
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
    /// A send-log call named an idempotency key that is not in the customer's send log.
    #[error("nothing with idempotency key `{0}` in the customer's send log")]
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

/// A mail feedback kind counted per workflow step ([`Store::record_feedback`]): what SES
/// reports about a sent email.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// The receiving server accepted it.
    Delivered,
    /// It was opened (each open event counts).
    Opened,
    /// A link in it was clicked (each click event counts).
    Clicked,
    /// It bounced for good.
    Bounced,
    /// The recipient marked it as spam.
    Complained,
    /// The recipient unsubscribed from it.
    Unsubscribed,
}

impl FeedbackKind {
    /// Every kind, in this order.
    pub const ALL: [FeedbackKind; 6] = [
        FeedbackKind::Delivered,
        FeedbackKind::Opened,
        FeedbackKind::Clicked,
        FeedbackKind::Bounced,
        FeedbackKind::Complained,
        FeedbackKind::Unsubscribed,
    ];

    /// Its name: `delivered`, `opened`, `clicked`, `bounced`, `complained`, `unsubscribed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Delivered => "delivered",
            FeedbackKind::Opened => "opened",
            FeedbackKind::Clicked => "clicked",
            FeedbackKind::Bounced => "bounced",
            FeedbackKind::Complained => "complained",
            FeedbackKind::Unsubscribed => "unsubscribed",
        }
    }

    /// The kind named `name` (see [`FeedbackKind::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        FeedbackKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One feedback event to count ([`Store::record_feedback`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feedback<'a> {
    /// The feedback event's own id (SES's event, as EventBridge names it): counted once.
    pub event_id: &'a str,
    /// The workflow of the email it is about.
    pub workflow: &'a str,
    /// The `send_email` step of the email it is about.
    pub step: &'a str,
    /// What happened.
    pub kind: FeedbackKind,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A count of one feedback kind for one workflow step ([`Store::feedback_counts`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedbackCount {
    /// The workflow.
    pub workflow: String,
    /// The step.
    pub step: String,
    /// The kind.
    pub kind: FeedbackKind,
    /// How many distinct feedback events of this kind were counted.
    pub count: u64,
}

/// An input kept aside until an order is seen ([`Store::park`]): Shopify's fulfillment of an
/// order the store has not linked to a customer yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The order it waits for.
    pub order_id: String,
    /// Its event id (unique per order: parking the same id twice keeps one).
    pub event_id: String,
    /// The input as received.
    pub body: String,
    /// From this time on it is expired: never returned again (millisecond precision).
    pub expires_at: DateTime<Utc>,
}

/// What [`Store::erase_customer`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// Whether a state (with its timer) was removed.
    pub state: bool,
    /// Send-log entries removed.
    pub sends: usize,
    /// Order links to the customer removed.
    pub orders: usize,
    /// Journal records removed: one per commit that kept entries (each holds that commit's
    /// entries; [`Store::journal`]).
    pub journal_commits: usize,
    /// Dead letters naming the customer ([`DeadLetter::customer_id`]) removed.
    pub dead_letters: usize,
}

/// Persistence for the runner: customers (state, version, timer), processed event ids, the
/// send log, dead letters and a little metadata; beside them, the lookups of the functions
/// (orders, suppressions, inputs parked until their order is seen, feedback counts per
/// workflow step) and the erasure of a customer.
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

    /// The send log of one customer, ordered by `at` and then idempotency key.
    fn sends(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Vec<SendEntry>, StoreError>> + Send;

    /// Sets a customer aside: takes their timer out of the due index if it is still at `due`
    /// (a commit since then moved it, and that commit wins), leaving the state, its version
    /// and the send log as they are. For a wake that fails with the customer's own error (an
    /// unreadable or oversized state: the same wake fails whenever it is retried), so that it
    /// is not retried at every tick ahead of everyone else; the caller keeps the failure as a
    /// dead letter (which makes it visible and replayable). The customer's next commit (an
    /// event of theirs) sets the timer again. Returns whether the timer was taken out.
    fn set_aside(
        &self,
        customer_id: &str,
        due: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Claims a send for delivery: atomically, if the send `idempotency_key` of `customer_id`
    /// is [`SendStatus::Pending`] or [`SendStatus::Sending`] with a `retry_at` at or before
    /// `now` (deliverable, or a claim whose lease ended), sets it `Sending` until
    /// `lease_until`, counts the attempt, and returns the entry as it was before the claim
    /// (so the caller sees whether it takes over an expired claim). Otherwise returns `None`
    /// and changes nothing: another sender holds it, it waits for a retry, or it is final. Two
    /// claims of one send never both succeed. A key not in that customer's log is
    /// [`StoreError::UnknownSend`].
    fn claim_send(
        &self,
        customer_id: &str,
        idempotency_key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SendEntry>, StoreError>> + Send;

    /// Records what became of a send (see [`Settle`] for when each applies). Returns whether
    /// it applied. `sent` is never changed (a [`Settle::Sent`] of a send already sent keeps the
    /// first message id); `failed` and `unknown` change only to `sent` (the mail left after
    /// all, as its own sender reports). A key not in that customer's log is
    /// [`StoreError::UnknownSend`] and changes nothing.
    fn settle_send(
        &self,
        customer_id: &str,
        idempotency_key: &str,
        settle: Settle<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One page of the sends of shard `shard` (the customers `c` with `due_shard(c) ==
    /// shard`) that are [`SendStatus::Pending`] or [`SendStatus::Sending`] with a `retry_at`
    /// at or before `until`: at most `limit` (0 is read as 1), ordered by `retry_at`, customer
    /// and key, paged as [`Store::due`] is (same cursor rules, same errors). What a sweep
    /// settles: sends no one delivered (the process stopped after the commit), retries, and
    /// expired claims.
    fn pending_sends(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<SendPage, StoreError>> + Send;

    /// Records that order `order_id` belongs to `customer_id` (Shopify's fulfillment payloads
    /// name the order, not the customer). A later link of the same order replaces it.
    fn link_order(
        &self,
        order_id: &str,
        customer_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The customer order `order_id` was linked to, if any.
    fn order_customer(
        &self,
        order_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Suppresses the address whose [`address_key`] is `address_key` (a hard bounce, a
    /// complaint: they name an address, not a customer). The first suppression is kept.
    fn suppress(
        &self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Why and since when the address of `address_key` is suppressed, if it is.
    fn suppression(
        &self,
        address_key: &str,
    ) -> impl Future<Output = Result<Option<(String, DateTime<Utc>)>, StoreError>> + Send;

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

    /// One page of the dead letters: at most `limit` (0 is read as 1) whose ids come after
    /// `after` (byte order; `None` for the first page), ordered by id. Pass the last id of a
    /// page to read the next; a page shorter than `limit` is the last. `after` may name a
    /// letter removed since. For `nudge dead-letters list` and `replay`.
    fn dead_letters_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// The dead letter `id`, or `None` when the store keeps none of that id (removed, or an
    /// id it never handed out).
    fn dead_letter(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<DeadLetter>, StoreError>> + Send;

    /// Removes the dead letter `id` (replayed, or no longer wanted); whether it was there.
    fn remove_dead_letter(&self, id: &str)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

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

    /// Counts one feedback event for its workflow step, once: adds one to the count of
    /// (`feedback.workflow`, `feedback.step`, `feedback.kind`) and returns `true`; or returns
    /// `false` and changes nothing when `feedback.event_id` was counted before (EventBridge
    /// delivers at least once). The event id and the count change together or not at all, so
    /// a feedback event is counted exactly once however often it is delivered, also by
    /// deliveries racing each other. The id is remembered at least 35 days (as long as a
    /// processed event id, DynamoDB's `PROCESSED_EVENT_TTL`); feedback ids are their own
    /// namespace, apart from the processed event ids of [`Commit::event_id`].
    fn record_feedback(
        &self,
        feedback: &Feedback<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every feedback count, ordered by workflow, step (byte order) and kind (the order of
    /// [`FeedbackKind::ALL`]); kinds never counted are absent.
    fn feedback_counts(
        &self,
    ) -> impl Future<Output = Result<Vec<FeedbackCount>, StoreError>> + Send;

    /// Keeps `parked` until its order is seen (the caller reads it with [`Store::parked`] and
    /// removes it with [`Store::unpark`]) or it expires. Parking an (order, event id) already
    /// parked keeps the first, expired or not, and is not an error.
    fn park(&self, parked: &Parked) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The inputs parked for `order_id` that have not expired by `now` (`expires_at > now`),
    /// ordered by event id (byte order). An expired input is never returned, even while the
    /// store still holds it.
    fn parked(
        &self,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Parked>, StoreError>> + Send;

    /// Removes the parked input (`order_id`, `event_id`) once applied; removing one that is
    /// not there is not an error.
    fn unpark(
        &self,
        order_id: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Erases what is kept about `customer_id`: the state and its timer, the send log (with
    /// the messages, which hold the address; pending sends too, so they are never delivered),
    /// the journal ([`Store::journal`]), the links of orders to them (an order linked to
    /// another customer since is left alone) and the dead letters naming them
    /// ([`DeadLetter::customer_id`]). Processed event ids stay (a store that kept the customer
    /// beside them forgets it), so a redelivered old event is still a duplicate; suppressions
    /// (keyed by an address hash) and feedback counts (per step) are not the customer's and
    /// stay. Erasing a customer the store does not know is not an error and returns
    /// [`Erased::default`]. A commit of the customer racing the erasure may write again after
    /// it: the caller stops the customer's inputs first, or erases again.
    fn erase_customer(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Erased, StoreError>> + Send;

    /// One page of every customer's state: at most `limit` customers (0 is read as 1),
    /// starting after `cursor` (a previous page's; `None` for the first page). Reading every
    /// page gives every customer with a state once (a customer written meanwhile may show its
    /// old or its new state, and one created meanwhile may be missing). Within a page customers
    /// are ordered by id; across pages the order is the store's (SQLite: by id). A cursor
    /// this store did not make is [`StoreError::InvalidRequest`].
    ///
    /// For tools that look at every run in flight (`nudge plan`), never for the hot path: it
    /// reads every state (on DynamoDB, a `Scan` of the whole table, filtered to state items).
    fn customers(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<CustomerPage, StoreError>> + Send;

    /// Makes everything written so far durable (SQLite: commits the open batch). Safe to call
    /// at any time and repeatedly.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    // The journal (crate::journal): written by `commit`, removed by `erase_customer`.

    /// The journal of `customer_id`, oldest first: the entries of the customer's last
    /// [`JOURNAL_COMMITS`](crate::journal::JOURNAL_COMMITS) commits (on DynamoDB, those not
    /// yet expired), in commit order and, within a commit, in the order given. Empty for a
    /// customer the store does not know.
    fn journal(
        &self,
        customer_id: &str,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// One page of every customer's kept journal entries at or after `since` (all of them
    /// with `None`): the entries of at most `limit` commits (0 is read as 1), starting after
    /// `cursor` (a previous page's; `None` for the first). The order is the store's own but
    /// stable: reading every page gives each entry kept when the reading began, and not
    /// written or pruned meanwhile, exactly once. A page may hold fewer commits than `limit`
    /// (even none) and still have a cursor: read until it is `None`. A cursor this store did
    /// not make is [`StoreError::InvalidRequest`].
    fn journal_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<JournalPage, StoreError>> + Send;
}

/// One page of the journal of every customer ([`Store::journal_page`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JournalPage {
    /// `(customer_id, entry)`, a commit's entries together and in order.
    pub entries: Vec<(String, JournalEntry)>,
    /// Where the next page starts, to pass back; `None` when this page is the last. Opaque.
    pub cursor: Option<String>,
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

/// The reason [`Store::suppress`] is given for a hard bounce: `hard_bounce`.
pub const SUPPRESSED_HARD_BOUNCE: &str = "hard_bounce";

/// The reason [`Store::suppress`] is given for a complaint: `complaint`.
pub const SUPPRESSED_COMPLAINT: &str = "complaint";

/// The key an address is suppressed under: the lowercase hex SHA-256 of the address, trimmed
/// and lower-cased. The store keeps no address in clear for it, and `Ayse@Example.com ` and
/// `ayse@example.com` are one address (mailbox providers treat local parts case-insensitively
/// in practice, and a bounce's address may differ in case from the profile's).
pub fn address_key(address: &str) -> String {
    hex::encode(Sha256::digest(address.trim().to_lowercase().as_bytes()))
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

    #[test]
    fn feedback_kind_names_round_trip_and_sort_as_listed() {
        for k in FeedbackKind::ALL {
            assert_eq!(FeedbackKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(FeedbackKind::from_name("Delivered"), None);
        let mut sorted = FeedbackKind::ALL;
        sorted.sort();
        assert_eq!(sorted, FeedbackKind::ALL);
    }
}
