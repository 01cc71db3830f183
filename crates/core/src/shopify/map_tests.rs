//! The mapping on realistic payloads (tests/fixtures/shopify/) and on broken ones.

use chrono::TimeZone;
use serde_json::json;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/shopify/",
            $name
        ))
    };
}

const SHOP: &str = "nudge-beans.myshopify.com";

fn headers(topic: &str) -> Headers {
    Headers {
        topic: Some(topic.to_owned()),
        shop: Some(SHOP.to_owned()),
        event_id: Some("ev-1".to_owned()),
        webhook_id: Some("wh-1".to_owned()),
        api_version: Some("2024-10".to_owned()),
        triggered_at: None,
    }
}

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap()
}

fn event(topic: &str, payload: &str) -> StoreEvent {
    match map(&headers(topic), payload, received()) {
        Mapped::Event(e) => e,
        other => panic!("{topic}: expected an event, got {other:?}"),
    }
}

fn ignored(topic: &str, payload: &str) -> String {
    match map(&headers(topic), payload, received()) {
        Mapped::Ignored { reason, .. } => reason,
        other => panic!("{topic}: expected ignored, got {other:?}"),
    }
}

fn invalid(topic: &str, payload: &str) -> String {
    match map(&headers(topic), payload, received()) {
        Mapped::Invalid { reason, .. } => reason,
        other => panic!("{topic}: expected invalid, got {other:?}"),
    }
}

fn fulfillment(topic: &str, payload: &str) -> Fulfillment {
    match map(&headers(topic), payload, received()) {
        Mapped::Fulfillment(f) => f,
        other => panic!("{topic}: expected a fulfillment, got {other:?}"),
    }
}

#[test]
fn customers_create_maps_the_profile_and_prefers_the_newer_consent_field() {
    let e = event("customers/create", fixture!("customers-create.json"));
    assert_eq!(
        e.id,
        "shopify:nudge-beans.myshopify.com:customers/create:ev-1"
    );
    assert_eq!(e.event_type, "customer.created");
    assert_eq!(e.source.as_deref(), Some("shopify"));
    assert_eq!(e.customer_id, "706405506930370084");
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap());
    assert_eq!(
        e.detail["customer"],
        json!({"id": "706405506930370084", "email": "ayse@example.com", "first_name": "Ayşe",
               "last_name": "Yılmaz", "accepts_marketing": true,
               "tags": ["newsletter", "istanbul"], "orders_count": 0})
    );
}

#[test]
fn a_2025_01_customer_payload_leaves_consent_and_tags_alone() {
    let e = event(
        "customers/update",
        fixture!("customers-update-2025-01.json"),
    );
    assert_eq!(e.event_type, "customer.updated");
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 4, 6, 30, 0).unwrap());
    let customer = e.detail["customer"].as_object().unwrap();
    assert!(!customer.contains_key("accepts_marketing"));
    assert!(!customer.contains_key("tags"));
    assert_eq!(customer["last_name"], "Demir");
}

#[test]
fn the_older_accepts_marketing_is_read_when_the_newer_field_is_absent() {
    let payload = r#"{"id": 7, "email": "a@example.com", "accepts_marketing": true}"#;
    let e = event("customers/update", payload);
    assert_eq!(e.detail["customer"]["accepts_marketing"], true);
    // Any state but subscribed is false, whatever the older field says.
    let payload = r#"{"id": 7, "accepts_marketing": true,
        "email_marketing_consent": {"state": "pending"}}"#;
    assert_eq!(
        event("customers/update", payload).detail["customer"]["accepts_marketing"],
        false
    );
}

#[test]
fn the_consent_topic_updates_accepts_marketing() {
    let e = event(
        "customers_email_marketing_consent/update",
        fixture!("customers-email-marketing-consent-update.json"),
    );
    assert_eq!(e.event_type, "customer.updated");
    assert_eq!(e.customer_id, "706405506930370084");
    assert_eq!(
        e.detail["customer"],
        json!({"id": "706405506930370084", "email": "ayse@example.com", "accepts_marketing": false})
    );
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 5, 5, 0, 0).unwrap());
    let none = r#"{"customer_id": 7, "email_marketing_consent": null}"#;
    assert!(ignored("customers_email_marketing_consent/update", none).contains("consent state"));
}

#[test]
fn orders_create_maps_the_order_its_items_checkout_and_customer() {
    let e = event("orders/create", fixture!("orders-create.json"));
    assert_eq!(e.event_type, "order.placed");
    assert_eq!(e.customer_id, "706405506930370084");
    assert_eq!(
        e.detail["order"],
        json!({"id": "820982911946154508", "name": "#1001", "total": 59.9, "currency": "TRY",
               "checkout_id": "901414060",
               "items": [{"sku": "MUG-1", "title": "Ceramic mug", "quantity": 2, "price": 29.95,
                          "product_id": "632910392", "variant_id": "39072856"}]})
    );
    assert_eq!(e.detail["customer"]["accepts_marketing"], true);
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 2, 7, 0, 0).unwrap());
}

