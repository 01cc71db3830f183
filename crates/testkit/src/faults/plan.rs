//! What the harness replays: a synthetic store's events (with invalid inputs among them) and
//! their deliveries, each input delivered one to three times and reordered within minutes.

use chrono::{DateTime, TimeDelta, Utc};
use nudge_core::event::parse_event;
use nudge_synth::SynthOptions;

use super::schedule::Prng;

/// What to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    /// The seed of the events, the invalid inputs and the deliveries.
    pub seed: u64,
    /// Customers of the synthetic store (`nudge-synth`: they sign up over the period).
    pub customers: usize,
    /// The length of the period in days.
    pub days: u32,
    /// The start of the period.
    pub start: DateTime<Utc>,
    /// One input in this many is invalid (dead-lettered when delivered); 0 for none.
    pub invalid_every: usize,
    /// At most this many inputs (the first, in time order); `None` for all.
    pub max_inputs: Option<usize>,
    /// A delivery arrives up to this long after its event's time (so deliveries of nearby
    /// events are reordered).
    pub reorder: TimeDelta,
    /// The share of inputs delivered more than once (two or three times, evenly).
    pub duplicated: f64,
    /// The share of duplicate deliveries that arrive with the first (within seconds: run
    /// concurrently with it); the others arrive up to ten minutes later.
    pub concurrent: f64,
}

impl PlanOptions {
    /// `customers` over `days` from 2026-01-01, seed `seed`: one input in 50 invalid,
    /// deliveries up to 3 minutes late, half the inputs delivered more than once, half of
    /// those duplicates concurrent with the first delivery.
    pub fn new(seed: u64, customers: usize, days: u32) -> Self {
        PlanOptions {
            seed,
            customers,
            days,
            start: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
            invalid_every: 50,
            max_inputs: None,
            reorder: TimeDelta::minutes(3),
            duplicated: 0.5,
            concurrent: 0.5,
        }
    }
}

/// One input as received (an EventBridge event's JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The JSON text delivered.
    pub text: String,
    /// Its event id, when readable.
    pub event_id: Option<String>,
    /// Its customer, when it is a valid event.
    pub customer_id: Option<String>,
    /// When it happened (for an invalid input, its neighbour's time).
    pub time: DateTime<Utc>,
    /// Whether it is a valid event ([`parse_event`] accepts it); an invalid one must end as
    /// a dead letter.
    pub valid: bool,
}

/// One delivery of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// When it arrives.
    pub at: DateTime<Utc>,
    /// The input (an index into [`Plan::inputs`]).
    pub input: usize,
    /// 0 for the first delivery, 1 and 2 for the duplicates.
    pub copy: u8,
}

/// The inputs and their deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every input, in time order.
    pub inputs: Vec<Input>,
    /// Every delivery, by arrival time (ties in the order drawn).
    pub deliveries: Vec<Delivery>,
    /// The start of the period.
    pub start: DateTime<Utc>,
    /// The end of the period (after the last delivery).
    pub end: DateTime<Utc>,
}

/// The plan `options` describe: the same options give the same plan.
pub fn plan(options: &PlanOptions) -> Plan {
    let synth = SynthOptions {
        customers: options.customers,
        days: options.days,
        start: options.start,
        seed: options.seed,
    };
    let mut bytes = Vec::new();
    nudge_synth::generate(&synth, &mut bytes).expect("generating into memory cannot fail");
    let text = String::from_utf8(bytes).expect("the generator writes UTF-8");
    let mut rng = Prng::new(options.seed ^ 0x5EED_F417);
    let mut inputs = Vec::new();
    for line in text.lines() {
        if options.max_inputs.is_some_and(|max| inputs.len() >= max) {
            break;
        }
        let Ok(event) = parse_event(line) else {
            continue;
        };
        if options.invalid_every > 0
            && inputs.len() % options.invalid_every == options.invalid_every - 1
        {
            inputs.push(invalid(inputs.len(), event.time));
        }
        inputs.push(Input {
            text: line.to_owned(),
            event_id: Some(event.id.clone()),
            customer_id: Some(event.customer_id.clone()),
            time: event.time,
            valid: true,
        });
    }
    let mut deliveries = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let first = input.time + jitter(&mut rng, options.reorder);
        deliveries.push(Delivery {
            at: first,
            input: index,
            copy: 0,
        });
        if !rng.chance(options.duplicated) {
            continue;
        }
        let copies = 1 + rng.below(2) as u8;
        for copy in 1..=copies {
            let at = if rng.chance(options.concurrent) {
                first + jitter(&mut rng, TimeDelta::seconds(5))
            } else {
                first + jitter(&mut rng, TimeDelta::minutes(10))
            };
            deliveries.push(Delivery {
                at,
                input: index,
                copy,
            });
        }
    }
    deliveries.sort_by_key(|d| d.at);
    let end = deliveries
        .last()
        .map_or(options.start, |d| d.at)
        .max(options.start + TimeDelta::days(i64::from(options.days)));
    Plan {
        inputs,
        deliveries,
        start: options.start,
        end,
    }
}

/// A uniform delay in `0..max` (millisecond steps).
fn jitter(rng: &mut Prng, max: TimeDelta) -> TimeDelta {
    let millis = u64::try_from(max.num_milliseconds()).unwrap_or(0);
    TimeDelta::milliseconds(rng.below(millis) as i64)
}

/// The `n`th invalid input, at `time`: by turns not JSON (no readable id), and an event whose
/// `detail` is not an object (an id, but refused).
fn invalid(n: usize, time: DateTime<Utc>) -> Input {
    let id = format!("invalid-{n}");
    let stamp = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (text, event_id) = if n.is_multiple_of(2) {
        (format!("{{\"id\": \"{id}\", \"detail-type\": "), None)
    } else {
        (
            format!(
                "{{\"id\":\"{id}\",\"detail-type\":\"order.placed\",\"time\":\"{stamp}\",\"source\":\"harness\",\"detail\":\"not an object\"}}"
            ),
            Some(id),
        )
    };
    debug_assert!(parse_event(&text).is_err());
    Input {
        text,
        event_id,
        customer_id: None,
        time,
        valid: false,
    }
}
