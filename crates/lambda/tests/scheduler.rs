//! The scheduler's tick on moto (DynamoDB, SES): due customers fire and their emails reach SES,
//! later ones wait; the SES rate defers what cannot go to the next tick without duplicates;
//! an expired claim is taken over; a tick out of time leaves the rest; a customer whose state
//! cannot be read is set aside; and the requests a tick makes, counted.
//!
//! Each test ships orders (`order.shipped`, the shipped `shipment-updates` workflow: an email
//! at once, then a 14-day `wait_for` whose timeout sends "has it arrived?") to customers whose
//! addresses are at a domain of the test's own, so that the raw messages moto's SES holds
//! (shared by the tests of this binary) are counted per test.

#![recursion_limit = "256"]

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_aws::{Clients, RequestMeter};
use nudge_core::links::Signer;
use nudge_core::runner::{Fired, SEND_LEASE};
use nudge_core::store::{Commit, SendStatus, Store, all_due};
use nudge_lambda::scheduler::{self, TickError, TickSummary};
use nudge_lambda::{App, Config};
use serde_json::value::RawValue;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// When the tests' orders ship.
const SHIPPED: &str = "2026-03-02T10:00:00Z";

/// The 14-day timeout of the shipment's `wait_for`, plus a minute: the tick that fires it.
fn fourteen_days_on(shipped: DateTime<Utc>) -> DateTime<Utc> {
    shipped + TimeDelta::days(14) + TimeDelta::minutes(1)
}

/// An app on moto, as `support::app` builds it, with DynamoDB's requests counted in `meter`.
async fn app(
    endpoint: &str,
    test: &str,
    meter: Option<&RequestMeter>,
    configure: impl FnOnce(&mut Config),
) -> App {
    let table = support::fresh_table(test);
    let clients = Clients::from_env(meter).await;
    clients
        .create_table(&table, Duration::from_secs(10))
        .await
        .expect("the table is created on moto");
    support::verify_sender(endpoint, support::SENDER);
    let mut config = Config::from_lookup(|name| match name {
        "NUDGE_TABLE" => Some(table.clone()),
        "NUDGE_STACK" => Some("nudge-test".to_owned()),
        "NUDGE_UNSUBSCRIBE_URL" => Some("https://unsubscribe.example.com/".to_owned()),
        _ => None,
    })
    .expect("the test configuration is valid");
    configure(&mut config);
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let project = nudge_lambda::workflows::load(scratch.path()).expect("the built-in workflows");
    App::new(
        config,
        clients,
        Signer::new(support::TEST_SIGNING_KEY),
        project,
    )
    .expect("the app is built")
}

/// The domain of a test's addresses in this run (moto's SES keeps earlier runs' messages).
fn domain(test: &str) -> String {
    format!("{test}-{}.sched.example.com", std::process::id())
}

/// Customer `i` of a test whose addresses are at `domain`.
fn customer(domain: &str, i: usize) -> (String, String) {
    (format!("c-{domain}-{i}"), format!("buyer{i}@{domain}"))
}

/// Ships an order to customer `i` at `at` through the ingest function's handler (which sends
/// the "on its way" email at once).
async fn ship(app: &App, domain: &str, i: usize, at: DateTime<Utc>) {
    let (id, email) = customer(domain, i);
    let event = serde_json::json!({
        "version": "0",
        "id": format!("e-{domain}-{i}-{}", at.timestamp()),
        "detail-type": "order.shipped",
        "source": "store",
        "time": at.to_rfc3339(),
        "detail": {
            "customer": {"id": id, "email": email, "first_name": "Ayşe", "accepts_marketing": true},
            "order": {"id": format!("o-{domain}-{i}")},
            "shipment": {"carrier": "UPS", "tracking_number": "1Z", "tracking_url": "https://ups.example.com/1Z"}
        }
    });
    let raw = RawValue::from_string(event.to_string()).unwrap();
    let handled = nudge_lambda::ingest::handle(app, &raw, at).await.unwrap();
    assert!(
        matches!(
            handled,
            nudge_lambda::ingest::Handled::Applied { deliveries: 1, .. }
        ),
        "{handled:?}"
    );
}

/// How many raw messages moto's SES holds for each of the first `n` customers at `domain`.
fn messages_per_customer(endpoint: &str, domain: &str, n: usize) -> Vec<usize> {
    let messages = support::raw_messages(endpoint);
    (0..n)
        .map(|i| {
            let (_, email) = customer(domain, i);
            messages
                .iter()
                .filter(|(_, raw)| {
                    raw.contains(&format!("<{email}>")) || raw.contains(&format!("To: {email}"))
                })
                .count()
        })
        .collect()
}

