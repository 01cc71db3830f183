//! The `scheduler` function: one tick a minute fires every customer whose timer is due and
//! delivers what is pending, at no more than the account's SES send rate.
//!
//! **Input.** `{"time": "<RFC 3339>"}`: the SAM template's EventBridge Scheduler schedule
//! passes `{"time": "<aws.scheduler.scheduled-time>"}`; a plain EventBridge scheduled event
//! (`"detail-type": "Scheduled Event"`) has the same top-level `time` and is accepted too. The
//! tick's `now` is that time, never the wall clock, so tests (and the end-to-end story) drive
//! virtual time. An input without a usable `time` is an error naming what is wrong
//! ([`InputError`]); nothing is fired.
//!
//! **One tick** ([`tick`]): the 16 due shards ([`DUE_SHARDS`]) are worked concurrently, each
//! by a task of its own:
//! 1. *fire*: the shard's timers due at or before `now` are read a page of [`DUE_PAGE`] at a
//!    time from the sparse `sweep` index (a `Query` of one shard and a time range: never a
//!    scan) and fired with [`Runner::fire`], at most [`CONCURRENT_CUSTOMERS`] customers at once
//!    across all shards. The firing runner leaves the sends its commits log pending
//!    ([`Runner::deliver_later`]), so that no email leaves outside the rate limit. A customer
//!    whose wake fails with their own error is set aside as a dead letter by the runner
//!    (`set_aside` in the summary); a store failure leaves the timer where it is, for the next
//!    tick (`failed`);
//! 2. *send*: beside the firing (so that sends an earlier tick deferred go from the first
//!    second, not after the firing), [`Runner::sweep`] of the shard delivers its pending
//!    sends: those the firing logged (swept again after each page fired and once it ended),
//!    those an earlier tick deferred, retries whose time came, and claims whose lease
//!    ([`SEND_LEASE`]) ended (a sender that stopped). Sends are paced by one token bucket
//!    shared by every shard ([`TokenBucket`]): `Config::ses_rate` tokens a second, at most
//!    one second's worth held, a shard taking a small batch ([`send_batch`]) of tokens before
//!    each sweep call and handing back what it did not use. A send is claimed only once its
//!    token is held: what cannot go before the tick ends stays pending and unclaimed (no
//!    attempt counted) and goes at a later tick: deferred, never dropped. The sweeping runner
//!    delivers one send at a time (claim, send, settle), so a process that stops mid-sweep
//!    leaves at most one send claimed and unsettled (settled by a later sweep as the send
//!    guarantee says: docs/ARCHITECTURE.md).
//!
//! **Time.** A tick works for at most its budget ([`budget`]): [`MAX_TICK`] (50 s, so a tick
//! ends before the next minute's starts), the invocation's deadline less [`DEADLINE_MARGIN`],
//! and `Config::time_budget` when set (local runtimes give deadlines that cannot be trusted).
//! Work is only started within the budget: no customer is fired and no token taken after it,
//! so a tick ends at most one fire or one batch of sends past it (well within the margin);
//! what is left is due at the next tick, which picks it up first (oldest first).
//!
//! **No overlapping ticks.** The SAM template gives the function a reserved concurrency of 1:
//! a tick that arrives while one runs is throttled and retried by Lambda's asynchronous
//! invocation, never run beside it (a maximum event age of a minute on the function drops
//! such a late tick: the next one does its work). Were two ticks to overlap, nothing would be
//! fired or sent twice (commits are versioned, claims conditional), but each would pace at the
//! full SES rate. No store lease is taken.
//!
//! **Output.** A [`TickSummary`] (the function's answer, and one log line): customers fired,
//! set aside and failed, sends delivered (by outcome) and left pending, whether the tick
//! stopped early, per shard. It names no customer.
//!
//! **Limits.** Webhook calls are delivered by the same sweep and count against the email rate
//! (the index does not tell a send's kind before it is claimed). The count of sends left
//! pending is read back after the sweeps, up to [`LEFT_COUNT_MAX`] per shard (so "at least"
//! beyond). A send logged by this tick's firing but not yet visible on the index (DynamoDB's
//! indexes are eventually consistent, usually within a second) waits for the next tick.
//! Throughput: about 16 sends in flight at once (one per shard), so rates far above 200
//! emails a second would need more senders per shard. A tick whose `time` is in the future
//! fires what is due by then: only the schedule may invoke the function (IAM).
//!
//! [`DUE_SHARDS`]: nudge_core::store::DUE_SHARDS
//! [`Runner::fire`]: nudge_core::runner::Runner::fire
//! [`Runner::deliver_later`]: nudge_core::runner::Runner::deliver_later
//! [`Runner::sweep`]: nudge_core::runner::Runner::sweep
//! [`SEND_LEASE`]: nudge_core::runner::SEND_LEASE

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use nudge_aws::DynamoDbStore;
use nudge_core::runner::{DeliveryOutcome, Fired};
use nudge_core::store::{DUE_SHARDS, Store};
use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::app::{App, AwsRunner, bounded_send_worst};

