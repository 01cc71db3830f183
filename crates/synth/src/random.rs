//! Seeded draws (indices, weights, birthdays, times of day) and the mixing function that seeds
//! every customer's stream and shapes event ids and tracking numbers.

use chrono::{NaiveDate, TimeDelta};

/// Seconds in a day.
pub(crate) const DAY: u64 = 86_400;
/// Seconds in an hour.
pub(crate) const HOUR: u64 = 3_600;

/// An index below `len`, drawn uniformly.
pub(crate) fn pick(rng: &mut fastrand::Rng, len: usize) -> u8 {
    rng.usize(0..len) as u8
}

/// An index drawn with the given weights.
pub(crate) fn weighted(rng: &mut fastrand::Rng, weights: impl Iterator<Item = u32> + Clone) -> u8 {
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
pub(crate) fn random_birthday(rng: &mut fastrand::Rng) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(1960, 1, 1).unwrap();
    let last = NaiveDate::from_ymd_opt(2005, 12, 31).unwrap();
    let span = (last - first).num_days();
    first + TimeDelta::days(rng.i64(0..=span))
}

/// A moment on `day` when people shop: mostly 06:00–20:00 UTC (09:00–23:00 in Istanbul),
/// sometimes at night.
pub(crate) fn day_time(rng: &mut fastrand::Rng, day: u64) -> u64 {
    let second = if rng.u32(0..100) < 85 {
        6 * HOUR + rng.u64(0..14 * HOUR)
    } else {
        rng.u64(0..DAY)
    };
    day * DAY + second
}

/// A moment on `day` in a warehouse's or a courier's working hours (09:00–19:00 in Istanbul).
pub(crate) fn work_time(rng: &mut fastrand::Rng, day: u64) -> u64 {
    day * DAY + 6 * HOUR + rng.u64(0..10 * HOUR)
}

/// SplitMix64's finaliser: a fast, well-mixed bijection on `u64`.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A UUID-shaped (version 4) event id. The last 62 bits are a bijection of (customer, sequence
/// number) for a given seed, so ids never collide within a run; the first 64 look random.
pub(crate) fn event_id(seed: u64, customer: u32, seq: u32) -> String {
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