/// One tick through the function's handler, as the schedule invokes it.
async fn invoke(app: &App, now: DateTime<Utc>) -> TickSummary {
    let input = format!(r#"{{"time": "{}"}}"#, now.to_rfc3339());
    let raw = RawValue::from_string(input).unwrap();
    scheduler::handle(app, &raw, Some(Duration::from_secs(900)))
        .await
        .expect("the tick runs")
}

#[tokio::test]
async fn due_customers_fire_and_their_emails_reach_ses_while_later_ones_wait() {
    let test = "due_customers_fire_and_their_emails_reach_ses_while_later_ones_wait";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let app = app(&endpoint, "sched-due", None, |_| {}).await;
    let domain = &domain("due");
    let shipped = t(SHIPPED);
    for i in 0..3 {
        ship(&app, domain, i, shipped).await;
    }
    // Two ship a day later: due a day later.
    for i in 3..5 {
        ship(&app, domain, i, shipped + TimeDelta::days(1)).await;
    }
    assert_eq!(messages_per_customer(&endpoint, domain, 5), [1; 5]);

    // A bad input fires nothing and says why.
    let raw = RawValue::from_string(r#"{"time": "yesterday"}"#.to_owned()).unwrap();
    let bad = scheduler::handle(&app, &raw, None).await.unwrap_err();
    assert!(matches!(bad, TickError::Input(_)), "{bad}");
    assert_eq!(messages_per_customer(&endpoint, domain, 5), [1; 5]);

    let summary = invoke(&app, fourteen_days_on(shipped)).await;
    assert_eq!(summary.fired, 3, "{summary:?}");
    assert_eq!(summary.sends_delivered, 3, "{summary:?}");
    assert_eq!(
        (
            summary.set_aside,
            summary.failed,
            summary.sends_left_pending
        ),
        (0, 0, 0)
    );
    assert!(!summary.stopped_early, "{summary:?}");
    assert_eq!(summary.shards.len(), 16);
    let per_shard: usize = summary.shards.iter().map(|s| s.fired).sum();
    assert_eq!(per_shard, 3);
    assert_eq!(messages_per_customer(&endpoint, domain, 5), [2, 2, 2, 1, 1]);
    let messages = support::raw_messages(&endpoint);
    let still = messages
        .iter()
        .filter(|(_, raw)| raw.contains(domain) && raw.contains("arrived?"))
        .count();
    assert_eq!(
        still, 3,
        "the 'has it arrived?' email went to the three due"
    );

    // The same minute again: nothing is due any more.
    let again = invoke(&app, fourteen_days_on(shipped)).await;
    assert_eq!((again.fired, again.sends_delivered), (0, 0), "{again:?}");
    // A day later the other two are due.
    let later = invoke(&app, fourteen_days_on(shipped + TimeDelta::days(1))).await;
    assert_eq!((later.fired, later.sends_delivered), (2, 2), "{later:?}");
    assert_eq!(messages_per_customer(&endpoint, domain, 5), [2; 5]);
}

#[tokio::test]
async fn the_ses_rate_defers_what_cannot_go_to_the_next_tick_without_duplicates() {
    let test = "the_ses_rate_defers_what_cannot_go_to_the_next_tick_without_duplicates";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    // One a second for 20 seconds (firing 16 customers takes well under that, even on a busy
    // moto), and no send is claimed unless it would end within the budget at its worst
    // (`bounded_send_worst`, 7.5 s): about 13 of the 16 emails can go.
    let rate = 1;
    let app = app(&endpoint, "sched-rate", None, |c| {
        c.ses_rate = rate;
        c.time_budget = Some(Duration::from_secs(20));
    })
    .await;
    let domain = &domain("rate");
    let n = 16;
    let shipped = t(SHIPPED);
    for i in 0..n {
        ship(&app, domain, i, shipped).await;
    }
    let now = fourteen_days_on(shipped);
    let first = invoke(&app, now).await;
    assert_eq!(first.fired, n, "{first:?}");
    // At most one second's worth to start and `rate` a second after that, and none claimed
    // in the last `bounded_send_worst` of the budget.
    let sent = first.sends_delivered;
    assert!((1..n).contains(&sent), "{first:?}");
    let window = Duration::from_secs(20) - nudge_lambda::app::bounded_send_worst();
    assert!(
        sent as u64 <= rate as u64 * (window.as_secs() + 2),
        "{first:?}"
    );
    assert_eq!(first.sends_left_pending, n - sent, "{first:?}");
    assert!(first.stopped_early);
    let after_first: usize = messages_per_customer(&endpoint, domain, n)
        .iter()
        .map(|m| m - 1)
        .sum();
    assert_eq!(
        after_first, sent,
        "SES took exactly what the tick says it sent"
    );
    // The deferred sends are pending and unclaimed: no attempt counted.
    for i in 0..n {
        let (id, _) = customer(domain, i);
        for entry in app.store.sends(&id).await.unwrap() {
            if entry.status == SendStatus::Pending {
                assert_eq!(entry.attempts, 0, "a deferred send was never claimed");
            }
        }
    }

    // The next minute's tick (a longer budget) sends the rest, once each. A send whose
    // attempts all failed certainly unsent (on a loaded machine, moto can answer slower than
    // the bounded attempt's timeout) is retried by a later tick, as in production: never
    // settled failed or unknown, never sent twice.
    let second = scheduler::tick(&app, now + TimeDelta::minutes(1), Duration::from_secs(120)).await;
    assert_eq!(second.fired, 0, "{second:?}");
    assert_eq!(
        second.sends_delivered + second.sends_retrying,
        n - sent,
        "{second:?}"
    );
    assert_eq!(second.sends_failed + second.sends_unknown, 0, "{second:?}");
    assert_eq!(second.sends_left_pending, 0);
    assert!(!second.stopped_early);
    // Paced: the sends it claimed at `rate` a second after the first second's worth.
    let least_ms = ((n - sent).saturating_sub(rate as usize) * 1000 / rate as usize) as u64;
    assert!(
        second.elapsed_ms + 50 >= least_ms,
        "{} sends took {} ms at {rate} a second",
        n - sent,
        second.elapsed_ms
    );
    let mut delivered = second.sends_delivered;
    let mut at = now + TimeDelta::minutes(1);
    for _ in 0..3 {
        if delivered == n - sent {
            break;
        }
        at += TimeDelta::minutes(10);
        let retry = scheduler::tick(&app, at, Duration::from_secs(120)).await;
        assert_eq!(retry.sends_failed + retry.sends_unknown, 0, "{retry:?}");
        delivered += retry.sends_delivered;
    }
    assert_eq!(delivered, n - sent, "every deferred send went");
    assert_eq!(messages_per_customer(&endpoint, domain, n), vec![2; n]);
}

#[tokio::test]
async fn an_expired_claim_is_taken_over_by_the_sweep() {
    let test = "an_expired_claim_is_taken_over_by_the_sweep";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let app = app(&endpoint, "sched-claim", None, |_| {}).await;
    let domain = &domain("claim");
    let shipped = t(SHIPPED);
    ship(&app, domain, 0, shipped).await;
    let (id, _) = customer(domain, 0);
    // A scheduler that stopped after claiming the timer's email: fired, claimed, never sent.
    let due = app.runner().next_wake(&id).await.unwrap().expect("a timer");
    let clock = due + TimeDelta::seconds(30);
    let fired = app
        .runner()
        .deliver_later()
        .fire(&id, due, clock)
        .await
        .unwrap();
    assert!(matches!(fired, Fired::Applied(_)), "{fired:?}");
    let pending = app
        .store
        .sends(&id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.status == SendStatus::Pending)
        .expect("the timer's email is pending");
    let key = pending.record.idempotency_key;
    let claimed = app
        .store
        .claim_send(&id, &key, clock, clock + SEND_LEASE)
        .await
        .unwrap();
    assert!(claimed.is_some());

    // Within the lease, the sweep leaves it to its sender.
    let within = invoke(&app, clock + TimeDelta::minutes(1)).await;
    assert_eq!(within.sends_delivered, 0, "{within:?}");
    assert_eq!(messages_per_customer(&endpoint, domain, 1), [1]);
    // After it, the sweep takes it over: a transactional email is sent (SES cannot say
    // whether the stopped sender sent it).
    let after = invoke(&app, clock + SEND_LEASE + TimeDelta::minutes(1)).await;
    assert_eq!(after.sends_delivered, 1, "{after:?}");
    assert_eq!(messages_per_customer(&endpoint, domain, 1), [2]);
    let entry = app
        .store
        .sends(&id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.record.idempotency_key == key)
        .unwrap();
    assert_eq!((entry.status, entry.attempts), (SendStatus::Sent, 2));
}

#[tokio::test]
async fn a_tick_out_of_time_leaves_everything_for_the_next() {
    let test = "a_tick_out_of_time_leaves_everything_for_the_next";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let app = app(&endpoint, "sched-budget", None, |c| {
        c.time_budget = Some(Duration::ZERO);
    })
    .await;
    let domain = &domain("budget");
    let shipped = t(SHIPPED);
    for i in 0..4 {
        ship(&app, domain, i, shipped).await;
    }
    let now = fourteen_days_on(shipped);
    // The setting's budget of zero: nothing is started.
    let out = invoke(&app, now).await;
    assert_eq!((out.fired, out.sends_delivered), (0, 0), "{out:?}");
    assert!(out.stopped_early);
    assert_eq!(all_due(&app.store, now, 100).await.unwrap().len(), 4);
    assert_eq!(messages_per_customer(&endpoint, domain, 4), [1; 4]);

    // A budget of a millisecond: whatever it started (the due page is read, few or no
    // customers fired), it stops and leaves the rest.
    let tiny = scheduler::tick(&app, now, Duration::from_millis(1)).await;
    assert!(tiny.stopped_early, "{tiny:?}");
    assert!(tiny.fired < 4, "{tiny:?}");
    assert_eq!(
        all_due(&app.store, now, 100).await.unwrap().len(),
        4 - tiny.fired
    );

    // The next minute's tick does the rest: every customer fired once, every email sent once.
    let next = scheduler::tick(&app, now + TimeDelta::minutes(1), Duration::from_secs(120)).await;
    assert_eq!(tiny.fired + next.fired, 4, "{next:?}");
    assert_eq!(tiny.sends_delivered + next.sends_delivered, 4, "{next:?}");
    assert!(!next.stopped_early);
    assert!(all_due(&app.store, now, 100).await.unwrap().is_empty());
    assert_eq!(messages_per_customer(&endpoint, domain, 4), [2; 4]);
}

#[tokio::test]
async fn a_customer_whose_state_cannot_be_read_is_set_aside() {
    let test = "a_customer_whose_state_cannot_be_read_is_set_aside";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let app = app(&endpoint, "sched-aside", None, |_| {}).await;
    let due = t("2026-03-16T10:00:00Z");
    let commit = Commit {
        customer_id: "c-aside-1",
        expected_version: 0,
        state: b"{\"id\": 3}",
        next_wake: Some(due),
        event_id: None,
        sends: &[],
        journal: &[],
    };
    let committed = app.store.commit(commit).await.unwrap();
    assert!(matches!(
        committed,
        nudge_core::store::CommitOutcome::Committed { .. }
    ));
    let now = due + TimeDelta::minutes(1);
    let summary = invoke(&app, now).await;
    assert_eq!(
        (summary.fired, summary.set_aside, summary.failed),
        (0, 1, 0)
    );
    let letters = app.store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].source, "timer");
    // Set aside: the next tick does not try it again.
    let next = invoke(&app, now + TimeDelta::minutes(1)).await;
    assert_eq!((next.fired, next.set_aside), (0, 0), "{next:?}");
}

