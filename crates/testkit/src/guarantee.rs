//! The send guarantee under crashes, on any [`Store`]: a sender that stops at each point of a
//! delivery (after the commit, after the claim, after the send, before the settle), and the
//! sweep that comes after it.
//!
//! What each point must give (docs/ARCHITECTURE.md, "The send guarantee"):
//!
//! | stopped                 | transactional email, webhook  | marketing email              |
//! |-------------------------|-------------------------------|------------------------------|
//! | after the commit        | sent once by the sweep        | sent once by the sweep       |
//! | after the claim         | sent once after the lease     | never sent: settled unknown (a mailer that looks up: sent once) |
//! | after the send          | sent again after the lease (a mailer that can look it up: not again) | not again: unknown (or sent, when looked up) |
//! | a retryable failure     | sent once at the retry        | sent once at the retry       |
//! | the mailer may have it (SES's 500) | sent again at the retry | not again: unknown         |
//! | a refused webhook call  | failed at once, never again   |                              |
//! | failing every attempt   | failed after `MAX_SEND_ATTEMPTS` | same                      |
//!
//! and in every case: nothing is sent while a claim is held, nothing is left pending once the
//! sweep after the lease has run, and no send is ever made more than twice.
//!
//! [`run_all`] runs every case on a fresh store from the caller's factory; a case panics with
//! what differed. The stops are made by [`Stopping`], a store wrapper that fails a chosen call
//! as a killed process would (the call before it done, nothing after it), and by
//! [`TestMailer`].

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};

use nudge_core::engine::Engine;
use nudge_core::mail::{Lookup, MailError, Mailer, Receipt};
use nudge_core::runner::{Fired, MAX_SEND_ATTEMPTS, Runner, RunnerError, SEND_LEASE};
use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, DeadLetter, DuePage, Erased, Feedback, FeedbackCount,
    Parked, SendEntry, SendKind, SendPage, SendRecord, SendStatus, Settle, Store, StoreError,
};
use nudge_core::webhook::{WebhookCaller, WebhookError, WebhookReceipt, WebhookRequest};

/// Where a [`Stopping`] store stops its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// Never.
    Nowhere,
    /// The flush after the claims fails: the claims are made, nothing is sent.
    AfterClaim,
    /// The settle fails (the mail left): the send stays claimed.
    AfterSend,
    /// The customer is erased (`nudge erase`, Shopify's `customers/redact`) just before the
    /// claim: a sweep read the send on its page, then it was gone.
    ErasedBeforeClaim,
    /// The customer is erased while the send is out, just before its settle.
    ErasedBeforeSettle,
}

/// A store that fails the call named by its [`StopAt`], as a process killed there would leave
/// it: the calls before are done, the failing one and everything after it not.
#[derive(Debug)]
pub struct Stopping<S> {
    inner: S,
    stop: Mutex<StopAt>,
    claimed: Mutex<bool>,
}

impl<S> Stopping<S> {
    /// `inner`, stopping its caller at `stop`.
    pub fn new(inner: S, stop: StopAt) -> Self {
        Stopping {
            inner,
            stop: Mutex::new(stop),
            claimed: Mutex::new(false),
        }
    }

    /// Stops no more: the store after the process restarted.
    pub fn resume(&self) {
        *self.stop.lock().unwrap() = StopAt::Nowhere;
    }

    fn stops_at(&self, point: StopAt) -> bool {
        *self.stop.lock().unwrap() == point
    }

    fn stopped() -> StoreError {
        StoreError::Unavailable {
            message: "the process stopped here (a test's crash)".to_owned(),
            source: None,
        }
    }
}

