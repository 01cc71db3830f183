//! Load, from counts: a burst of events through the ingest function's handler and a tick of
//! hundreds of due customers through the scheduler's, on moto (DynamoDB, SES), with a seeded
//! share of the SDK's attempts throttled (`nudge_aws::InjectedThrottling`: 0%, 5% and 20% of
//! DynamoDB's and SES's attempts, DynamoDB's half before the request reaches moto and half after
//! moto applied it). It counts, per event, per due customer and per send, the SDK's calls and
//! attempts (retries), what was injected, the commits cancelled by concurrent invocations on
//! the same customer, the invocations that failed (which Lambda retries) and what would reach
//! the dead-letter queue; and it checks that everything was applied exactly once in the end:
//! every event processed, no dead letter, every email logged, settled sent, and in SES's
//! outbox exactly once. `--nocapture` prints the table docs/PERFORMANCE.md quotes ("Under a
//! burst, with throttling"). moto's own speed is not measured: only counts are.
//!
//! The burst: `CUSTOMERS` customers (`NUDGE_BURST_CUSTOMERS` for another number), each with
//! five events at the same second (two orders shipped, each sending "on its way" at once and
//! starting a 14-day wait, and three profile updates no workflow wants), every twentieth
//! delivered twice (EventBridge delivers at least once). A customer's events are delivered
//! together, in an order of the seed, with `IN_FLIGHT` invocations at once: they conflict. An
//! invocation that fails is invoked again a minute later, twice at most (Lambda's asynchronous
//! retries), then counted for the dead-letter queue. Then ticks sweep what the burst left
//! pending (sends SES throttled, claims of failed invocations). The tick: 14 days on, every
//! customer is due at once (two "has it arrived?" emails each), and ticks follow until every
//! retry's time has come. moto is reset before each level (it slows as its tables grow).

#![recursion_limit = "256"]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_aws::{CallCount, Clients, InjectedThrottling, RequestMeter, ThrottleShares};
use nudge_core::store::{Store, all_due};
use nudge_lambda::App;
use nudge_lambda::ingest::{self, Handled};
use nudge_lambda::scheduler::{self, TickSummary};
use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The seed of the throttling and of the delivery order (`NUDGE_BURST_SEED` for another).
const SEED: u64 = 15;
/// Customers in the burst, five events each.
const CUSTOMERS: usize = 12;
/// The throttled share of DynamoDB's and SES's attempts, percent, one run each.
const LEVELS: [u32; 3] = [0, 5, 20];
/// Ingest invocations in flight at once.
const IN_FLIGHT: usize = 64;
/// Lambda's asynchronous retries of a failed invocation (its default).
const LAMBDA_RETRIES: usize = 2;
/// When the burst happens.
const BURST: &str = "2026-03-02T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One delivery of an event to the ingest function.
#[derive(Debug, Clone)]
struct Delivery {
    body: String,
}

/// Customer `i`'s id and address at `domain`.
fn customer(domain: &str, i: usize) -> (String, String) {
    (format!("c-{domain}-{i}"), format!("buyer{i}@{domain}"))
}

/// The order ids of customer `i`.
fn orders(domain: &str, i: usize) -> [String; 2] {
    [format!("o-{domain}-{i}-a"), format!("o-{domain}-{i}-b")]
}

