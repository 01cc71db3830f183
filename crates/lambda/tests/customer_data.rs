//! Security and customer data on the functions' side, on moto (DynamoDB, SES, SSM):
//! - every function's log, at the most verbose level, in the functions' own JSON format
//!   ([`nudge_lambda::app::json_logs`]), names no customer: the sample's events (one customer
//!   of each story) through `ingest`, the scheduler's ticks that send their emails, every
//!   Shopify payload (valid, invalid, unsigned, `customers/redact`), SES bounces, complaints
//!   and other feedback, and unsubscribe links followed, forged and posted; then not one
//!   address or first or last name of those inputs may appear in what was logged;
//! - no Shopify delivery without a valid signature changes the store, whatever its topic
//!   (`customers/redact` and the other GDPR topics, unknown ones), body (empty, oversized,
//!   not UTF-8) or signature (missing, empty, garbled, truncated, another secret, another body),
//!   while one signed with the current or the previous secret, whatever the header's case, does.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_core::links::Signer;
use nudge_lambda::App;
use nudge_lambda::shopify::{Secrets, handle_webhook, signature};
use nudge_testkit::pii::CustomerData;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// What the functions logged in this process, every level, every crate.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

/// The process's log from here on: the functions' JSON format at `trace` for every crate
/// (the most `RUST_LOG` can ask for), installed once for every thread.
fn capture() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let filter = tracing_subscriber::EnvFilter::new("trace");
        tracing::subscriber::set_global_default(nudge_lambda::app::json_logs(filter, log.clone()))
            .expect("no other subscriber in this test binary");
        log
    })
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// The shipped workflows' sender and reply-to: the store's own addresses.
const STORE_ADDRESSES: [&str; 2] = ["hello@shop.example.com", "support@shop.example.com"];

const SECRET: &str = "nudge-test-shopify-secret";
const PREVIOUS_SECRET: &str = "nudge-test-shopify-previous-secret";

fn repo(path: &str) -> String {
    let path = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).expect("JSON")
}

/// An app on its own stack with the Shopify secrets set in SSM.
async fn app(endpoint: &str, test: &str) -> App {
    let stack = format!("data-{test}-{}", std::process::id());
    let app = support::app(endpoint, test, None, |c| c.stack = stack.clone()).await;
    support::put_parameter(endpoint, &Secrets::current_name(&stack), SECRET);
    support::put_parameter(endpoint, &Secrets::previous_name(&stack), PREVIOUS_SECRET);
    app
}

/// The Shopify payloads of tests/fixtures/shopify/ delivered over HTTPS, with their topics.
const SHOPIFY: [(&str, &str); 11] = [
    ("customers/create", "customers-create.json"),
    ("customers/update", "customers-update-2025-01.json"),
    (
        "customers_email_marketing_consent/update",
        "customers-email-marketing-consent-update.json",
    ),
    ("checkouts/create", "checkouts-create.json"),
    ("orders/create", "orders-create.json"),
    ("orders/create", "orders-create-guest.json"),
    ("fulfillments/create", "fulfillments-create.json"),
    ("fulfillments/update", "fulfillments-update-in-transit.json"),
    ("fulfillments/update", "fulfillments-update-delivered.json"),
    ("orders/cancelled", "orders-cancelled.json"),
    ("customers/redact", "customers-redact.json"),
];

/// Signed payloads that are not valid ones, each with an address or a name where something
/// else belongs: dead letters whose reasons are logged.
fn invalid_shopify() -> Vec<(&'static str, String)> {
    vec![
        (
            "customers/create",
            json!({"id": 9001, "email": ["leyla.kara@example.com"], "first_name": "Leyla",
                   "last_name": "Karaca", "created_at": "leyla.kara@example.com"})
            .to_string(),
        ),
        (
            "orders/create",
            json!({"id": "leyla.kara@example.com", "email": "leyla.kara@example.com",
                   "customer": {"id": "Karaca", "first_name": 7}, "created_at": "Leyla"})
            .to_string(),
        ),
        (
            "customers/redact",
            json!({"customer": {"id": "leyla.kara@example.com", "email": 5}}).to_string(),
        ),
        (
            "orders/create",
            "{\"email\": \"leyla.kara@example.com\", ".to_owned(),
        ),
    ]
}