impl<S: Store> Store for Stopping<S> {
    async fn load(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        self.inner.load(customer_id).await
    }
    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.inner.commit(commit).await
    }
    async fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.inner.is_processed(event_id).await
    }
    async fn due(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DuePage, StoreError> {
        self.inner.due(shard, until, limit, cursor).await
    }
    async fn set_aside(&self, customer_id: &str, due: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.set_aside(customer_id, due).await
    }
    async fn sends(&self, customer_id: &str) -> Result<Vec<SendEntry>, StoreError> {
        self.inner.sends(customer_id).await
    }
    async fn claim_send(
        &self,
        customer_id: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        if self.stops_at(StopAt::ErasedBeforeClaim) {
            self.inner.erase_customer(customer_id).await?;
        }
        let claimed = self
            .inner
            .claim_send(customer_id, key, now, lease_until)
            .await?;
        *self.claimed.lock().unwrap() |= claimed.is_some();
        Ok(claimed)
    }
    async fn settle_send(
        &self,
        customer_id: &str,
        key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        if self.stops_at(StopAt::AfterSend) {
            return Err(Self::stopped());
        }
        if self.stops_at(StopAt::ErasedBeforeSettle) {
            self.inner.erase_customer(customer_id).await?;
        }
        self.inner.settle_send(customer_id, key, settle).await
    }
    async fn pending_sends(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SendPage, StoreError> {
        self.inner.pending_sends(shard, until, limit, cursor).await
    }
    async fn link_order(&self, order_id: &str, customer_id: &str) -> Result<(), StoreError> {
        self.inner.link_order(order_id, customer_id).await
    }
    async fn order_customer(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.order_customer(order_id).await
    }
    async fn suppress(
        &self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.suppress(address_key, reason, at).await
    }
    async fn suppression(
        &self,
        address_key: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        self.inner.suppression(address_key).await
    }
    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<String, StoreError> {
        self.inner.record_dead_letter(letter).await
    }
    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters(limit).await
    }
    async fn dead_letters_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters_after(after, limit).await
    }
    async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.inner.dead_letter(id).await
    }
    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.remove_dead_letter(id).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_meta(key).await
    }
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.set_meta(key, value).await
    }
    async fn record_feedback(&self, feedback: &Feedback<'_>) -> Result<bool, StoreError> {
        self.inner.record_feedback(feedback).await
    }
    async fn feedback_counts(&self) -> Result<Vec<FeedbackCount>, StoreError> {
        self.inner.feedback_counts().await
    }
    async fn park(&self, parked: &Parked) -> Result<(), StoreError> {
        self.inner.park(parked).await
    }
    async fn parked(&self, order_id: &str, now: DateTime<Utc>) -> Result<Vec<Parked>, StoreError> {
        self.inner.parked(order_id, now).await
    }
    async fn unpark(&self, order_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.inner.unpark(order_id, event_id).await
    }
    async fn erase_customer(&self, customer_id: &str) -> Result<Erased, StoreError> {
        self.inner.erase_customer(customer_id).await
    }
    async fn journal(
        &self,
        customer_id: &str,
    ) -> Result<Vec<nudge_core::journal::JournalEntry>, StoreError> {
        self.inner.journal(customer_id).await
    }
    async fn journal_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<nudge_core::store::JournalPage, StoreError> {
        self.inner.journal_page(since, cursor, limit).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        // The runner flushes after its claims: the claims are kept, then the process stops.
        if self.stops_at(StopAt::AfterClaim) && *self.claimed.lock().unwrap() {
            self.inner.flush().await?;
            return Err(Self::stopped());
        }
        self.inner.flush().await
    }

    async fn customers(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<nudge_core::store::CustomerPage, StoreError> {
        self.inner.customers(cursor, limit).await
    }
}

/// A mailer that counts what it sent, per idempotency key; it can answer
/// [`Mailer::lookup`] (as the outbox does) or not (as SES does), and fail retryably a given
/// number of times first.
#[derive(Debug, Default)]
pub struct TestMailer {
    sent: Mutex<HashMap<String, usize>>,
    can_lookup: bool,
    failures_left: Mutex<usize>,
    ambiguous_left: Mutex<usize>,
}

impl TestMailer {
    /// A mailer that cannot look up what it sent (like SES).
    pub fn blind() -> Self {
        TestMailer::default()
    }

    /// A mailer that can look up what it sent (like the outbox).
    pub fn looking_up() -> Self {
        TestMailer {
            can_lookup: true,
            ..TestMailer::default()
        }
    }

    /// The same mailer, failing retryably `n` times before it sends.
    pub fn failing(self, n: usize) -> Self {
        *self.failures_left.lock().unwrap() = n;
        self
    }

    /// The same mailer, taking the first `n` emails it is given but answering as SES does when
    /// it answers 500 after taking one ([`MailError::MaybeSent`]).
    pub fn ambiguous(self, n: usize) -> Self {
        *self.ambiguous_left.lock().unwrap() = n;
        self
    }

