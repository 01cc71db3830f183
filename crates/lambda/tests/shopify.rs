//! The Shopify function URL and ingest's Shopify EventBridge path on moto (DynamoDB, SES, SSM):
//! signatures and rotation, what each delivery does to the store and to SES, duplicates,
//! fulfillments before their order, redaction.

mod support;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use nudge_core::store::Store;
use nudge_lambda::App;
use nudge_lambda::shopify::{Secrets, handle_webhook, signature};
use serde_json::Value;

use support::SHOP;
const CUSTOMER: &str = "706405506930370084";
const ORDER: &str = "820982911946154508";

/// A payload of tests/fixtures/shopify/, its address made unique to `tag` and this process
/// (moto's SES is shared by the tests running at once, and by earlier runs).
fn payload(name: &str, tag: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/shopify/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim_end()
        .replace("ayse@example.com", &address(tag))
}

/// The address of test `tag` in this process (moto keeps what SES took across runs).
fn address(tag: &str) -> String {
    format!("ayse.{tag}.{}@example.com", std::process::id())
}

fn request(topic: &str, event_id: &str, body: &str, signature: &str) -> LambdaFunctionUrlRequest {
    support::shopify_request(topic, event_id, body, Some(signature))
}

/// An app on its own stack (so its own SSM secrets) with `secret` (and `previous`) set.
async fn app(endpoint: &str, test: &str, secret: Option<&str>, previous: Option<&str>) -> App {
    let stack = format!("shopify-{test}-{}", std::process::id());
    let app = support::app(endpoint, "shopify", None, |c| c.stack = stack.clone()).await;
    if let Some(s) = secret {
        support::put_parameter(endpoint, &Secrets::current_name(&stack), s);
    }
    if let Some(p) = previous {
        support::put_parameter(endpoint, &Secrets::previous_name(&stack), p);
    }
    app
}

const SECRET: &str = "nudge-test-shopify-secret";

async fn deliver(app: &App, topic: &str, event_id: &str, body: &str, secret: &str) -> (i64, Value) {
    let secrets = Secrets::new(app);
    let sig = signature::sign(secret.as_bytes(), body.as_bytes());
    answer(
        handle_webhook(
            app,
            &secrets,
            request(topic, event_id, body, &sig),
            App::now(),
        )
        .await,
    )
}

fn answer(response: LambdaFunctionUrlResponse) -> (i64, Value) {
    let body = response.body.unwrap_or_default();
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (response.status_code, json)
}

/// The raw messages SES took for `address`. moto's `data.json` sometimes fails (500) while
/// other tests write to it at the same time: asked again then.
fn mails_to(endpoint: &str, address: &str) -> Vec<String> {
    for _ in 0..10 {
        let (status, body) = support::http(endpoint, "GET", "/moto-api/data.json", &[], "");
        if status != 200 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        let data: Value = serde_json::from_str(&body).expect("data.json is JSON");
        return data["ses"]["RawMessage"]
            .as_array()
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|m| m["raw_data"].as_str())
                    .filter(|raw| raw.contains(address))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
    }
    panic!("moto's data.json kept failing");
}

#[tokio::test]
async fn a_signed_delivery_is_applied_and_sends_the_workflow_email() {
    let Some(endpoint) = support::moto("a_signed_delivery_is_applied_and_sends_the_workflow_email")
    else {
        return;
    };
    let app = app(&endpoint, "good", Some(SECRET), None).await;
    let body = payload("customers-create.json", "good");
    let started = std::time::Instant::now();
    let (status, outcome) = deliver(&app, "customers/create", "ev-good-1", &body, SECRET).await;
    let took = started.elapsed();
    eprintln!("customers/create on moto (SSM read, commit, SES send): {took:?}");
    assert!(
        took < nudge_lambda::shopify::webhook::RESPONSE_BUDGET,
        "{took:?}"
    );
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["outcome"], "applied", "{outcome}");
    assert_eq!(
        outcome["event_id"],
        format!("shopify:{SHOP}:customers/create:ev-good-1")
    );
    let record = app.store.load(CUSTOMER).await.unwrap();
    assert!(record.is_some(), "the customer is stored");
    let mails = mails_to(&endpoint, &address("good"));
    assert_eq!(mails.len(), 1, "the welcome email went to SES");
    assert!(
        mails[0].contains("Welcome"),
        "{}",
        &mails[0][..400.min(mails[0].len())]
    );
}

