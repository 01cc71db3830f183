//! The table's key scheme: how each kind of item is keyed, how times are written into sort
//! keys, the sweep index's keys and the opaque page cursors.
//!
//! Every item has a partition key `pk` and a sort key `sk` (strings). The prefixes keep the
//! kinds apart: `C#` a customer's partition (its state item and its send log), `E#` a processed
//! event id, `M#` a metadata value, `O#` an order's customer, `X#` a suppressed address's key,
//! and `DEAD` the dead letters' partition.

use chrono::{DateTime, Utc};
use nudge_core::store::{StoreError, due_shard, from_millis, to_millis};

use super::item::{Item, get_s, s};

/// The partition key attribute.
pub(super) const PK: &str = "pk";
/// The sort key attribute.
pub(super) const SK: &str = "sk";
/// The sweep index's partition key attribute (present only while the item is due somewhere).
pub(super) const GPK: &str = "gpk";
/// The sweep index's sort key attribute.
pub(super) const GSK: &str = "gsk";
/// The sparse global secondary index on (`gpk`, `gsk`): due timers and live sends.
pub(super) const SWEEP_INDEX: &str = "sweep";
/// The TTL attribute (unix seconds; DynamoDB deletes the item some time after).
pub(super) const TTL: &str = "ttl";

/// The sort key of a customer's state item.
pub(super) const STATE_SK: &str = "STATE";
/// The sort key prefix of a customer's send-log entries.
pub(super) const SEND_SK_PREFIX: &str = "S#";
/// The partition of the dead letters.
pub(super) const DEAD_PK: &str = "DEAD";

/// The latest time a sort key can hold: 9999-12-31T23:59:59.999Z, 15 decimal digits of unix
/// milliseconds. Times are written zero-padded to 15 digits so that byte order is time order.
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// The longest sort key DynamoDB takes (1,024 bytes, the index's included).
const MAX_SORT_KEY_BYTES: usize = 1024;
/// The longest customer id this store keeps: its timer's index sort key (a time, `#` and the
/// id) and a send's (the same, U+0001 and the key) must fit DynamoDB's 1,024 bytes, with room
/// for an idempotency key.
pub const MAX_CUSTOMER_ID_BYTES: usize = 768;

/// Refuses a customer id longer than [`MAX_CUSTOMER_ID_BYTES`] (`InvalidRequest`, before any
/// request: DynamoDB would refuse its keys with a validation error).
pub(super) fn check_customer_id(id: &str) -> Result<(), StoreError> {
    if id.len() > MAX_CUSTOMER_ID_BYTES {
        return Err(StoreError::InvalidRequest(format!(
            "a customer id of {} bytes, over the {MAX_CUSTOMER_ID_BYTES} a DynamoDB key can hold",
            id.len()
        )));
    }
    Ok(())
}

