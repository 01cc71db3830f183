//! A synthetic coffee store, for benchmarks and load tests: [`generate`] writes the events of
//! `customers` customers over `days` days as JSON lines, in time order, the same bytes for the
//! same [`SynthOptions`].
//!
//! Each customer, on their own seeded random stream, follows a realistic life:
//!
//! - a sign-up (`customer.created`) on a uniformly random day of the period, with a profile:
//!   80% accept marketing; 70% are in `Europe/Istanbul`, 8% `Europe/Berlin`, 5% `Europe/London`,
//!   5% `America/New_York`, 1% an invalid zone (`UTC+03:00`) and 11% none; 55% give a birthday;
//! - orders (`order.placed`, one to three items from a coffee catalogue, totals in TRY, free
//!   shipping from 750 TRY): 30% never order, 35% order once (so those who sign up early lapse,
//!   which is what win-back is for), 20% two or three times, 15% are regulars who reorder every
//!   two to six weeks until the period ends. Half of first orders come in the sign-up session;
//! - for each order: 3% are cancelled (`order.cancelled`); the rest ship one or two days later
//!   (`order.shipped` with carrier and tracking), 93% of those are reported delivered one to five
//!   days after that (`order.delivered`; the others time out in shipment updates), and 25% of
//!   delivered orders get a review (`review.submitted`) two to ten days later;
//! - now and then: a profile change (`customer.updated`, 20%: a birthday added, a move to another
//!   zone, or consent changed), an abandoned checkout (`checkout.started`, 15%), an unsubscribe
//!   (`customer.unsubscribed`, 2%) and a hard bounce (`email.bounced`, 0.5%).
//!
//! Events after the end of the period are not written, so the totals depend on `days`.
//! Addresses are all under `example.com`, `example.org` and `example.net`. Event ids are
//! UUID-shaped, unique within a run (a bijection of customer and sequence number) and differ
//! between seeds.
//!
//! # Memory
//!
//! The generator streams. Every customer is a small state machine (its random generator, a
//! compact profile and a short list of its own scheduled events, a few dozen bytes), and a
//! binary heap of customers keyed by their next event's time merges the customers' streams
//! (a k-way merge). Follow-ups (shipping, delivery, review, the next order) are scheduled only
//! when the event before them is written, so a customer never holds more than a handful of
//! events, and a customer whose stream is over frees them. Memory is O(customers) with a small
//! constant and does not depend on the number of days: 100,000 customers over a year (about
//! 670,000 events, 300 MB of JSON) peak at 17 MB resident and take about 2 s in a release build.
//!
//! Ties (the same second) are broken by customer number, then by the order the customer's
//! events were scheduled in, so the output is a pure function of the options.

#![warn(missing_docs)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{self, BufWriter, Write};

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, TimeZone, Utc};
use serde::Serialize;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthOptions {
    /// How many customers sign up during the period (at most `u32::MAX`).
    pub customers: usize,
    /// The length of the period in days; nothing is written at or after `start + days`.
    pub days: u32,
    /// The start of the period.
    pub start: DateTime<Utc>,
    /// The seed of every random choice: the same options give the same bytes.
    pub seed: u64,
}