/// This process's CPU time so far (user and system, all threads), from /proc (Linux); `None`
/// elsewhere. Counted in ticks of 10 ms.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The requests of one tick, by operation, printed (`--nocapture`) for docs/PERFORMANCE.md.
fn print_counts(what: &str, meter: &RequestMeter) -> std::collections::BTreeMap<String, u64> {
    let counts: std::collections::BTreeMap<String, u64> = meter
        .take()
        .into_iter()
        .map(|(op, c)| (op, c.requests))
        .collect();
    println!("{what}: {counts:?}");
    counts
}

#[tokio::test]
async fn requests_per_fired_customer_and_per_send() {
    let test = "requests_per_fired_customer_and_per_send";
    let Some(endpoint) = support::moto(test) else {
        return;
    };
    let meter = RequestMeter::new();
    let app = app(&endpoint, "sched-requests", Some(&meter), |c| {
        c.ses_rate = 1000
    })
    .await;
    let domain = &domain("requests");
    let shipped = t(SHIPPED);
    let n = 100;
    for i in 0..n {
        ship(&app, domain, i, shipped).await;
    }
    let now = fourteen_days_on(shipped);

    // A tick with nothing due: one query per due shard and one per send shard.
    meter.take();
    let idle = scheduler::tick(&app, shipped + TimeDelta::days(1), Duration::from_secs(120)).await;
    assert_eq!(idle.fired, 0);
    let counts = print_counts("idle tick", &meter);
    assert_eq!(counts.get("Query"), Some(&32), "{counts:?}");
    assert_eq!(counts.len(), 1, "{counts:?}");

    // A tick that fires n customers, each sending one email.
    let cpu = cpu_time();
    let summary = scheduler::tick(&app, now, Duration::from_secs(120)).await;
    if let (Some(before), Some(after)) = (cpu, cpu_time()) {
        println!(
            "tick of {n} fires and {n} sends: {} ms wall on moto, {} ms of this process's CPU \
             (debug build; the other tests of this binary run meanwhile unless it runs alone)",
            summary.elapsed_ms,
            (after - before).as_millis()
        );
    }
    // Every customer fires and every email is decided and claimed once. moto, answering many
    // requests at once on a loaded machine, sometimes answers a `SendEmail` too late (past the
    // scheduler's 5 s attempt) or not at all: seen in CI, 1 and 11 of the 100. These "has it
    // arrived?" emails are transactional, so the runner puts such a send back for a retry a
    // minute later, as it would on AWS (at least once: SES may have taken it). They are counted
    // here like any send (a claim and a settle each); the next tick must deliver exactly them.
    assert_eq!(
        (summary.fired, summary.sends_failed, summary.sends_unknown),
        (n, 0, 0),
        "{summary:?}"
    );
    assert_eq!(
        summary.sends_delivered + summary.sends_retrying,
        n,
        "{summary:?}"
    );
    let counts = print_counts(&format!("tick firing {n}, sending {n}"), &meter);
    let get = |op: &str| counts.get(op).copied().unwrap_or(0);
    // Firing: a load and a commit per customer, and the suppression list's entry for the
    // address of each email decided (sending rule 2 for addresses SES reported); sending: a
    // claim and a settle per send. The
    // meter counts attempts, and moto, answering many requests at once, fails a few with a
    // 500 ("dictionary changed size during iteration") that the SDK retries: a tenth more is
    // let through for those, never a request more per customer.
    let (n64, slack) = (n as u64, n as u64 / 10);
    assert!(
        (2 * n64..=2 * n64 + slack).contains(&get("GetItem")),
        "{counts:?}"
    );
    assert!(
        (n64..=n64 + slack).contains(&get("TransactWriteItems")),
        "{counts:?}"
    );
    assert!(
        (2 * n64..=2 * n64 + slack).contains(&get("UpdateItem")),
        "{counts:?}"
    );
    // Queries: one due page per shard, and the sweep's pages (one per batch of tokens, and
    // the one that finds the shard empty): at most 16 + 16 + n / batch + 16.
    let batch = u64::from(scheduler::send_batch(1000));
    assert!(
        get("Query") <= 16 + 16 + (n as u64).div_ceil(batch) + 16,
        "{counts:?}"
    );
    let per_fire = (get("GetItem") + get("TransactWriteItems")) as f64 / n as f64;
    let per_send = get("UpdateItem") as f64 / n as f64;
    println!(
        "per fired customer: {per_fire} requests + 16 due queries per tick; per send: {per_send} + {} queries in all",
        get("Query")
    );
    // The customers whose send went back after an answer that left it open whether SES took
    // it: the guarantee lets their email reach SES once more, and no one else's.
    let mut ambiguous = std::collections::BTreeSet::new();
    if summary.sends_retrying > 0 {
        // Why each was put back (the send log's reason names no customer).
        let mut reasons = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..n {
            let (id, _) = customer(domain, i);
            for entry in app.store.sends(&id).await.expect("the send log is read") {
                if entry.status == nudge_core::store::SendStatus::Pending {
                    let reason = entry.reason.unwrap_or_default();
                    if reason.starts_with("the mailer may have taken the email") {
                        ambiguous.insert(i);
                    }
                    *reasons.entry(reason).or_default() += 1;
                }
            }
        }
        println!(
            "{} sends put back for a retry by moto's answers: {reasons:?}",
            summary.sends_retrying
        );
        assert_eq!(reasons.values().sum::<usize>(), summary.sends_retrying);
        // The first retry is a minute later: the next tick delivers them.
        let next = scheduler::tick(
            &app,
            now + nudge_core::runner::retry_delay(1),
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(
            (next.fired, next.sends_delivered, next.sends_unknown),
            (0, summary.sends_retrying, 0),
            "{next:?}"
        );
    }
    // Each customer's two emails (the shipment's at once, "has it arrived?" now) reached SES:
    // none lost, and a second copy only where the answer was ambiguous.
    for (i, copies) in messages_per_customer(&endpoint, domain, n)
        .into_iter()
        .enumerate()
    {
        let allowed = if ambiguous.contains(&i) { 2..=3 } else { 2..=2 };
        assert!(
            allowed.contains(&copies),
            "customer {i}: {copies} emails in SES (ambiguous answers: {ambiguous:?})"
        );
    }
}
