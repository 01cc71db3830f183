//! One customer's life: their profile and the state machine that schedules their events on
//! their own random stream.

use chrono::NaiveDate;

use crate::json::CustomerJson;
use crate::random::{DAY, HOUR, day_time, mix, pick, random_birthday, weighted};

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

/// Last names with the ASCII spelling used in addresses.
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

/// The domains of every address, reserved for examples.
pub(crate) const DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];

/// Time zones with their weights (out of 100); `None` is a profile without one.
const TIMEZONES: &[(Option<&str>, u32)] = &[
    (Some("Europe/Istanbul"), 70),
    (Some("Europe/Berlin"), 8),
    (Some("Europe/London"), 5),
    (Some("America/New_York"), 5),
    (Some("UTC+03:00"), 1), // not an IANA name: the store's zone applies
    (None, 11),
];

/// One customer's state: a random stream, the profile and their next few events.
pub(crate) struct Customer {
    /// Every random choice about this customer, from their own seed.
    pub(crate) rng: fastrand::Rng,
    /// Their own events, by time; equal times keep the order they were scheduled in.
    pub(crate) pending: Vec<Pending>,
    /// Events written so far, for event ids.
    pub(crate) seq: u32,
    /// Orders still to come (`u16::MAX` for regulars, who order until the period ends).
    pub(crate) orders_left: u16,
    /// Orders placed so far, as the profile counts them.
    pub(crate) orders_count: u16,
    birthday: Option<NaiveDate>,
    first: u8,
    last: u8,
    domain: u8,
    tz: u8,
    pub(crate) accepts_marketing: bool,
}

/// An event of a customer's, scheduled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    /// Seconds from the start of the period.
    pub(crate) at: u64,
    /// What happens then.
    pub(crate) kind: Kind,
}

/// What happens to a customer; an order's follow-ups carry its number and the product a
/// review would be about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
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
    pub(crate) fn new(seed: u64, index: u32, days: u32) -> Self {
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

    /// Adds an event at `at`, after any already scheduled at the same second.
    pub(crate) fn schedule(&mut self, at: u64, kind: Kind) {
        let i = self.pending.partition_point(|p| p.at <= at);
        self.pending.insert(i, Pending { at, kind });
    }

    /// The customer id of customer number `index`, counted from 1: `c-1`.
    pub(crate) fn id(&self, index: u32) -> String {
        format!("c-{}", u64::from(index) + 1)
    }

    /// An address made of the names and the customer number, so that it is unique.
    pub(crate) fn email(&self, index: u32) -> String {
        format!(
            "{}.{}{}@{}",
            FIRST_NAMES[usize::from(self.first)].1,
            LAST_NAMES[usize::from(self.last)].1,
            u64::from(index) + 1,
            DOMAINS[usize::from(self.domain)]
        )
    }

    /// The time zone of the profile, if it has one.
    pub(crate) fn timezone(&self) -> Option<&'static str> {
        TIMEZONES[usize::from(self.tz)].0
    }

    /// The first name, as written.
    pub(crate) fn first_name(&self) -> &'static str {
        FIRST_NAMES[usize::from(self.first)].0
    }

    /// The whole profile, as a sign-up carries it.
    pub(crate) fn describe_profile(&self, customer: &mut CustomerJson<'_>) {
        customer.first_name = Some(self.first_name());
        customer.last_name = Some(LAST_NAMES[usize::from(self.last)].0);
        customer.timezone = self.timezone();
        customer.birthday = self.birthday_text();
        customer.accepts_marketing = Some(self.accepts_marketing);
        customer.orders_count = Some(self.orders_count);
        customer.tags = Some(tags(self.accepts_marketing));
    }

    /// Changes one thing of the profile, as an edit in the shop admin does, and describes the
    /// change: a birthday added, a move to another zone, or consent changed.
    pub(crate) fn change_profile(&mut self, customer: &mut CustomerJson<'_>) {
        match self.rng.u32(0..3) {
            0 if self.birthday.is_none() => {
                self.birthday = Some(random_birthday(&mut self.rng));
                customer.birthday = self.birthday_text();
            }
            0 | 1 => {
                self.tz = weighted(&mut self.rng, TIMEZONES.iter().map(|t| t.1));
                customer.timezone = self.timezone();
            }
            _ => {
                self.accepts_marketing = !self.accepts_marketing;
                customer.accepts_marketing = Some(self.accepts_marketing);
                customer.tags = Some(tags(self.accepts_marketing));
            }
        }
    }

    /// The birthday as profiles carry it, `YYYY-MM-DD`.
    fn birthday_text(&self) -> Option<String> {
        self.birthday.map(|d| d.format("%Y-%m-%d").to_string())
    }
}

/// The profile's tags: subscribers are tagged `newsletter`.
fn tags(accepts_marketing: bool) -> &'static [&'static str] {
    if accepts_marketing {
        &["newsletter"]
    } else {
        &[]
    }
}
