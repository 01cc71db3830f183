//! The fault harness on DynamoDB (moto) with the real Lambda handlers: a synthetic store's
//! events (`nudge_synth`, the shipped workflows) delivered one to three times each, reordered
//! within minutes, to several concurrent invokers (Lambda sandboxes: each an [`App`] of its own
//! on one table), with the scheduler's ticks among them (some overlapping), while an SDK
//! interceptor ([`FaultInjector`]) refuses, throttles, loses the answers of, and crashes the
//! invocations at, DynamoDB and SES requests on a seeded schedule. A failed ingest invocation
//! is retried as Lambda's asynchronous invocation does (twice, a minute then two later), then
//! goes to the dead-letter queue, which is redriven at the end; a failed or crashed tick is
//! left to the next one. Then, with the faults off, ticks run past every lease and retry, and
//! the oracle looks at what the table holds and what moto's SES took
//! (`/moto-api/data.json`): no send left unsettled, no timer left due, every email SES took
//! matched to its send, and no email taken twice beyond what the send guarantee allows for its
//! category (docs/ARCHITECTURE.md, "The send guarantee"), every such case counted with its
//! cause.
//!
//! moto is reset per seed (it slows as its tables grow). `NUDGE_FAULT_SEEDS=7,8` runs those
//! seeds instead of the default ones; a failing seed prints the command that replays it.

#![recursion_limit = "256"]

mod support;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use nudge_aws::Clients;
use nudge_aws::faults::{
    Fault, FaultCounts, FaultInjector, FaultRates, Observation, Observed, header_message_id,
    one_request_at_a_time,
};
use nudge_core::mail::escape_key;
use nudge_core::store::{SendKind, SendStatus, Store};
use nudge_lambda::App;
use nudge_lambda::ingest::Handled;
use nudge_testkit::faults::{
    Happened, Plan, PlanOptions, Record, Report, SendFault, StoreFault, check, plan,
};
use serde_json::value::RawValue;

/// The seeds run by default.
const SEEDS: [u64; 2] = [1, 2];
/// Customers of the synthetic store per seed (they sign up over the period), and its days.
const CUSTOMERS: usize = 40;
const DAYS: u32 = 30;
/// Lambda sandboxes (concurrent invokers) per seed.
const SANDBOXES: usize = 3;
/// The faults per request attempt, in parts per million.
const RATES: FaultRates = FaultRates {
    refused: 8_000,
    throttled: 8_000,
    answer_lost: 12_000,
    crash_before: 5_000,
    crash_after: 5_000,
};
/// How often the schedule ticks, in virtual time (moto reads a whole table for every index
/// query, so ticks are what a run's time goes into).
const TICK_EVERY: TimeDelta = TimeDelta::days(2);
/// Lambda's asynchronous retries of a failed invocation: after a minute, then two more.
const RETRY_DELAYS: [TimeDelta; 2] = [TimeDelta::minutes(1), TimeDelta::minutes(2)];

/// One Lambda sandbox: an app (its own clients, store and mailer) and the faults of its
/// clients.
struct Sandbox {
    app: App,
    faults: FaultInjector,
}

impl Sandbox {
    /// The sandbox after its process died: a new process (a store with nothing in memory).
    fn restart(&mut self) {
        self.faults.restart();
        self.app.store = self.app.clients.store(&self.app.config.table);
    }
}

/// What the driver hands a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    /// Delivery `copy` of input `input` (an index into the plan's inputs), attempt `attempt`
    /// (0 the first; Lambda's retries after).
    Ingest { input: usize, copy: u8, attempt: u8 },
    /// A tick of the schedule.
    Tick,
}

/// How an invocation ended.
#[derive(Debug)]
enum Ended {
    /// The handler answered.
    Ok,
    /// The handler failed (Lambda retries an ingest invocation).
    Failed,
    /// The process died mid-invocation.
    Crashed,
}