    /// How often the email `key` was sent.
    pub fn times_sent(&self, key: &str) -> usize {
        self.sent.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

impl Mailer for TestMailer {
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        {
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(MailError::Throttled {
                    message: "a test's throttling".to_owned(),
                    source: None,
                });
            }
        }
        *self
            .sent
            .lock()
            .unwrap()
            .entry(send.idempotency_key.clone())
            .or_default() += 1;
        let mut ambiguous = self.ambiguous_left.lock().unwrap();
        if *ambiguous > 0 {
            *ambiguous -= 1;
            return Err(MailError::MaybeSent {
                message: "a test's 500 after taking the email".to_owned(),
                source: None,
            });
        }
        Ok(Receipt {
            message_id: format!("m-{}", send.idempotency_key),
        })
    }

    async fn lookup(&self, send: &SendRecord) -> Result<Lookup, MailError> {
        if !self.can_lookup {
            return Ok(Lookup::Unknown);
        }
        Ok(match self.times_sent(&send.idempotency_key) {
            0 => Lookup::NotDelivered,
            _ => Lookup::Delivered(Receipt {
                message_id: format!("m-{}", send.idempotency_key),
            }),
        })
    }
}

/// The time of every case: 2026-03-01T00:00:00Z.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// The send every case logs for `c-1` under `k-1`: an email of `category`, or a webhook call
/// when `category` is `webhook`.
fn logged_send(category: &str) -> SendRecord {
    let (kind, payload) = match category {
        "webhook" => (
            SendKind::Webhook,
            WebhookRequest {
                url: "https://hooks.example.com/nudge".to_owned(),
                method: "POST".to_owned(),
                body: r#"{"order":"1001"}"#.to_owned(),
                secret: None,
            }
            .to_payload(),
        ),
        _ => (
            SendKind::Email,
            b"To: <c@example.com>\r\nSubject: hi\r\n\r\nhello".to_vec(),
        ),
    };
    SendRecord {
        idempotency_key: "k-1".to_owned(),
        customer_id: "c-1".to_owned(),
        workflow: "a-workflow".to_owned(),
        step: "a-step".to_owned(),
        kind,
        category: category.to_owned(),
        tags: vec![],
        at: t0(),
        payload,
    }
}

/// A webhook caller that counts the calls its receiver accepted, per idempotency key, after
/// failing retryably a given number of times, or refusing every call (HTTP 400).
#[derive(Debug, Default)]
pub struct TestWebhooks {
    accepted: Mutex<HashMap<String, usize>>,
    failures_left: Mutex<usize>,
    refusing: bool,
}

impl TestWebhooks {
    /// A receiver that accepts every call, after `failures` retryable failures (HTTP 503).
    pub fn failing(failures: usize) -> Self {
        TestWebhooks {
            failures_left: Mutex::new(failures),
            ..TestWebhooks::default()
        }
    }

    /// A receiver that refuses every call (HTTP 400).
    pub fn refusing() -> Self {
        TestWebhooks {
            refusing: true,
            ..TestWebhooks::default()
        }
    }

    /// How often the receiver accepted the call `key`.
    pub fn times_accepted(&self, key: &str) -> usize {
        self.accepted.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

impl WebhookCaller for TestWebhooks {
    async fn call(
        &self,
        send: &SendRecord,
        _request: &WebhookRequest,
        _now: DateTime<Utc>,
    ) -> Result<WebhookReceipt, WebhookError> {
        if self.refusing {
            return Err(WebhookError::Rejected { status: 400 });
        }
        {
            let mut left = self.failures_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(WebhookError::Unavailable { status: 503 });
            }
        }
        *self
            .accepted
            .lock()
            .unwrap()
            .entry(send.idempotency_key.clone())
            .or_default() += 1;
        Ok(WebhookReceipt { status: 200 })
    }
}

/// One case: what stops where, with which mailer, for which category, and what must follow.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    category: &'static str,
    stop: StopAt,
    /// The sender delivers after the commit (false: it stopped right after the commit).
    delivers: bool,
    looking_up: bool,
    failures: usize,
    /// Emails the mailer takes but answers as if it may not have (SES's 500).
    ambiguous: usize,
    /// Times the mailer sent the email in the end.
    times_sent: usize,
    /// The send's final status.
    status: SendStatus,
}

