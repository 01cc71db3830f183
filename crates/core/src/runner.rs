//! Carries the engine's decisions out: load a customer, run the engine, commit the new state
//! conditionally, then deliver the email the commit recorded.
//!
//! The same runner serves `nudge simulate` (SQLite + outbox) and will serve the Lambda
//! functions (DynamoDB + SES). Its guarantees come from the store's conditional commit:
//! - the same event id applied twice has the effect of once (`AlreadyProcessed`);
//! - two invocations for one customer never both win: the loser reloads and runs the engine
//!   again on the winner's state (`Conflict`), so no step runs twice;
//! - the send log is an outbox: the commit that decides an email (or a webhook call) logs it,
//!   message built, with its idempotency key (`<run>.<step>`, unique in the log); delivery
//!   then claims it (a lease of [`SEND_LEASE`]), makes the claim durable, sends, and settles
//!   it ([`Runner::deliver`]); what a process that stopped left pending or claimed, a sweep
//!   ([`Runner::sweep`]) or the customer's next duplicate settles. Nothing leaves before the
//!   decision is durable, and a send whose sender stopped mid-way is sent again only when its
//!   category says so ([`SendRecord::resend_when_unknown`]). docs/ARCHITECTURE.md states what
//!   a crash at each point gives.
//!
//! The runner also decides `now`, the time the engine applies an input at, from the input and
//! the customer's last applied time (kept in the state: `CustomerState::last_applied`), so
//! every store and every caller decide alike (see [`applied_at`]):
//! - an event is applied at the later of its own time and the customer's last applied time,
//!   capped at the runner's clock (the virtual clock under `simulate`, the wall clock on AWS):
//!   a late event never moves a customer's clock back, and an event from the future waits for
//!   no one but is applied at the clock;
//! - a timer fires at its due time; should the customer's last applied time be later (only
//!   when edited workflows make a stored timer due before the customer's last input), at that
//!   time, for the same reason.

use chrono::{DateTime, Utc};

use crate::engine::state::{CustomerState, Suppression};
use crate::engine::{Action, ActionKind, Engine, Input, Warning, customer_ref};
use crate::event::StoreEvent;
use crate::journal::{self, Happened, JournalEntry};
use crate::mail::{Lookup, Mailer, build_mime};
use crate::store::{
    Commit, CommitOutcome, DeadLetter, SUPPRESSED_COMPLAINT, SendEntry, SendKind, SendRecord,
    SendStatus, Settle, Store, StoreError, address_key,
};
use crate::webhook::{NoWebhooks, WebhookCaller, WebhookRequest};

/// How often a conflicting commit is retried before giving up (a conflict means another
/// invocation changed the customer in between; each retry re-reads the new state).
const MAX_ATTEMPTS: usize = 8;

/// What applying one input did.
#[derive(Debug)]
pub enum Applied {
    /// The input was applied; these actions happened.
    Done {
        /// What happened, in order.
        actions: Vec<Action>,
        /// The customer's next timer after this input.
        next_wake: Option<DateTime<Utc>>,
        /// The time the input was applied at (see [`applied_at`]).
        at: DateTime<Utc>,
        /// What became of the emails and webhook calls this input decided, when the runner
        /// delivers after each commit (see [`Runner::deliver_later`]); in the order decided.
        deliveries: Vec<Delivery>,
    },
    /// The event id was processed before: nothing was decided. The customer's sends that were
    /// still pending were delivered (the earlier application may have stopped before it
    /// delivered them): what became of them.
    Duplicate {
        /// What became of the pending sends delivered now.
        deliveries: Vec<Delivery>,
    },
}

/// What firing a due timer did ([`Runner::fire`]).
#[derive(Debug)]
pub enum Fired {
    /// The customer was woken.
    Applied(Applied),
    /// The wake failed with the customer's own error: kept as the dead letter `dead_letter`,
    /// and the customer's timer taken out of the due index until their next event.
    SetAside {
        /// The dead letter's id.
        dead_letter: String,
        /// Why the wake failed.
        error: RunnerError,
    },
}

/// The source of the dead letter of a wake that failed with the customer's own error
/// ([`Runner::fire`]); its body is `{"customer_id": ..., "due": ...}`.
pub const TIMER_DEAD_LETTER_SOURCE: &str = "timer";

/// How long a claim on a send lasts ([`Store::claim_send`]): five minutes. Delivery (SES's
/// call with its retries, a webhook call with its retries) ends well within a minute; a claim
/// still held after five is its sender's that stopped, and a sweep takes it over.
pub const SEND_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// How often a send is tried before it is settled failed: 8 attempts, the waits between them
/// growing from one minute to six hours ([`retry_delay`]), about 17 hours in all, so an outage
/// of SES or of a webhook's receiver of most of a day loses nothing.
pub const MAX_SEND_ATTEMPTS: u32 = 8;

/// The wait before attempt `attempts + 1` after `attempts` failed ones: 1, 4, 16 and 64
/// minutes, then 4¼ hours, then 6 hours.
pub fn retry_delay(attempts: u32) -> chrono::TimeDelta {
    let minutes = 4i64.saturating_pow(attempts.saturating_sub(1).min(8));
    chrono::TimeDelta::minutes(minutes.min(6 * 60))
}