/// What a seed's run counted.
#[derive(Debug, Default)]
struct Figures {
    inputs: usize,
    deliveries: usize,
    duplicates_delivered: usize,
    retries: usize,
    dead_letter_queue: usize,
    ticks: usize,
    overlapping_ticks: usize,
    batches_concurrent: usize,
    invocations: u64,
    failed: usize,
    crashed: usize,
    faults: FaultCounts,
    handled: BTreeMap<&'static str, usize>,
    emails_taken: usize,
    /// Messages whose count in SES differs from the log's: the log is wrong.
    log_mismatches: Vec<String>,
    seconds: f64,
}

/// The seeds to run: `NUDGE_FAULT_SEEDS` (comma-separated) or [`SEEDS`].
fn seeds() -> Vec<u64> {
    match std::env::var("NUDGE_FAULT_SEEDS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|s| s.trim().parse().expect("NUDGE_FAULT_SEEDS holds numbers"))
            .collect(),
        _ => SEEDS.to_vec(),
    }
}

#[tokio::test]
async fn faulted_deliveries_on_dynamodb_lose_nothing_and_duplicate_only_what_the_guarantee_allows()
{
    let test = "faulted_deliveries_on_dynamodb";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let mut failed = Vec::new();
    for seed in seeds() {
        let (figures, report) = run_seed(&endpoint, seed).await;
        println!("{}{report}\n", figures_text(seed, &figures));
        for v in &report.violations {
            println!("  violation: {:?}: {}", v.rule, v.detail);
        }
        assert!(
            figures.log_mismatches.is_empty(),
            "seed {seed}: the injectors' log is not what SES took: {:?}",
            figures.log_mismatches
        );
        if !report.violations.is_empty() {
            failed.push((seed, report));
        }
    }
    for (seed, report) in failed {
        report.assert_holds(&format!(
            "NUDGE_FAULT_SEEDS={seed} scripts/test's moto stage, or by hand with moto on \
             NUDGE_MOTO_ENDPOINT and AWS_ENDPOINT_URL (AWS_ACCESS_KEY_ID=testing \
             AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1): \
             NUDGE_FAULT_SEEDS={seed} cargo test -p nudge-lambda --test faults -- --nocapture"
        ));
    }
}

fn figures_text(seed: u64, f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seed {seed}: {} inputs, {} deliveries ({} duplicates delivered, {} Lambda retries, {} to the DLQ and redriven), {} ticks ({} overlapping), {} invocations ({} batches of concurrent ones), {} failed, {} crashed; {:.1} s",
        f.inputs,
        f.deliveries,
        f.duplicates_delivered,
        f.retries,
        f.dead_letter_queue,
        f.ticks,
        f.overlapping_ticks,
        f.invocations,
        f.batches_concurrent,
        f.failed,
        f.crashed,
        f.seconds
    );
    let _ = writeln!(
        out,
        "  faults: {} request attempts, refused {}, throttled {}, answer lost {}, crash before {}, crash after {} ({} requests of crashed processes cut)",
        f.faults.attempts,
        f.faults.of(Fault::Refused),
        f.faults.of(Fault::Throttled),
        f.faults.of(Fault::AnswerLost),
        f.faults.of(Fault::CrashBefore),
        f.faults.of(Fault::CrashAfter),
        f.faults.after_crash
    );
    let _ = writeln!(
        out,
        "  handled: {:?}; emails SES took: {}",
        f.handled, f.emails_taken
    );
    out
}