/// Refuses a sort key over DynamoDB's limit (made of ids: a customer and an idempotency key,
/// an event id, a workflow and a step).
pub(super) fn check_sort_key(key: String) -> Result<String, StoreError> {
    if key.len() > MAX_SORT_KEY_BYTES {
        return Err(StoreError::InvalidRequest(format!(
            "a sort key of {} bytes (ids too long), over DynamoDB's {MAX_SORT_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key)
}

/// The partition key of customer `id`.
pub(super) fn customer_pk(id: &str) -> String {
    format!("C#{id}")
}

/// The customer id of a customer partition key.
pub(super) fn customer_of(pk: &str) -> Result<&str, StoreError> {
    pk.strip_prefix("C#")
        .ok_or_else(|| StoreError::Corrupt(format!("`{pk}` is not a customer partition key")))
}

/// The sort key of the send-log entry `key`.
pub(super) fn send_sk(key: &str) -> String {
    format!("{SEND_SK_PREFIX}{key}")
}

/// The partition key of processed event `id`.
pub(super) fn event_pk(id: &str) -> String {
    format!("E#{id}")
}

/// The partition key of metadata `key`.
pub(super) fn meta_pk(key: &str) -> String {
    format!("M#{key}")
}

/// The partition key of order `id`.
pub(super) fn order_pk(id: &str) -> String {
    format!("O#{id}")
}

/// The partition key of a suppressed address's key.
pub(super) fn suppression_pk(address_key: &str) -> String {
    format!("X#{address_key}")
}

/// `at` as 15 zero-padded digits of unix milliseconds; a time before 1970 or after 9999 is
/// refused (the store's documented range), so that every stored time sorts by its text.
pub(super) fn sort_time(at: DateTime<Utc>) -> Result<String, StoreError> {
    let ms = to_millis(at);
    if !(0..=MAX_MILLIS).contains(&ms) {
        return Err(StoreError::InvalidRequest(format!(
            "time {at} is outside the store's range (1970 to 9999)"
        )));
    }
    Ok(format!("{ms:015}"))
}

/// The time at the start of a sort key written by [`sort_time`].
pub(super) fn parse_sort_time(key: &str) -> Result<DateTime<Utc>, StoreError> {
    let digits = key
        .get(..15)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        // Not quoted: a sort key holds a customer id, which may hold an address.
        .ok_or_else(|| {
            StoreError::Corrupt("an index sort key does not start with a time".to_owned())
        })?;
    from_millis(digits.parse().expect("15 digits fit an i64"))
}

/// The sweep index partition of customer `id`'s timer.
pub(super) fn due_gpk(shard: u16) -> String {
    format!("due#{shard}")
}

/// The sweep index partition of customer `id`'s live sends.
pub(super) fn send_gpk(shard: u16) -> String {
    format!("send#{shard}")
}

/// The sweep index keys of customer `id`'s timer at `at`: its shard, then the time and the
/// customer (last, so byte order is (time, customer) order).
pub(super) fn timer_keys(id: &str, at: DateTime<Utc>) -> Result<(String, String), StoreError> {
    let gsk = check_sort_key(format!("{}#{id}", sort_time(at)?))?;
    Ok((due_gpk(due_shard(id)), gsk))
}

/// The sweep index keys of a live send of customer `id` under `key`, due at `at`. The
/// customer and the key are separated by U+0001, below every printable character, so that
/// byte order is (time, customer, key) order for ids without control characters.
pub(super) fn send_keys(
    id: &str,
    key: &str,
    at: DateTime<Utc>,
) -> Result<(String, String), StoreError> {
    let gsk = check_sort_key(format!("{}#{id}\u{1}{key}", sort_time(at)?))?;
    Ok((send_gpk(due_shard(id)), gsk))
}

/// The exclusive upper bound of the sweep sort keys due at or before `until`: every key of a
/// time up to `until` is below the next millisecond's digits.
pub(super) fn until_bound(until: DateTime<Utc>) -> Result<String, StoreError> {
    let ms = to_millis(until).clamp(-1, MAX_MILLIS);
    Ok(format!("{:015}", ms + 1))
}

/// Where a page of the sweep index stopped: the index and table keys of its last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cursor {
    /// The sweep sort key.
    pub(super) gsk: String,
    /// The table's partition key.
    pub(super) pk: String,
    /// The table's sort key.
    pub(super) sk: String,
}

/// The prefix that marks cursors made by this store.
const CURSOR_TAG: &str = "d1";

impl Cursor {
    /// The opaque text handed to the caller: a tag and the three keys in hex.
    pub(super) fn encode(&self) -> String {
        encode_fields(CURSOR_TAG, &[&self.gsk, &self.pk, &self.sk])
    }

    /// The cursor `text` names, or `InvalidRequest` when this store did not make it.
    pub(super) fn decode(text: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::InvalidRequest("not a cursor this store made".to_owned());
        let [gsk, pk, sk] = decode_fields(CURSOR_TAG, text).ok_or_else(bad)?;
        let cursor = Cursor { gsk, pk, sk };
        if parse_sort_time(&cursor.gsk).is_err() {
            return Err(bad());
        }
        customer_of(&cursor.pk).map_err(|_| bad())?;
        Ok(cursor)
    }
}

/// The opaque text of a cursor: `tag`, then each field in hex, joined by dots (hex keeps a key's
/// own dots and any other byte out of the way).
pub(super) fn encode_fields(tag: &str, fields: &[&str]) -> String {
    let mut text = tag.to_owned();
    for field in fields {
        text.push('.');
        text.push_str(&hex::encode(field));
    }
    text
}

/// The `N` fields of a cursor that [`encode_fields`] made with `tag`; `None` for any other
/// text (another tag, another count of fields, a field that is not hex of UTF-8).
pub(super) fn decode_fields<const N: usize>(tag: &str, text: &str) -> Option<[String; N]> {
    let mut parts = text.split('.');
    if parts.next() != Some(tag) {
        return None;
    }
    let fields: Vec<String> = parts
        .map(|part| String::from_utf8(hex::decode(part).ok()?).ok())
        .collect::<Option<_>>()?;
    fields.try_into().ok()
}

/// A `Scan`'s last evaluated key (`pk` and `sk`) as a cursor marked `tag`.
pub(super) fn encode_scan_cursor(tag: &str, key: &Item) -> Result<String, StoreError> {
    Ok(encode_fields(tag, &[get_s(key, PK)?, get_s(key, SK)?]))
}

/// The `Scan` start key a cursor of [`encode_scan_cursor`] with `tag` names, or
/// `InvalidRequest` (naming `what` the cursor should have been) when this store did not make
/// it.
pub(super) fn decode_scan_cursor(tag: &str, text: &str, what: &str) -> Result<Item, StoreError> {
    let [pk, sk] = decode_fields(tag, text).ok_or_else(|| {
        StoreError::InvalidRequest(format!("not a {what} cursor this store made"))
    })?;
    Ok([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))].into())
}

/// Dead-letter ids: the wall clock's milliseconds, this store's random nonce and its own
/// sequence, so that ids never collide across writers (no counter item to contend on) and one
/// writer's ids increase: the milliseconds never go back within a store (a clock stepping back
/// keeps the last value) and the sequence breaks ties.
#[derive(Debug)]
pub(super) struct DeadLetterIds {
    nonce: u32,
    last: std::sync::Mutex<(i64, u64)>,
}

impl DeadLetterIds {
    /// A generator with a fresh random nonce.
    pub(super) fn new() -> Self {
        DeadLetterIds {
            nonce: fastrand::u32(..),
            last: std::sync::Mutex::new((0, 0)),
        }
    }

    /// The next id at wall-clock time `now`: `<15-digit ms>-<8 hex nonce>-<12-digit sequence>`.
    pub(super) fn next(&self, now: DateTime<Utc>) -> String {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let ms = to_millis(now).clamp(0, MAX_MILLIS).max(last.0);
        last.1 += 1;
        last.0 = ms;
        format!("{ms:015}-{:08x}-{:012}", self.nonce, last.1)
    }
}

/// Claim nonces: this store's random nonce and its own sequence, `<16 hex>-<sequence>`, so that
/// no two claims (of any writer, on any item) write the same one. A claim writes its nonce to
/// the item (`cid`); when the SDK retries a claim DynamoDB already applied, the retry's failed
/// condition returns the item with the nonce the request carried, and the claim is known to be
/// this call's own.
#[derive(Debug)]
pub(super) struct ClaimNonces {
    nonce: u64,
    sequence: std::sync::atomic::AtomicU64,
}

impl ClaimNonces {
    /// A generator with a fresh random nonce.
    pub(super) fn new() -> Self {
        ClaimNonces {
            nonce: fastrand::u64(..),
            sequence: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next nonce, never given before by this generator.
    pub(super) fn next(&self) -> String {
        let sequence = self
            .sequence
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{:016x}-{sequence}", self.nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    #[test]
    fn sort_keys_order_by_time_then_customer() {
        let mut keys = [
            timer_keys("b", t(20)).unwrap().1,
            timer_keys("a!", t(20)).unwrap().1,
            timer_keys("a", t(20)).unwrap().1,
            timer_keys("z", t(3)).unwrap().1,
        ];
        keys.sort();
        let ids: Vec<&str> = keys.iter().map(|k| &k[16..]).collect();
        assert_eq!(ids, ["z", "a", "a!", "b"]);
        assert_eq!(parse_sort_time(&keys[0]).unwrap(), t(3));
        assert!(keys[3].as_str() < until_bound(t(20)).unwrap().as_str());
        assert!(keys[3].as_str() > until_bound(t(19)).unwrap().as_str());
    }

    #[test]
    fn send_keys_order_by_time_customer_key() {
        let mut keys = [
            send_keys("a!", "k", t(5)).unwrap().1,
            send_keys("a", "z", t(5)).unwrap().1,
            send_keys("a", "b", t(5)).unwrap().1,
        ];
        keys.sort();
        assert!(keys[0].ends_with("a\u{1}b") && keys[1].ends_with("a\u{1}z"));
        assert!(keys[2].contains("a!\u{1}k"));
    }

    #[test]
    fn ids_and_keys_over_dynamodbs_limits_are_refused() {
        let long = "c".repeat(MAX_CUSTOMER_ID_BYTES);
        assert!(check_customer_id(&long).is_ok());
        assert!(timer_keys(&long, t(0)).is_ok());
        assert!(send_keys(&long, "r-0123456789abcdef0123.step", t(0)).is_ok());
        let longer = format!("{long}c");
        assert!(matches!(
            check_customer_id(&longer),
            Err(StoreError::InvalidRequest(_))
        ));
        let key = "k".repeat(1024);
        assert!(matches!(
            send_keys("c", &key, t(0)),
            Err(StoreError::InvalidRequest(_))
        ));
    }

    #[test]
    fn times_out_of_range_are_refused() {
        assert!(sort_time(t(-1)).is_err());
        assert!(sort_time(t(MAX_MILLIS + 1)).is_err());
        assert_eq!(sort_time(t(0)).unwrap(), "000000000000000");
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = Cursor {
            gsk: "000000000000001#c.1".into(),
            pk: "C#c.1".into(),
            sk: "STATE".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["not a cursor", "", "d1.zz.00.00", "d1.30.4323.00", "d1"] {
            assert!(
                matches!(Cursor::decode(bad), Err(StoreError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn dead_letter_ids_increase_per_writer_even_when_the_clock_goes_back() {
        let ids = DeadLetterIds::new();
        let a = ids.next(t(2_000));
        let b = ids.next(t(2_000));
        let c = ids.next(t(1_000));
        assert!(a < b && b < c, "{a} {b} {c}");
        let other = DeadLetterIds::new();
        assert_ne!(other.next(t(2_000)), a);
    }

    #[test]
    fn claim_nonces_differ_within_and_across_stores() {
        let (one, two) = (ClaimNonces::new(), ClaimNonces::new());
        let (a, b) = (one.next(), one.next());
        assert_ne!(a, b);
        assert_eq!(a.len(), 18);
        assert_eq!(&a[..16], &b[..16], "one store, one random part");
        assert_ne!(
            one.next()[..16],
            two.next()[..16],
            "two stores, two random parts"
        );
    }
}