/// A small deterministic generator (SplitMix64) for the delivery order.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The burst's deliveries, a customer's together in an order of the seed, every twentieth
/// event delivered twice; and the distinct event ids.
fn burst(domain: &str, customers: usize, seed: u64) -> (Vec<Delivery>, Vec<String>) {
    let at = t(BURST);
    let mut rng = Seeded(seed);
    let mut deliveries = Vec::new();
    let mut ids = Vec::new();
    let mut n = 0;
    for i in 0..customers {
        let (id, email) = customer(domain, i);
        let mut events = Vec::new();
        for (k, order) in orders(domain, i).iter().enumerate() {
            events.push((
                format!("e-{order}"),
                "order.shipped",
                serde_json::json!({
                    "customer": {"id": id, "email": email, "first_name": "Ayşe", "accepts_marketing": true},
                    "order": {"id": order},
                    "shipment": {"carrier": "UPS", "tracking_number": format!("1Z{k}"), "tracking_url": "https://ups.example.com/1Z"}
                }),
            ));
        }
        for k in 0..3 {
            events.push((
                format!("e-{id}-update-{k}"),
                "customer.updated",
                serde_json::json!({
                    "customer": {"id": id, "email": email, "accepts_marketing": true, "tags": [format!("t{k}")]}
                }),
            ));
        }
        rng.shuffle(&mut events);
        for (event_id, kind, detail) in events {
            let body = serde_json::json!({
                "version": "0",
                "id": event_id,
                "detail-type": kind,
                "source": "store",
                "time": at.to_rfc3339(),
                "detail": detail,
            })
            .to_string();
            let delivery = Delivery { body };
            if n % 20 == 19 {
                deliveries.push(delivery.clone());
            }
            deliveries.push(delivery);
            ids.push(event_id);
            n += 1;
        }
    }
    (deliveries, ids)
}

/// What the ingest invocations of a burst did.
#[derive(Debug, Default)]
struct Ingested {
    invocations: usize,
    applied: usize,
    duplicates: usize,
    other: usize,
    /// Invocations that failed, per wave (the first delivery, then Lambda's retries).
    failed: Vec<usize>,
    /// Deliveries that failed every retry: the dead-letter queue's.
    dead: Vec<Delivery>,
    /// Why invocations failed, by message prefix.
    reasons: BTreeMap<String, usize>,
}

/// Invokes the ingest handler for every delivery, `IN_FLIGHT` at once, and retries the failed
/// ones a minute later as Lambda does, `LAMBDA_RETRIES` times.
async fn ingest_burst(app: &'static App, deliveries: Vec<Delivery>) -> Ingested {
    let mut out = Ingested::default();
    let mut queue = deliveries;
    for wave in 0..=LAMBDA_RETRIES {
        let now = t(BURST) + TimeDelta::minutes(wave as i64);
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tasks = JoinSet::new();
        for delivery in queue.drain(..) {
            let permit = Arc::clone(&slots).acquire_owned().await.unwrap();
            tasks.spawn(async move {
                let _permit = permit;
                let raw = RawValue::from_string(delivery.body.clone()).unwrap();
                (ingest::handle(app, &raw, now).await, delivery)
            });
        }
        let mut failed = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (result, delivery) = joined.expect("an invocation does not panic");
            out.invocations += 1;
            match result {
                Ok(Handled::Applied { .. }) => out.applied += 1,
                Ok(Handled::Duplicate { .. }) => out.duplicates += 1,
                Ok(_) => out.other += 1,
                Err(e) => {
                    let reason = e.to_string();
                    let reason = reason.split(" (").next().unwrap_or(&reason).to_owned();
                    *out.reasons.entry(reason).or_default() += 1;
                    failed.push(delivery);
                }
            }
        }
        out.failed.push(failed.len());
        queue = failed;
        if queue.is_empty() {
            break;
        }
    }
    out.dead = queue;
    out
}

/// Ticks after `from` until one finds nothing left to retry, at times that find every claim
/// lease ended and every send retry due that five failed attempts in a row can set
/// (`retry_delay`: 1, 4, 16, 64 and 256 minutes after each): 10, 30, 90 and 360 minutes on.
/// Returns what they did, summed, and how many ran.
async fn catch_up(app: &App, from: DateTime<Utc>) -> (TickSummary, usize) {
    let mut sum = TickSummary::default();
    let mut ran = 0;
    for minutes in [10, 30, 90, 360] {
        let s = scheduler::tick(
            app,
            from + TimeDelta::minutes(minutes),
            Duration::from_secs(120),
        )
        .await;
        ran += 1;
        sum.fired += s.fired;
        sum.failed += s.failed;
        sum.set_aside += s.set_aside;
        sum.sends_delivered += s.sends_delivered;
        sum.sends_retrying += s.sends_retrying;
        sum.sends_failed += s.sends_failed;
        sum.sends_unknown += s.sends_unknown;
        sum.shard_errors += s.shard_errors;
        sum.elapsed_ms += s.elapsed_ms;
        // Everything due was done and nothing set for later: what the burst or the tick left
        // was due by the first of these ticks (retries a minute on, leases five).
        let clean = s.sends_retrying == 0
            && s.failed == 0
            && s.shard_errors == 0
            && s.sends_left_pending == 0
            && !s.stopped_early;
        if clean {
            break;
        }
    }
    (sum, ran)
}

