//! The driver for a store whose calls complete when polled (SQLite): the Lambda functions'
//! behaviour replayed over months of virtual time, on the single-threaded [`Executor`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_core::engine::Engine;
use nudge_core::event::parse_event;
use nudge_core::runner::Runner;
use nudge_core::store::{DUE_SHARDS, DeadLetter, Store};

use super::executor::{Ended, Executor, block_on};
use super::invocation::Invocation;
use super::mailer::{FaultyMailer, FaultyWebhooks};
use super::oracle::{Report, check};
use super::plan::{Plan, PlanOptions, plan};
use super::schedule::{FaultRates, Faults, Prng, Tally};
use super::store::{Breakage, FaultyStore};
use crate::guarantee::{TestMailer, TestWebhooks};

/// How Lambda retries a failed asynchronous invocation: twice more, a minute and then two
/// minutes later; then the event goes to the on-failure destination.
const LAMBDA_RETRIES: [TimeDelta; 2] = [TimeDelta::minutes(1), TimeDelta::minutes(2)];

/// Due timers read per page, as the scheduler does.
const DUE_PAGE: usize = 100;

/// The most sends one shard's sweep delivers per tick.
const SWEEP_MAX: usize = 200;

/// How long the harness may quiesce before it gives up (a broken store can keep work due).
const QUIESCE_ROUNDS: usize = 2_000;

/// A run of the harness.
#[derive(Debug, Clone, PartialEq)]
pub struct DriveOptions {
    /// The seed of the faults, the interleaving and the ticks (the plan has its own).
    pub seed: u64,
    /// What is replayed.
    pub plan: PlanOptions,
    /// How often each wrapper fails.
    pub rates: FaultRates,
    /// The scheduler's cadence (a deployment's is a minute; a longer one makes a long run
    /// cheaper and only delays wakes).
    pub tick_every: TimeDelta,
    /// Deliveries and ticks arriving within one window run concurrently, interleaved.
    pub window: TimeDelta,
    /// The share of windows with deliveries that get a tick of their own too (besides the
    /// cadence's), so that firing and sweeping interleave with ingests.
    pub ticks_with_deliveries: f64,
    /// The share of ticks with a second tick overlapping them.
    pub overlapping_ticks: f64,
    /// The share of ticks killed midway (a Lambda timeout): each shard's task is dropped after
    /// a number of polls drawn from the seed.
    pub dying_ticks: f64,
    /// A store broken on purpose ([`Breakage`]), to prove the oracle catches it.
    pub breakage: Option<Breakage>,
}

impl DriveOptions {
    /// The plan `plan`, with the seed `seed`, [`FaultRates::DEFAULT`], a tick every 30
    /// minutes and in 10% of the windows with deliveries, one-minute windows, 5% of ticks
    /// overlapped and 5% killed.
    pub fn new(seed: u64, plan: PlanOptions) -> Self {
        DriveOptions {
            seed,
            plan,
            rates: FaultRates::DEFAULT,
            tick_every: TimeDelta::minutes(30),
            window: TimeDelta::minutes(1),
            ticks_with_deliveries: 0.1,
            overlapping_ticks: 0.05,
            dying_ticks: 0.05,
            breakage: None,
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Inputs in the plan, and of those invalid.
    pub inputs: usize,
    /// Invalid inputs.
    pub invalid: usize,
    /// Deliveries replayed (each input one to three times).
    pub deliveries: usize,
    /// Of those, duplicate deliveries (the second and third of an input).
    pub duplicate_deliveries: usize,
    /// Ingest invocations, Lambda's retries included.
    pub invocations: usize,
    /// Invocations that failed (an error or a crash) and were retried by Lambda.
    pub lambda_retries: usize,
    /// Inputs that failed three times and went to Lambda's on-failure queue (replayed by the
    /// quiescence, as an operator redrives the queue).
    pub lambda_dlq: usize,
    /// Scheduler ticks (each 16 shard tasks), overlapping ones included.
    pub ticks: usize,
    /// Ticks run overlapping another.
    pub overlapping_ticks: usize,
    /// Shard tasks killed midway.
    pub killed: usize,
    /// Invocations crashed by a wrapper.
    pub crashed: usize,
    /// Windows where two or more invocations of one customer ran concurrently.
    pub concurrent_windows: usize,
    /// The most invocations of one customer run concurrently.
    pub max_concurrent: usize,
    /// The faults injected.
    pub faults: Tally,
    /// Executor turns (interleaving points).
    pub polls: u64,
    /// Virtual time: the start, the end of the plan, and when quiescence ended.
    pub start: DateTime<Utc>,
    /// The end of the plan.
    pub plan_end: DateTime<Utc>,
    /// When quiescence ended (what the oracle checks timers against).
    pub quiesced: DateTime<Utc>,
}

/// A run's figures and the oracle's report.
#[derive(Debug, Clone)]
pub struct Driven {
    /// What was run.
    pub figures: Figures,
    /// What the oracle found.
    pub report: Report,
}

impl fmt::Display for Driven {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.figures;
        writeln!(
            f,
            "harness: {} inputs ({} invalid), {} deliveries ({} duplicates), {} invocations, {} Lambda retries, {} to Lambda's DLQ",
            g.inputs,
            g.invalid,
            g.deliveries,
            g.duplicate_deliveries,
            g.invocations,
            g.lambda_retries,
            g.lambda_dlq
        )?;
        writeln!(
            f,
            "  {} ticks ({} overlapping), {} shard tasks killed, {} invocations crashed; faults: {} store errors, {} send errors ({} ambiguous), {} crashes",
            g.ticks,
            g.overlapping_ticks,
            g.killed,
            g.crashed,
            g.faults.store_errors,
            g.faults.send_errors,
            g.faults.ambiguous,
            g.faults.crashes
        )?;
        writeln!(
            f,
            "  concurrency: {} windows with one customer's invocations interleaved, at most {} at once; {} interleaving points; virtual time {} to {} (quiesced {})",
            g.concurrent_windows,
            g.max_concurrent,
            g.polls,
            g.start.format("%Y-%m-%d"),
            g.plan_end.format("%Y-%m-%d"),
            g.quiesced.format("%Y-%m-%d %H:%M")
        )?;
        write!(f, "{}", self.report)
    }
}

/// Something that arrives at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Arrival {
    /// A delivery of input `input` (Lambda's `attempt`: 0, then its retries).
    Ingest { input: usize, attempt: u8, copy: u8 },
    /// A scheduler tick.
    Tick,
}