async fn run_seed(endpoint: &str, seed: u64) -> (Figures, Report) {
    let started = Instant::now();
    support::reset(endpoint);
    let table = support::fresh_table("faults");
    Clients::from_env(None)
        .await
        .create_table(&table, Duration::from_secs(10))
        .await
        .expect("the table is created on moto");
    // One request at moto at a time, from every sandbox (see `one_request_at_a_time`: moto's
    // threaded DynamoDB undoes concurrent writes when a transaction is cancelled).
    let http = one_request_at_a_time();
    let mut sandboxes = Vec::new();
    for i in 0..SANDBOXES {
        let faults = FaultInjector::new(seed.wrapping_mul(1_000).wrapping_add(i as u64), RATES);
        let clients = Clients::from_env(None)
            .await
            .with_http_client(http.clone())
            .with_interceptor(faults.clone());
        let app = support::app_on(endpoint, clients, &table, None, |c| {
            // Sends are not paced by the rate here; a tick never runs out of time.
            c.ses_rate = 1_000;
            c.time_budget = Some(Duration::from_secs(40));
        });
        sandboxes.push(Sandbox { app, faults });
    }
    let plan = plan(&PlanOptions::new(seed, CUSTOMERS, DAYS));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut f = Figures {
        inputs: plan.inputs.len(),
        ..Figures::default()
    };

    // Every delivery of the plan and every tick, in time order.
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, u64, Job)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut push = |queue: &mut BinaryHeap<_>, at, job| {
        order += 1;
        queue.push(Reverse((at, order, job)));
    };
    for d in &plan.deliveries {
        let job = Job::Ingest {
            input: d.input,
            copy: d.copy,
            attempt: 0,
        };
        push(&mut queue, d.at, job);
    }
    let mut at = plan.start + TICK_EVERY;
    while at <= plan.end {
        push(&mut queue, at, Job::Tick);
        if rng.u8(0..4) == 0 {
            // Another tick at the same minute: it overlaps the first.
            push(&mut queue, at, Job::Tick);
            f.overlapping_ticks += 1;
        }
        at += TICK_EVERY;
    }

    for s in &sandboxes {
        s.faults.arm(true);
    }
    let mut dlq = Vec::new();
    // The invokers' clock: never back (a late delivery runs at the time it arrives).
    let mut clock = plan.start;
    while let Some(Reverse((at, _, job))) = queue.pop() {
        // A batch: this job and up to two more due within five minutes, run at once.
        let mut batch = vec![job];
        let mut now = at.max(clock);
        let want = rng.usize(1..=SANDBOXES);
        while batch.len() < want {
            match queue.peek() {
                Some(Reverse((next, _, _))) if *next - at <= TimeDelta::minutes(5) => {
                    let Reverse((next, _, job)) = queue.pop().expect("peeked");
                    now = now.max(next);
                    batch.push(job);
                }
                _ => break,
            }
        }
        clock = now;
        if batch.len() > 1 {
            f.batches_concurrent += 1;
        }
        let ended = run_batch(&sandboxes, &plan, &batch, now, &mut f).await;
        for ((job, ended), sandbox) in batch.iter().zip(&ended).zip(&mut sandboxes) {
            if matches!(ended, Ended::Crashed) {
                sandbox.restart();
            }
            let Job::Ingest {
                input,
                copy,
                attempt,
            } = *job
            else {
                continue;
            };
            if matches!(ended, Ended::Ok) {
                continue;
            }
            match RETRY_DELAYS.get(usize::from(attempt)) {
                Some(delay) => {
                    f.retries += 1;
                    let retry = Job::Ingest {
                        input,
                        copy,
                        attempt: attempt + 1,
                    };
                    push(&mut queue, now + *delay, retry);
                }
                None => dlq.push(input),
            }
        }
    }

    // Quiesce: the faults off, the dead-letter queue redriven, then ticks past every lease
    // and retry.
    for s in &mut sandboxes {
        s.faults.arm(false);
        if s.faults.is_crashed() {
            s.restart();
        }
    }
    f.dead_letter_queue = dlq.len();
    let mut now = plan.end.max(at) + TimeDelta::minutes(10);
    for input in dlq {
        let job = Job::Ingest {
            input,
            copy: 0,
            attempt: 3,
        };
        let ended = run_batch(&sandboxes, &plan, &[job], now, &mut f).await;
        assert!(
            matches!(ended[0], Ended::Ok),
            "a redriven input failed without faults"
        );
    }
    for step in [
        TimeDelta::minutes(10),
        TimeDelta::hours(1),
        TimeDelta::hours(6),
        TimeDelta::hours(18),
        TimeDelta::days(1),
    ] {
        now += step;
        let ended = run_batch(&sandboxes, &plan, &[Job::Tick], now, &mut f).await;
        assert!(
            matches!(ended[0], Ended::Ok),
            "a tick failed without faults"
        );
    }
    // A fire may leave a wake already due (a wait that ended while it ran): ticks at the same
    // minute until none is (a minute's tick in a deployment).
    for _ in 0..5 {
        let due = nudge_core::store::all_due(&sandboxes[0].app.store, now, 100)
            .await
            .expect("the timers are read");
        if due.is_empty() {
            break;
        }
        let ended = run_batch(&sandboxes, &plan, &[Job::Tick], now, &mut f).await;
        assert!(
            matches!(ended[0], Ended::Ok),
            "a tick failed without faults"
        );
    }
    for s in &sandboxes {
        f.faults.add(&s.faults.counts());
    }
    let report = oracle(endpoint, &sandboxes, &plan, now, &mut f).await;
    f.seconds = started.elapsed().as_secs_f64();
    (f, report)
}