/// The counts of one phase: the interceptor's per operation, and the meter's DynamoDB
/// requests (which must agree with the interceptor's DynamoDB attempts).
struct Phase {
    name: &'static str,
    units: usize,
    unit: &'static str,
    calls: BTreeMap<String, CallCount>,
}

impl Phase {
    fn take(
        name: &'static str,
        units: usize,
        unit: &'static str,
        throttling: &InjectedThrottling,
        meter: &RequestMeter,
    ) -> Self {
        let calls = throttling.take();
        let metered: u64 = meter.take().values().map(|c| c.requests).sum();
        let dynamo: u64 = calls
            .iter()
            .filter(|(op, _)| op.as_str() != "SendEmail")
            .map(|(_, c)| c.attempts)
            .sum();
        assert_eq!(
            metered, dynamo,
            "{name}: the meter and the interceptor see the same DynamoDB attempts"
        );
        Phase {
            name,
            units,
            unit,
            calls,
        }
    }

    fn sum(&self, ops: &[&str], f: impl Fn(&CallCount) -> u64) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| ops.is_empty() || ops.contains(&op.as_str()))
            .map(|(_, c)| f(c))
            .sum()
    }

    fn dynamo(&self, f: impl Fn(&CallCount) -> u64) -> u64 {
        self.calls
            .iter()
            .filter(|(op, _)| op.as_str() != "SendEmail")
            .map(|(_, c)| f(c))
            .sum()
    }

    fn error(&self, code: &str) -> u64 {
        self.calls
            .values()
            .map(|c| c.errors.get(code).copied().unwrap_or(0))
            .sum()
    }

    /// One row of the table.
    fn row(&self, level: u32) -> String {
        let per = |n: u64| n as f64 / self.units.max(1) as f64;
        let ops: Vec<String> = self
            .calls
            .iter()
            .map(|(op, c)| format!("{op} {}/{}", c.calls, c.attempts))
            .collect();
        format!(
            "| {level}% | {} | {} {} | {:.2} | {:.2} | {} / {} | {} | {} | {}/{} | {} | {} |",
            self.name,
            self.units,
            self.unit,
            per(self.dynamo(|c| c.calls)),
            per(self.dynamo(|c| c.attempts)),
            self.sum(&[], |c| c.throttled_before),
            self.sum(&[], |c| c.throttled_after),
            self.error("TransactionCanceledException"),
            self.error("ConditionalCheckFailedException"),
            self.sum(&["SendEmail"], |c| c.calls),
            self.sum(&["SendEmail"], |c| c.attempts),
            self.sum(&[], |c| c.failed),
            ops.join(", "),
        )
    }
}

/// The subject lines of the raw messages SES took.
fn subjects(messages: &[(String, String)]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|(_, raw)| {
            let mut lines = raw.lines();
            let first = lines.find(|l| l.starts_with("Subject: "))?;
            let mut subject = first["Subject: ".len()..].to_owned();
            for l in lines {
                match l.strip_prefix(' ').or_else(|| l.strip_prefix('\t')) {
                    Some(rest) => subject.push_str(rest),
                    None => break,
                }
            }
            Some(subject)
        })
        .collect()
}