#[tokio::test]
async fn a_bad_or_missing_signature_or_secret_is_401_and_changes_nothing() {
    let Some(endpoint) =
        support::moto("a_bad_or_missing_signature_or_secret_is_401_and_changes_nothing")
    else {
        return;
    };
    let app_ = app(&endpoint, "bad", Some(SECRET), None).await;
    let body = payload("customers-create.json", "bad");
    let secrets = Secrets::new(&app_);
    for sig in ["", "bm90IGl0", "%%%"] {
        let response = handle_webhook(
            &app_,
            &secrets,
            request("customers/create", "ev-bad", &body, sig),
            App::now(),
        )
        .await;
        assert_eq!(response.status_code, 401, "{sig:?}");
    }
    let (status, _) = deliver(&app_, "customers/create", "ev-bad", &body, "another-secret").await;
    assert_eq!(status, 401);
    // A body changed after signing.
    let sig = signature::sign(SECRET.as_bytes(), body.as_bytes());
    let tampered = body.replace("Ayşe", "Eve");
    let response = handle_webhook(
        &app_,
        &secrets,
        request("customers/create", "ev-bad", &tampered, &sig),
        App::now(),
    )
    .await;
    assert_eq!(response.status_code, 401);
    assert!(app_.store.load(CUSTOMER).await.unwrap().is_none());
    assert!(app_.store.dead_letters(10).await.unwrap().is_empty());
    assert!(mails_to(&endpoint, &address("bad")).is_empty());

    // No secret set: every delivery is refused, even a "signed" one.
    let unset = app(&endpoint, "unset", None, None).await;
    let (status, outcome) = deliver(&unset, "customers/create", "ev-unset", &body, "").await;
    assert_eq!(status, 401, "{outcome}");
    assert!(unset.store.load(CUSTOMER).await.unwrap().is_none());
}

#[tokio::test]
async fn during_a_rotation_the_previous_secret_is_accepted_too() {
    let Some(endpoint) = support::moto("during_a_rotation_the_previous_secret_is_accepted_too")
    else {
        return;
    };
    let app = app(&endpoint, "rotation", Some("the-new-secret"), Some(SECRET)).await;
    let body = payload("customers-update-2025-01.json", "rotation");
    let (old, _) = deliver(&app, "customers/update", "ev-rot-1", &body, SECRET).await;
    let (new, _) = deliver(
        &app,
        "customers/update",
        "ev-rot-2",
        &body,
        "the-new-secret",
    )
    .await;
    let (other, _) = deliver(&app, "customers/update", "ev-rot-3", &body, "older-still").await;
    assert_eq!((old, new, other), (200, 200, 401));
}

