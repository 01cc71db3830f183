//! Shopify deliveries, read without I/O: the mapping of one delivery (topic, headers,
//! payload) to what Nudge does with it ([`map`]), the EventBridge partner event's envelope
//! ([`partner_delivery`], [`partner_parts`]) and the order an order's event links
//! ([`order_of`]). The functions (`nudge_lambda::shopify`: the signature, the store, the
//! parking of fulfillments) and the command line (`nudge dead-letters replay`) both use this
//! one copy, so a replayed delivery is read exactly as it was first read.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::StoreEvent;

pub mod map;

pub use map::{Headers, Mapped};

/// The dead-letter source of Shopify deliveries.
pub const DEAD_LETTER_SOURCE: &str = "shopify";

/// The `source` prefix of Shopify's EventBridge partner events.
pub const PARTNER_SOURCE_PREFIX: &str = "aws.partner/shopify.com";

/// A Shopify EventBridge delivery, read just enough to route it.
#[derive(Debug, Deserialize)]
pub struct PartnerDelivery {
    source: String,
    #[serde(default)]
    detail: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
struct PartnerDetail {
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    payload: Option<Box<RawValue>>,
}

/// A Shopify EventBridge delivery (its `source` starts with `aws.partner/shopify.com`), if
/// `text` is one.
pub fn partner_delivery(text: &str) -> Option<PartnerDelivery> {
    serde_json::from_str::<PartnerDelivery>(text)
        .ok()
        .filter(|d| d.source.starts_with(PARTNER_SOURCE_PREFIX))
}

/// The headers and body of a partner delivery (`detail.metadata`, `detail.payload`), or why
/// they cannot be read. A `payload` that is a JSON string is the body as text (how a webhook
/// body that was not JSON is kept as a dead letter).
pub fn partner_parts(delivery: &PartnerDelivery) -> Result<(Headers, String), String> {
    let detail = delivery.detail.as_ref().ok_or("missing field detail")?;
    let detail: PartnerDetail = serde_json::from_str(detail.get())
        // serde's message may quote a value: it is not repeated.
        .map_err(|_| {
            "detail: expected an object with metadata (an object) and payload".to_owned()
        })?;
    let metadata = detail.metadata.ok_or("missing field detail.metadata")?;
    let payload = detail.payload.ok_or("missing field detail.payload")?;
    let headers = Headers::from_lookup(|name| {
        metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    });
    let body = match serde_json::from_str::<Value>(payload.get()) {
        Ok(Value::String(text)) => text,
        _ => payload.get().to_owned(),
    };
    Ok((headers, body))
}

/// The order an order's event (`order.placed`, `order.cancelled`) is about, which it links to
/// its customer before it is applied; `None` for other events.
pub fn order_of(event: &StoreEvent) -> Option<String> {
    match event.event_type.as_str() {
        "order.placed" | "order.cancelled" => event
            .detail
            .get("order")
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    const EVENTBRIDGE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/shopify/eventbridge-orders-create.json"
    ));

    #[test]
    fn a_partner_event_is_recognised_by_its_source_and_read_like_a_webhook() {
        let delivery = partner_delivery(EVENTBRIDGE).expect("a Shopify partner event");
        let (headers, body) = partner_parts(&delivery).unwrap();
        // Header names are matched whatever their case.
        assert_eq!(headers.topic.as_deref(), Some("orders/create"));
        assert_eq!(
            headers.canonical_id().unwrap(),
            "shopify:nudge-beans.myshopify.com:orders/create:e0a1f6b2-0002"
        );
        match map::map(&headers, &body, Utc::now()) {
            Mapped::Event(e) => {
                assert_eq!(e.event_type, "order.placed");
                assert_eq!(e.customer_id, "706405506930370084");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_events_are_not_partner_deliveries() {
        for text in [
            r#"{"id": "1", "source": "store", "detail": {}}"#,
            r#"{"id": "1", "source": "aws.partner/other.com/x", "detail": {}}"#,
            r#"{"id": "1", "detail": {}}"#,
            r#"{"source": 3}"#,
            "not json",
            "[]",
        ] {
            assert!(partner_delivery(text).is_none(), "{text}");
        }
    }

    #[test]
    fn a_partner_event_without_its_parts_says_which() {
        let cases = [
            (r#"{"source": "aws.partner/shopify.com/1/x"}"#, "detail"),
            (
                r#"{"source": "aws.partner/shopify.com/1/x", "detail": {"payload": {}}}"#,
                "detail.metadata",
            ),
            (
                r#"{"source": "aws.partner/shopify.com/1/x", "detail": {"metadata": {}}}"#,
                "detail.payload",
            ),
            (
                r#"{"source": "aws.partner/shopify.com/1/x", "detail": []}"#,
                "detail",
            ),
            (
                r#"{"source": "aws.partner/shopify.com/1/x", "detail": {"metadata": "a@example.com", "payload": {}}}"#,
                "metadata (an object)",
            ),
        ];
        for (text, field) in cases {
            let delivery = partner_delivery(text).expect("routed to Shopify");
            let reason = partner_parts(&delivery).unwrap_err();
            assert!(reason.contains(field), "{text}: {reason}");
            assert!(!reason.contains("a@example.com"), "{reason}");
        }
    }
}