/// Runs `batch` at once, job `i` on sandbox `i`, each raced against its sandbox's crash.
async fn run_batch(
    sandboxes: &[Sandbox],
    plan: &Plan,
    batch: &[Job],
    now: DateTime<Utc>,
    f: &mut Figures,
) -> Vec<Ended> {
    let first_id = f.invocations;
    let run = |i: usize| {
        let job = batch.get(i).copied();
        async move {
            let job = job?;
            let sandbox = &sandboxes[i];
            sandbox.faults.begin_invocation(first_id + i as u64 + 1);
            let work = async {
                match job {
                    Job::Ingest { input, .. } => {
                        let raw = RawValue::from_string(plan.inputs[input].text.clone());
                        // An input that is not even JSON cannot come from EventBridge.
                        let Ok(raw) = raw else {
                            return Ok("not_json");
                        };
                        match nudge_lambda::ingest::handle(&sandbox.app, &raw, now).await {
                            Ok(handled) => Ok(outcome_name(&handled)),
                            Err(_) => Err(()),
                        }
                    }
                    Job::Tick => {
                        let input = format!(r#"{{"time": "{}"}}"#, now.to_rfc3339());
                        let raw = RawValue::from_string(input).expect("JSON");
                        match nudge_lambda::scheduler::handle(&sandbox.app, &raw, None).await {
                            Ok(_) => Ok("tick"),
                            Err(_) => Err(()),
                        }
                    }
                }
            };
            let ended = tokio::select! {
                biased;
                () = sandbox.faults.crash() => None,
                out = work => Some(out),
            };
            Some(match ended {
                _ if sandbox.faults.is_crashed() => (job, Ended::Crashed, None),
                None => (job, Ended::Crashed, None),
                Some(Ok(name)) => (job, Ended::Ok, Some(name)),
                Some(Err(())) => (job, Ended::Failed, None),
            })
        }
    };
    let (a, b, c) = tokio::join!(run(0), run(1), run(2));
    let mut ended = Vec::new();
    for (job, end, name) in [a, b, c].into_iter().flatten() {
        f.invocations += 1;
        match job {
            Job::Ingest { copy, attempt, .. } => {
                f.deliveries += 1;
                if copy > 0 && attempt == 0 {
                    f.duplicates_delivered += 1;
                }
            }
            Job::Tick => f.ticks += 1,
        }
        match end {
            Ended::Failed => f.failed += 1,
            Ended::Crashed => f.crashed += 1,
            Ended::Ok => {}
        }
        if let Some(name) = name {
            *f.handled.entry(name).or_default() += 1;
        }
        ended.push(end);
    }
    ended
}

fn outcome_name(handled: &Handled) -> &'static str {
    match handled {
        Handled::Applied { .. } => "applied",
        Handled::Duplicate { .. } => "duplicate",
        Handled::DeadLettered { .. } => "dead_lettered",
        Handled::Ignored { .. } => "ignored",
        Handled::Parked { .. } => "parked",
        Handled::Erased { .. } => "erased",
    }
}