/// `fixture` (an SES notification) about `address`, with its own ids.
fn ses_about(fixture: &str, address: &str, id: usize) -> String {
    let text = repo(&format!("tests/fixtures/ses/{fixture}"))
        .replace("bounce@simulator.amazonses.com", address)
        .replace("complaint@simulator.amazonses.com", address)
        .replace("success@simulator.amazonses.com", address);
    let mut v: Value = serde_json::from_str(&text).expect("an SES fixture");
    v["id"] = format!("ses-data-{id}").into();
    v["detail"]["mail"]["messageId"] = format!("message-data-{id}").into();
    v.to_string()
}

fn url_request(
    method: &str,
    query: &str,
) -> aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest {
    serde_json::from_value(json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": query,
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "requestContext": {"http": {"method": method, "path": "/"}, "timeEpoch": 0},
        "body": null, "isBase64Encoded": false,
    }))
    .expect("a function URL request")
}

fn link_query(signer: &Signer, customer: &str) -> String {
    let base = url::Url::parse("https://unsubscribe.example.com/").unwrap();
    let link = url::Url::parse(&signer.unsubscribe_url(&base, customer)).unwrap();
    link.query().unwrap().to_owned()
}

async fn tick(app: &App, now: DateTime<Utc>) {
    let input = raw(&json!({"time": now.to_rfc3339()}).to_string());
    nudge_lambda::scheduler::handle(app, &input, Some(Duration::from_secs(900)))
        .await
        .expect("the tick runs");
}