impl Default for SynthOptions {
    /// 1,000 customers over 2026, seed 0.
    fn default() -> Self {
        Self {
            customers: 1_000,
            days: 365,
            start: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            seed: 0,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// Lines (events) written.
    pub events: u64,
    /// Customers that signed up (one `customer.created` each).
    pub customers: usize,
    /// Events written per `detail-type`.
    pub by_type: BTreeMap<&'static str, u64>,
}

/// Writes the synthetic store's events to `out`, one JSON object per line, in time order.
///
/// `out` is written through a buffer, so it need not be buffered itself. Fails only when `out`
/// does, or with [`io::ErrorKind::InvalidInput`] for more than `u32::MAX` customers.
pub fn generate(opts: &SynthOptions, out: &mut impl Write) -> io::Result<SynthStats> {
    let count = u32::try_from(opts.customers)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many customers"))?;
    let end = u64::from(opts.days) * DAY;
    let mut store = Store {
        opts,
        end,
        next_order: FIRST_ORDER_NUMBER,
        stats: SynthStats::default(),
        item_buf: Vec::new(),
    };
    let mut customers: Vec<Customer> = (0..count)
        .map(|index| Customer::new(opts.seed, index, opts.days))
        .collect();
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = customers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some(Reverse((c.pending.first()?.at, i as u32))))
        .collect();
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let mut line = Vec::with_capacity(1024);

    while let Some(Reverse((at, index))) = heap.pop() {
        let customer = &mut customers[index as usize];
        let next = customer.pending.remove(0);
        debug_assert_eq!(next.at, at);
        if at < end {
            line.clear();
            store.write_event(index, customer, next, &mut line)?;
            w.write_all(&line)?;
        }
        match customer.pending.first() {
            // Later events are not written, so a customer past the end is finished too.
            Some(p) if p.at < end => heap.push(Reverse((p.at, index))),
            _ => customer.pending = Vec::new(), // frees the list
        }
    }
    w.flush()?;
    Ok(store.stats)
}

const DAY: u64 = 86_400;
const HOUR: u64 = 3_600;
const FIRST_ORDER_NUMBER: u32 = 1001;
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-central-1";
/// Orders of at least this many kuruş ship free.
const FREE_SHIPPING_FROM: u32 = 75_000;
const SHIPPING: u32 = 7_990;

/// First names with the ASCII spelling used in addresses.
const FIRST_NAMES: &[(&str, &str)] = &[
    ("Ayşe", "ayse"),
    ("Mehmet", "mehmet"),
    ("Elif", "elif"),
    ("Can", "can"),
    ("Zeynep", "zeynep"),
    ("Emre", "emre"),
    ("Deniz", "deniz"),
    ("Burak", "burak"),
    ("Selin", "selin"),
    ("Murat", "murat"),
    ("Gökhan", "gokhan"),
    ("Şule", "sule"),
    ("İrem", "irem"),
    ("Hakan", "hakan"),
    ("Ebru", "ebru"),
    ("Oğuz", "oguz"),
    ("Jonas", "jonas"),
    ("Lena", "lena"),
    ("Emily", "emily"),
    ("Daniel", "daniel"),
    ("Sofia", "sofia"),
    ("Ali", "ali"),
];

const LAST_NAMES: &[(&str, &str)] = &[
    ("Yılmaz", "yilmaz"),
    ("Kaya", "kaya"),
    ("Demir", "demir"),
    ("Şahin", "sahin"),
    ("Çelik", "celik"),
    ("Yıldız", "yildiz"),
    ("Aydın", "aydin"),
    ("Öztürk", "ozturk"),
    ("Arslan", "arslan"),
    ("Doğan", "dogan"),
    ("Koç", "koc"),
    ("Becker", "becker"),
    ("Fischer", "fischer"),
    ("Carter", "carter"),
    ("Rossi", "rossi"),
];

const DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];

/// Time zones with their weights (out of 100); `None` is a profile without one.
const TIMEZONES: &[(Option<&str>, u32)] = &[
    (Some("Europe/Istanbul"), 70),
    (Some("Europe/Berlin"), 8),
    (Some("Europe/London"), 5),
    (Some("America/New_York"), 5),
    (Some("UTC+03:00"), 1), // not an IANA name: the store's zone applies
    (None, 11),
];

/// The catalogue: SKU, title, price in kuruş, how often it is picked.
const CATALOGUE: &[(&str, &str, u32, u32)] = &[
    ("BEAN-ETH-250", "Ethiopia Yirgacheffe, 250 g", 52_000, 14),
    ("BEAN-COL-250", "Colombia Huila, 250 g", 48_000, 14),
    ("BEAN-KEN-250", "Kenya Nyeri AA, 250 g", 59_000, 8),
    ("BEAN-BRA-1K", "Brazil Cerrado, 1 kg", 145_000, 6),
    ("BEAN-HOUSE-500", "House Espresso Blend, 500 g", 76_000, 12),
    ("BEAN-DECAF-250", "Decaf Colombia, 250 g", 49_500, 4),
    ("KHV-TURK-250", "Türk Kahvesi, 250 g", 26_000, 10),
    ("MUG-CER-300", "Ceramic Mug, 300 ml", 35_000, 5),
    ("MUG-ENAMEL", "Enamel Camp Mug", 29_000, 3),
    ("DRP-V60-02", "V60 Dripper 02", 89_000, 3),
    ("FLT-V60-100", "V60 Paper Filters, 100 pcs", 18_000, 8),
    ("FLT-CHEMEX-100", "Chemex Filters, 100 pcs", 42_000, 3),
    ("GRN-HAND-1", "Hand Grinder", 285_000, 2),
    ("GRN-ELEC-1", "Electric Burr Grinder", 690_000, 1),
];

