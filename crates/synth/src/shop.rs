//! The shop every customer buys from: it numbers orders in time order, ships them, and writes
//! each customer's events as they come due, scheduling what follows from them.

use std::io;

use chrono::{SecondsFormat, TimeDelta};

use crate::catalogue::{CARRIERS, CATALOGUE, Item, basket};
use crate::customer::{Customer, Kind, Pending};
use crate::json::{
    CheckoutJson, CustomerJson, Detail, Envelope, ItemJson, OrderJson, ReviewJson, ShipmentJson,
    money,
};
use crate::random::{DAY, HOUR, day_time, event_id, mix, work_time};
use crate::{SynthOptions, SynthStats};

const FIRST_ORDER_NUMBER: u32 = 1001;
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-central-1";

/// What all customers share while their events are written: the options, the shop's order
/// numbers, the counts so far and a basket reused from one order to the next.
pub(crate) struct Shop<'a> {
    opts: &'a SynthOptions,
    end: u64,
    /// Order numbers are given out in time order, as a shop does.
    next_order: u32,
    /// Checkout numbers, likewise.
    next_checkout: u32,
    stats: SynthStats,
    item_buf: Vec<Item>,
}

impl<'a> Shop<'a> {
    /// A shop with no order yet, for a period ending `end` seconds after its start.
    pub(crate) fn new(opts: &'a SynthOptions, end: u64) -> Self {
        Shop {
            opts,
            end,
            next_order: FIRST_ORDER_NUMBER,
            next_checkout: 1,
            stats: SynthStats::default(),
            item_buf: Vec::new(),
        }
    }

    /// What was written.
    pub(crate) fn into_stats(self) -> SynthStats {
        self.stats
    }

    /// Writes one event (a JSON line) into `line` and schedules what follows from it.
    pub(crate) fn write_event(
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
        let event_type = self.happen(c, next, &mut customer, &mut detail);
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

    /// Makes `next` happen to customer `c`: fills in what its event says about the customer and
    /// the rest of its detail, schedules what follows, and returns its `detail-type`.
    fn happen(
        &mut self,
        c: &mut Customer,
        next: Pending,
        customer: &mut CustomerJson<'_>,
        detail: &mut Detail<'_>,
    ) -> &'static str {
        match next.kind {
            Kind::Created => {
                self.stats.customers += 1;
                c.describe_profile(customer);
                "customer.created"
            }
            Kind::Updated => {
                c.change_profile(customer);
                "customer.updated"
            }
            Kind::Checkout => {
                detail.checkout = Some(self.checkout(c));
                "checkout.started"
            }
            Kind::Unsubscribed => "customer.unsubscribed",
            Kind::Bounced => {
                detail.bounce_type = Some("hard");
                "email.bounced"
            }
            Kind::Order => {
                self.place_order(c, next.at, customer, detail);
                "order.placed"
            }
            Kind::Cancelled { order } => {
                detail.order = Some(OrderJson::id(order_name(order)));
                "order.cancelled"
            }
            Kind::Shipped { order, sku } => {
                self.ship(c, next.at, order, sku, customer, detail);
                "order.shipped"
            }
            Kind::Delivered { order, sku } => {
                self.deliver(c, next.at, order, sku, detail);
                "order.delivered"
            }
            Kind::Review { order, sku } => {
                detail.order = Some(OrderJson::id(order_name(order)));
                // Mostly happy customers, as product reviews go.
                let rating = [5, 5, 5, 4, 4, 4, 3, 2, 1][c.rng.usize(0..9)];
                detail.review = Some(ReviewJson {
                    sku: CATALOGUE[usize::from(sku)].0,
                    rating,
                });
                "review.submitted"
            }
        }
    }

    /// An abandoned checkout: its id (so that a workflow keyed by `event.checkout.id` runs on
    /// it), where to pick it up, and a basket's total.
    fn checkout(&mut self, c: &mut Customer) -> CheckoutJson {
        let mut items = std::mem::take(&mut self.item_buf);
        let (_, total) = basket(&mut c.rng, &mut items);
        self.item_buf = items;
        let id = format!("ch-{}", self.next_checkout);
        self.next_checkout += 1;
        CheckoutJson {
            url: format!("https://shop.example.com/checkouts/{id}"),
            id,
            total: money(total),
            currency: "TRY",
        }
    }

    /// An order placed at `at`, with the next order number and a new basket; schedules its
    /// cancellation or shipment, and the customer's next order if there is one to come.
    fn place_order(
        &mut self,
        c: &mut Customer,
        at: u64,
        customer: &mut CustomerJson<'_>,
        detail: &mut Detail<'_>,
    ) {
        let number = self.next_order;
        self.next_order += 1;
        c.orders_count = c.orders_count.saturating_add(1);
        if c.orders_left != u16::MAX {
            c.orders_left -= 1;
        }
        let mut items = std::mem::take(&mut self.item_buf);
        let (sku, total) = basket(&mut c.rng, &mut items);
        detail.order = Some(OrderJson {
            id: order_name(number),
            total: Some(money(total)),
            currency: Some("TRY"),
            items: Some(items.iter().map(item_json).collect()),
        });
        self.item_buf = items;
        customer.first_name = Some(c.first_name());
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
    }

    /// Order `order` shipped at `at`; most shipments are reported delivered one to five days
    /// later.
    fn ship(
        &self,
        c: &mut Customer,
        at: u64,
        order: u32,
        sku: u8,
        customer: &mut CustomerJson<'_>,
        detail: &mut Detail<'_>,
    ) {
        detail.order = Some(OrderJson::id(order_name(order)));
        detail.shipment = Some(self.shipment(c, order));
        customer.first_name = Some(c.first_name());
        if c.rng.u32(0..100) < 93 {
            let day = at / DAY + c.rng.u64(1..=5);
            let when = work_time(&mut c.rng, day);
            c.schedule(when, Kind::Delivered { order, sku });
        }
    }

    /// Order `order` delivered at `at`; a quarter of deliveries get a review of `sku` two to ten
    /// days later.
    fn deliver(&self, c: &mut Customer, at: u64, order: u32, sku: u8, detail: &mut Detail<'_>) {
        detail.order = Some(OrderJson::id(order_name(order)));
        detail.shipment = Some(self.shipment(c, order));
        if c.rng.u32(0..100) < 25 {
            let day = at / DAY + c.rng.u64(2..=10);
            let when = day_time(&mut c.rng, day);
            c.schedule(when, Kind::Review { order, sku });
        }
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

/// A basket line as an order lists it.
fn item_json(it: &Item) -> ItemJson {
    let (sku, title, price, _) = CATALOGUE[usize::from(it.sku)];
    ItemJson {
        sku,
        title,
        quantity: it.quantity,
        price: money(price),
    }
}

/// The name customers see for order `number`, `o-1001`.
fn order_name(number: u32) -> String {
    format!("o-{number}")
}