/// The events of `sample` (JSON lines) of one customer per story: per set of event types a
/// customer has, the first such customer (in the order they first appear), and `c-1001`, whose
/// unsubscribe link the test follows. A function logs the same lines for two customers of the
/// same story (only the values differ), and the SDK's trace logs of one request are about 50 KB:
/// the whole sample (50 customers, 253 events, about 3,200 requests, 169 MB of logs) took 142 s
/// on moto, mostly moto's time and the logs' formatting; these 13 customers' 68 events take
/// 37 s. Measured on both: the same kinds of log line from the project's crates (level, target,
/// message, fields), and from the SDK all but the seven of a retry that moto caused once.
fn one_customer_per_story(sample: &str) -> String {
    // Each line with its customer and event type, read once.
    let events: Vec<(String, String, &str)> = sample
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("the sample is JSON lines");
            let detail = &event["detail"];
            let customer = detail["customer"]["id"]
                .as_str()
                .or(detail["customer_id"].as_str())
                .unwrap_or_default()
                .to_owned();
            let kind = event["detail-type"].as_str().unwrap_or_default().to_owned();
            (customer, kind, line)
        })
        .collect();
    let mut stories: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut order = Vec::new();
    for (customer, kind, _) in &events {
        if !stories.contains_key(customer.as_str()) {
            order.push(customer.as_str());
        }
        stories.entry(customer).or_default().insert(kind);
    }
    let mut seen = BTreeSet::new();
    let kept: BTreeSet<&str> = order
        .into_iter()
        .filter(|c| seen.insert(stories[c].clone()) || *c == "c-1001")
        .collect();
    let lines: Vec<&str> = events
        .iter()
        .filter(|(customer, _, _)| kept.contains(customer.as_str()))
        .map(|(_, _, line)| *line)
        .collect();
    let kinds: BTreeSet<&str> = stories.values().flatten().copied().collect();
    let kept_kinds: BTreeSet<&str> = kept
        .iter()
        .flat_map(|c| stories[c].iter().copied())
        .collect();
    assert_eq!(kept_kinds, kinds, "every event type of the sample is kept");
    eprintln!(
        "the sample's events of {} of its {} customers, one per story: {} of {} events",
        kept.len(),
        stories.len(),
        lines.len(),
        events.len()
    );
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_logs_no_address_or_name_at_the_most_verbose_level() {
    let Some(endpoint) =
        support::moto("every_function_logs_no_address_or_name_at_the_most_verbose_level")
    else {
        return;
    };
    let log = capture();
    let app = app(&endpoint, "logs").await;
    let mut inputs = CustomerData::new();

    // ingest: the sample, with the scheduler ticking weekly on the events' clock, then on
    // for two months, so that waits end and their emails go.
    let sample = one_customer_per_story(&repo("events/sample.jsonl"));
    inputs.add_text(&sample);
    let mut last_tick: Option<DateTime<Utc>> = None;
    let mut now = Utc::now();
    for line in sample.lines() {
        let event: Value = serde_json::from_str(line).expect("the sample is JSON lines");
        now = DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())
            .unwrap()
            .to_utc();
        if last_tick.is_none_or(|t| now - t >= TimeDelta::days(7)) {
            tick(&app, now).await;
            last_tick = Some(now);
        }
        nudge_lambda::ingest::handle(&app, &raw(line), now)
            .await
            .expect("the store answers");
    }
    for days in [1, 8, 15, 30, 60] {
        tick(&app, now + TimeDelta::days(days)).await;
    }

    // shopify-webhook: every payload signed, then unsigned; invalid ones; GDPR topics; and
    // the EventBridge partner delivery through ingest.
    let secrets = Secrets::new(&app);
    let mut deliveries: Vec<(String, String)> = SHOPIFY
        .iter()
        .map(|(topic, file)| {
            (
                (*topic).to_owned(),
                repo(&format!("tests/fixtures/shopify/{file}")),
            )
        })
        .collect();
    deliveries.extend(
        invalid_shopify()
            .into_iter()
            .map(|(t, b)| (t.to_owned(), b)),
    );
    let redact = repo("tests/fixtures/shopify/customers-redact.json");
    for topic in ["customers/data_request", "shop/redact", "app/uninstalled"] {
        deliveries.push((topic.to_owned(), redact.clone()));
    }
    let mut statuses = Vec::new();
    for (i, (topic, body)) in deliveries.iter().enumerate() {
        inputs.add_text(body);
        let signed = signature::sign(SECRET.as_bytes(), body.as_bytes());
        for sig in [Some(signed.as_str()), None, Some("bm90IGl0")] {
            let request = support::shopify_request(topic, &format!("data-{i}"), body, sig);
            let response = handle_webhook(&app, &secrets, request, now).await;
            statuses.push(response.status_code);
        }
    }
    assert!(statuses.contains(&200) && statuses.contains(&400) && statuses.contains(&401));
    let partner = repo("tests/fixtures/shopify/eventbridge-orders-create.json");
    inputs.add_text(&partner);
    nudge_lambda::ingest::handle(&app, &raw(&partner), now)
        .await
        .expect("the store answers");

    // ses-events: feedback about sample customers' addresses, and one that is malformed.
    let addresses: Vec<String> = inputs.addresses().iter().take(3).cloned().collect();
    let fixtures = [
        "bounce-permanent.json",
        "bounce-transient.json",
        "complaint.json",
        "delivery.json",
        "open.json",
        "click.json",
        "send.json",
    ];
    for (i, fixture) in fixtures.iter().enumerate() {
        let text = ses_about(fixture, &addresses[i % addresses.len()], i);
        inputs.add_text(&text);
        nudge_lambda::ses_events::handle(&app, &raw(&text), now)
            .await
            .expect("the store answers");
    }
    let malformed = json!({"version": "0", "id": "ses-bad", "detail-type": "Email Bounced",
        "source": "aws.ses", "time": "2026-03-05T07:41:03Z",
        "detail": {"eventType": "Bounce", "mail": {"destination": [addresses[0]]},
                   "bounce": {"bounceType": addresses[0]}}})
    .to_string();
    nudge_lambda::ses_events::handle(&app, &raw(&malformed), now)
        .await
        .expect("the store answers");

    // unsubscribe: a known customer's link shown and posted, a guest's (whose id holds the
    // address) posted, and forged ones.
    let signer = Signer::new(support::TEST_SIGNING_KEY);
    let guest = format!("guest:{}", addresses[1]);
    for (method, query) in [
        ("GET", link_query(&signer, "c-1001")),
        ("POST", link_query(&signer, "c-1001")),
        ("POST", link_query(&signer, &guest)),
        ("POST", link_query(&Signer::development(), &guest)),
        (
            "GET",
            format!("c={}&s=AAAAAAAAAAAAAAAAAAAAAA", addresses[2]),
        ),
    ] {
        nudge_lambda::unsubscribe::handle(&app, &url_request(method, &query), now).await;
    }

    let text = log.text();
    for said in [
        "tick done",
        "shopify delivery",
        "input rejected",
        "ses event handled",
        "unsubscribe",
        "\"level\":\"TRACE\"",
        "\"level\":\"DEBUG\"",
    ] {
        assert!(text.contains(said), "nothing logged says {said:?}");
    }
    eprintln!(
        "the functions logged {} lines ({} bytes) for {} addresses and {} names",
        text.lines().count(),
        text.len(),
        inputs.addresses().len(),
        inputs.names().len()
    );
    inputs
        .except(STORE_ADDRESSES)
        .assert_absent("the functions' log", &text);
}