/// Carrier name and the slug in its tracking address.
const CARRIERS: &[(&str, &str)] = &[
    ("Yurtiçi Kargo", "yurtici"),
    ("Aras Kargo", "aras"),
    ("MNG Kargo", "mng"),
    ("DHL", "dhl"),
    ("UPS", "ups"),
];

/// One customer's state: a random stream, the profile and their next few events.
struct Customer {
    rng: fastrand::Rng,
    /// Their own events, by time; equal times keep the order they were scheduled in.
    pending: Vec<Pending>,
    /// Events written so far, for event ids.
    seq: u32,
    /// Orders still to come (`u16::MAX` for regulars, who order until the period ends).
    orders_left: u16,
    orders_count: u16,
    birthday: Option<NaiveDate>,
    first: u8,
    last: u8,
    domain: u8,
    tz: u8,
    accepts_marketing: bool,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Seconds from the start of the period.
    at: u64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Created,
    Updated,
    Checkout,
    Unsubscribed,
    Bounced,
    Order,
    Cancelled { order: u32 },
    Shipped { order: u32, sku: u8 },
    Delivered { order: u32, sku: u8 },
    Review { order: u32, sku: u8 },
}

impl Customer {
    /// The customer's profile and first events, from their own stream (so customers are
    /// independent of each other and of how many there are).
    fn new(seed: u64, index: u32, days: u32) -> Self {
        let mut rng = fastrand::Rng::with_seed(mix(seed ^ mix(u64::from(index))));
        let mut c = Customer {
            first: pick(&mut rng, FIRST_NAMES.len()),
            last: pick(&mut rng, LAST_NAMES.len()),
            domain: pick(&mut rng, DOMAINS.len()),
            tz: weighted(&mut rng, TIMEZONES.iter().map(|t| t.1)),
            accepts_marketing: rng.u32(0..100) < 80,
            birthday: None,
            orders_count: 0,
            orders_left: 0,
            seq: 0,
            pending: Vec::with_capacity(4),
            rng,
        };
        if days == 0 {
            return c;
        }
        if c.rng.u32(0..100) < 55 {
            c.birthday = Some(random_birthday(&mut c.rng));
        }
        let signup_day = c.rng.u64(0..u64::from(days));
        let signup = day_time(&mut c.rng, signup_day);
        c.schedule(signup, Kind::Created);

        let r = c.rng.u32(0..100);
        c.orders_left = match r {
            0..30 => 0,
            30..65 => 1,
            65..85 => c.rng.u16(2..=3),
            _ => u16::MAX,
        };
        if c.orders_left > 0 {
            let first = if c.rng.bool() {
                signup + c.rng.u64(2 * 60..30 * 60)
            } else {
                {
                    let day = signup_day + c.rng.u64(1..=30);
                    day_time(&mut c.rng, day)
                }
            };
            c.schedule(first, Kind::Order);
        }
        // The rarer events; each draw is made whatever the outcome, so that the stream is
        // consumed the same way and one probability change does not reshuffle everything.
        let (u, k, s, b) = (
            c.rng.u32(0..1000),
            c.rng.u32(0..1000),
            c.rng.u32(0..1000),
            c.rng.u32(0..1000),
        );
        if u < 200 {
            let day = signup_day + c.rng.u64(3..=90);
            let at = day_time(&mut c.rng, day);
            c.schedule(at, Kind::Updated);
        }
        if k < 150 {
            let at = signup + c.rng.u64(HOUR..60 * DAY);
            c.schedule(at, Kind::Checkout);
        }
        if s < 20 {
            let day = signup_day + c.rng.u64(5..=120);
            let at = day_time(&mut c.rng, day);
            c.schedule(at, Kind::Unsubscribed);
        }
        if b < 5 {
            let at = signup + c.rng.u64(10 * 60..3 * DAY);
            c.schedule(at, Kind::Bounced);
        }
        c
    }

    fn schedule(&mut self, at: u64, kind: Kind) {
        let i = self.pending.partition_point(|p| p.at <= at);
        self.pending.insert(i, Pending { at, kind });
    }

    fn id(&self, index: u32) -> String {
        format!("c-{}", u64::from(index) + 1)
    }

    fn email(&self, index: u32) -> String {
        format!(
            "{}.{}{}@{}",
            FIRST_NAMES[usize::from(self.first)].1,
            LAST_NAMES[usize::from(self.last)].1,
            u64::from(index) + 1,
            DOMAINS[usize::from(self.domain)]
        )
    }

    fn timezone(&self) -> Option<&'static str> {
        TIMEZONES[usize::from(self.tz)].0
    }
}

