//! The generator's promises: determinism, valid events in time order, realistic counts,
//! independent customers, unique ids.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use nudge_core::event::parse_event;

use crate::customer::DOMAINS;
use crate::random::event_id;
use crate::{SynthOptions, SynthStats, generate};

fn opts(customers: usize, days: u32, seed: u64) -> SynthOptions {
    SynthOptions {
        customers,
        days,
        start: Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap(),
        seed,
    }
}

fn run(o: &SynthOptions) -> (Vec<u8>, SynthStats) {
    let mut out = Vec::new();
    let stats = generate(o, &mut out).unwrap();
    (out, stats)
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let o = opts(300, 120, 42);
    let (a, sa) = run(&o);
    let (b, sb) = run(&o);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = run(&SynthOptions { seed: 43, ..o });
    assert_ne!(a, c);
}

#[test]
fn every_line_is_a_valid_event_in_time_order() {
    let o = opts(500, 365, 7);
    let (out, stats) = run(&o);
    let text = std::str::from_utf8(&out).unwrap();
    let end = o.start + TimeDelta::days(i64::from(o.days));
    let mut previous = o.start;
    let mut ids = HashSet::new();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut lines = 0;
    for line in text.lines() {
        let e = parse_event(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(e.time >= previous, "out of order: {line}");
        assert!(e.time < end, "after the period: {line}");
        previous = e.time;
        assert!(ids.insert(e.id.clone()), "duplicate id: {line}");
        let email = e.detail["customer"]["email"].as_str().unwrap();
        assert!(
            DOMAINS.iter().any(|d| email.ends_with(&format!("@{d}"))),
            "{email}"
        );
        *by_type.entry(e.event_type).or_default() += 1;
        lines += 1;
    }
    assert_eq!(stats.events, lines);
    let expected: BTreeMap<String, u64> = stats
        .by_type
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(by_type, expected);
}

#[test]
fn counts_follow_the_options() {
    let o = opts(2_000, 365, 1);
    let (_, stats) = run(&o);
    let n = |t: &str| stats.by_type.get(t).copied().unwrap_or(0) as f64;
    assert_eq!(stats.customers, 2_000);
    assert_eq!(n("customer.created"), 2_000.0);
    // About 1.7 orders per customer over a year (many regulars cut off by the period's end).
    let orders = n("order.placed") / 2_000.0;
    assert!((1.2..3.0).contains(&orders), "{orders} orders per customer");
    let shipped = n("order.shipped") / n("order.placed");
    assert!((0.9..1.0).contains(&shipped), "{shipped} shipped per order");
    let delivered = n("order.delivered") / n("order.shipped");
    assert!((0.85..0.97).contains(&delivered), "{delivered}");
    let reviews = n("review.submitted") / n("order.delivered");
    assert!((0.18..0.32).contains(&reviews), "{reviews}");
    let updated = n("customer.updated") / 2_000.0;
    assert!((0.1..0.25).contains(&updated), "{updated}");
    for rare in ["customer.unsubscribed", "email.bounced", "checkout.started"] {
        assert!(n(rare) > 0.0, "no {rare}");
    }
    // Lapsed customers: an order, then more than 104 days without one before the end.
    assert!(n("order.cancelled") > 0.0);
}

#[test]
fn some_customers_lapse_and_some_come_back() {
    let o = opts(1_000, 365, 3);
    let (out, _) = run(&o);
    let mut last_order: BTreeMap<String, (DateTime<Utc>, u64)> = BTreeMap::new();
    for line in std::str::from_utf8(&out).unwrap().lines() {
        let e = parse_event(line).unwrap();
        if e.event_type == "order.placed" {
            let entry = last_order.entry(e.customer_id).or_insert((e.time, 0));
            *entry = (e.time, entry.1 + 1);
        }
    }
    let end = o.start + TimeDelta::days(365);
    let lapsed = last_order
        .values()
        .filter(|(t, _)| end - *t > TimeDelta::days(104))
        .count();
    let regulars = last_order.values().filter(|(_, n)| *n >= 3).count();
    assert!(lapsed > 100, "{lapsed} lapsed");
    assert!(regulars > 50, "{regulars} with 3+ orders");
}

#[test]
fn handles_empty_and_short_periods() {
    let (out, stats) = run(&opts(0, 365, 1));
    assert!(out.is_empty());
    assert_eq!(stats.events, 0);
    let (out, stats) = run(&opts(50, 0, 1));
    assert!(out.is_empty());
    assert_eq!(stats.customers, 0);
    let (out, stats) = run(&opts(50, 1, 1));
    assert_eq!(stats.customers, 50);
    assert_eq!(
        out.iter().filter(|b| **b == b'\n').count() as u64,
        stats.events
    );
}

#[test]
fn customers_do_not_depend_on_how_many_there_are() {
    // Customer 1's events are the same in a store of 10 and of 20 (but for order numbers,
    // which are shared); this keeps small and large benchmark runs comparable.
    let lines_of = |customers| {
        let (out, _) = run(&opts(customers, 90, 9));
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| l.contains(r#""id":"c-1","#))
            .map(|l| l.split(r#""order":"#).next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(lines_of(10), lines_of(20));
}

#[test]
fn event_ids_are_unique_and_uuid_shaped() {
    let mut seen = HashSet::new();
    for customer in [0, 1, 2, 1_000_000, u32::MAX] {
        for seq in 0..200 {
            let id = event_id(5, customer, seq);
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
            assert!(seen.insert(id));
        }
    }
    assert_ne!(event_id(5, 0, 0), event_id(6, 0, 0));
}

#[test]
fn every_checkout_has_its_own_id_so_keyed_workflows_run_on_it() {
    let (out, _) = run(&opts(2_000, 365, 5));
    let ids: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["detail-type"] == "checkout.started")
        .map(|e| {
            e["detail"]["checkout"]["id"]
                .as_str()
                .expect("a checkout id")
                .to_owned()
        })
        .collect();
    assert!(!ids.is_empty());
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "checkout ids repeat");
}