/// The longest a tick works: 50 seconds, so that it ends before the next minute's tick.
pub const MAX_TICK: Duration = Duration::from_secs(50);

/// How long before the invocation's deadline a tick stops starting work: 5 seconds, room for
/// the last fire or batch of sends in flight and the count of what is left.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// The most customers fired at once, across all shards.
pub const CONCURRENT_CUSTOMERS: usize = 32;

/// Due timers read per `Query`.
pub const DUE_PAGE: usize = 100;

/// The most sends one sweep call of a shard takes tokens for.
pub const MAX_SEND_BATCH: u32 = 10;

/// Pending sends read per `Query` when counting what a tick leaves.
const LEFT_COUNT_PAGE: usize = 1000;

/// The most pending sends counted per shard at the end of a tick.
pub const LEFT_COUNT_MAX: usize = 10_000;

/// The scheduler's input was not a tick. Quotes nothing of the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    /// Not JSON at all.
    #[error("the scheduler's input is not JSON: {0}")]
    NotJson(String),
    /// JSON, but without a string `time` at the top level.
    #[error(
        "the scheduler's input has no `time` string: expected {{\"time\": \"<RFC 3339>\"}} (the schedule's input) or an EventBridge scheduled event"
    )]
    NoTime,
    /// A `time` that is not an RFC 3339 time.
    #[error("the scheduler's `time` is not an RFC 3339 time ({0})")]
    BadTime(String),
}

/// Why a tick failed as a whole (the invocation fails: Lambda records it and the errors alarm
/// sees it).
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    /// The input was not a tick.
    #[error(transparent)]
    Input(#[from] InputError),
    /// No shard could be read: the store is unreachable. Nothing was fired; the next tick
    /// tries again.
    #[error("no due shard could be read ({0}); nothing was fired")]
    Unreachable(String),
}

impl From<TickError> for lambda_runtime::Diagnostic {
    fn from(e: TickError) -> Self {
        let error_type = match &e {
            TickError::Input(_) => "nudge::SchedulerInput",
            TickError::Unreachable(_) => "nudge::StoreUnreachable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// The tick's time from the scheduler's input (see the module documentation).
pub fn parse_input(text: &str) -> Result<DateTime<Utc>, InputError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| InputError::NotJson(e.to_string()))?;
    let time = value
        .get("time")
        .and_then(serde_json::Value::as_str)
        .ok_or(InputError::NoTime)?;
    DateTime::parse_from_rfc3339(time)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| InputError::BadTime(e.to_string()))
}

/// The time left before Lambda's deadline (`deadline_ms`, unix milliseconds, as the runtime's
/// context gives it) at `now`; `None` when it has passed (no real invocation starts past its
/// deadline: a local runtime's, which [`budget`] then ignores).
pub fn remaining(deadline_ms: u64, now: SystemTime) -> Option<Duration> {
    let deadline = UNIX_EPOCH.checked_add(Duration::from_millis(deadline_ms))?;
    deadline.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// How long a tick may work: the least of [`MAX_TICK`], the time `remaining` before the
/// deadline less [`DEADLINE_MARGIN`], and the `configured` budget (`Config::time_budget`).
pub fn budget(remaining: Option<Duration>, configured: Option<Duration>) -> Duration {
    let mut budget = MAX_TICK;
    if let Some(r) = remaining {
        budget = budget.min(r.saturating_sub(DEADLINE_MARGIN));
    }
    if let Some(c) = configured {
        budget = budget.min(c);
    }
    budget
}

/// How many tokens a shard takes before each sweep call at `rate` emails a second: a quarter
/// second's worth, at least 1 and at most [`MAX_SEND_BATCH`] (one `Query` per batch, and a
/// batch short enough to end well within [`DEADLINE_MARGIN`]).
pub fn send_batch(rate: u32) -> u32 {
    rate.div_ceil(4).clamp(1, MAX_SEND_BATCH)
}

/// A token bucket on a clock given by the caller (the time since the tick started), so that
/// it is tested on a fake one: `rate` tokens a second, at most `rate` held (one second's
/// worth), full at the start. Over any `w` seconds it grants at most `rate * (w + 1)` tokens.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Duration,
}