/// The state shared by all customers while writing.
struct Store<'a> {
    opts: &'a SynthOptions,
    end: u64,
    /// Order numbers are given out in time order, as a shop does.
    next_order: u32,
    stats: SynthStats,
    item_buf: Vec<Item>,
}

impl Store<'_> {
    /// Writes one event (a JSON line) into `line` and schedules what follows from it.
    fn write_event(
        &mut self,
        index: u32,
        c: &mut Customer,
        next: Pending,
        line: &mut Vec<u8>,
    ) -> io::Result<()> {
        let at = next.at;
        let id = c.id(index);
        let email = c.email(index);
        let mut customer = CustomerJson {
            id: &id,
            email: Some(&email),
            ..CustomerJson::default()
        };
        let mut detail = Detail::default();
        let order_id;
        let event_type = match next.kind {
            Kind::Created => {
                self.stats.customers += 1;
                customer.first_name = Some(FIRST_NAMES[usize::from(c.first)].0);
                customer.last_name = Some(LAST_NAMES[usize::from(c.last)].0);
                customer.timezone = c.timezone();
                customer.birthday = c.birthday.map(|d| d.format("%Y-%m-%d").to_string());
                customer.accepts_marketing = Some(c.accepts_marketing);
                customer.orders_count = Some(c.orders_count);
                customer.tags = Some(tags(c.accepts_marketing));
                "customer.created"
            }
            Kind::Updated => {
                // One change, as a profile edit in the shop admin makes.
                match c.rng.u32(0..3) {
                    0 if c.birthday.is_none() => {
                        c.birthday = Some(random_birthday(&mut c.rng));
                        customer.birthday = c.birthday.map(|d| d.format("%Y-%m-%d").to_string());
                    }
                    0 | 1 => {
                        c.tz = weighted(&mut c.rng, TIMEZONES.iter().map(|t| t.1));
                        customer.timezone = c.timezone();
                    }
                    _ => {
                        c.accepts_marketing = !c.accepts_marketing;
                        customer.accepts_marketing = Some(c.accepts_marketing);
                        customer.tags = Some(tags(c.accepts_marketing));
                    }
                }
                "customer.updated"
            }
            Kind::Checkout => {
                let mut items = std::mem::take(&mut self.item_buf);
                let (_, total) = basket(&mut c.rng, &mut items);
                detail.checkout = Some(CheckoutJson {
                    total: money(total),
                    currency: "TRY",
                });
                self.item_buf = items;
                "checkout.started"
            }
            Kind::Unsubscribed => "customer.unsubscribed",
            Kind::Bounced => {
                detail.bounce_type = Some("hard");
                "email.bounced"
            }
            Kind::Order => {
                let number = self.next_order;
                self.next_order += 1;
                c.orders_count = c.orders_count.saturating_add(1);
                if c.orders_left != u16::MAX {
                    c.orders_left -= 1;
                }
                let mut items = std::mem::take(&mut self.item_buf);
                let (sku, total) = basket(&mut c.rng, &mut items);
                order_id = order_name(number);
                detail.order = Some(OrderJson {
                    id: &order_id,
                    total: Some(money(total)),
                    currency: Some("TRY"),
                    items: Some(
                        items
                            .iter()
                            .map(|it| ItemJson {
                                sku: CATALOGUE[usize::from(it.sku)].0,
                                title: CATALOGUE[usize::from(it.sku)].1,
                                quantity: it.quantity,
                                price: money(CATALOGUE[usize::from(it.sku)].2),
                            })
                            .collect(),
                    ),
                });
                self.item_buf = items;
                customer.first_name = Some(FIRST_NAMES[usize::from(c.first)].0);
                customer.accepts_marketing = Some(c.accepts_marketing);
                customer.orders_count = Some(c.orders_count);

                let day = at / DAY;
                if c.rng.u32(0..100) < 3 {
                    let when = at + c.rng.u64(HOUR..DAY);
                    c.schedule(when, Kind::Cancelled { order: number });
                } else {
                    let ship_day = day + c.rng.u64(1..=2);
                    let when = work_time(&mut c.rng, ship_day);
                    c.schedule(when, Kind::Shipped { order: number, sku });
                }
                if c.orders_left > 0 {
                    let gap = if c.orders_left == u16::MAX {
                        c.rng.u64(14..=45)
                    } else {
                        c.rng.u64(15..=90)
                    };
                    let when = day_time(&mut c.rng, day + gap);
                    c.schedule(when, Kind::Order);
                }
                "order.placed"
            }
            Kind::Cancelled { order } => {
                order_id = order_name(order);
                detail.order = Some(OrderJson::id(&order_id));
                "order.cancelled"
            }
            Kind::Shipped { order, sku } => {
                order_id = order_name(order);
                detail.order = Some(OrderJson::id(&order_id));
                detail.shipment = Some(self.shipment(c, order));
                customer.first_name = Some(FIRST_NAMES[usize::from(c.first)].0);
                if c.rng.u32(0..100) < 93 {
                    let day = at / DAY + c.rng.u64(1..=5);
                    let when = work_time(&mut c.rng, day);
                    c.schedule(when, Kind::Delivered { order, sku });
                }
                "order.shipped"
            }
            Kind::Delivered { order, sku } => {
                order_id = order_name(order);
                detail.order = Some(OrderJson::id(&order_id));
                detail.shipment = Some(self.shipment(c, order));
                if c.rng.u32(0..100) < 25 {
                    let day = at / DAY + c.rng.u64(2..=10);
                    let when = day_time(&mut c.rng, day);
                    c.schedule(when, Kind::Review { order, sku });
                }
                "order.delivered"
            }
            Kind::Review { order, sku } => {
                order_id = order_name(order);
                detail.order = Some(OrderJson::id(&order_id));
                // Mostly happy customers, as product reviews go.
                let rating = [5, 5, 5, 4, 4, 4, 3, 2, 1][c.rng.usize(0..9)];
                detail.review = Some(ReviewJson {
                    sku: CATALOGUE[usize::from(sku)].0,
                    rating,
                });
                "review.submitted"
            }
        };
        detail.customer = Some(customer);

        let time = self.opts.start + TimeDelta::seconds(at as i64);
        let event_id = event_id(self.opts.seed, index, c.seq);
        c.seq += 1;
        let envelope = Envelope {
            version: "0",
            id: &event_id,
            detail_type: event_type,
            source: "store",
            account: ACCOUNT,
            time: time.to_rfc3339_opts(SecondsFormat::Secs, true),
            region: REGION,
            resources: &[],
            detail,
        };
        serde_json::to_writer(&mut *line, &envelope)?;
        line.push(b'\n');
        self.stats.events += 1;
        *self.stats.by_type.entry(event_type).or_default() += 1;
        debug_assert!(at < self.end);
        Ok(())
    }

    /// The shipment of an order; the same for its shipped and delivered events, derived from
    /// the order number so that nothing has to be remembered between them.
    fn shipment(&self, c: &Customer, order: u32) -> ShipmentJson {
        let h = mix(self.opts.seed ^ mix(u64::from(order)));
        let carrier = match c.timezone() {
            Some("Europe/Berlin" | "Europe/London") => 3,
            Some("America/New_York") => 4,
            _ => (h % 3) as usize,
        };
        let (name, slug) = CARRIERS[carrier];
        let tracking_number = format!("{:012}", (h >> 8) % 1_000_000_000_000);
        ShipmentJson {
            carrier: name,
            tracking_url: format!("https://tracking.example.com/{slug}/{tracking_number}"),
            tracking_number,
        }
    }
}