const CASES: &[Case] = &[
    Case {
        name: "after the commit, transactional",
        category: "transactional",
        stop: StopAt::Nowhere,
        delivers: false,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "after the commit, marketing",
        category: "marketing",
        stop: StopAt::Nowhere,
        delivers: false,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "after the claim, transactional",
        category: "transactional",
        stop: StopAt::AfterClaim,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "after the claim, marketing",
        category: "marketing",
        stop: StopAt::AfterClaim,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 0,
        status: SendStatus::Unknown,
    },
    Case {
        name: "after the claim, marketing, mailer that looks up",
        category: "marketing",
        stop: StopAt::AfterClaim,
        delivers: true,
        looking_up: true,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "after the send, transactional, blind mailer",
        category: "transactional",
        stop: StopAt::AfterSend,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 2,
        status: SendStatus::Sent,
    },
    Case {
        name: "after the send, transactional, mailer that looks up",
        category: "transactional",
        stop: StopAt::AfterSend,
        delivers: true,
        looking_up: true,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "after the send, marketing, blind mailer",
        category: "marketing",
        stop: StopAt::AfterSend,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Unknown,
    },
    Case {
        name: "after the send, marketing, mailer that looks up",
        category: "marketing",
        stop: StopAt::AfterSend,
        delivers: true,
        looking_up: true,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "a retryable failure, then a retry",
        category: "marketing",
        stop: StopAt::Nowhere,
        delivers: true,
        looking_up: false,
        failures: 1,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "a webhook call, after the claim",
        category: "webhook",
        stop: StopAt::AfterClaim,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "a webhook call, after the send",
        category: "webhook",
        stop: StopAt::AfterSend,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 0,
        times_sent: 2,
        status: SendStatus::Sent,
    },
    Case {
        name: "a webhook call, a retryable failure, then a retry",
        category: "webhook",
        stop: StopAt::Nowhere,
        delivers: true,
        looking_up: false,
        failures: 2,
        ambiguous: 0,
        times_sent: 1,
        status: SendStatus::Sent,
    },
    Case {
        name: "the mailer may have taken it (a 500), marketing",
        category: "marketing",
        stop: StopAt::Nowhere,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 1,
        times_sent: 1,
        status: SendStatus::Unknown,
    },
    Case {
        name: "the mailer may have taken it (a 500), transactional",
        category: "transactional",
        stop: StopAt::Nowhere,
        delivers: true,
        looking_up: false,
        failures: 0,
        ambiguous: 1,
        times_sent: 2,
        status: SendStatus::Sent,
    },
];

/// Runs every case of the table above, each on a fresh store from `make` and with `engine`
/// (any engine: the cases log their send with a commit of their own and use the runner's
/// delivery only).
pub async fn run_all<S: Store>(make: impl AsyncFn() -> S, engine: &Engine<'_>) {
    for case in CASES {
        run_case(Stopping::new(make().await, case.stop), engine, case).await;
    }
    refused_webhook_fails_at_once(make().await, engine).await;
    retries_run_out(make().await, engine).await;
    a_failing_timer_is_set_aside(make().await, engine).await;
    an_email_without_its_message_fails(make().await, engine).await;
    a_runner_that_cannot_deliver_every_kind_does_not_sweep(make().await, engine).await;
    for stop in [StopAt::ErasedBeforeClaim, StopAt::ErasedBeforeSettle] {
        for category in ["transactional", "marketing", "webhook"] {
            an_erasure_racing_a_delivery(Stopping::new(make().await, stop), engine, category).await;
        }
    }
}