/// Below this, a shortfall of tokens is rounding (a wait of exactly the time asked for).
const EPSILON: f64 = 1e-9;

impl TokenBucket {
    /// A full bucket of `rate` tokens a second (a rate of 0 is read as 1).
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            capacity: rate,
            tokens: rate,
            last: Duration::ZERO,
        }
    }

    /// Takes `want` tokens (at least 1, at most the capacity) at time `at`: `Ok(n)` with the
    /// number taken, or `Err(wait)`: how long until there are `want`.
    pub fn take(&mut self, at: Duration, want: u32) -> Result<u32, Duration> {
        self.refill(at);
        let want = f64::from(want.max(1)).min(self.capacity);
        if self.tokens + EPSILON >= want {
            self.tokens = (self.tokens - want).max(0.0);
            // `want` is a whole number of at most u32::MAX.
            Ok(want as u32)
        } else {
            // Rounded up to the next nanosecond, so that waiting it always grants them.
            let nanos = ((want - self.tokens) / self.rate * 1e9).ceil();
            Err(Duration::from_nanos((nanos as u64).max(1)))
        }
    }

    /// Gives back `n` tokens taken and not used (up to the capacity).
    pub fn give_back(&mut self, n: u32) {
        self.tokens = (self.tokens + f64::from(n)).min(self.capacity);
    }

    fn refill(&mut self, at: Duration) {
        if at > self.last {
            let gained = (at - self.last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + gained).min(self.capacity);
            self.last = at;
        }
    }
}

/// What one shard did in a tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShardSummary {
    /// The shard.
    pub shard: u16,
    /// Customers woken.
    pub fired: usize,
    /// Customers whose wake failed with their own error: dead-lettered and set aside.
    pub set_aside: usize,
    /// Customers whose wake failed with the store's error: their timer stays for the next
    /// tick.
    pub failed: usize,
    /// Sends delivered (settled sent).
    pub sent: usize,
    /// Sends that failed for now, to be retried later.
    pub retrying: usize,
    /// Sends settled failed.
    pub send_failed: usize,
    /// Sends settled unknown (marketing email whose earlier sender stopped mid-way).
    pub unknown: usize,
    /// Sends still due and pending after the tick (counted up to [`LEFT_COUNT_MAX`]).
    pub left_pending: usize,
    /// Whether every due customer was fired and every due send tried.
    pub complete: bool,
    /// The store's error that stopped this shard, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a tick did: the function's answer and its log line. Names no customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TickSummary {
    /// The tick's time (`now`), RFC 3339.
    pub time: String,
    /// The time budget, milliseconds.
    pub budget_ms: u64,
    /// The time the tick took, milliseconds.
    pub elapsed_ms: u64,
    /// Customers woken.
    pub fired: usize,
    /// Customers dead-lettered and set aside.
    pub set_aside: usize,
    /// Customers left for the next tick by a store error.
    pub failed: usize,
    /// Sends delivered.
    pub sends_delivered: usize,
    /// Sends that failed for now (retried later).
    pub sends_retrying: usize,
    /// Sends settled failed.
    pub sends_failed: usize,
    /// Sends settled unknown.
    pub sends_unknown: usize,
    /// Sends due and still pending after the tick: deferred to the next.
    pub sends_left_pending: usize,
    /// Whether some shard had work left when the budget ran out (or stopped on an error).
    pub stopped_early: bool,
    /// Shards stopped by a store error.
    pub shard_errors: usize,
    /// Per shard.
    pub shards: Vec<ShardSummary>,
}

