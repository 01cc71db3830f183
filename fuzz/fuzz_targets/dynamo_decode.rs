//! The DynamoDB adapter's pure decoders (`nudge_aws::fuzzing`, hidden from the docs) on
//! arbitrary bytes: a stored Binary value (`decode_value`: a damaged or hostile DEFLATE stream
//! is `StoreError::Corrupt`, never a panic or more than a few MiB), an opaque page cursor
//! (`decode_cursor`: `InvalidRequest` unless the store made it), sweep sort keys and customer
//! partition keys, and stored send-log and dead-letter items (`send_entry`, `dead_letter`:
//! `Corrupt` when damaged). A value (up to 64 KiB) encoded decodes back; a cursor read encodes and reads back.
//!
//! Input: byte 0 the part (mod 3: 0 a stored value, 1 a cursor or key, 2 an item: a valid
//! send-log item whose attributes the rest replaces, as `name 0xfe type value` fields
//! separated by `0xff`, type `s`, `n`, `b`, `l` (a list of strings split at `,`) or another
//! byte to remove the attribute).
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use nudge_aws::fuzzing::{
    AttributeValue, Blob, customer_of, dead_letter, decode_cursor, decode_value, encode_cursor,
    encode_value, parse_sort_time, send_entry,
};
use nudge_core::store::StoreError;

/// The most a stored value may expand to (the codec's bound).
const MAX_DECODED: usize = 4 * 1024 * 1024;
/// The largest decoded value encoded again to check the round trip.
const ROUND_TRIP_MAX: usize = 64 * 1024;

fn corrupt(e: &StoreError) {
    assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
}

fn value(data: &[u8]) {
    match decode_value(data) {
        Ok(out) => {
            assert!(out.len() <= MAX_DECODED);
            if data[0] == 0 {
                assert_eq!(out, data[1..]);
            }
            // The round trip on small values only: compressing megabytes at every input would
            // leave little time for the decoder, which is what reads hostile bytes.
            if out.len() <= ROUND_TRIP_MAX {
                assert_eq!(decode_value(&encode_value(&out)).unwrap(), out);
            }
        }
        Err(e) => corrupt(&e),
    }
}

fn cursor(text: &str) {
    match decode_cursor(text) {
        Ok((gsk, pk, sk)) => {
            let again = decode_cursor(&encode_cursor(&gsk, &pk, &sk)).expect("own cursor");
            assert_eq!(again, (gsk, pk, sk));
        }
        Err(e) => assert!(matches!(e, StoreError::InvalidRequest(_)), "{e:?}"),
    }
    if let Err(e) = parse_sort_time(text) {
        corrupt(&e);
    }
    if let Err(e) = customer_of(text) {
        corrupt(&e);
    }
}

fn item(data: &[u8]) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut item: HashMap<String, AttributeValue> = [
        ("pk", AttributeValue::S("C#c-1".into())),
        ("sk", AttributeValue::S("S#r-1.s".into())),
        ("stat", AttributeValue::S("pending".into())),
        ("kind", AttributeValue::S("email".into())),
        (
            "tags",
            AttributeValue::L(vec![AttributeValue::S("t".into())]),
        ),
        ("wf", AttributeValue::S("w".into())),
        ("step", AttributeValue::S("s".into())),
        ("cat", AttributeValue::S("marketing".into())),
        ("at", AttributeValue::N("1000".into())),
        ("body", AttributeValue::B(Blob::new(encode_value(b"{}")))),
        ("att", AttributeValue::N("0".into())),
        ("retry", AttributeValue::N("1000".into())),
        ("src", AttributeValue::S("events".into())),
        ("why", AttributeValue::S("a reason".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for field in data.split(|&b| b == 0xff).take(16) {
        let Some(at) = field.iter().position(|&b| b == 0xfe) else {
            continue;
        };
        let (name, rest) = (text(&field[..at]), &field[at + 1..]);
        let Some((&kind, v)) = rest.split_first() else {
            continue;
        };
        let v = match kind {
            b's' => AttributeValue::S(text(v)),
            b'n' => AttributeValue::N(text(v)),
            b'b' => AttributeValue::B(Blob::new(v)),
            b'l' => AttributeValue::L(
                text(v)
                    .split(',')
                    .map(|t| AttributeValue::S(t.to_owned()))
                    .collect(),
            ),
            _ => {
                item.remove(&name);
                continue;
            }
        };
        item.insert(name, v);
    }
    if let Err(e) = send_entry(&item) {
        corrupt(&e);
    }
    if let Err(e) = dead_letter(&item) {
        corrupt(&e);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&part, rest)) = data.split_first() else {
        return;
    };
    match part % 3 {
        0 if !rest.is_empty() => value(rest),
        0 => corrupt(&decode_value(rest).unwrap_err()),
        1 => cursor(&String::from_utf8_lossy(rest)),
        _ => item(rest),
    }
});