#[tokio::test]
async fn no_shopify_delivery_without_a_valid_signature_changes_the_store() {
    let Some(endpoint) =
        support::moto("no_shopify_delivery_without_a_valid_signature_changes_the_store")
    else {
        return;
    };
    let app = app(&endpoint, "unsigned").await;
    let secrets = Secrets::new(&app);
    // A customer and an order to erase or change.
    let order = repo("tests/fixtures/shopify/orders-create.json");
    let sig = signature::sign(SECRET.as_bytes(), order.as_bytes());
    let seeded = handle_webhook(
        &app,
        &secrets,
        support::shopify_request("orders/create", "seed", &order, Some(&sig)),
        App::now(),
    )
    .await;
    assert_eq!(seeded.status_code, 200, "{:?}", seeded.body);
    let before = support::table_items(&endpoint, &app.config.table);
    assert!(!before.is_empty());

    let mut topics: Vec<&str> = SHOPIFY.iter().map(|(t, _)| *t).collect();
    topics.extend([
        "customers/data_request",
        "shop/redact",
        "app/uninstalled",
        "no/such-topic",
        "",
    ]);
    // Each topic with a payload (its own, else `customers/redact`'s) and with an empty body.
    let payload = |topic: &str| {
        let file = SHOPIFY
            .iter()
            .find(|(t, _)| *t == topic)
            .map_or("customers-redact.json", |(_, f)| f);
        repo(&format!("tests/fixtures/shopify/{file}"))
    };
    // A function URL takes up to 6 MB; one near that, for one topic (hashing it is slow).
    let oversized = format!("{{\"pad\": \"{}\"}}", "x".repeat(5 << 20));
    let mut tried = 0;
    for topic in &topics {
        let mut bodies = vec![("payload", payload(topic)), ("empty", String::new())];
        if *topic == "customers/redact" {
            bodies.push(("oversized", oversized.clone()));
        }
        for (name, body) in &bodies {
            let good = signature::sign(SECRET.as_bytes(), body.as_bytes());
            let other_body = signature::sign(SECRET.as_bytes(), format!("{body} ").as_bytes());
            let wrong = [
                None,
                Some(String::new()),
                Some("%%% not base64".to_owned()),
                Some(good[..good.len() - 4].to_owned()),
                Some(format!("{good}AAAA")),
                Some(hex::encode(
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &good)
                        .unwrap(),
                )),
                Some(signature::sign(b"another-secret", body.as_bytes())),
                Some(signature::sign(b"", body.as_bytes())),
                Some(other_body),
            ];
            for sig in wrong {
                let request = support::shopify_request(topic, "unsigned", body, sig.as_deref());
                let response = handle_webhook(&app, &secrets, request, App::now()).await;
                assert_eq!(response.status_code, 401, "{topic} {name} {sig:?}");
                tried += 1;
            }
        }
        // A body that is not UTF-8, and not valid base64, as AWS hands binary over.
        let mut request = support::shopify_request(topic, "binary", "////", Some("AAAA"));
        request.is_base64_encoded = true;
        assert_eq!(
            handle_webhook(&app, &secrets, request, App::now())
                .await
                .status_code,
            401
        );
        request = support::shopify_request(topic, "binary", "*not base64*", None);
        request.is_base64_encoded = true;
        assert_eq!(
            handle_webhook(&app, &secrets, request, App::now())
                .await
                .status_code,
            401
        );
    }
    assert_eq!(
        support::table_items(&endpoint, &app.config.table),
        before,
        "{tried} unsigned deliveries"
    );

    // The same body signed with the current or the previous secret, its header in any case,
    // changes the store: the check above watches what a delivery changes.
    let redact = repo("tests/fixtures/shopify/customers-redact.json");
    let sig = signature::sign(PREVIOUS_SECRET.as_bytes(), redact.as_bytes());
    let mut request = support::shopify_request("customers/redact", "signed", &redact, None);
    request.headers.insert(
        http::HeaderName::from_static("x-shopify-hmac-sha256"),
        http::HeaderValue::from_str(&sig).unwrap(),
    );
    let mut upper = request.headers.clone();
    upper.remove("x-shopify-hmac-sha256");
    let upper_value = http::HeaderValue::from_str(&sig).unwrap();
    upper.insert(
        http::HeaderName::from_bytes(b"X-Shopify-Hmac-SHA256").unwrap(),
        upper_value,
    );
    request.headers = upper;
    let response = handle_webhook(&app, &secrets, request, App::now()).await;
    assert_eq!(response.status_code, 200, "{:?}", response.body);
    assert_ne!(
        support::table_items(&endpoint, &app.config.table),
        before,
        "the redact erased"
    );
}