/// A customer erased while their send is being delivered: the sweep (or the delivery after
/// the commit) goes on with the other sends rather than failing on a send that is gone. Erased
/// before the claim, the send never leaves; erased while it was out, it left once and nothing
/// of it is kept (no settle writes the customer back).
async fn an_erasure_racing_a_delivery<S: Store>(
    store: Stopping<S>,
    engine: &Engine<'_>,
    category: &str,
) {
    let stop = *store.stop.lock().unwrap();
    let case = format!("send guarantee, {category} send, customer erased at {stop:?}");
    let mailer = TestMailer::blind();
    let webhooks = TestWebhooks::failing(0);
    let runner = Runner::new(engine, store, Some(&mailer)).with_webhooks(&webhooks);
    log(runner.store(), category).await;
    let later = t0() + chrono::TimeDelta::minutes(1);
    let mut delivered = Vec::new();
    for shard in 0..nudge_core::store::DUE_SHARDS {
        let swept = runner.sweep(shard, later, 10, 100).await;
        delivered.extend(swept.unwrap_or_else(|e| panic!("{case}: the sweep failed: {e}")));
    }
    let left = usize::from(stop == StopAt::ErasedBeforeSettle);
    assert_eq!(
        mailer.times_sent("k-1") + webhooks.times_accepted("k-1"),
        left,
        "{case}: times it left"
    );
    assert_eq!(delivered.len(), left, "{case}: deliveries {delivered:?}");
    runner.store().resume();
    let sends = runner.store().sends("c-1").await.expect("the send log");
    assert!(sends.is_empty(), "{case}: the send log after: {sends:?}");
    assert_eq!(
        runner.store().load("c-1").await.expect("the load"),
        None,
        "{case}: the state after"
    );
}

/// A runner without a webhook caller refuses to sweep (it would claim webhook calls it cannot
/// make, spending their attempts), and leaves the pending send untouched.
async fn a_runner_that_cannot_deliver_every_kind_does_not_sweep<S: Store>(
    store: S,
    engine: &Engine<'_>,
) {
    const CASE: &str = "send guarantee, a sweep without a webhook caller";
    let mailer = TestMailer::blind();
    let runner = Runner::new(engine, store, Some(&mailer));
    log(runner.store(), "webhook").await;
    let later = t0() + chrono::TimeDelta::hours(1);
    for shard in 0..nudge_core::store::DUE_SHARDS {
        let swept = runner.sweep(shard, later, 10, 100).await;
        assert!(
            matches!(swept, Err(RunnerError::CannotSweep("webhook caller"))),
            "{CASE}: {swept:?}"
        );
    }
    let entries = runner.store().sends("c-1").await.expect("the send log");
    assert_eq!(
        (entries[0].status, entries[0].attempts),
        (SendStatus::Pending, 0),
        "{CASE}: the send"
    );
}

/// An email logged without its message (it could not be built when it was decided) is
/// settled failed at its first attempt, with the reason, and the mailer never gets it.
async fn an_email_without_its_message_fails<S: Store>(store: S, engine: &Engine<'_>) {
    const CASE: &str = "send guarantee, an email without its message";
    let mailer = TestMailer::blind();
    let runner = Runner::new(engine, store, Some(&mailer));
    let mut send = logged_send("transactional");
    send.payload.clear();
    let sends = [send];
    let commit = Commit {
        customer_id: "c-1",
        expected_version: 0,
        state: b"{}",
        next_wake: None,
        event_id: None,
        sends: &sends,
        journal: &[],
    };
    let outcome = runner.store().commit(commit).await.expect("the commit");
    assert_eq!(outcome, CommitOutcome::Committed { version: 1 }, "{CASE}");
    runner
        .deliver(&[("c-1", "k-1")], t0())
        .await
        .expect("delivery");
    let (status, reason) = settled(runner.store()).await;
    assert_eq!(status, SendStatus::Failed, "{CASE}");
    assert!(
        reason.is_some_and(|r| r.contains("without its message")),
        "{CASE}: the reason"
    );
    assert_eq!(mailer.times_sent("k-1"), 0, "{CASE}: sent");
}