/// What became of one send the runner claimed and delivered (a send it could not claim is not
/// its to report: another sender holds it, it waits for a retry, or it is settled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The send's customer.
    pub customer_id: String,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// An email or a webhook call.
    pub kind: SendKind,
    /// Its workflow.
    pub workflow: String,
    /// Its step.
    pub step: String,
    /// What happened.
    pub outcome: DeliveryOutcome,
}

/// What happened to a send the runner tried to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered (or found already delivered): settled sent.
    Sent {
        /// The mailer's id for it.
        message_id: Option<String>,
    },
    /// Failed for now: pending again, to be tried at `at`.
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// Why (no customer data).
        reason: String,
    },
    /// Refused for good, or out of retries: settled failed (`email.failed` /
    /// `webhook.failed`).
    Failed {
        /// Why (no customer data).
        reason: String,
    },
    /// A marketing email whose earlier sender stopped after claiming it: settled unknown, not
    /// sent again (at most once).
    Unknown {
        /// Why.
        reason: String,
    },
}

/// The largest encoded state the runner commits: 300 KiB (307,200 bytes). A customer's state
/// is one store item, and DynamoDB refuses an item over 400 KB (attribute names, the version
/// and the timer included); the margin keeps room for those and for states that grow by a few
/// kilobytes in one input. An input whose new state would be larger is refused
/// ([`RunnerError::StateTooLarge`]) and changes nothing. [`MAX_ACTIVE_RUNS`] keeps a normal
/// state far below it.
///
/// [`MAX_ACTIVE_RUNS`]: crate::engine::MAX_ACTIVE_RUNS
pub const MAX_STATE_BYTES: usize = 300 * 1024;

/// Why an input could not be applied.
///
/// [`RunnerError::State`], [`RunnerError::StateTooLarge`] and [`RunnerError::Unencodable`] are
/// the input's own failure ([`RunnerError::customer`]): the same input fails again whenever it
/// is retried, other customers are not concerned, and a caller keeps the input as a dead letter
/// and goes on. The others are the store's or the contention's. Messages name the customer by
/// [`customer_ref`] (a guest's address never shows), since they end up in logs and notices.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A stored state could not be read back.
    #[error(
        "stored state of customer {} is unreadable: {}",
        customer_ref(customer_id),
        without_values(source)
    )]
    State {
        /// The customer.
        customer_id: String,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// The customer's new state would be larger than [`MAX_STATE_BYTES`]: nothing was written.
    #[error(
        "the new state of customer {} would take {bytes} bytes, over the limit of \
         {MAX_STATE_BYTES}; the input was not applied",
        customer_ref(customer_id)
    )]
    StateTooLarge {
        /// The customer.
        customer_id: String,
        /// The size of the state the input would have left.
        bytes: usize,
    },
    /// The customer's new state could not be encoded (a bug): nothing was written.
    #[error(
        "the new state of customer {} cannot be encoded: {source}",
        customer_ref(customer_id)
    )]
    Unencodable {
        /// The customer.
        customer_id: String,
        /// Why.
        source: serde_json::Error,
    },
    /// Other writers kept changing the customer.
    #[error("gave up after {MAX_ATTEMPTS} conflicting writes for one customer")]
    Contended,
    /// A sweep needs what delivers every kind of send: this runner lacks one.
    #[error("this runner cannot sweep: it has no {0}")]
    CannotSweep(&'static str),
}

impl RunnerError {
    /// The customer, when the failure is that customer's input's own (see [`RunnerError`]).
    pub fn customer(&self) -> Option<&str> {
        match self {
            RunnerError::State { customer_id, .. }
            | RunnerError::StateTooLarge { customer_id, .. }
            | RunnerError::Unencodable { customer_id, .. } => Some(customer_id),
            RunnerError::Store(_) | RunnerError::Contended | RunnerError::CannotSweep(_) => None,
        }
    }
}

/// A stored state: UTF-8 checked once for the whole document (faster than string by string),
/// then parsed; a document that is not UTF-8 is parsed as bytes, for an error that says where.
/// serde_json's message for a state it could not read, without the value it found: `invalid
/// type: string "ayse@example.com", expected a sequence at line 1 column 36` becomes `invalid
/// type: string, expected a sequence at line 1 column 36`. A state holds the customer's profile,
/// and this message goes to logs and notices.
fn without_values(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let Some((head, tail)) = text.split_once(", expected") else {
        return text;
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(found) = head.strip_prefix(prefix) {
            // `string "…"`, `integer `3``, `map`: the kind is the first word.
            let kind = found.split(' ').next().unwrap_or("");
            return format!("{prefix}{kind}, expected{tail}");
        }
    }
    for prefix in ["unknown variant", "unknown field"] {
        if head.starts_with(prefix) {
            return format!("{prefix}, expected{tail}");
        }
    }
    text
}