/// One line of a basket: a catalogue index and a quantity.
#[derive(Debug, Clone, Copy)]
struct Item {
    sku: u8,
    quantity: u32,
}

/// Fills `items` with one to three different products; returns the first product (the one a
/// review is about) and the total in kuruş, shipping included.
fn basket(rng: &mut fastrand::Rng, items: &mut Vec<Item>) -> (u8, u32) {
    items.clear();
    let lines = [1, 1, 1, 1, 1, 1, 2, 2, 2, 3][rng.usize(0..10)];
    while items.len() < lines {
        let sku = weighted(rng, CATALOGUE.iter().map(|p| p.3));
        if items.iter().all(|it| it.sku != sku) {
            let beans = CATALOGUE[usize::from(sku)].0.starts_with("BEAN");
            let quantity = if beans && rng.u32(0..4) == 0 { 2 } else { 1 };
            items.push(Item { sku, quantity });
        }
    }
    let subtotal: u32 = items
        .iter()
        .map(|it| CATALOGUE[usize::from(it.sku)].2 * it.quantity)
        .sum();
    let shipping = if subtotal >= FREE_SHIPPING_FROM {
        0
    } else {
        SHIPPING
    };
    (items[0].sku, subtotal + shipping)
}

fn tags(accepts_marketing: bool) -> &'static [&'static str] {
    if accepts_marketing {
        &["newsletter"]
    } else {
        &[]
    }
}