/// What one task was, for its end.
#[derive(Debug, Clone, Copy)]
enum Job {
    Ingest {
        input: usize,
        attempt: u8,
        at: DateTime<Utc>,
    },
    Shard,
}

/// A runner on the wrapped ports.
type FaultyRunner<'p, S> =
    Runner<'p, FaultyStore<S>, FaultyMailer<TestMailer>, FaultyWebhooks<TestWebhooks>>;

/// Runs the harness on `store` (fresh) with `engine`: builds the plan, replays every
/// delivery and tick as the Lambda functions would, with faults, then quiesces with faults
/// off and runs the oracle ([`check`]) on the store underneath.
pub fn drive<S: Store>(store: S, engine: &Engine<'_>, options: &DriveOptions) -> Driven {
    let plan = plan(&options.plan);
    let faults = Faults::new(options.seed, options.rates);
    let mut store = FaultyStore::new(store, Arc::clone(&faults));
    if let Some(b) = options.breakage {
        store = store.broken(b);
    }
    let mailer = FaultyMailer::new(TestMailer::blind(), Arc::clone(&faults));
    let webhooks = FaultyWebhooks::new(TestWebhooks::failing(0), Arc::clone(&faults));
    let runners = Runners {
        ingest: Runner::new(engine, store.clone(), Some(mailer.clone()))
            .with_webhooks(webhooks.clone())
            .without_messages(),
        firer: Runner::new(engine, store.clone(), Some(mailer.clone()))
            .with_webhooks(webhooks.clone())
            .deliver_later()
            .without_messages(),
        sender: Runner::new(engine, store.clone(), Some(mailer.clone()))
            .with_webhooks(webhooks.clone())
            .without_messages(),
        store: store.clone(),
    };
    let mut d = Driver {
        options,
        plan: &plan,
        runners: &runners,
        rng: Prng::new(options.seed ^ 0xD21_7E5),
        next_id: 1,
        figures: Figures::default(),
        dlq: Vec::new(),
    };
    d.figures.inputs = plan.inputs.len();
    d.figures.invalid = plan.inputs.iter().filter(|i| !i.valid).count();
    d.figures.deliveries = plan.deliveries.len();
    d.figures.duplicate_deliveries = plan.deliveries.iter().filter(|x| x.copy > 0).count();
    d.figures.start = plan.start;
    d.figures.plan_end = plan.end;
    d.replay();
    faults.set_enabled(false);
    let quiesced = d.quiesce();
    d.figures.quiesced = quiesced;
    d.figures.faults = faults.tally();
    let dlq = std::mem::take(&mut d.dlq);
    let figures = d.figures;
    let log = faults.log();
    let report = block_on(check(store.inner(), &plan, &log, &dlq, quiesced))
        .unwrap_or_else(|e| panic!("the oracle could not read the store: {e}"));
    Driven { figures, report }
}