#[test]
fn a_guest_order_uses_the_lower_cased_email_as_its_customer() {
    let e = event("orders/create", fixture!("orders-create-guest.json"));
    assert_eq!(e.customer_id, "guest:guest.buyer@example.com");
    assert_eq!(e.detail["customer"]["email"], "Guest.Buyer@Example.com");
    assert_eq!(e.detail["customer"]["accepts_marketing"], false);
    assert_eq!(e.detail["order"]["items"][0]["sku"], Value::Null);
}

#[test]
fn an_order_with_neither_customer_nor_email_is_ignored() {
    let payload = r#"{"id": 5, "customer": null, "email": null, "contact_email": ""}"#;
    assert!(ignored("orders/create", payload).contains("neither"));
    let payload = r#"{"id": 5, "customer": {"id": null, "email": null}}"#;
    assert!(ignored("orders/cancelled", payload).contains("neither"));
}

#[test]
fn a_customer_without_email_takes_the_order_contact_email() {
    let payload = r#"{"id": 5, "email": "x@example.com", "customer": {"id": 9}}"#;
    let e = event("orders/create", payload);
    assert_eq!(
        e.detail["customer"],
        json!({"id": "9", "email": "x@example.com"})
    );
}

#[test]
fn orders_cancelled_is_timed_at_the_cancellation() {
    let e = event("orders/cancelled", fixture!("orders-cancelled.json"));
    assert_eq!(e.event_type, "order.cancelled");
    assert_eq!(e.detail["order"]["id"], "820982911946154508");
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
}

#[test]
fn a_fulfillment_waits_for_its_order_customer_and_carries_the_shipment() {
    let f = fulfillment("fulfillments/create", fixture!("fulfillments-create.json"));
    assert_eq!(f.order_id, "820982911946154508");
    assert_eq!(
        f.event_id,
        "shopify:nudge-beans.myshopify.com:fulfillments/create:ev-1"
    );
    // What is kept while the order is unknown names no customer.
    assert!(!f.body.contains("ayse"), "{}", f.body);
    assert!(!f.body.contains("Moda"), "{}", f.body);
    let e = with_customer(&f.body, "706405506930370084").unwrap();
    assert_eq!(e.event_type, "order.shipped");
    assert_eq!(e.id, f.event_id);
    assert_eq!(e.customer_id, "706405506930370084");
    assert_eq!(
        e.detail["shipment"],
        json!({"carrier": "UPS", "tracking_number": "1Z2345",
               "tracking_url": "https://www.ups.com/WebTracking?loc=en&tracknum=1Z2345"})
    );
    assert_eq!(e.detail["order"]["items"][0]["sku"], "MUG-1");
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 3, 6, 0, 0).unwrap());
}

#[test]
fn a_delivered_fulfillment_update_is_order_delivered_and_other_updates_are_ignored() {
    let f = fulfillment(
        "fulfillments/update",
        fixture!("fulfillments-update-delivered.json"),
    );
    let e = with_customer(&f.body, "c-1").unwrap();
    assert_eq!(e.event_type, "order.delivered");
    assert_eq!(e.detail["shipment"]["status"], "delivered");
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 5, 12, 20, 0).unwrap());
    let reason = ignored(
        "fulfillments/update",
        fixture!("fulfillments-update-in-transit.json"),
    );
    assert!(reason.contains("in_transit"), "{reason}");
    let cancelled = r#"{"id": 1, "order_id": 2, "status": "cancelled"}"#;
    assert!(ignored("fulfillments/create", cancelled).contains("cancelled"));
}