#[tokio::test]
async fn an_invalid_payload_is_400_and_dead_lettered_and_an_ignored_one_200() {
    let Some(endpoint) =
        support::moto("an_invalid_payload_is_400_and_dead_lettered_and_an_ignored_one_200")
    else {
        return;
    };
    let app = app(&endpoint, "invalid", Some(SECRET), None).await;
    let (status, outcome) = deliver(&app, "orders/create", "ev-inv-1", "{not json", SECRET).await;
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(outcome["outcome"], "dead_lettered");
    let body = r#"{"id": 1, "email": "x@example.com", "line_items": [{"price": "cheap"}]}"#;
    let (status, outcome) = deliver(&app, "orders/create", "ev-inv-2", body, SECRET).await;
    assert_eq!(status, 400, "{outcome}");
    let letters = app.store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(|l| l.source == "shopify"));
    let price = letters
        .iter()
        .find(|l| l.event_id.as_deref() == Some(&format!("shopify:{SHOP}:orders/create:ev-inv-2")))
        .expect("the second letter names its event");
    assert!(
        price.reason.contains("line_items[0].price"),
        "{}",
        price.reason
    );
    // What is kept can be replayed through ingest: a Shopify partner event.
    assert!(nudge_lambda::shopify::partner_delivery(&price.body).is_some());

    // Valid but of no use: 200, counted in the log, not kept.
    let (status, outcome) = deliver(&app, "products/create", "ev-ign", "{}", SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("ignored"))
    );
    let guestless = r#"{"id": 5, "customer": null, "email": null}"#;
    let (status, outcome) = deliver(&app, "orders/create", "ev-ign-2", guestless, SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("ignored"))
    );
    assert_eq!(app.store.dead_letters(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_same_event_delivered_twice_has_one_effect() {
    let Some(endpoint) = support::moto("the_same_event_delivered_twice_has_one_effect") else {
        return;
    };
    let app = app(&endpoint, "dup", Some(SECRET), None).await;
    let body = payload("customers-create.json", "dup");
    let (first, _) = deliver(&app, "customers/create", "ev-dup", &body, SECRET).await;
    // A retry, or a second subscription: same event id, another webhook id.
    let sig = signature::sign(SECRET.as_bytes(), body.as_bytes());
    let mut again = request("customers/create", "ev-dup", &body, &sig);
    again
        .headers
        .insert("x-shopify-webhook-id", "w-other".parse().unwrap());
    let (second, outcome) =
        answer(handle_webhook(&app, &Secrets::new(&app), again, App::now()).await);
    assert_eq!((first, second), (200, 200));
    assert_eq!(outcome["outcome"], "duplicate", "{outcome}");
    assert_eq!(mails_to(&endpoint, &address("dup")).len(), 1);
}

#[tokio::test]
async fn a_fulfillment_before_its_order_is_parked_then_applied_with_the_order() {
    let Some(endpoint) =
        support::moto("a_fulfillment_before_its_order_is_parked_then_applied_with_the_order")
    else {
        return;
    };
    let app = app(&endpoint, "parked", Some(SECRET), None).await;
    let shipped = payload("fulfillments-create.json", "parked");
    let (status, outcome) = deliver(&app, "fulfillments/create", "ev-f-1", &shipped, SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("parked")),
        "{outcome}"
    );
    assert_eq!(app.store.parked(ORDER, App::now()).await.unwrap().len(), 1);
    assert!(app.store.load(CUSTOMER).await.unwrap().is_none());

    let order = payload("orders-create.json", "parked");
    let (status, outcome) = deliver(&app, "orders/create", "ev-o-1", &order, SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("applied")),
        "{outcome}"
    );
    assert_eq!(
        app.store.order_customer(ORDER).await.unwrap().as_deref(),
        Some(CUSTOMER)
    );
    assert!(
        app.store
            .parked(ORDER, App::now())
            .await
            .unwrap()
            .is_empty()
    );
    let mails = mails_to(&endpoint, &address("parked"));
    assert_eq!(mails.len(), 1, "the shipment email");
    assert!(
        mails[0].contains("is on its way"),
        "{}",
        &mails[0][..400.min(mails[0].len())]
    );
    // The fulfillment delivered again now is a duplicate.
    let (_, outcome) = deliver(&app, "fulfillments/create", "ev-f-1", &shipped, SECRET).await;
    assert_eq!(outcome["outcome"], "duplicate", "{outcome}");
    // A later delivery update goes straight to the customer of the order.
    let delivered = payload("fulfillments-update-delivered.json", "parked");
    let (status, outcome) =
        deliver(&app, "fulfillments/update", "ev-f-2", &delivered, SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("applied")),
        "{outcome}"
    );
    let in_transit = payload("fulfillments-update-in-transit.json", "parked");
    let (_, outcome) = deliver(&app, "fulfillments/update", "ev-f-3", &in_transit, SECRET).await;
    assert_eq!(outcome["outcome"], "ignored", "{outcome}");
}