/// The three runners of a deployment, on the wrapped ports.
struct Runners<'p, S> {
    /// `ingest`: delivers each commit's sends right after it.
    ingest: FaultyRunner<'p, S>,
    /// The scheduler's firing: leaves sends pending.
    firer: FaultyRunner<'p, S>,
    /// The scheduler's sweep: one send at a time.
    sender: FaultyRunner<'p, S>,
    store: FaultyStore<S>,
}

struct Driver<'r, 'p, S> {
    options: &'r DriveOptions,
    plan: &'r Plan,
    runners: &'r Runners<'p, S>,
    rng: Prng,
    next_id: u64,
    figures: Figures,
    /// Inputs in Lambda's on-failure queue.
    dlq: Vec<usize>,
}

/// What an invocation returns: `Err` fails it (Lambda retries it).
type Outcome = Result<(), String>;

impl<'r, 'p, S: Store> Driver<'r, 'p, S> {
    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Every delivery and tick of the plan, window by window.
    fn replay(&mut self) {
        let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, u64, Arrival)>> = BinaryHeap::new();
        let mut seq = 0u64;
        for d in &self.plan.deliveries {
            seq += 1;
            queue.push(Reverse((
                d.at,
                seq,
                Arrival::Ingest {
                    input: d.input,
                    attempt: 0,
                    copy: d.copy,
                },
            )));
        }
        let mut tick = self.plan.start;
        while tick <= self.plan.end {
            seq += 1;
            queue.push(Reverse((tick, seq, Arrival::Tick)));
            tick += self.options.tick_every;
        }
        while let Some(Reverse((first, _, _))) = queue.peek().copied() {
            let until = first + self.options.window;
            let mut batch = Vec::new();
            while let Some(Reverse((at, _, arrival))) = queue.peek().copied() {
                if at >= until {
                    break;
                }
                queue.pop();
                batch.push((at, arrival));
            }
            for (at, input, attempt) in self.run_window(&batch) {
                seq += 1;
                queue.push(Reverse((
                    at,
                    seq,
                    Arrival::Ingest {
                        input,
                        attempt,
                        copy: 0,
                    },
                )));
            }
        }
    }

    /// Runs one window's arrivals concurrently; returns Lambda's retries to schedule.
    fn run_window(
        &mut self,
        batch: &[(DateTime<Utc>, Arrival)],
    ) -> Vec<(DateTime<Utc>, usize, u8)> {
        let runners = self.runners;
        let plan = self.plan;
        let mut exec: Executor<'_, Outcome> = Executor::new(self.rng.fork());
        let mut jobs: HashMap<u64, Job> = HashMap::new();
        let mut per_customer: BTreeMap<&str, usize> = BTreeMap::new();
        let mut batch = batch.to_vec();
        if let Some(&(at, Arrival::Ingest { .. })) = batch.first()
            && !batch.iter().any(|(_, a)| *a == Arrival::Tick)
            && self.rng.chance(self.options.ticks_with_deliveries)
        {
            batch.push((at, Arrival::Tick));
        }
        for &(at, arrival) in &batch {
            match arrival {
                Arrival::Ingest { input, attempt, .. } => {
                    let id = self.id();
                    self.figures.invocations += 1;
                    let text = plan.inputs[input].text.as_str();
                    if let Some(c) = plan.inputs[input].customer_id.as_deref() {
                        *per_customer.entry(c).or_default() += 1;
                    }
                    exec.spawn(Invocation::new(id, ingest(runners, text, at)), None);
                    jobs.insert(id, Job::Ingest { input, attempt, at });
                }
                Arrival::Tick => {
                    let overlap = self.rng.chance(self.options.overlapping_ticks);
                    self.figures.overlapping_ticks += usize::from(overlap);
                    for offset in 0..=u8::from(overlap) {
                        let now = at + TimeDelta::seconds(i64::from(offset) * 7);
                        self.figures.ticks += 1;
                        let deadline = self
                            .rng
                            .chance(self.options.dying_ticks)
                            .then(|| 1 + self.rng.below(40) as u32);
                        for shard in 0..DUE_SHARDS {
                            let id = self.id();
                            exec.spawn(
                                Invocation::new(id, tick_shard(runners, shard, now)),
                                deadline,
                            );
                            jobs.insert(id, Job::Shard);
                        }
                    }
                }
            }
        }
        let concurrent = per_customer.values().copied().max().unwrap_or(0);
        self.figures.max_concurrent = self.figures.max_concurrent.max(concurrent);
        self.figures.concurrent_windows += usize::from(concurrent > 1);
        let ended = exec.run();
        self.figures.polls += exec.polls;
        let mut retries = Vec::new();
        for (id, end) in ended {
            let failed = match &end {
                Ended::Returned(Ok(())) => false,
                Ended::Returned(Err(_)) => true,
                Ended::Crashed => {
                    self.figures.crashed += 1;
                    true
                }
                Ended::Killed => {
                    self.figures.killed += 1;
                    true
                }
            };
            if let (true, Some(Job::Ingest { input, attempt, at })) = (failed, jobs.get(&id)) {
                match LAMBDA_RETRIES.get(usize::from(*attempt)) {
                    Some(delay) => {
                        self.figures.lambda_retries += 1;
                        retries.push((*at + *delay, *input, attempt + 1));
                    }
                    None => self.dlq.push(*input),
                }
            }
        }
        retries
    }

    /// With faults off: replays Lambda's on-failure queue (an operator's redrive), then ticks
    /// until nothing is due and no send is pending, moving the clock on to each retry and
    /// lease. Returns the time it ended at.
    fn quiesce(&mut self) -> DateTime<Utc> {
        self.figures.lambda_dlq = self.dlq.len();
        let mut now = self.plan.end + TimeDelta::minutes(5);
        let redrive = std::mem::take(&mut self.dlq);
        for input in redrive {
            let mut exec: Executor<'_, Outcome> = Executor::new(self.rng.fork());
            let id = self.id();
            let text = self.plan.inputs[input].text.as_str();
            exec.spawn(Invocation::new(id, ingest(self.runners, text, now)), None);
            if !matches!(exec.run().pop(), Some((_, Ended::Returned(Ok(()))))) {
                self.dlq.push(input);
            }
        }
        for _ in 0..QUIESCE_ROUNDS {
            let mut exec: Executor<'_, Outcome> = Executor::new(self.rng.fork());
            for shard in 0..DUE_SHARDS {
                let id = self.id();
                exec.spawn(
                    Invocation::new(id, tick_shard(self.runners, shard, now)),
                    None,
                );
            }
            exec.run();
            match block_on(self.work_left(now)) {
                Some(next) => now = next.max(now + TimeDelta::minutes(1)),
                None => return now,
            }
        }
        now
    }

    /// When there is work left after a tick at `now` (a due timer, a pending send), the time
    /// it is due at; `None` when there is none.
    async fn work_left(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let store = &self.runners.store;
        let far = now + TimeDelta::days(365 * 20);
        let mut next: Option<DateTime<Utc>> = None;
        for shard in 0..DUE_SHARDS {
            if let Ok(page) = store.pending_sends(shard, far, 1, None).await
                && let Some((at, _, _)) = page.due.first()
            {
                next = Some(next.map_or(*at, |n| n.min(*at)));
            }
            if let Ok(page) = store.due(shard, now, 1, None).await
                && let Some((at, _)) = page.due.first()
            {
                next = Some(next.map_or(*at, |n| n.min(*at)));
            }
        }
        next
    }
}