fn decode_state(bytes: &[u8]) -> Result<CustomerState, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// The new state as stored, if it is within [`MAX_STATE_BYTES`]. The buffer starts at the
/// size of the state it replaces (`hint`), plus room to grow: a large state is then written
/// without copying itself over and over as the buffer doubles.
fn encode_state(
    customer_id: &str,
    state: &CustomerState,
    hint: usize,
) -> Result<Vec<u8>, RunnerError> {
    let mut bytes = Vec::with_capacity(hint + 1024);
    serde_json::to_writer(&mut bytes, state).map_err(|source| RunnerError::Unencodable {
        customer_id: customer_id.to_owned(),
        source,
    })?;
    if bytes.len() > MAX_STATE_BYTES {
        return Err(RunnerError::StateTooLarge {
            customer_id: customer_id.to_owned(),
            bytes: bytes.len(),
        });
    }
    Ok(bytes)
}

/// `now` as logs show it: RFC 3339, whole seconds, UTC (the virtual time under `simulate`).
/// The journal an input commits: `event.received` for an event (applied at `now`), then the
/// engine's entries.
fn journal_of(
    input: Input<'_>,
    now: DateTime<Utc>,
    entries: Vec<JournalEntry>,
) -> Vec<JournalEntry> {
    match input {
        Input::Event(event) => {
            let mut journal = Vec::with_capacity(entries.len() + 1);
            journal.push(journal::redact(JournalEntry {
                at: now,
                workflow: None,
                run: None,
                step: None,
                zone: None,
                what: Happened::EventReceived {
                    event_type: event.event_type.clone(),
                    event_id: event.id.clone(),
                    bounce_type: bounce_type(event),
                },
            }));
            journal.extend(entries);
            journal
        }
        Input::Wake => entries,
    }
}