#[test]
fn a_kept_fulfillment_that_is_broken_is_an_error_not_a_panic() {
    assert!(with_customer("not json", "c").is_err());
    assert!(with_customer("[]", "c").is_err());
    assert!(with_customer(r#"{"detail": 1}"#, "c").is_err());
    assert!(with_customer(r#"{"detail": {}}"#, "c").is_err());
}

#[test]
fn a_checkout_is_checkout_started_keyed_like_the_order_checkout_id() {
    let e = event("checkouts/create", fixture!("checkouts-create.json"));
    assert_eq!(e.event_type, "checkout.started");
    assert_eq!(e.customer_id, "706405506930370084");
    let order = event("orders/create", fixture!("orders-create.json"));
    assert_eq!(
        e.detail["checkout"]["id"],
        order.detail["order"]["checkout_id"]
    );
    assert_eq!(e.detail["checkout"]["total"], 59.9);
    assert_eq!(e.detail["checkout"]["currency"], "TRY");
    assert!(
        e.detail["checkout"]["url"]
            .as_str()
            .unwrap()
            .contains("/recover")
    );
    // checkouts/update maps the same way, at its update time.
    let u = event("checkouts/update", fixture!("checkouts-create.json"));
    assert_eq!(u.event_type, "checkout.started");
    assert_eq!(u.time, Utc.with_ymd_and_hms(2026, 3, 2, 6, 41, 0).unwrap());
    let guest = r#"{"id": 3, "email": "G@Example.com", "customer": null}"#;
    assert_eq!(
        event("checkouts/create", guest).customer_id,
        "guest:g@example.com"
    );
    assert!(ignored("checkouts/create", r#"{"id": 3}"#).contains("neither"));
}

#[test]
fn customers_redact_names_the_customer_and_the_guest() {
    match map(
        &headers("customers/redact"),
        fixture!("customers-redact.json"),
        received(),
    ) {
        Mapped::Redact {
            event_id,
            customer_ids,
        } => {
            assert_eq!(
                event_id,
                "shopify:nudge-beans.myshopify.com:customers/redact:ev-1"
            );
            assert_eq!(
                customer_ids,
                ["706405506930370084", "guest:ayse@example.com"]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        ignored(
            "customers/redact",
            r#"{"customer": {"id": null}, "orders_to_redact": []}"#
        )
        .contains("neither")
    );
    assert!(
        ignored(
            "customers/redact",
            r#"{"shop_id": 1, "orders_to_redact": []}"#
        )
        .contains("no customer")
    );
}

/// Shopify signs the body, not the topic: an order's signed body sent again as
/// `customers/redact` must not erase the customer it names.
#[test]
fn a_body_of_another_topic_is_not_a_redaction() {
    let reason = invalid("customers/redact", fixture!("orders-create.json"));
    assert!(reason.contains("orders_to_redact"), "{reason}");
    let reason = invalid("customers/redact", fixture!("customers-create.json"));
    assert!(reason.contains("orders_to_redact"), "{reason}");
}

#[test]
fn the_event_id_falls_back_to_the_webhook_id_and_needs_one() {
    let mut h = headers("customers/create");
    h.event_id = None;
    assert_eq!(
        h.canonical_id().unwrap(),
        "shopify:nudge-beans.myshopify.com:customers/create:wh-1"
    );
    h.webhook_id = None;
    match map(&h, fixture!("customers-create.json"), received()) {
        Mapped::Invalid { event_id, reason } => {
            assert_eq!(event_id, None);
            assert!(reason.contains("X-Shopify-Event-Id"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let mut h = headers("customers/create");
    h.shop = None;
    assert!(
        h.canonical_id()
            .unwrap_err()
            .contains("X-Shopify-Shop-Domain")
    );
    let mut h = headers("customers/create");
    h.topic = None;
    assert!(h.canonical_id().unwrap_err().contains("X-Shopify-Topic"));
}

#[test]
fn headers_are_read_by_name_and_blank_ones_are_absent() {
    let h = Headers::from_lookup(|name| match name {
        "X-Shopify-Topic" => Some(" orders/create "),
        "X-Shopify-Event-Id" => Some(""),
        "X-Shopify-Webhook-Id" => Some("w"),
        _ => None,
    });
    assert_eq!(h.topic.as_deref(), Some("orders/create"));
    assert_eq!(h.event_id, None);
    assert_eq!(h.webhook_id.as_deref(), Some("w"));
}

#[test]
fn an_invalid_payload_names_the_field_and_not_the_value() {
    assert!(invalid("orders/create", "{nope").contains("not JSON"));
    assert!(invalid("orders/create", "[1]").contains("not a JSON object"));
    let r = invalid("orders/create", r#"{"customer": {"id": 1}}"#);
    assert!(r.contains("missing field id"), "{r}");
    let r = invalid(
        "orders/create",
        r#"{"id": 1, "email": "a@example.com", "line_items": [{"price": "cheap"}]}"#,
    );
    assert!(r.contains("line_items[0].price"), "{r}");
    let r = invalid(
        "customers/create",
        r#"{"id": 1.5, "email": "secret@example.com"}"#,
    );
    assert!(r.contains("id") && !r.contains("secret"), "{r}");
    let r = invalid("customers/create", r#"{"id": 1, "email": 42}"#);
    assert!(
        r.contains("email: expected a string, found a number"),
        "{r}"
    );
    let r = invalid(
        "customers/create",
        r#"{"id": 1, "created_at": "yesterday"}"#,
    );
    assert!(r.contains("created_at"), "{r}");
    let r = invalid(
        "customers/create",
        r#"{"id": 1, "created_at": "1900-01-01T00:00:00Z"}"#,
    );
    assert!(r.contains("created_at"), "{r}");
    let r = invalid("orders/create", r#"{"id": -3, "email": "a@example.com"}"#);
    assert!(r.contains("id: expected an integer id"), "{r}");
    let r = invalid("fulfillments/create", r#"{"id": 1}"#);
    assert!(r.contains("order_id"), "{r}");
    let r = invalid(
        "customers/create",
        r#"{"id": 1, "email_marketing_consent": {"state": 1}}"#,
    );
    assert!(r.contains("email_marketing_consent.state"), "{r}");
}

#[test]
fn other_topics_are_ignored() {
    assert!(ignored("products/create", r#"{"id": 1}"#).contains("products/create"));
    assert!(ignored("customers/data_request", "{}").contains("not used"));
}

#[test]
fn without_a_payload_time_the_trigger_time_then_the_receipt_is_used() {
    let mut h = headers("customers/create");
    h.triggered_at = Some("2026-03-09T12:00:00Z".to_owned());
    let Mapped::Event(e) = map(&h, r#"{"id": 1}"#, received()) else {
        panic!()
    };
    assert_eq!(e.time, Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap());
    h.triggered_at = Some("garbage".to_owned());
    let Mapped::Event(e) = map(&h, r#"{"id": 1, "created_at": null}"#, received()) else {
        panic!()
    };
    assert_eq!(e.time, received());
}

#[test]
fn shopify_ids_are_decimal_strings_and_tags_split() {
    let e = event(
        "customers/create",
        r#"{"id": "18446744073709551615", "tags": " a,, b ,", "orders_count": "3"}"#,
    );
    assert_eq!(e.customer_id, "18446744073709551615");
    assert_eq!(e.detail["customer"]["tags"], json!(["a", "b"]));
    assert_eq!(e.detail["customer"]["orders_count"], 3);
    assert!(ignored("customers/create", r#"{"email": "  "}"#).contains("neither"));
}

/// Every fixture under every topic, with each top-level field (and each customer field)
/// replaced by a value of every JSON type, and cut at every byte: the mapping never panics,
/// and no error echoes a customer's value.
#[test]
fn no_input_makes_the_mapping_panic_or_echo_a_value() {
    // Each fixture with the topic it belongs to.
    let fixtures = [
        ("customers/create", fixture!("customers-create.json")),
        (
            "customers/update",
            fixture!("customers-update-2025-01.json"),
        ),
        (
            "customers_email_marketing_consent/update",
            fixture!("customers-email-marketing-consent-update.json"),
        ),
        ("orders/create", fixture!("orders-create.json")),
        ("orders/create", fixture!("orders-create-guest.json")),
        ("orders/cancelled", fixture!("orders-cancelled.json")),
        ("fulfillments/create", fixture!("fulfillments-create.json")),
        (
            "fulfillments/update",
            fixture!("fulfillments-update-delivered.json"),
        ),
        ("checkouts/update", fixture!("checkouts-create.json")),
        ("customers/redact", fixture!("customers-redact.json")),
    ];
    let values = [
        json!(null),
        json!(true),
        json!(1.5),
        json!(-1),
        json!(u64::MAX),
        json!("ayse@example.com"),
        json!([]),
        json!([null, 1, "x", {}]),
        json!({}),
        json!({"state": 3, "id": [], "price": {}}),
    ];
    let mut outcomes = 0;
    let mut check = |topic: &str, payload: &str| {
        let mapped = map(&headers(topic), payload, received());
        if let Mapped::Invalid { reason, .. } | Mapped::Ignored { reason, .. } = &mapped {
            assert!(!reason.contains("ayse@"), "{topic}: {reason}");
        }
        if let Mapped::Fulfillment(f) = &mapped {
            assert!(with_customer(&f.body, "c").is_ok(), "{topic}: {}", f.body);
        }
        outcomes += 1;
    };
    for (own, fixture) in fixtures {
        // Every fixture under every topic, as it is.
        for topic in TOPICS {
            check(topic, fixture);
        }
        let Ok(Value::Object(body)) = serde_json::from_str::<Value>(fixture) else {
            panic!("fixtures are JSON objects")
        };
        for key in body.keys() {
            for value in &values {
                let mut changed = body.clone();
                changed.insert(key.clone(), value.clone());
                check(own, &Value::Object(changed).to_string());
            }
        }
        if let Some(Value::Object(customer)) = body.get("customer") {
            for key in customer.keys() {
                for value in &values {
                    let mut c = customer.clone();
                    c.insert(key.clone(), value.clone());
                    let mut changed = body.clone();
                    changed.insert("customer".to_owned(), Value::Object(c));
                    check(own, &Value::Object(changed).to_string());
                }
            }
        }
        for cut in (0..fixture.len()).step_by(11) {
            if let Some(prefix) = fixture.get(..cut) {
                check(own, prefix);
            }
        }
    }
    assert!(outcomes > 1000, "{outcomes}");
}