/// One ingest invocation, as `ingest::handle` does it for a store event: parse, apply
/// through the runner (its sends delivered after the commit), a rejected input kept as a
/// dead letter; a store failure fails the invocation.
async fn ingest<S: Store>(runners: &Runners<'_, S>, text: &str, now: DateTime<Utc>) -> Outcome {
    let (event_id, reason) = match parse_event(text) {
        Ok(event) => match runners.ingest.event(&event, now).await {
            Ok(_) => return Ok(()),
            Err(e) if e.customer().is_some() => (Some(event.id.clone()), e.to_string()),
            Err(e) => return Err(e.to_string()),
        },
        Err(e) => (e.event_id().map(str::to_owned), e.to_string()),
    };
    let letter = DeadLetter {
        id: String::new(),
        event_id,
        source: "eventbridge".to_owned(),
        reason,
        body: text.to_owned(),
        received_at: now,
    };
    runners
        .store
        .record_dead_letter(&letter)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One shard of a scheduler tick, as `scheduler::run_shard` does it: fire the shard's due
/// customers a page at a time with the runner that leaves sends pending (a store failure of
/// one customer leaves their timer for the next tick), then sweep the shard's pending sends.
async fn tick_shard<S: Store>(runners: &Runners<'_, S>, shard: u16, now: DateTime<Utc>) -> Outcome {
    let mut cursor: Option<String> = None;
    loop {
        let page = runners
            .store
            .due(shard, now, DUE_PAGE, cursor.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        for (due, customer) in &page.due {
            // A failure stays due for the next tick, as the scheduler logs and goes on.
            let _ = runners.firer.fire(customer, *due, now).await;
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    runners
        .sender
        .sweep(shard, now, 10, SWEEP_MAX)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
