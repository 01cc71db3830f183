//! A Shopify delivery from headers and payload, as the `ingest` and `shopify-webhook` functions
//! read it (`nudge_lambda::shopify`): `partner_delivery` and `partner_parts` (the EventBridge
//! partner event: headers in `detail.metadata`, the body in `detail.payload`), `map` (the
//! canonical event, fulfillment, erasure, ignored or invalid delivery), `with_customer` on a
//! parked fulfillment, `dead_letter_envelope`, and the `X-Shopify-Hmac-Sha256` check
//! (`signature::sign`/`verify`). Never a panic, and:
//! - a mapped event, fulfillment or erasure carries the headers' canonical id; a parked
//!   fulfillment completes with any customer;
//! - the reason of an invalid or ignored delivery never echoes an address of the payload;
//! - a delivery kept as a dead letter (the webhook's envelope) reads back to the same headers
//!   and maps to the same outcome (what `nudge dead-letters replay` relies on);
//! - a signature made with a secret verifies; any header verifies exactly when it decodes to
//!   the HMAC; an empty secret never verifies.
//!
//! Input: fields split at `0xff` bytes (never in UTF-8 text): the delivery (an EventBridge
//! event, lossy UTF-8; also the signed body), the secret, a signature header.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use nudge_lambda::shopify::map::{Headers, Mapped, map, with_customer};
use nudge_lambda::shopify::webhook::dead_letter_envelope;
use nudge_lambda::shopify::{partner_delivery, partner_parts, signature};
use serde_json::Value;

/// Every string of `value` (keys left out) holding an `@`, of at least 3 characters.
fn addresses(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.contains('@') && s.chars().count() >= 3 => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| addresses(v, out)),
        Value::Object(map) => map.values().for_each(|v| addresses(v, out)),
        _ => {}
    }
}

fn check_mapping(headers: &Headers, body: &str, received: DateTime<Utc>) -> Mapped {
    let mapped = map(headers, body, received);
    let id = headers.canonical_id().ok();
    match &mapped {
        Mapped::Event(event) => assert_eq!(Some(&event.id), id.as_ref()),
        Mapped::Fulfillment(f) => {
            assert_eq!(Some(&f.event_id), id.as_ref());
            let event = with_customer(&f.body, "c-1").expect("a parked fulfillment completes");
            assert_eq!(event.customer_id, "c-1");
            assert_eq!(Some(&event.id), id.as_ref());
        }
        Mapped::Redact {
            event_id,
            customer_ids,
        } => {
            assert_eq!(Some(event_id), id.as_ref());
            assert!(!customer_ids.is_empty());
        }
        Mapped::Ignored { event_id, reason } | Mapped::Invalid { event_id, reason } => {
            assert_eq!(event_id, &id);
            // The headers are not customer data (a topic may be named); the payload may be.
            let header_text = format!("{headers:?}");
            let mut found = Vec::new();
            if let Ok(payload) = serde_json::from_str::<Value>(body) {
                addresses(&payload, &mut found);
            }
            for address in found {
                assert!(
                    !reason.contains(&address) || header_text.contains(&address),
                    "the reason {reason:?} echoes a payload value"
                );
            }
        }
    }
    mapped
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|&b| b == 0xff);
    let mut next = || fields.next().unwrap_or_default();
    let (delivery, secret, header) = (next(), next(), next());
    let received = DateTime::from_timestamp(1_772_000_000, 0).unwrap();

    // The signature over the delivery's bytes (the webhook path signs the raw body).
    let made = signature::sign(secret, delivery);
    assert_eq!(
        signature::verify([secret], delivery, Some(&made)),
        !secret.is_empty()
    );
    let header = String::from_utf8_lossy(header);
    let verified = signature::verify([secret], delivery, Some(&header));
    let matches = STANDARD.decode(header.trim()).ok() == STANDARD.decode(&made).ok();
    assert_eq!(verified, matches && !secret.is_empty(), "header {header:?}");
    assert!(!signature::verify([secret], delivery, None));

    let text = String::from_utf8_lossy(delivery);
    let Some(partner) = partner_delivery(&text) else {
        return;
    };
    let Ok((headers, body)) = partner_parts(&partner) else {
        return;
    };
    let mapped = check_mapping(&headers, &body, received);

    // Kept as a dead letter, read back, mapped again: the same headers and outcome.
    let kept = dead_letter_envelope(&headers, &body, received);
    let again = partner_delivery(&kept).expect("a dead letter is a partner delivery");
    let (headers2, body2) = partner_parts(&again).expect("a dead letter has its parts");
    assert_eq!(headers2, headers);
    let replayed = check_mapping(&headers2, &body2, received);
    match (&mapped, &replayed) {
        (Mapped::Invalid { event_id: a, .. }, Mapped::Invalid { event_id: b, .. }) => {
            assert_eq!(a, b)
        }
        (a, b) => assert_eq!(
            a, b,
            "the dead letter of {body:?} maps otherwise: {body2:?}"
        ),
    }
});