/// Handles one invocation: parses the tick's time from `raw`, works for the [`budget`] of
/// `remaining` (the time before Lambda's deadline) and `Config::time_budget`, and logs and
/// returns the summary.
pub async fn handle(
    app: &App,
    raw: &RawValue,
    remaining: Option<Duration>,
) -> Result<TickSummary, TickError> {
    let now = parse_input(raw.get())?;
    let summary = tick(app, now, budget(remaining, app.config.time_budget)).await;
    if summary.shard_errors == usize::from(DUE_SHARDS) {
        let first = summary
            .shards
            .iter()
            .find_map(|s| s.error.clone())
            .unwrap_or_default();
        return Err(TickError::Unreachable(first));
    }
    Ok(summary)
}

/// What every shard's task shares.
struct Tick {
    now: DateTime<Utc>,
    store: DynamoDbStore,
    /// Leaves the sends it logs pending.
    firer: AwsRunner,
    /// Delivers one send at a time (claim, send, settle).
    sender: AwsRunner,
    customers: Arc<Semaphore>,
    bucket: Mutex<TokenBucket>,
    batch: u32,
    start: Instant,
    budget: Duration,
}

impl Tick {
    fn out_of_time(&self) -> bool {
        self.start.elapsed() >= self.budget
    }

    /// `want` tokens, waiting for them; 0 when they would come only after the budget.
    async fn tokens(&self, want: u32) -> u32 {
        loop {
            let at = self.start.elapsed();
            if at >= self.budget {
                return 0;
            }
            let taken = self
                .bucket
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(at, want);
            match taken {
                Ok(n) => return n,
                Err(wait) if at + wait >= self.budget => return 0,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    fn give_back(&self, n: u32) {
        if n > 0 {
            self.bucket
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .give_back(n);
        }
    }
}

/// Works one tick at `now` for at most `budget` (see the module documentation) and logs its
/// summary.
pub async fn tick(app: &App, now: DateTime<Utc>, budget: Duration) -> TickSummary {
    let start = Instant::now();
    let shared = Arc::new(Tick {
        now,
        store: app.store.clone(),
        firer: app.runner().deliver_later(),
        sender: app.bounded_runner(),
        customers: Arc::new(Semaphore::new(CONCURRENT_CUSTOMERS)),
        bucket: Mutex::new(TokenBucket::new(app.config.ses_rate)),
        batch: send_batch(app.config.ses_rate),
        start,
        budget,
    });
    let mut tasks = JoinSet::new();
    for shard in 0..DUE_SHARDS {
        let shared = Arc::clone(&shared);
        tasks.spawn(async move { run_shard(&shared, shard).await });
    }
    let mut shards = Vec::with_capacity(usize::from(DUE_SHARDS));
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(s) => shards.push(s),
            // A shard task that panicked (a bug): its work is left for the next tick.
            Err(e) => tracing::error!(error = %e, "a shard's task failed"),
        }
    }
    shards.sort_by_key(|s| s.shard);
    let mut summary = TickSummary {
        time: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        budget_ms: millis(budget),
        elapsed_ms: millis(start.elapsed()),
        stopped_early: shards.len() < usize::from(DUE_SHARDS),
        ..TickSummary::default()
    };
    for s in &shards {
        summary.fired += s.fired;
        summary.set_aside += s.set_aside;
        summary.failed += s.failed;
        summary.sends_delivered += s.sent;
        summary.sends_retrying += s.retrying;
        summary.sends_failed += s.send_failed;
        summary.sends_unknown += s.unknown;
        summary.sends_left_pending += s.left_pending;
        summary.stopped_early |= !s.complete;
        summary.shard_errors += usize::from(s.error.is_some());
    }
    summary.shards = shards;
    let line = serde_json::to_string(&summary).unwrap_or_default();
    if summary.shard_errors > 0 || summary.failed > 0 {
        tracing::error!(summary = %line, "tick done with errors");
    } else {
        tracing::info!(summary = %line, "tick done");
    }
    summary
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How far a shard's firing is: pages fired so far, and whether it ended.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    pages: usize,
    done: bool,
}

/// One shard's tick: fires and sends side by side (sends deferred by an earlier tick go from
/// the first second, those of this tick's firing as its pages are fired), then counts what
/// is left.
async fn run_shard(tick: &Arc<Tick>, shard: u16) -> ShardSummary {
    let (progress, watch) = tokio::sync::watch::channel(Progress::default());
    let mut fires = ShardSummary::default();
    let mut sends = ShardSummary::default();
    let fire = async {
        let fired = fire_shard(tick, shard, &mut fires, &progress).await;
        progress.send_modify(|p| p.done = true);
        fired
    };
    let (fired, swept) = tokio::join!(fire, send_shard(tick, shard, &mut sends, watch));
    let mut s = ShardSummary {
        shard,
        fired: fires.fired,
        set_aside: fires.set_aside,
        failed: fires.failed,
        sent: sends.sent,
        retrying: sends.retrying,
        send_failed: sends.send_failed,
        unknown: sends.unknown,
        ..ShardSummary::default()
    };
    let fired_all = match fired {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(shard, error = %e, "the shard's due timers could not be read");
            s.error = Some(e.to_string());
            false
        }
    };
    let drained = match swept {
        Ok(drained) => drained,
        Err(e) => {
            tracing::error!(shard, error = %e, "the shard's sweep failed");
            s.error.get_or_insert_with(|| e.to_string());
            false
        }
    };
    if !drained {
        s.left_pending = count_left(tick, shard).await;
    }
    s.complete = fired_all && drained && s.error.is_none();
    s
}