/// The harness's oracle ([`check`]) on the table, from the log the injectors kept (what
/// reached DynamoDB and SES, whatever the callers saw), after checking that log against
/// what moto's SES took.
async fn oracle(
    endpoint: &str,
    sandboxes: &[Sandbox],
    plan: &Plan,
    end: DateTime<Utc>,
    f: &mut Figures,
) -> Report {
    let store = &sandboxes[0].app.store;
    // Every send's idempotency key, by its escaped form (its Message-ID's local part).
    let mut keys: HashMap<String, (String, String)> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .customers(cursor.as_deref(), 500)
            .await
            .expect("the customers are read");
        for (customer, _) in page.customers {
            for entry in store.sends(&customer).await.expect("the send log is read") {
                let key = entry.record.idempotency_key;
                keys.insert(escape_key(&key), (customer.clone(), key));
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // What SES took, by Message-ID (moto's data.json also holds every item of the table).
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for (_, raw) in support::raw_messages(endpoint) {
        let id = header_message_id(&raw).expect("every message has a Message-ID");
        *taken.entry(id).or_default() += 1;
    }
    f.emails_taken = taken.values().sum();
    f.log_mismatches = reconcile(sandboxes, &taken);
    let log = records(sandboxes, &keys, &taken);
    // Inputs that are not JSON never reach a function: EventBridge carries JSON only (the
    // runtime would refuse them before the handler). The oracle counts them as kept elsewhere.
    let not_json: Vec<usize> = (0..plan.inputs.len())
        .filter(|&i| serde_json::from_str::<serde_json::Value>(&plan.inputs[i].text).is_err())
        .collect();
    let report = check(store, plan, &log, &not_json, end)
        .await
        .expect("the store is read");
    // The history of each send a violation names, to see what happened.
    for v in &report.violations {
        for r in &log {
            let key = match &r.what {
                Happened::Claimed { key, .. }
                | Happened::Settled { key, .. }
                | Happened::Delivered { key, .. }
                | Happened::SendFault { key, .. } => Some(key),
                Happened::StoreFault { key, .. } => key.as_ref(),
            };
            if key.is_some_and(|k| v.detail.contains(k.as_str())) {
                println!("    {:?} {:?}", r.invocation, r.what);
            }
        }
    }
    report
}

/// The `SendEmail` requests of message `id` whose answer said SES took it.
fn answered_deliveries(sandboxes: &[Sandbox], id: &str) -> usize {
    sandboxes
        .iter()
        .flat_map(|s| s.faults.observations())
        .filter(|o| {
            matches!(&o.what, Observed::Mail { message_id, delivered: Some(true), .. } if message_id == id)
        })
        .count()
}

/// Checks the injectors' log against what SES took (`taken`, by Message-ID): for each
/// message, SES holds at least the copies whose answer said so, and at most those and the
/// ones whose answer was never read. Returns what does not fit.
fn reconcile(sandboxes: &[Sandbox], taken: &BTreeMap<String, usize>) -> Vec<String> {
    let mut known: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for o in sandboxes.iter().flat_map(|s| s.faults.observations()) {
        if let Observed::Mail {
            message_id,
            delivered,
            ..
        } = o.what
        {
            let (yes, unknown) = known.entry(message_id).or_default();
            match delivered {
                Some(true) => *yes += 1,
                None => *unknown += 1,
                Some(false) => {}
            }
        }
    }
    let ids: std::collections::BTreeSet<&String> = taken.keys().chain(known.keys()).collect();
    ids.into_iter()
        .filter_map(|id| {
            let n = taken.get(id).copied().unwrap_or(0);
            let (yes, unknown) = known.get(id).copied().unwrap_or((0, 0));
            (n < yes || n > yes + unknown)
                .then(|| format!("{id}: SES took {n}, the log says {yes} and {unknown} unanswered"))
        })
        .collect()
}

/// The harness's log from what the sandboxes' injectors saw, in the order they saw it. `keys` maps an escaped key to its customer and key.
fn records(
    sandboxes: &[Sandbox],
    keys: &HashMap<String, (String, String)>,
    taken: &BTreeMap<String, usize>,
) -> Vec<Record> {
    // A request whose answer was never read delivered what SES holds beyond the answered ones
    // (`reconcile` checked that those are the only unknowns): the first such requests.
    let mut unanswered_delivered: HashMap<String, usize> = HashMap::new();
    for (id, n) in taken {
        let answered = answered_deliveries(sandboxes, id);
        unanswered_delivered.insert(id.clone(), n.saturating_sub(answered));
    }
    let mut log = Vec::new();
    let mut push = |invocation: u64, what: Happened| {
        let step = log.len() as u64;
        log.push(Record {
            step,
            invocation: Some(invocation),
            what,
        });
    };
    let mut all: Vec<Observation> = Vec::new();
    for s in sandboxes {
        all.extend(s.faults.observations());
    }
    all.sort_by_key(|o| o.seq);
    for Observation {
        invocation, what, ..
    } in all
    {
        match what {
            Observed::Mail {
                message_id,
                fault,
                delivered,
            } => {
                let escaped = message_id.split('@').next().unwrap_or_default();
                let Some((customer, key)) = keys.get(escaped).cloned() else {
                    panic!("a SendEmail of a message no send logged: {message_id}");
                };
                let send_fault = match fault {
                    None => None,
                    Some(Fault::Refused) => Some(SendFault::Unavailable),
                    Some(Fault::Throttled) => Some(SendFault::Throttled),
                    Some(Fault::AnswerLost) => Some(SendFault::AmbiguousDelivered),
                    Some(Fault::CrashBefore) => Some(SendFault::CrashBefore),
                    Some(Fault::CrashAfter) => Some(SendFault::CrashAfterDelivery),
                };
                if let Some(fault) = send_fault {
                    push(
                        invocation,
                        Happened::SendFault {
                            kind: SendKind::Email,
                            fault,
                            customer: customer.clone(),
                            key: key.clone(),
                        },
                    );
                }
                let delivered = delivered.unwrap_or_else(|| {
                    let left = unanswered_delivered.entry(message_id.clone()).or_default();
                    let took = *left > 0;
                    *left = left.saturating_sub(1);
                    took
                });
                if delivered {
                    push(
                        invocation,
                        Happened::Delivered {
                            kind: SendKind::Email,
                            customer,
                            key,
                        },
                    );
                }
            }
            // A claim whose answer never came may have applied: its invocation died holding
            // it, as far as anyone can tell.
            Observed::Claimed {
                customer,
                key,
                applied: Some(true) | None,
            } => {
                push(invocation, Happened::Claimed { customer, key });
            }
            Observed::Claimed { .. } => {}
            Observed::Settled {
                customer,
                key,
                status,
            } => {
                let status = SendStatus::ALL
                    .into_iter()
                    .find(|s| s.as_str() == status)
                    .unwrap_or_else(|| panic!("a settle to an unknown status {status}"));
                push(
                    invocation,
                    Happened::Settled {
                        customer,
                        key,
                        status,
                    },
                );
            }
            Observed::SettleFault {
                customer,
                key,
                fault,
            } => {
                let fault = match fault {
                    Fault::Throttled => StoreFault::Throttled,
                    Fault::CrashBefore => StoreFault::CrashBefore,
                    _ => StoreFault::Unavailable,
                };
                push(
                    invocation,
                    Happened::StoreFault {
                        call: "settle_send",
                        fault,
                        customer: Some(customer),
                        key: Some(key),
                    },
                );
            }
        }
    }
    log
}
