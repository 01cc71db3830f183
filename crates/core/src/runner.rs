//! Carries the engine's decisions out: load a customer, run the engine, commit the new state
//! conditionally, then deliver the email the commit recorded.
//!
//! The same runner serves `nudge simulate` (SQLite + outbox) and will serve the Lambda
//! functions (DynamoDB + SES). Its guarantees come from the store's conditional commit:
//! - the same event id applied twice has the effect of once (`AlreadyProcessed`);
//! - two invocations for one customer never both win: the loser reloads and runs the engine
//!   again on the winner's state (`Conflict`), so no step runs twice;
//! - an email is delivered only after the commit that decided it (and its send-log row) is
//!   applied: durable at once, or, with a batching store (only `simulate` uses one), when its
//!   batch ends; its idempotency key (`<run>.<step>`) is unique in the send log.
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

use crate::engine::state::CustomerState;
use crate::engine::{Action, ActionKind, Engine, Input, Warning, customer_ref};
use crate::event::StoreEvent;
use crate::mail::{Mailer, build_mime};
use crate::store::{Commit, CommitOutcome, SendRecord, SendStatus, Store};

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
    },
    /// The event id was processed before: nothing happened.
    Duplicate,
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
}

impl RunnerError {
    /// The customer, when the failure is that customer's input's own (see [`RunnerError`]).
    pub fn customer(&self) -> Option<&str> {
        match self {
            RunnerError::State { customer_id, .. }
            | RunnerError::StateTooLarge { customer_id, .. }
            | RunnerError::Unencodable { customer_id, .. } => Some(customer_id),
            RunnerError::Store(_) | RunnerError::Contended => None,
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

/// The engine wired to a store and a mailer.
#[derive(Debug)]
pub struct Runner<'p, S, M> {
    engine: &'p Engine<'p>,
    store: S,
    mailer: Option<M>,
}

impl<'p, S: Store, M: Mailer> Runner<'p, S, M> {
    /// A runner; without a mailer, emails are decided and logged but not delivered (what
    /// `simulate` does without `--outbox`).
    pub fn new(engine: &'p Engine<'p>, store: S, mailer: Option<M>) -> Self {
        Self {
            engine,
            store,
            mailer,
        }
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

    /// Wakes a customer whose timer is due at `due` (at or before the runner's clock), at the
    /// time [`applied_at`] gives.
    pub async fn wake(
        &self,
        customer_id: &str,
        due: DateTime<Utc>,
    ) -> Result<Applied, RunnerError> {
        self.apply(customer_id, Input::Wake, None, When::Timer { due })
            .await
    }

    async fn apply(
        &self,
        customer_id: &str,
        input: Input<'_>,
        event_id: Option<&str>,
        when: When,
    ) -> Result<Applied, RunnerError> {
        // No separate "processed?" read first: the commit finds a duplicate (and wins over a
        // conflict), and nothing happens before a commit, so a duplicate costs one engine run
        // instead of every event costing one more read.
        for _ in 0..MAX_ATTEMPTS {
            let mut stored_len = 0;
            let (state, version) = match self.store.load(customer_id).await? {
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
            let last_applied = state.last_applied;
            let now = applied_at(when, last_applied);
            let mut outcome = self.engine.handle(state, input, now);
            outcome.state.last_applied = Some(last_applied.map_or(now, |l| l.max(now)));
            let bytes = encode_state(customer_id, &outcome.state, stored_len)?;
            let next_wake = outcome.state.next_wake();
            let sends: Vec<SendRecord> = outcome
                .actions
                .iter()
                .filter_map(|a| match &a.kind {
                    ActionKind::EmailSent(email) => Some(SendRecord {
                        idempotency_key: email.idempotency_key.clone(),
                        customer_id: customer_id.to_owned(),
                        workflow: email.workflow.clone(),
                        step: email.step.clone(),
                        category: email.category.as_str().to_owned(),
                        at: a.at,
                    }),
                    _ => None,
                })
                .collect();
            let commit = Commit {
                customer_id,
                expected_version: version,
                state: &bytes,
                next_wake,
                event_id,
                sends: &sends,
            };
            match self.store.commit(commit).await? {
                CommitOutcome::Committed { .. } => {
                    outcome.warnings.iter().for_each(log_warning);
                    self.deliver(&outcome.actions, now).await?;
                    return Ok(Applied::Done {
                        actions: outcome.actions,
                        next_wake,
                        at: now,
                    });
                }
                CommitOutcome::AlreadyProcessed => return Ok(Applied::Duplicate),
                CommitOutcome::Conflict => continue,
            }
        }
        Err(RunnerError::Contended)
    }

    /// Delivers the emails of committed actions and records each result in the send log. A
    /// failed delivery is logged and marked `failed`; it never undoes the decision.
    async fn deliver(&self, actions: &[Action], now: DateTime<Utc>) -> Result<(), RunnerError> {
        let Some(mailer) = &self.mailer else {
            return Ok(());
        };
        for action in actions {
            let ActionKind::EmailSent(email) = &action.kind else {
                continue;
            };
            let result = match build_mime(email) {
                Ok(mime) => mailer.send(email, &mime).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(receipt) => {
                    self.store
                        .mark_send(
                            &email.customer_id,
                            &email.idempotency_key,
                            SendStatus::Sent,
                            Some(&receipt.message_id),
                        )
                        .await?
                }
                Err(e) => {
                    // Never log the address: the idempotency key names the run and step.
                    tracing::error!(
                        at = %log_time(now),
                        workflow = %email.workflow,
                        step = %email.step,
                        customer = %customer_ref(&email.customer_id),
                        key = %email.idempotency_key,
                        error = %e,
                        "email delivery failed"
                    );
                    self.store
                        .mark_send(
                            &email.customer_id,
                            &email.idempotency_key,
                            SendStatus::Failed,
                            None,
                        )
                        .await?;
                }
            }
        }
        Ok(())
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