/// Fires the shard's due customers, a page at a time, telling `progress` after each page;
/// `Ok(true)` when every one was tried.
async fn fire_shard(
    tick: &Arc<Tick>,
    shard: u16,
    s: &mut ShardSummary,
    progress: &tokio::sync::watch::Sender<Progress>,
) -> Result<bool, nudge_core::store::StoreError> {
    let mut cursor: Option<String> = None;
    loop {
        if tick.out_of_time() {
            return Ok(false);
        }
        let page = tick
            .store
            .due(shard, tick.now, DUE_PAGE, cursor.as_deref())
            .await?;
        let mut fires = JoinSet::new();
        let mut stopped = false;
        for (due, customer_id) in page.due {
            let Ok(permit) = Arc::clone(&tick.customers).acquire_owned().await else {
                stopped = true;
                break;
            };
            if tick.out_of_time() {
                stopped = true;
                break;
            }
            let tick = Arc::clone(tick);
            fires.spawn(async move {
                let _permit = permit;
                tick.firer.fire(&customer_id, due, tick.now).await
            });
        }
        let any = !fires.is_empty();
        while let Some(joined) = fires.join_next().await {
            match joined {
                Ok(Ok(Fired::Applied(_))) => s.fired += 1,
                Ok(Ok(Fired::SetAside { .. })) => s.set_aside += 1,
                Ok(Err(e)) => {
                    // The runner's errors name a customer by reference only.
                    tracing::error!(shard, error = %e, "a due timer could not be fired; it stays for the next tick");
                    s.failed += 1;
                }
                Err(e) => {
                    tracing::error!(shard, error = %e, "a fire task failed");
                    s.failed += 1;
                }
            }
        }
        if any {
            progress.send_modify(|p| p.pages += 1);
        }
        if stopped {
            return Ok(false);
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(true),
        }
    }
}

/// How many sends, each taking at worst [`bounded_send_worst`], end within `left`.
fn sends_that_fit(left: Duration) -> u32 {
    let worst = bounded_send_worst().as_millis().max(1);
    u32::try_from(left.as_millis() / worst).unwrap_or(u32::MAX)
}