/// One level: a fresh moto, the burst, its catch-up, the tick of every customer and its
/// catch-up; the counts printed, the end state checked. Returns the table's rows.
async fn level(endpoint: &str, percent: u32, seed: u64, customers: usize) -> Vec<String> {
    let started = std::time::Instant::now();
    support::reset(endpoint);
    let meter = RequestMeter::new();
    let throttling = InjectedThrottling::new(seed, ThrottleShares::percent(0));
    let clients = Clients::from_env_throttled(Some(&meter), &throttling).await;
    let app: &'static App = Box::leak(Box::new(
        support::app_with(endpoint, "burst", clients, None, |c| c.ses_rate = 1000).await,
    ));
    let domain = format!("b{percent}-{}.burst.example.com", std::process::id());
    let (deliveries, ids) = burst(&domain, customers, seed);
    let events = deliveries.len();
    throttling.take();
    meter.take();
    throttling.set_shares(ThrottleShares::percent(percent));

    // The burst, with Lambda's retries.
    let ingested = ingest_burst(app, deliveries).await;
    let ingest = Phase::take("ingest", events, "deliveries", &throttling, &meter);
    // What it left pending goes at the next ticks.
    let (swept, ran) = catch_up(app, t(BURST)).await;
    let sweep = Phase::take("ticks after the burst", ran, "ticks", &throttling, &meter);

    // Fourteen days on: every customer's two waits time out at once.
    let due_at = t(BURST) + TimeDelta::days(14) + TimeDelta::minutes(1);
    let first = scheduler::tick(app, due_at, Duration::from_secs(120)).await;
    let tick = Phase::take("tick", first.fired, "fired", &throttling, &meter);
    let (rest, ran) = catch_up(app, due_at).await;
    let after = Phase::take("ticks after", ran, "ticks", &throttling, &meter);
    let fired = first.fired.max(1) as f64;
    let sent = first.sends_delivered.max(1) as f64;
    let ops = |p: &Phase, names: &[&str], units: f64| {
        (
            p.sum(names, |c| c.calls) as f64 / units,
            p.sum(names, |c| c.attempts) as f64 / units,
        )
    };
    let (fire_calls, fire_attempts) = ops(&tick, &["GetItem", "TransactWriteItems"], fired);
    let (send_calls, send_attempts) = ops(&tick, &["UpdateItem"], sent);
    let (ses_calls, _) = ops(&tick, &["SendEmail"], sent);
    let (query_calls, query_attempts) = ops(&tick, &["Query"], 1.0);
    println!(
        "{percent}%: the tick: per fired customer {fire_calls:.2} calls, {fire_attempts:.2} attempts (GetItem, TransactWriteItems); per send {send_calls:.2} calls, {send_attempts:.2} attempts (UpdateItem) and {ses_calls:.2} SendEmail; {query_calls} queries ({query_attempts} attempts); ingest: {:.2} DynamoDB calls and {:.2} attempts per delivery",
        ingest.dynamo(|c| c.calls) as f64 / events as f64,
        ingest.dynamo(|c| c.attempts) as f64 / events as f64,
    );
    throttling.set_shares(ThrottleShares::percent(0));

    println!(
        "{percent}%: {} invocations: {} applied, {} duplicates, {} other; failed per wave {:?} ({:?}); {} to the dead-letter queue",
        ingested.invocations,
        ingested.applied,
        ingested.duplicates,
        ingested.other,
        ingested.failed,
        ingested.reasons,
        ingested.dead.len()
    );
    println!(
        "{percent}%: sweep after the burst delivered {} (retrying {}); the tick fired {} (failed {}), sent {} (retrying {}, left {}), {} ms; the ticks after fired {} (failed {}), sent {} (retrying {}), unknown {}, failed {}",
        swept.sends_delivered,
        swept.sends_retrying,
        first.fired,
        first.failed,
        first.sends_delivered,
        first.sends_retrying,
        first.sends_left_pending,
        first.elapsed_ms,
        rest.fired,
        rest.failed,
        rest.sends_delivered,
        rest.sends_retrying,
        rest.sends_unknown + swept.sends_unknown + first.sends_unknown,
        rest.sends_failed + swept.sends_failed + first.sends_failed,
    );

    // Exactly once, in the end. An event the dead-letter queue holds is replayed (as an
    // operator would redrive it) before the check, and said.
    for delivery in &ingested.dead {
        let raw = RawValue::from_string(delivery.body.clone()).unwrap();
        ingest::handle(app, &raw, due_at)
            .await
            .expect("a redriven event applies");
    }
    let mut unprocessed = 0;
    for id in &ids {
        if !app.store.is_processed(id).await.unwrap() {
            unprocessed += 1;
        }
    }
    let letters = app.store.dead_letters(100).await.unwrap();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut attempts: BTreeMap<u32, usize> = BTreeMap::new();
    for i in 0..customers {
        let (id, _) = customer(&domain, i);
        for entry in app.store.sends(&id).await.unwrap() {
            *statuses.entry(format!("{:?}", entry.status)).or_default() += 1;
            *attempts.entry(entry.attempts).or_default() += 1;
        }
    }
    let still_due = all_due(&app.store, due_at + TimeDelta::days(30), 10)
        .await
        .unwrap();
    let subjects = subjects(&support::raw_messages(endpoint));
    let mut per_email: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..customers {
        for order in orders(&domain, i) {
            for subject in [
                format!("Your order {order} is on its way"),
                format!("Has your order {order} arrived?"),
            ] {
                let n = subjects.iter().filter(|s| **s == subject).count();
                *per_email.entry(format!("sent {n} times")).or_default() += 1;
            }
        }
    }
    let took = started.elapsed().as_secs();
    println!(
        "{percent}%: {took} s on moto (not a measure of Nudge); end state: {unprocessed} events unprocessed of {}; {} dead letters; send log {statuses:?}, attempts {attempts:?}; {} timers left; emails per (order, step): {per_email:?} ({} messages in SES)",
        ids.len(),
        letters.len(),
        still_due.len(),
        subjects.len()
    );
    let expected = customers * 4;
    assert_eq!(unprocessed, 0, "every event applied");
    assert!(letters.is_empty(), "no input dead-lettered: {letters:?}");
    assert_eq!(
        statuses,
        BTreeMap::from([("Sent".to_owned(), expected)]),
        "every email logged once and settled sent"
    );
    assert!(still_due.is_empty(), "no timer left");
    assert_eq!(
        per_email,
        BTreeMap::from([("sent 1 times".to_owned(), expected)]),
        "every email in SES exactly once"
    );
    assert_eq!(subjects.len(), expected, "no other email");
    assert_eq!(
        ingested.dead.len(),
        0,
        "nothing reached the dead-letter queue"
    );
    assert_eq!(
        first.fired + rest.fired,
        customers,
        "every customer fired once"
    );

    // The throttling was there and the SDK retried it.
    let injected: u64 = [&ingest, &sweep, &tick, &after]
        .iter()
        .map(|p| p.sum(&[], |c| c.throttled_before + c.throttled_after))
        .sum();
    if percent == 0 {
        assert_eq!(injected, 0);
    } else {
        assert!(injected > 0, "{percent}%: throttling was injected");
        assert!(
            ingest.dynamo(|c| c.attempts) > ingest.dynamo(|c| c.calls),
            "{percent}%: the SDK retried"
        );
    }
    // Concurrent invocations on one customer conflict (moto itself never does).
    assert!(
        ingest.error("TransactionCanceledException") > 0,
        "{percent}%: concurrent invocations on one customer conflicted"
    );
    [ingest, sweep, tick, after]
        .iter()
        .map(|p| p.row(percent))
        .collect()
}

#[tokio::test]
async fn a_burst_and_a_tick_under_throttling_apply_everything_exactly_once() {
    let test = "a_burst_and_a_tick_under_throttling_apply_everything_exactly_once";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let seed = env_or("NUDGE_BURST_SEED", SEED);
    let customers = env_or("NUDGE_BURST_CUSTOMERS", CUSTOMERS);
    let mut rows = Vec::new();
    for percent in LEVELS {
        rows.extend(level(&endpoint, percent, seed, customers).await);
    }
    println!("seed {seed}, {customers} customers, {IN_FLIGHT} invocations in flight");
    println!(
        "| throttled | phase | units | DynamoDB calls per unit | DynamoDB attempts per unit | injected before / after | cancelled commits | failed conditions | SendEmail calls/attempts | calls failed | calls/attempts per operation |"
    );
    println!("|---|---|---|---:|---:|---|---:|---:|---|---:|---|");
    for row in rows {
        println!("{row}");
    }
}