/// A timer whose wake fails with the customer's own error (here an unreadable state) is kept as
/// a dead letter and taken out of the due index, so the next ticks do not retry it ahead of
/// everyone else; another customer's timer stays; the customer's next commit arms a timer
/// again.
async fn a_failing_timer_is_set_aside<S: Store>(store: S, engine: &Engine<'_>) {
    const CASE: &str = "send guarantee, a failing timer";
    let runner = Runner::new(engine, store, None::<&TestMailer>);
    let due = t0();
    for (customer, state) in [("c-1", &b"not a state"[..]), ("c-2", &b"{}"[..])] {
        let commit = Commit {
            customer_id: customer,
            expected_version: 0,
            state,
            next_wake: Some(due),
            event_id: None,
            sends: &[],
            journal: &[],
        };
        let outcome = runner.store().commit(commit).await.expect("the commit");
        assert_eq!(outcome, CommitOutcome::Committed { version: 1 }, "{CASE}");
    }
    let clock = due + chrono::TimeDelta::seconds(30);
    let fired = runner.fire("c-1", due, clock).await.expect("fired");
    let Fired::SetAside { dead_letter, .. } = fired else {
        panic!("{CASE}: {fired:?} is not set aside");
    };
    let letters = runner.store().dead_letters(10).await.expect("dead letters");
    assert_eq!(letters.len(), 1, "{CASE}: dead letters");
    assert_eq!(letters[0].id, dead_letter, "{CASE}: the dead letter's id");
    assert_eq!(
        letters[0].source, "timer",
        "{CASE}: the dead letter's source"
    );
    assert!(
        letters[0].body.contains("\"c-1\""),
        "{CASE}: the body names the customer"
    );
    assert_eq!(
        letters[0].customer_id.as_deref(),
        Some("c-1"),
        "{CASE}: the dead letter names its customer (erasing them removes it)"
    );
    let later = due + chrono::TimeDelta::days(1);
    let still_due = nudge_core::store::all_due(runner.store(), later, 10)
        .await
        .expect("due");
    assert_eq!(
        still_due,
        vec![(due, "c-2".to_owned())],
        "{CASE}: due after it"
    );
    let commit = Commit {
        customer_id: "c-1",
        expected_version: 1,
        state: b"{}",
        next_wake: Some(later),
        event_id: None,
        sends: &[],
        journal: &[],
    };
    let outcome = runner.store().commit(commit).await.expect("the commit");
    assert_eq!(outcome, CommitOutcome::Committed { version: 2 }, "{CASE}");
    let due_again = nudge_core::store::all_due(runner.store(), later, 10)
        .await
        .expect("due");
    assert_eq!(
        due_again,
        vec![(due, "c-2".to_owned()), (later, "c-1".to_owned())],
        "{CASE}: due after the customer's next commit"
    );
}

async fn run_case<S: Store>(store: Stopping<S>, engine: &Engine<'_>, case: &Case) {
    let name = case.name;
    let mailer = if case.looking_up {
        TestMailer::looking_up()
    } else {
        TestMailer::blind()
    }
    .failing(case.failures)
    .ambiguous(case.ambiguous);
    let webhooks = TestWebhooks::failing(case.failures);
    let runner = Runner::new(engine, store, Some(&mailer)).with_webhooks(&webhooks);
    let send = [logged_send(case.category)];
    let outcome = runner
        .store()
        .commit(Commit {
            customer_id: "c-1",
            expected_version: 0,
            state: b"{}",
            next_wake: None,
            event_id: Some("e-1"),
            sends: &send,
            journal: &[],
        })
        .await
        .unwrap_or_else(|e| panic!("send guarantee, {name}: the commit failed: {e}"));
    assert_eq!(
        outcome,
        CommitOutcome::Committed { version: 1 },
        "send guarantee, {name}"
    );
    let key = [("c-1", "k-1")];
    if case.delivers {
        let result = runner.deliver(&key, t0()).await;
        assert_eq!(
            result.is_err(),
            case.stop != StopAt::Nowhere,
            "send guarantee, {name}: the first delivery's result ({result:?})"
        );
    }
    runner.store().resume();
    // Within the lease, a sweep leaves a claimed send alone: its sender may still be at it.
    let within = t0() + SEND_LEASE - chrono::TimeDelta::milliseconds(1);
    let swept_early = sweep_all(&runner, within).await;
    if case.stop != StopAt::Nowhere {
        assert_eq!(
            swept_early, 0,
            "send guarantee, {name}: a sweep within the lease"
        );
    }
    // After the lease (and after any retry's wait), everything is settled.
    let later = t0() + SEND_LEASE + chrono::TimeDelta::hours(1);
    sweep_all(&runner, later).await;
    assert_eq!(
        mailer.times_sent("k-1") + webhooks.times_accepted("k-1"),
        case.times_sent,
        "send guarantee, {name}: times it was sent"
    );
    let entries = runner
        .store()
        .sends("c-1")
        .await
        .unwrap_or_else(|e| panic!("send guarantee, {name}: sends failed: {e}"));
    assert_eq!(entries.len(), 1, "send guarantee, {name}: one send logged");
    assert_eq!(
        entries[0].status, case.status,
        "send guarantee, {name}: the final status"
    );
    assert!(
        entries[0].retry_at.is_none(),
        "send guarantee, {name}: settled, out of the sweep"
    );
    // A last sweep finds nothing: no send is made a third time.
    assert_eq!(
        sweep_all(&runner, later + chrono::TimeDelta::days(30)).await,
        0,
        "send guarantee, {name}: a sweep after everything settled"
    );
}