/// Sweeps the shard's pending sends at the shared rate while its firing goes on and after;
/// `Ok(true)` when none is left due once the firing ended.
async fn send_shard(
    tick: &Arc<Tick>,
    shard: u16,
    s: &mut ShardSummary,
    mut firing: tokio::sync::watch::Receiver<Progress>,
) -> Result<bool, nudge_core::runner::RunnerError> {
    loop {
        // Read before the sweep: a sweep that finds the shard empty after the firing ended
        // has seen everything the firing logged.
        let before = *firing.borrow_and_update();
        // A batch is sent one send after another, and none may be cut off between its claim
        // and its settle (a crash, for the send guarantee): only as many sends as would end
        // within the budget, each at its worst (`bounded_send_worst`), are claimed.
        let fit = sends_that_fit(tick.budget.saturating_sub(tick.start.elapsed()));
        if fit == 0 {
            return Ok(false);
        }
        let mut granted = tick.tokens(tick.batch.min(fit)).await;
        // Waiting for tokens took time: what still fits now.
        let fit = sends_that_fit(tick.budget.saturating_sub(tick.start.elapsed()));
        if granted > fit {
            tick.give_back(granted - fit);
            granted = fit;
        }
        if granted == 0 {
            return Ok(false);
        }
        let n = granted as usize;
        let deliveries = match tick.sender.sweep(shard, tick.now, n, n).await {
            Ok(d) => d,
            Err(e) => {
                tick.give_back(granted);
                return Err(e);
            }
        };
        let used = u32::try_from(deliveries.len()).unwrap_or(granted);
        tick.give_back(granted.saturating_sub(used));
        for d in &deliveries {
            match d.outcome {
                DeliveryOutcome::Sent { .. } => s.sent += 1,
                DeliveryOutcome::Retry { .. } => s.retrying += 1,
                DeliveryOutcome::Failed { .. } => s.send_failed += 1,
                DeliveryOutcome::Unknown { .. } => s.unknown += 1,
            }
        }
        if deliveries.len() < n {
            // The sweep read the shard to its end.
            if before.done {
                return Ok(true);
            }
            // Wait for the next page fired (or the end of the firing), within the budget.
            let left = tick.budget.saturating_sub(tick.start.elapsed());
            match tokio::time::timeout(left, firing.changed()).await {
                Ok(Ok(())) => {
                    let now = *firing.borrow();
                    if now.done && now.pages == before.pages {
                        // Nothing was fired since this sweep began: it saw everything.
                        return Ok(true);
                    }
                }
                // The firing's end is always sent before its sender goes: not reached.
                Ok(Err(_)) => return Ok(true),
                Err(_) => return Ok(false),
            }
        }
    }
}