#[tokio::test]
async fn customers_redact_erases_the_customer() {
    let Some(endpoint) = support::moto("customers_redact_erases_the_customer") else {
        return;
    };
    let app = app(&endpoint, "redact", Some(SECRET), None).await;
    let order = payload("orders-create.json", "redact");
    // An invalid delivery about the customer first: a dead letter naming them.
    let mut broken: serde_json::Value = serde_json::from_str(&order).unwrap();
    broken["line_items"] = serde_json::json!("not a list");
    let (status, _) = deliver(&app, "orders/create", "ev-r-0", &broken.to_string(), SECRET).await;
    assert_eq!(status, 400);
    let naming = |letters: Vec<nudge_core::store::DeadLetter>| {
        letters
            .into_iter()
            .filter(|l| l.customer_id.as_deref() == Some(CUSTOMER))
            .count()
    };
    assert_eq!(naming(app.store.dead_letters(10).await.unwrap()), 1);
    let (status, _) = deliver(&app, "orders/create", "ev-r-1", &order, SECRET).await;
    assert_eq!(status, 200);
    assert!(app.store.load(CUSTOMER).await.unwrap().is_some());
    let redact = payload("customers-redact.json", "redact");
    let (status, outcome) = deliver(&app, "customers/redact", "ev-r-2", &redact, SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("erased")),
        "{outcome}"
    );
    assert!(app.store.load(CUSTOMER).await.unwrap().is_none());
    assert_eq!(app.store.order_customer(ORDER).await.unwrap(), None);
    assert_eq!(
        naming(app.store.dead_letters(10).await.unwrap()),
        0,
        "the dead letter naming the customer is erased too"
    );
}

#[tokio::test]
async fn a_shopify_eventbridge_delivery_goes_through_ingest_without_a_signature() {
    let Some(endpoint) =
        support::moto("a_shopify_eventbridge_delivery_goes_through_ingest_without_a_signature")
    else {
        return;
    };
    // No secret at all: this path does not need one.
    let app = app(&endpoint, "eventbridge", None, None).await;
    let text = payload("eventbridge-orders-create.json", "eventbridge");
    let raw = serde_json::value::RawValue::from_string(text).unwrap();
    let handled = nudge_lambda::ingest::handle(&app, &raw, App::now())
        .await
        .unwrap();
    assert!(
        matches!(&handled, nudge_lambda::ingest::Handled::Applied { event_id, .. }
            if event_id == &format!("shopify:{SHOP}:orders/create:e0a1f6b2-0002")),
        "{handled:?}"
    );
    assert_eq!(
        app.store.order_customer(ORDER).await.unwrap().as_deref(),
        Some(CUSTOMER)
    );
    // The same store event by webhook too (both paths subscribed): counted once.
    support::put_parameter(&endpoint, &Secrets::current_name(&app.config.stack), SECRET);
    let order = payload("orders-create.json", "eventbridge");
    let (status, outcome) = deliver(&app, "orders/create", "e0a1f6b2-0002", &order, SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("duplicate")),
        "{outcome}"
    );
    // A broken partner event is a dead letter, not an error.
    let broken = r#"{"source": "aws.partner/shopify.com/1/x", "detail": {"metadata": {}}}"#;
    let raw = serde_json::value::RawValue::from_string(broken.to_owned()).unwrap();
    let handled = nudge_lambda::ingest::handle(&app, &raw, App::now())
        .await
        .unwrap();
    assert!(
        matches!(handled, nudge_lambda::ingest::Handled::DeadLettered { .. }),
        "{handled:?}"
    );
}

#[tokio::test]
async fn past_its_budget_a_delivery_is_answered_503_so_shopify_delivers_it_again() {
    let Some(endpoint) =
        support::moto("past_its_budget_a_delivery_is_answered_503_so_shopify_delivers_it_again")
    else {
        return;
    };
    let app = app(&endpoint, "budget", Some(SECRET), None).await;
    let body = payload("customers-create.json", "budget");
    let sig = signature::sign(SECRET.as_bytes(), body.as_bytes());
    let secrets = Secrets::new(&app);
    let late = nudge_lambda::shopify::webhook::handle_webhook_within(
        &app,
        &secrets,
        request("customers/create", "ev-budget", &body, &sig),
        App::now(),
        std::time::Duration::ZERO,
    )
    .await;
    assert_eq!(late.status_code, 503);
    // Shopify's redelivery is applied once.
    let (status, outcome) = deliver(&app, "customers/create", "ev-budget", &body, SECRET).await;
    assert_eq!(
        (status, outcome["outcome"].as_str()),
        (200, Some("applied")),
        "{outcome}"
    );
    assert_eq!(mails_to(&endpoint, &address("budget")).len(), 1);
}