/// An `email.bounced` event's `bounce_type` (a string), for its journal entry.
fn bounce_type(event: &StoreEvent) -> Option<String> {
    if event.event_type != "email.bounced" {
        return None;
    }
    event
        .detail
        .get("bounce_type")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

fn log_time(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Logs an engine warning at its own time (`at`: the virtual time under `simulate`, which
/// prints no wall clock), naming the workflow, step, template and line, and the customer by
/// [`customer_ref`](crate::engine::customer_ref) only.
fn log_warning(w: &Warning) {
    // `message` last: the virtual time leads the line.
    tracing::warn!(
        at = %log_time(w.at),
        workflow = %w.workflow,
        step = %w.step.as_deref().unwrap_or("-"),
        template = %w.place(),
        customer = %w.customer_ref,
        message = %w.message,
    );
}

/// An input, with what its application time is decided from (see [`applied_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An event that happened at `time`, arriving when the runner's clock says `clock`.
    Event {
        /// The event's own time.
        time: DateTime<Utc>,
        /// The runner's clock: virtual under `simulate`, the wall clock on AWS.
        clock: DateTime<Utc>,
    },
    /// A timer due at `due` (never after the runner's clock: only a due timer is fired).
    Timer {
        /// When the timer was due.
        due: DateTime<Utc>,
    },
}

/// The `now` an input is applied at, given the customer's last applied time (`None` for a new
/// customer): an event at the later of its own time and `last_applied`, capped at the runner's
/// clock; a timer at its due time, or at `last_applied` if that is later. The cap wins over
/// `last_applied` (an event is never applied after the clock, even if a clock behind another
/// one's applied an input later); `CustomerState::last_applied` keeps the latest of both.
pub fn applied_at(when: When, last_applied: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match when {
        When::Event { time, clock } => last_applied.map_or(time, |l| time.max(l)).min(clock),
        When::Timer { due } => last_applied.map_or(due, |l| due.max(l)),
    }
}

/// The engine wired to a store, a mailer and a webhook caller.
#[derive(Debug)]
pub struct Runner<'p, S, M, W = NoWebhooks> {
    engine: &'p Engine<'p>,
    store: S,
    mailer: Option<M>,
    webhooks: Option<W>,
    deliver_after_commit: bool,
    durable_claims: bool,
    build_messages: bool,
    keep_journal: bool,
}

impl<'p, S: Store, M: Mailer> Runner<'p, S, M> {
    /// A runner that delivers each commit's sends right after the commit. Without a mailer,
    /// emails are decided and logged (pending) but not delivered; without a webhook caller
    /// ([`Runner::with_webhooks`]), webhook calls are decided (an action) and not logged.
    pub fn new(engine: &'p Engine<'p>, store: S, mailer: Option<M>) -> Self {
        Self {
            engine,
            store,
            mailer,
            webhooks: None,
            deliver_after_commit: true,
            durable_claims: true,
            build_messages: true,
            keep_journal: true,
        }
    }
}

impl<'p, S: Store, M: Mailer, W: WebhookCaller> Runner<'p, S, M, W> {
    /// The same runner, logging webhook calls and making them through `caller`.
    pub fn with_webhooks<W2: WebhookCaller>(self, caller: W2) -> Runner<'p, S, M, W2> {
        Runner {
            engine: self.engine,
            store: self.store,
            mailer: self.mailer,
            webhooks: Some(caller),
            deliver_after_commit: self.deliver_after_commit,
            durable_claims: self.durable_claims,
            build_messages: self.build_messages,
            keep_journal: self.keep_journal,
        }
    }

    /// The same runner, leaving each commit's sends pending for the caller to deliver
    /// ([`Runner::deliver`]) once the commit is durable: for a batching store, whose commits
    /// become durable only when their batch is flushed (mail must never leave before the
    /// decision that sent it is kept, or a crash would send it again).
    pub fn deliver_later(mut self) -> Self {
        self.deliver_after_commit = false;
        self
    }

    /// The same runner, sending without making its claims durable first: only for a store no
    /// process will ever continue from (`simulate`'s throwaway store), where a crash loses the
    /// whole store and a durable claim would protect nothing, while flushing a batching store
    /// before every delivery costs a commit each time.
    pub fn without_durable_claims(mut self) -> Self {
        self.durable_claims = false;
        self
    }

    /// The same runner, logging emails without their MIME message (an empty payload), for a
    /// mailer that writes nothing (`simulate` without `--outbox`, on its throwaway store): a
    /// message is built from the HTML (its text part, its encodings) at about 0.3 ms each,
    /// which made such a simulation of 22,000 emails ten times slower for bytes nobody reads.
    /// The mailer gets the empty payload.
    pub fn without_messages(mut self) -> Self {
        self.build_messages = false;
        self
    }

    /// The same runner, committing no journal entries (`Commit::journal` empty), for a store
    /// nobody reads a customer's story from (`simulate`'s throwaway store): the journal is
    /// most of what such a store would write.
    pub fn without_journal(mut self) -> Self {
        self.keep_journal = false;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Applies one store event arriving when the runner's clock says `clock`, at the time
    /// [`applied_at`] gives.
    pub async fn event(
        &self,
        event: &StoreEvent,
        clock: DateTime<Utc>,
    ) -> Result<Applied, RunnerError> {
        let when = When::Event {
            time: event.time,
            clock,
        };
        self.apply(
            &event.customer_id,
            Input::Event(event),
            Some(&event.id),
            when,
            clock,
        )
        .await
    }

    /// The customer's timer as the engine now sees it ([`Engine::next_wake`]): after the
    /// workflows were edited, a stored timer may be late (a shortened wait).
    pub async fn next_wake(&self, customer_id: &str) -> Result<Option<DateTime<Utc>>, RunnerError> {
        let Some(record) = self.store.load(customer_id).await? else {
            return Ok(None);
        };
        let state = decode_state(&record.state).map_err(|source| RunnerError::State {
            customer_id: customer_id.to_owned(),
            source,
        })?;
        Ok(self.engine.next_wake(&state))
    }

    /// Wakes a customer whose timer is due at `due` (at or before the runner's clock `clock`),
    /// at the time [`applied_at`] gives; what it sends is claimed at `clock`.
    pub async fn wake(
        &self,
        customer_id: &str,
        due: DateTime<Utc>,
        clock: DateTime<Utc>,
    ) -> Result<Applied, RunnerError> {
        self.apply(customer_id, Input::Wake, None, When::Timer { due }, clock)
            .await
    }

    /// Fires a due timer as a deployment's scheduler does: wakes the customer
    /// ([`Runner::wake`]); when the wake fails with the customer's own error (an unreadable or
    /// oversized state: [`RunnerError::customer`], which would fail again at every tick, ahead
    /// of everyone else), keeps the failure as a dead letter (source `timer`, the customer and
    /// the due time as its body, so it can be replayed) and sets the customer aside
    /// ([`Store::set_aside`]) until their next event. Other errors (the store's) are returned:
    /// the timer stays, for the next tick.
    pub async fn fire(
        &self,
        customer_id: &str,
        due: DateTime<Utc>,
        clock: DateTime<Utc>,
    ) -> Result<Fired, RunnerError> {
        let error = match self.wake(customer_id, due, clock).await {
            Ok(applied) => return Ok(Fired::Applied(applied)),
            Err(e) if e.customer().is_some() => e,
            Err(e) => return Err(e),
        };
        let body = serde_json::json!({
            "customer_id": customer_id,
            "due": log_time(due),
        });
        let letter = DeadLetter {
            id: String::new(),
            event_id: None,
            customer_id: Some(customer_id.to_owned()),
            source: TIMER_DEAD_LETTER_SOURCE.to_owned(),
            reason: error.to_string(),
            body: body.to_string(),
            received_at: clock,
        };
        let dead_letter = self.store.record_dead_letter(&letter).await?;
        let set_aside = self.store.set_aside(customer_id, due).await?;
        tracing::error!(
            at = %log_time(clock),
            customer = %customer_ref(customer_id),
            dead_letter = %dead_letter,
            set_aside,
            error = %error,
            "a due timer failed; the customer is set aside until their next event"
        );
        Ok(Fired::SetAside { dead_letter, error })
    }

    async fn apply(
        &self,
        customer_id: &str,
        input: Input<'_>,
        event_id: Option<&str>,
        when: When,
        clock: DateTime<Utc>,
    ) -> Result<Applied, RunnerError> {
        // No separate "processed?" read first: the commit finds a duplicate (and wins over a
        // conflict), and nothing happens before a commit, so a duplicate costs one engine run
        // instead of every event costing one more read.
        // An address the store lists as suppressed (a hard bounce or a complaint that named
        // it, from SES) found when the engine decided to write to it: the engine runs again
        // with the customer suppressed, so sending rule 2 decides as it does for a customer
        // whose own `email.bounced` event said so.
        let mut listed: Option<Suppression> = None;
        for _ in 0..MAX_ATTEMPTS {
            let mut stored_len = 0;
            let (mut state, version) = match self.store.load(customer_id).await? {
                Some(record) => {
                    stored_len = record.state.len();
                    let state =
                        decode_state(&record.state).map_err(|source| RunnerError::State {
                            customer_id: customer_id.to_owned(),
                            source,
                        })?;
                    (state, record.version)
                }
                None => (CustomerState::new(customer_id), 0),
            };
            if state.suppressed.is_none() {
                state.suppressed = listed;
            }
            let last_applied = state.last_applied;
            let now = applied_at(when, last_applied);
            let mut outcome = self.engine.handle(state, input, now);
            if listed.is_none() && outcome.state.suppressed.is_none() {
                listed = self.listed_suppression(&outcome.actions).await?;
                if listed.is_some() {
                    continue;
                }
            }
            outcome.state.last_applied = Some(last_applied.map_or(now, |l| l.max(now)));
            let bytes = encode_state(customer_id, &outcome.state, stored_len)?;
            let next_wake = outcome.state.next_wake();
            let sends = self.send_records(customer_id, &outcome.actions);
            let journal = if self.keep_journal {
                journal_of(input, now, std::mem::take(&mut outcome.journal))
            } else {
                Vec::new()
            };
            let commit = Commit {
                customer_id,
                expected_version: version,
                state: &bytes,
                next_wake,
                event_id,
                sends: &sends,
                journal: &journal,
            };
            match self.store.commit(commit).await? {
                CommitOutcome::Committed { .. } => {
                    outcome.warnings.iter().for_each(log_warning);
                    let deliveries = if self.deliver_after_commit {
                        let keys: Vec<_> = sends
                            .iter()
                            .filter(|s| self.can_deliver(s.kind))
                            .map(|s| (customer_id, s.idempotency_key.as_str()))
                            .collect();
                        self.deliver(&keys, clock).await?
                    } else {
                        Vec::new()
                    };
                    return Ok(Applied::Done {
                        actions: outcome.actions,
                        next_wake,
                        at: now,
                        deliveries,
                    });
                }
                CommitOutcome::AlreadyProcessed => {
                    // The event was applied before, perhaps by an invocation that stopped
                    // before delivering, or by this one's commit that an SDK retry reports as
                    // a duplicate: what it logged and nobody delivered goes now.
                    let deliveries = if self.deliver_after_commit {
                        self.deliver_pending(customer_id, clock).await?
                    } else {
                        Vec::new()
                    };
                    return Ok(Applied::Duplicate { deliveries });
                }
                CommitOutcome::Conflict => continue,
            }
        }
        Err(RunnerError::Contended)
    }

    /// The suppression the store lists for an address the engine decided to email, if any
    /// ([`Store::suppression`]: one read per recipient, only when an email is decided).
    async fn listed_suppression(
        &self,
        actions: &[Action],
    ) -> Result<Option<Suppression>, RunnerError> {
        for action in actions {
            if let ActionKind::EmailSent(email) = &action.kind
                && let Some((reason, _)) = self
                    .store
                    .suppression(&address_key(&email.to.address))
                    .await?
            {
                return Ok(Some(if reason == SUPPRESSED_COMPLAINT {
                    Suppression::Complaint
                } else {
                    Suppression::HardBounce
                }));
            }
        }
        Ok(None)
    }

    /// The send-log records of what the engine decided: each email with its MIME message
    /// built now, once, so that every later attempt sends the same bytes; each webhook call
    /// when this runner makes them. An email whose message cannot be built is logged all the
    /// same, with an empty payload, and settles failed at its first attempt (the reason is in
    /// the log), rather than being lost without a trace.
    fn send_records(&self, customer_id: &str, actions: &[Action]) -> Vec<SendRecord> {
        actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::EmailSent(email) => Some(SendRecord {
                    idempotency_key: email.idempotency_key.clone(),
                    customer_id: customer_id.to_owned(),
                    workflow: email.workflow.clone(),
                    step: email.step.clone(),
                    kind: SendKind::Email,
                    category: email.category.as_str().to_owned(),
                    tags: email.tags.clone(),
                    at: a.at,
                    payload: if !self.build_messages {
                        Vec::new()
                    } else {
                        build_mime(email).unwrap_or_else(|e| {
                            tracing::error!(
                                workflow = %email.workflow,
                                step = %email.step,
                                customer = %customer_ref(customer_id),
                                key = %email.idempotency_key,
                                error = %e,
                                "email cannot be built"
                            );
                            Vec::new()
                        })
                    },
                }),
                ActionKind::WebhookCalled(call) if self.webhooks.is_some() => Some(SendRecord {
                    idempotency_key: call.idempotency_key.clone(),
                    customer_id: customer_id.to_owned(),
                    workflow: a.workflow.clone(),
                    step: a.step.clone().unwrap_or_default(),
                    kind: SendKind::Webhook,
                    category: "webhook".to_owned(),
                    tags: Vec::new(),
                    at: a.at,
                    payload: WebhookRequest::from_call(call).to_payload(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Delivers the sends `keys` (`(customer, idempotency key)`) at the runner's clock
    /// `clock`, and returns what became of those it claimed. Each is claimed (a send another
    /// sender holds, that waits for a retry, or that is settled is left alone), the store is
    /// made durable, and then it is sent and settled sent, for a retry (after
    /// [`retry_delay`]), failed or unknown. The send guarantee (docs/ARCHITECTURE.md) rests on
    /// this order: nothing leaves without a durable claim, and nothing is claimed before the
    /// commit that logged it.
    ///
    /// A runner that delivers after each commit (a store whose every write is durable, as on
    /// AWS) takes one send at a time: claim, send, settle, so that a store failure midway leaves
    /// the later sends pending, never claimed and unsent. A runner that delivers later
    /// ([`Runner::deliver_later`], a batching store) claims them all, makes the claims durable
    /// with one flush, then sends and settles each: one batch commit per delivery round instead
    /// of one per email; should the store fail midway, the claims left are settled by the
    /// caller's own recovery (`simulate --db` settles a stopped run's claims through the
    /// outbox, which knows what it wrote).
    pub async fn deliver(
        &self,
        keys: &[(&str, &str)],
        clock: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, RunnerError> {
        let mut deliveries = Vec::new();
        if self.deliver_after_commit {
            for &key in keys {
                if let Some(entry) = self.claim(key, clock).await? {
                    if self.durable_claims {
                        self.store.flush().await?;
                    }
                    deliveries.push(self.send_and_settle(entry, clock).await?);
                }
            }
            return Ok(deliveries);
        }
        let mut claimed = Vec::new();
        for &key in keys {
            claimed.extend(self.claim(key, clock).await?);
        }
        if claimed.is_empty() {
            return Ok(deliveries);
        }
        if self.durable_claims {
            self.store.flush().await?;
        }
        for entry in claimed {
            deliveries.push(self.send_and_settle(entry, clock).await?);
        }
        Ok(deliveries)
    }

    /// Claims the send `(customer, key)` at `clock` for [`SEND_LEASE`]. A send the store
    /// cannot read back ([`StoreError::Corrupt`]: damaged, or written by a newer release) is
    /// settled failed, with the reason, rather than stopping the delivery of every send after
    /// it; it is then not this runner's to deliver.
    async fn claim(
        &self,
        (customer_id, key): (&str, &str),
        clock: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, RunnerError> {
        match self
            .store
            .claim_send(customer_id, key, clock, clock + SEND_LEASE)
            .await
        {
            Ok(claimed) => Ok(claimed),
            // Erased since the caller read it (`nudge erase`, Shopify's `customers/redact`):
            // nothing is left to deliver, and the sends after it still are.
            Err(StoreError::UnknownSend(_)) => {
                tracing::info!(
                    at = %log_time(clock),
                    customer = %customer_ref(customer_id),
                    key = %key,
                    "a send is gone (its customer was erased); it is not delivered"
                );
                Ok(None)
            }
            Err(StoreError::Corrupt(why)) => {
                let reason = format!("its stored entry cannot be read: {why}");
                // Tied to the claim this call would have made, if it was applied.
                let failed = Settle::Failed {
                    reason: &reason,
                    lease: clock + SEND_LEASE,
                };
                let settled = self.store.settle_send(customer_id, key, failed).await;
                tracing::error!(
                    at = %log_time(clock),
                    customer = %customer_ref(customer_id),
                    key = %key,
                    settled_failed = matches!(settled, Ok(true)),
                    error = %reason,
                    "a send cannot be read; it is not delivered"
                );
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a claimed send, settles it, and logs a failure.
    async fn send_and_settle(
        &self,
        entry: SendEntry,
        clock: DateTime<Utc>,
    ) -> Result<Delivery, RunnerError> {
        // The lease the claim set (`claim`: the same clock, the same lease).
        let lease = clock + SEND_LEASE;
        let outcome = self.deliver_claimed(&entry, clock).await;
        let record = &entry.record;
        let settle = match &outcome {
            DeliveryOutcome::Sent { message_id } => Settle::Sent {
                message_id: message_id.as_deref(),
            },
            DeliveryOutcome::Retry { at, reason } => Settle::Retry {
                at: *at,
                reason,
                lease,
            },
            DeliveryOutcome::Failed { reason } => Settle::Failed { reason, lease },
            DeliveryOutcome::Unknown { reason } => Settle::Unknown { reason, lease },
        };
        match self
            .store
            .settle_send(&record.customer_id, &record.idempotency_key, settle)
            .await
        {
            Ok(_) => {}
            // The customer was erased while the send was out: nothing of it is kept, and
            // settling it would write the customer back.
            Err(StoreError::UnknownSend(_)) => tracing::info!(
                at = %log_time(clock),
                customer = %customer_ref(&record.customer_id),
                key = %record.idempotency_key,
                "a send was erased with its customer while it was out; it is not settled"
            ),
            Err(e) => return Err(e.into()),
        }
        if let DeliveryOutcome::Failed { reason } | DeliveryOutcome::Retry { reason, .. } = &outcome
        {
            // Never the address or the URL: the key names the run and step.
            tracing::error!(
                at = %log_time(clock),
                workflow = %record.workflow,
                step = %record.step,
                customer = %customer_ref(&record.customer_id),
                key = %record.idempotency_key,
                kind = record.kind.as_str(),
                retry = matches!(outcome, DeliveryOutcome::Retry { .. }),
                error = %reason,
                "delivery failed"
            );
        }
        Ok(Delivery {
            customer_id: record.customer_id.clone(),
            idempotency_key: record.idempotency_key.clone(),
            kind: record.kind,
            workflow: record.workflow.clone(),
            step: record.step.clone(),
            outcome,
        })
    }

    /// Delivers what the customer's send log still holds pending (or claimed by a sender whose
    /// lease ended) at `clock`.
    pub async fn deliver_pending(
        &self,
        customer_id: &str,
        clock: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, RunnerError> {
        let entries = self.store.sends(customer_id).await?;
        let keys: Vec<_> = entries
            .iter()
            .filter(|e| self.can_deliver(e.record.kind))
            .filter(|e| !e.status.is_final() && e.retry_at.is_some_and(|at| at <= clock))
            .map(|e| (customer_id, e.record.idempotency_key.as_str()))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.deliver(&keys, clock).await
    }

    /// The sweep of one due shard: delivers, a page of `page` at a time, every send of shard
    /// `shard` that is pending or whose claim expired by `clock` (a process stopped after a
    /// commit or mid-send; a retry whose time came), at most `max` of them. Returns what
    /// became of each; a caller that got `max` back sweeps again.
    pub async fn sweep(
        &self,
        shard: u16,
        clock: DateTime<Utc>,
        page: usize,
        max: usize,
    ) -> Result<Vec<Delivery>, RunnerError> {
        // The sweep's index does not say a send's kind before it is claimed, and a claim counts
        // an attempt: a runner that could not deliver some kind would spend those sends'
        // attempts for nothing.
        if self.mailer.is_none() {
            return Err(RunnerError::CannotSweep("mailer"));
        }
        if self.webhooks.is_none() {
            return Err(RunnerError::CannotSweep("webhook caller"));
        }
        let mut deliveries = Vec::new();
        let mut cursor = None;
        while deliveries.len() < max {
            let limit = page.min(max - deliveries.len());
            let next = self
                .store
                .pending_sends(shard, clock, limit, cursor.as_deref())
                .await?;
            let keys: Vec<_> = next
                .due
                .iter()
                .map(|(_, c, k)| (c.as_str(), k.as_str()))
                .collect();
            deliveries.extend(self.deliver(&keys, clock).await?);
            match next.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(deliveries)
    }

    /// Whether this runner has what delivers a send of `kind` (a mailer, a webhook caller).
    fn can_deliver(&self, kind: SendKind) -> bool {
        match kind {
            SendKind::Email => self.mailer.is_some(),
            SendKind::Webhook => self.webhooks.is_some(),
        }
    }

    /// Sends one claimed send and says how to settle it.
    async fn deliver_claimed(&self, entry: &SendEntry, clock: DateTime<Utc>) -> DeliveryOutcome {
        let record = &entry.record;
        let taken_over = entry.status == SendStatus::Sending;
        if taken_over {
            // Its sender stopped after claiming it: it may have left. A mailer that can tell
            // says so; otherwise the category decides (SendRecord::resend_when_unknown).
            let lookup = match (&self.mailer, record.kind) {
                (Some(mailer), SendKind::Email) => {
                    mailer.lookup(record).await.unwrap_or(Lookup::Unknown)
                }
                _ => Lookup::Unknown,
            };
            match lookup {
                Lookup::Delivered(receipt) => {
                    return DeliveryOutcome::Sent {
                        message_id: Some(receipt.message_id),
                    };
                }
                Lookup::NotDelivered => {}
                Lookup::Unknown if record.resend_when_unknown() => {}
                Lookup::Unknown => {
                    return DeliveryOutcome::Unknown {
                        reason: "its sender stopped while sending it; marketing email is sent \
                                 at most once"
                            .to_owned(),
                    };
                }
            }
        }
        let attempt = entry.attempts + 1;
        let result: Result<Option<String>, (bool, String)> = match record.kind {
            SendKind::Email => match &self.mailer {
                None => {
                    return DeliveryOutcome::Retry {
                        at: clock + retry_delay(attempt),
                        reason: "no mailer".to_owned(),
                    };
                }
                Some(_) if record.payload.is_empty() && self.build_messages => {
                    // Its message could not be built when it was decided (logged then), or it
                    // was decided by a runner that builds none (`without_messages`).
                    Err((
                        false,
                        "the email was logged without its message (it could not be built, or \
                         was decided by a run that wrote no email)"
                            .to_owned(),
                    ))
                }
                Some(mailer) => match mailer.send(record).await {
                    Ok(receipt) => Ok(Some(receipt.message_id)),
                    // The service may have it: sent again only where a duplicate is allowed.
                    Err(e) if e.may_have_been_sent() && !record.resend_when_unknown() => {
                        return DeliveryOutcome::Unknown {
                            reason: format!(
                                "{e}; marketing email is sent at most once, so not again"
                            ),
                        };
                    }
                    Err(e) => Err((e.is_retryable(), e.to_string())),
                },
            },
            SendKind::Webhook => match (
                &self.webhooks,
                WebhookRequest::from_payload(&record.payload),
            ) {
                (None, _) => {
                    return DeliveryOutcome::Retry {
                        at: clock + retry_delay(attempt),
                        reason: "no webhook caller".to_owned(),
                    };
                }
                (Some(_), Err(e)) => Err((false, e.to_string())),
                (Some(caller), Ok(request)) => caller
                    .call(record, &request, clock)
                    .await
                    .map(|_| None)
                    .map_err(|e| (e.is_retryable(), e.to_string())),
            },
        };
        match result {
            Ok(message_id) => DeliveryOutcome::Sent { message_id },
            Err((true, reason)) if attempt < MAX_SEND_ATTEMPTS => DeliveryOutcome::Retry {
                at: clock + retry_delay(attempt),
                reason,
            },
            Err((true, reason)) => DeliveryOutcome::Failed {
                reason: format!("{attempt} attempts failed; the last: {reason}"),
            },
            Err((false, reason)) => DeliveryOutcome::Failed { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_event_is_applied_at_the_later_of_its_time_and_the_last_capped_at_the_clock() {
        let ev = |time, clock| When::Event {
            time: t(time),
            clock: t(clock),
        };
        let last = Some(t("2026-03-05T00:00:00Z"));
        // On time, for a new and a known customer.
        let on_time = ev("2026-03-06T00:00:00Z", "2026-03-07T00:00:00Z");
        assert_eq!(applied_at(on_time, None), t("2026-03-06T00:00:00Z"));
        assert_eq!(applied_at(on_time, last), t("2026-03-06T00:00:00Z"));
        // Late: at the customer's last time (a new customer has none).
        let late = ev("2026-03-01T00:00:00Z", "2026-03-07T00:00:00Z");
        assert_eq!(applied_at(late, last), t("2026-03-05T00:00:00Z"));
        assert_eq!(applied_at(late, None), t("2026-03-01T00:00:00Z"));
        // From the future: at the clock.
        let future = ev("2026-03-09T00:00:00Z", "2026-03-07T00:00:00Z");
        assert_eq!(applied_at(future, last), t("2026-03-07T00:00:00Z"));
        // A clock behind the customer's last time caps even that.
        let behind = ev("2026-03-01T00:00:00Z", "2026-03-04T00:00:00Z");
        assert_eq!(applied_at(behind, last), t("2026-03-04T00:00:00Z"));
    }

    #[test]
    fn a_timer_fires_at_its_due_time_unless_the_customer_is_past_it() {
        let last = Some(t("2026-03-05T00:00:00Z"));
        let due = |s| When::Timer { due: t(s) };
        assert_eq!(
            applied_at(due("2026-03-06T00:00:00Z"), last),
            t("2026-03-06T00:00:00Z")
        );
        assert_eq!(
            applied_at(due("2026-03-06T00:00:00Z"), None),
            t("2026-03-06T00:00:00Z")
        );
        assert_eq!(
            applied_at(due("2026-03-04T00:00:00Z"), last),
            t("2026-03-05T00:00:00Z")
        );
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_six_hours() {
        let minutes: Vec<i64> = (1..MAX_SEND_ATTEMPTS)
            .map(|a| retry_delay(a).num_minutes())
            .collect();
        assert_eq!(minutes, [1, 4, 16, 64, 256, 360, 360]);
        assert_eq!(retry_delay(0).num_minutes(), 1);
        assert_eq!(retry_delay(u32::MAX).num_minutes(), 360);
        // About 17 hours from the first failure to the last attempt.
        assert_eq!(minutes.iter().sum::<i64>(), 1061);
    }

    #[test]
    fn state_errors_never_quote_a_value() {
        let err = |text: &str| without_values(&decode_state(text.as_bytes()).unwrap_err());
        assert_eq!(
            err(r#"{"id":"c1","runs":"ayse@example.com"}"#),
            "invalid type: string, expected a sequence at line 1 column 36"
        );
        assert_eq!(
            err(r#"{"id":3}"#),
            "invalid type: integer, expected a string at line 1 column 7"
        );
        #[derive(Debug, serde::Deserialize)]
        enum Kind {
            #[allow(dead_code)]
            Known,
        }
        let e = serde_json::from_str::<Kind>(r#""Ayşe""#).unwrap_err();
        let variant = without_values(&e);
        assert!(
            variant.starts_with("unknown variant, expected"),
            "{variant}"
        );
        assert!(err("{").starts_with("EOF while parsing"), "{}", err("{"));
    }
}