/// The shard's sends still due after the tick, up to [`LEFT_COUNT_MAX`] (0 when the store
/// cannot say: logged).
async fn count_left(tick: &Tick, shard: u16) -> usize {
    let mut left = 0;
    let mut cursor: Option<String> = None;
    while left < LEFT_COUNT_MAX {
        match tick
            .store
            .pending_sends(shard, tick.now, LEFT_COUNT_PAGE, cursor.as_deref())
            .await
        {
            Ok(page) => {
                left += page.due.len();
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, "the sends left could not be counted");
                break;
            }
        }
    }
    left.min(LEFT_COUNT_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn only_sends_that_end_within_the_budget_are_claimed() {
        let worst = crate::app::bounded_send_worst();
        assert!(worst >= Duration::from_secs(7), "{worst:?}");
        assert_eq!(sends_that_fit(Duration::ZERO), 0);
        assert_eq!(sends_that_fit(worst - Duration::from_millis(1)), 0);
        assert_eq!(sends_that_fit(worst), 1);
        assert_eq!(sends_that_fit(worst * 3 + Duration::from_millis(5)), 3);
    }

    #[test]
    fn the_schedules_input_and_a_scheduled_event_give_the_time() {
        assert_eq!(
            parse_input(r#"{"time": "2026-03-16T10:01:00Z"}"#),
            Ok(t("2026-03-16T10:01:00Z"))
        );
        assert_eq!(
            parse_input(r#"{"time": "2026-03-16T13:01:00+03:00"}"#),
            Ok(t("2026-03-16T10:01:00Z"))
        );
        let scheduled = r#"{"version":"0","id":"53dc4d37","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-03-16T10:01:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/tick"],"detail":{}}"#;
        assert_eq!(parse_input(scheduled), Ok(t("2026-03-16T10:01:00Z")));
    }

    #[test]
    fn a_bad_input_is_named_without_a_panic() {
        assert!(matches!(
            parse_input("not json"),
            Err(InputError::NotJson(_))
        ));
        for input in [
            "{}",
            "[]",
            "3",
            r#"{"time": 3}"#,
            r#"{"detail":{"time":"x"}}"#,
        ] {
            assert_eq!(parse_input(input), Err(InputError::NoTime), "{input}");
        }
        for input in [
            r#"{"time": ""}"#,
            r#"{"time": "2026-03-16"}"#,
            r#"{"time": "<aws.scheduler.scheduled-time>"}"#,
            r#"{"time": "2026-13-16T10:01:00Z"}"#,
        ] {
            assert!(
                matches!(parse_input(input), Err(InputError::BadTime(_))),
                "{input}"
            );
        }
        let e = parse_input(r#"{"time": "ayse@example.com"}"#).unwrap_err();
        assert!(!e.to_string().contains("ayse"), "{e}");
    }

    #[test]
    fn the_budget_is_the_least_of_the_minute_the_deadline_and_the_setting() {
        let s = Duration::from_secs;
        assert_eq!(budget(None, None), MAX_TICK);
        assert_eq!(budget(Some(s(900)), None), MAX_TICK);
        assert_eq!(budget(Some(s(30)), None), s(25));
        assert_eq!(budget(Some(s(3)), None), Duration::ZERO);
        assert_eq!(budget(Some(s(30)), Some(s(10))), s(10));
        assert_eq!(
            budget(None, Some(Duration::from_millis(1))),
            Duration::from_millis(1)
        );
        assert_eq!(budget(Some(s(900)), Some(s(600))), MAX_TICK);
    }

    #[test]
    fn the_deadline_is_read_from_unix_milliseconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let in_a_minute = 1_800_000_060_000;
        assert_eq!(remaining(in_a_minute, now), Some(Duration::from_secs(60)));
        // A deadline past (or now) is a local runtime's: none.
        assert_eq!(remaining(1_799_999_000_000, now), None);
        assert_eq!(remaining(1_800_000_000_000, now), None);
        assert_eq!(remaining(0, now), None);
        assert!(remaining(u64::MAX, now).is_some_and(|d| d > Duration::from_secs(60)));
    }

    #[test]
    fn batches_are_a_quarter_second_of_the_rate_within_bounds() {
        assert_eq!(send_batch(1), 1);
        assert_eq!(send_batch(14), 4);
        assert_eq!(send_batch(40), 10);
        assert_eq!(send_batch(1000), MAX_SEND_BATCH);
        assert_eq!(send_batch(0), 1);
    }

    /// Runs `bucket` on a fake clock for `seconds`, taking `batch` at a time and waiting as
    /// told, and returns the times of every token taken.
    fn paced(bucket: &mut TokenBucket, batch: u32, seconds: f64) -> Vec<Duration> {
        let end = Duration::from_secs_f64(seconds);
        let mut at = Duration::ZERO;
        let mut taken = Vec::new();
        while at < end {
            match bucket.take(at, batch) {
                Ok(n) => taken.extend(std::iter::repeat_n(at, n as usize)),
                Err(wait) => {
                    assert!(wait > Duration::ZERO, "a wait of zero would spin");
                    at += wait;
                }
            }
        }
        taken
    }

    #[test]
    fn the_bucket_paces_sends_at_the_rate_with_one_second_of_burst() {
        for (rate, batch) in [(14, 4), (1, 1), (2, 1), (100, 10), (14, 1)] {
            let mut bucket = TokenBucket::new(rate);
            let seconds = 60.0;
            let taken = paced(&mut bucket, batch, seconds);
            let rate_f = f64::from(rate);
            let n = taken.len() as f64;
            // A full second to start, then the rate: within one batch of it.
            assert!(n <= rate_f * (seconds + 1.0) + 1e-6, "rate {rate}: {n}");
            assert!(
                n >= rate_f * (seconds + 1.0) - f64::from(batch),
                "rate {rate}: {n}"
            );
            // No window of w seconds holds more than rate * (w + 1).
            for w in [1.0, 5.0] {
                let w_d = Duration::from_secs_f64(w);
                for (i, start) in taken.iter().enumerate() {
                    let inside = taken[i..].iter().take_while(|t| **t < *start + w_d).count();
                    assert!(
                        inside as f64 <= rate_f * (w + 1.0) + 1e-6,
                        "rate {rate}, {inside} in {w} s from {start:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn unused_tokens_go_back_and_the_bucket_never_overfills() {
        let mut bucket = TokenBucket::new(4);
        assert_eq!(bucket.take(Duration::ZERO, 4), Ok(4));
        let wait = bucket.take(Duration::ZERO, 2).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        bucket.give_back(3);
        assert_eq!(bucket.take(Duration::ZERO, 3), Ok(3));
        // A long idle fills it to one second's worth, no more; a batch over it is capped.
        bucket.give_back(100);
        assert_eq!(bucket.take(Duration::from_secs(3600), 100), Ok(4));
        assert!(bucket.take(Duration::from_secs(3600), 1).is_err());
        // A clock that goes back grants nothing.
        assert!(bucket.take(Duration::from_secs(10), 1).is_err());
        assert_eq!(bucket.take(Duration::from_millis(3_600_250), 1), Ok(1));
    }
}
