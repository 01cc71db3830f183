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
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use nudge_aws::Clients;
use nudge_aws::faults::{Fault, FaultCounts, FaultInjector, FaultRates, header_message_id};
use nudge_core::mail::escape_key;
use nudge_core::store::{SendEntry, SendStatus, Store, all_due};
use nudge_lambda::App;
use nudge_lambda::ingest::Handled;
use serde_json::value::RawValue;

/// The seeds run by default.
const SEEDS: [u64; 2] = [1, 2];
/// Customers of the synthetic store per seed, and the days its events span.
const CUSTOMERS: usize = 90;
const DAYS: u32 = 45;
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
/// How often the schedule ticks, in virtual time.
const TICK_EVERY: TimeDelta = TimeDelta::hours(12);
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
    /// Delivery `copy` of event `event`, attempt `attempt` (0 the first).
    Ingest { event: usize, copy: u8, attempt: u8 },
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
    events: usize,
    deliveries: usize,
    duplicates_delivered: usize,
    retries: usize,
    dead_letter_queue: usize,
    ticks: usize,
    overlapping_ticks: usize,
    batches_concurrent: usize,
    invocations: usize,
    failed: usize,
    crashed: usize,
    faults: FaultCounts,
    handled: BTreeMap<&'static str, usize>,
    sends: BTreeMap<String, usize>,
    emails_taken: usize,
    duplicate_emails: BTreeMap<String, usize>,
    lost_steps: usize,
    seconds: f64,
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
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
    let mut failures = Vec::new();
    for seed in seeds() {
        let figures = run_seed(&endpoint, seed).await;
        println!("{}", report(seed, &figures));
        if let Err(problems) = figures_ok(&figures) {
            failures.push(format!(
                "seed {seed}: {problems}\n  replay: NUDGE_FAULT_SEEDS={seed} NUDGE_MOTO_ENDPOINT=… AWS_ENDPOINT_URL=… \
                 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
                 cargo test -p nudge-lambda --test faults -- --nocapture"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The oracle's verdict on a seed's figures.
fn figures_ok(f: &Figures) -> Result<(), String> {
    let mut problems = Vec::new();
    if f.lost_steps > 0 {
        problems.push(format!("{} lost steps", f.lost_steps));
    }
    for (kind, n) in &f.duplicate_emails {
        if !kind.ends_with("(allowed)") {
            problems.push(format!("{n} duplicate emails: {kind}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn report(seed: u64, f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seed {seed}: {} events, {} deliveries ({} duplicates delivered, {} Lambda retries, {} to the DLQ and redriven), {} ticks ({} overlapping), {} invocations in {} concurrent batches, {} failed, {} crashed; {:.1} s",
        f.events,
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
    let _ = writeln!(out, "  handled: {:?}", f.handled);
    let _ = writeln!(
        out,
        "  sends: {:?}; emails SES took: {}",
        f.sends, f.emails_taken
    );
    let _ = writeln!(
        out,
        "  duplicate emails: {:?}; lost steps: {}",
        f.duplicate_emails, f.lost_steps
    );
    out
}

/// The synthetic store's events for `seed`: (time, customer id, raw JSON).
fn events(seed: u64) -> Vec<(DateTime<Utc>, String, String)> {
    let opts = nudge_synth::SynthOptions {
        customers: CUSTOMERS,
        days: DAYS,
        start: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        seed,
    };
    let mut out = Vec::new();
    nudge_synth::generate(&opts, &mut out).expect("the events are written");
    String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("synth writes JSON");
            let time = t(v["time"].as_str().expect("a time"));
            let customer = match &v["detail"]["customer"]["id"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (time, customer, line.to_owned())
        })
        .collect()
}

async fn run_seed(endpoint: &str, seed: u64) -> Figures {
    let started = Instant::now();
    support::reset(endpoint);
    let table = support::fresh_table("faults");
    Clients::from_env(None)
        .await
        .create_table(&table, Duration::from_secs(10))
        .await
        .expect("the table is created on moto");
    let mut sandboxes = Vec::new();
    for i in 0..SANDBOXES {
        let faults = FaultInjector::new(seed.wrapping_mul(1_000).wrapping_add(i as u64), RATES);
        let clients = Clients::from_env(None)
            .await
            .with_interceptor(faults.clone());
        let app = support::app_on(endpoint, clients, &table, None, |c| {
            // Sends are not paced by the rate here; a tick never runs out of time.
            c.ses_rate = 1_000;
            c.time_budget = Some(Duration::from_secs(40));
        });
        sandboxes.push(Sandbox { app, faults });
    }
    let events = events(seed);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut f = Figures {
        events: events.len(),
        ..Figures::default()
    };

    // Every delivery, at its time: 1 to 3 copies of each event, each up to 5 minutes late.
    let mut queue: BinaryHeap<Reverse<(DateTime<Utc>, u64, Job)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut push = |queue: &mut BinaryHeap<_>, at, job| {
        order += 1;
        queue.push(Reverse((at, order, job)));
    };
    for (i, (time, _, _)) in events.iter().enumerate() {
        let copies = match rng.u8(0..10) {
            0..6 => 1,
            6..9 => 2,
            _ => 3,
        };
        for copy in 0..copies {
            let late = TimeDelta::seconds(i64::from(rng.u16(0..300)));
            push(
                &mut queue,
                *time + late,
                Job::Ingest {
                    event: i,
                    copy,
                    attempt: 0,
                },
            );
        }
    }
    let (first, last) = (events[0].0, events[events.len() - 1].0);
    let mut at = first + TICK_EVERY;
    while at <= last {
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
    while let Some(Reverse((at, _, job))) = queue.pop() {
        // A batch: this job and up to two more due within five minutes, run at once.
        let mut batch = vec![job];
        let mut now = at;
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
        if batch.len() > 1 {
            f.batches_concurrent += 1;
        }
        let ended = run_batch(&sandboxes, &events, &batch, now, &mut f).await;
        for ((job, ended), sandbox) in batch.iter().zip(&ended).zip(&mut sandboxes) {
            if matches!(ended, Ended::Crashed) {
                sandbox.restart();
            }
            let Job::Ingest {
                event,
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
                    push(
                        &mut queue,
                        now + *delay,
                        Job::Ingest {
                            event,
                            copy,
                            attempt: attempt + 1,
                        },
                    );
                }
                None => dlq.push(event),
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
    let mut now = last + TimeDelta::minutes(10);
    for event in dlq {
        let job = Job::Ingest {
            event,
            copy: 0,
            attempt: 3,
        };
        let ended = run_batch(&sandboxes, &events, &[job], now, &mut f).await;
        assert!(
            matches!(ended[0], Ended::Ok),
            "a redriven event failed without faults"
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
        let ended = run_batch(&sandboxes, &events, &[Job::Tick], now, &mut f).await;
        assert!(
            matches!(ended[0], Ended::Ok),
            "a tick failed without faults"
        );
    }
    for s in &sandboxes {
        f.faults.add(&s.faults.counts());
    }
    oracle(endpoint, &sandboxes, &events, now, &mut f).await;
    f.seconds = started.elapsed().as_secs_f64();
    f
}

/// Runs `batch` at once, job `i` on sandbox `i`, each raced against its sandbox's crash.
async fn run_batch(
    sandboxes: &[Sandbox],
    events: &[(DateTime<Utc>, String, String)],
    batch: &[Job],
    now: DateTime<Utc>,
    f: &mut Figures,
) -> Vec<Ended> {
    let run = |i: usize| {
        let job = batch.get(i).copied();
        async move {
            let job = job?;
            let sandbox = &sandboxes[i];
            sandbox.faults.begin_invocation();
            let work = async {
                match job {
                    Job::Ingest { event, .. } => {
                        let raw = RawValue::from_string(events[event].2.clone())
                            .expect("synth writes JSON");
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

/// Reads the table and moto's SES and checks the invariants, counting into `f`.
async fn oracle(
    endpoint: &str,
    sandboxes: &[Sandbox],
    events: &[(DateTime<Utc>, String, String)],
    now: DateTime<Utc>,
    f: &mut Figures,
) {
    let store = &sandboxes[0].app.store;
    // Every email SES took, by its Message-ID.
    let mut taken: HashMap<String, usize> = HashMap::new();
    for (_, raw) in support::raw_messages(endpoint) {
        let id = header_message_id(&raw).expect("every message has a Message-ID");
        *taken.entry(id).or_default() += 1;
    }
    f.emails_taken = taken.values().sum();
    // Every SendEmail attempt that may have left without its sender knowing, by Message-ID.
    let mut ambiguous: HashMap<String, usize> = HashMap::new();
    for s in sandboxes {
        for m in s.faults.mails() {
            if m.ambiguous() {
                *ambiguous.entry(m.message_id).or_default() += 1;
            }
        }
    }
    // Nudge's Message-ID is `<escaped idempotency key>@<sender's domain>`.
    let by_key: HashMap<&str, &String> = taken
        .keys()
        .map(|id| (id.split('@').next().unwrap_or_default(), id))
        .collect();
    let customers: BTreeSet<&str> = events.iter().map(|(_, c, _)| c.as_str()).collect();
    let mut logged: BTreeSet<String> = BTreeSet::new();
    for customer in customers {
        let sends: Vec<SendEntry> = store.sends(customer).await.expect("the send log is read");
        for entry in sends {
            let status = format!("{:?}", entry.status).to_lowercase();
            *f.sends.entry(status).or_default() += 1;
            let escaped = escape_key(&entry.record.idempotency_key);
            let id = by_key.get(escaped.as_str()).map(|id| (*id).clone());
            let count = id.as_ref().map_or(0, |id| taken[id]);
            if let Some(id) = &id {
                logged.insert(id.clone());
            }
            let category = entry.record.category.clone();
            match entry.status {
                SendStatus::Pending | SendStatus::Sending => {
                    f.lost_steps += 1;
                    eprintln!(
                        "unsettled after quiescing: {} ({category}) {:?}",
                        entry.record.idempotency_key, entry.status
                    );
                }
                SendStatus::Sent if count == 0 => {
                    f.lost_steps += 1;
                    eprintln!(
                        "settled sent but SES never took it: {} ({category})",
                        entry.record.idempotency_key
                    );
                }
                _ => {}
            }
            if count > 1 {
                let extra = count - 1;
                let may = id
                    .as_ref()
                    .and_then(|id| ambiguous.get(id))
                    .copied()
                    .unwrap_or(0);
                let allowed = entry.record.resend_when_unknown() && extra <= may;
                let kind = if allowed {
                    format!("{category}, an ambiguous send retried (allowed)")
                } else {
                    eprintln!(
                        "{count} emails for {} ({category}, {:?}, {} attempts; {may} ambiguous sends)",
                        entry.record.idempotency_key, entry.status, entry.attempts
                    );
                    format!("{category}, not explained by an ambiguous send")
                };
                *f.duplicate_emails.entry(kind).or_default() += extra;
            }
        }
    }
    let strays = taken.keys().filter(|id| !logged.contains(*id)).count();
    if strays > 0 {
        f.lost_steps += strays;
        eprintln!("{strays} emails SES took match no send of the log");
    }
    let due = all_due(store, now, 100).await.expect("the timers are read");
    if !due.is_empty() {
        f.lost_steps += due.len();
        eprintln!("{} timers still due after quiescing", due.len());
    }
}