fn order_name(number: u32) -> String {
    format!("o-{number}")
}

/// Kuruş to lira, as the JSON number a shop sends (`1449.9`).
fn money(kurus: u32) -> f64 {
    f64::from(kurus) / 100.0
}

fn pick(rng: &mut fastrand::Rng, len: usize) -> u8 {
    rng.usize(0..len) as u8
}

/// An index drawn with the given weights.
fn weighted(rng: &mut fastrand::Rng, weights: impl Iterator<Item = u32> + Clone) -> u8 {
    let total: u32 = weights.clone().sum();
    let mut r = rng.u32(0..total);
    for (i, w) in weights.enumerate() {
        if r < w {
            return i as u8;
        }
        r -= w;
    }
    unreachable!("r < total")
}

/// A birthday of someone born between 1960 and 2005 (29 February included, in leap years).
fn random_birthday(rng: &mut fastrand::Rng) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap();
    let last = NaiveDate::from_ymd_opt(2005, 12, 31).unwrap();
    let span = (last - first).num_days();
    first + TimeDelta::days(rng.i64(0..=span))
}

/// A moment on `day` when people shop: mostly 06:00–20:00 UTC (09:00–23:00 in Istanbul),
/// sometimes at night.
fn day_time(rng: &mut fastrand::Rng, day: u64) -> u64 {
    let second = if rng.u32(0..100) < 85 {
        6 * HOUR + rng.u64(0..14 * HOUR)
    } else {
        rng.u64(0..DAY)
    };
    day * DAY + second
}

/// A moment on `day` in a warehouse's or a courier's working hours (09:00–19:00 in Istanbul).
fn work_time(rng: &mut fastrand::Rng, day: u64) -> u64 {
    day * DAY + 6 * HOUR + rng.u64(0..10 * HOUR)
}

/// SplitMix64's finaliser: a fast, well-mixed bijection on `u64`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A UUID-shaped (version 4) event id. The last 62 bits are a bijection of (customer, sequence
/// number) for a given seed, so ids never collide within a run; the first 64 look random.
fn event_id(seed: u64, customer: u32, seq: u32) -> String {
    const MASK62: u64 = (1 << 62) - 1;
    let packed = (u64::from(customer) << 30) | u64::from(seq & ((1 << 30) - 1));
    // Multiplying by an odd number and xor-shifting are both bijections modulo 2^62.
    let mut low = packed.wrapping_mul(0x9e37_79b9_7f4a_7c15) & MASK62;
    low ^= low >> 31;
    low ^= mix(seed) & MASK62;
    let high = mix(seed ^ mix(packed));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        0x4000 | (high & 0x0fff),
        0x8000 | (low >> 48),
        low & 0xffff_ffff_ffff
    )
}

#[derive(Serialize)]
struct Envelope<'a> {
    version: &'static str,
    id: &'a str,
    #[serde(rename = "detail-type")]
    detail_type: &'static str,
    source: &'static str,
    account: &'static str,
    time: String,
    region: &'static str,
    resources: &'static [&'static str],
    detail: Detail<'a>,
}

#[derive(Serialize, Default)]
struct Detail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<CustomerJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<OrderJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipment: Option<ShipmentJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    review: Option<ReviewJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkout: Option<CheckoutJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bounce_type: Option<&'static str>,
}

/// The customer as events carry it: the id always, other fields when the event has them.
#[derive(Serialize, Default)]
struct CustomerJson<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    birthday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepts_marketing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    orders_count: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'static [&'static str]>,
}

#[derive(Serialize)]
struct OrderJson<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<ItemJson>>,
}

impl<'a> OrderJson<'a> {
    /// An order named by its id only, as shipping and review events name it.
    fn id(id: &'a str) -> Self {
        Self {
            id,
            total: None,
            currency: None,
            items: None,
        }
    }
}

#[derive(Serialize)]
struct ItemJson {
    sku: &'static str,
    title: &'static str,
    quantity: u32,
    price: f64,
}

#[derive(Serialize)]
struct ShipmentJson {
    carrier: &'static str,
    tracking_number: String,
    tracking_url: String,
}

#[derive(Serialize)]
struct ReviewJson {
    sku: &'static str,
    rating: u8,
}

#[derive(Serialize)]
struct CheckoutJson {
    total: f64,
    currency: &'static str,
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use nudge_core::event::parse_event;

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
}