/// Logs the case's send (`category`) for `c-1` in a commit of its own.
async fn log<S: Store>(store: &S, category: &str) {
    let send = [logged_send(category)];
    let commit = Commit {
        customer_id: "c-1",
        expected_version: 0,
        state: b"{}",
        next_wake: None,
        event_id: Some("e-1"),
        sends: &send,
        journal: &[],
    };
    let outcome = store.commit(commit).await.expect("the commit");
    assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
}

/// The final status of `c-1`'s `k-1`, and its reason.
async fn settled<S: Store>(store: &S) -> (SendStatus, Option<String>) {
    let entries = store.sends("c-1").await.expect("the send log");
    (entries[0].status, entries[0].reason.clone())
}

/// A webhook call its receiver refuses (a 4xx) is settled failed at its first attempt and
/// never made again.
async fn refused_webhook_fails_at_once<S: Store>(store: S, engine: &Engine<'_>) {
    let webhooks = TestWebhooks::refusing();
    let mailer = TestMailer::blind();
    let runner = Runner::new(engine, store, Some(&mailer)).with_webhooks(&webhooks);
    log(runner.store(), "webhook").await;
    let delivered = runner
        .deliver(&[("c-1", "k-1")], t0())
        .await
        .expect("delivery");
    assert_eq!(delivered.len(), 1, "send guarantee, a refused webhook call");
    let later = t0() + chrono::TimeDelta::days(2);
    assert_eq!(
        sweep_all(&runner, later).await,
        0,
        "send guarantee, a refused webhook call swept"
    );
    let (status, reason) = settled(runner.store()).await;
    assert_eq!(
        status,
        SendStatus::Failed,
        "send guarantee, a refused webhook call"
    );
    assert!(
        reason.is_some_and(|r| r.contains("400")),
        "send guarantee: the reason names the status"
    );
}

/// A send that keeps failing retryably is tried [`MAX_SEND_ATTEMPTS`] times, at the waits of
/// `retry_delay`, then settled failed with the last error; sweeps before each retry's time
/// leave it alone.
async fn retries_run_out<S: Store>(store: S, engine: &Engine<'_>) {
    let mailer = TestMailer::blind().failing(usize::MAX);
    let runner = Runner::new(engine, store, Some(&mailer)).with_webhooks(TestWebhooks::default());
    log(runner.store(), "transactional").await;
    runner
        .deliver(&[("c-1", "k-1")], t0())
        .await
        .expect("delivery");
    let mut clock = t0();
    let mut attempts = 1;
    // A sweep every ten minutes for a day.
    for _ in 0..(24 * 6) {
        clock += chrono::TimeDelta::minutes(10);
        attempts += sweep_all(&runner, clock).await;
    }
    assert_eq!(
        attempts, MAX_SEND_ATTEMPTS as usize,
        "send guarantee: attempts before giving up"
    );
    let (status, reason) = settled(runner.store()).await;
    assert_eq!(
        status,
        SendStatus::Failed,
        "send guarantee: retries ran out"
    );
    assert!(
        reason.is_some_and(|r| r.starts_with(&format!("{MAX_SEND_ATTEMPTS} attempts failed"))),
        "send guarantee: the reason says the attempts ran out"
    );
}

/// Sweeps every shard at `clock`; how many sends it settled.
async fn sweep_all<S: Store, M: Mailer, W: WebhookCaller>(
    runner: &Runner<'_, S, M, W>,
    clock: DateTime<Utc>,
) -> usize {
    let mut n = 0;
    for shard in 0..nudge_core::store::DUE_SHARDS {
        n += runner
            .sweep(shard, clock, 10, 100)
            .await
            .unwrap_or_else(|e| panic!("send guarantee: the sweep failed: {e}"))
            .len();
    }
    n
}
