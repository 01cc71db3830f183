//! What nudge-lambda's moto-backed test binaries share: an [`App`] on moto (a fresh table per
//! test, the SES sender verified, a test signing key), built exactly as a function's cold start
//! builds it, from the environment scripts/test sets for these binaries (`AWS_ENDPOINT_URL`,
//! fake credentials, a region). Without `NUDGE_MOTO_ENDPOINT` the tests say they are skipped:
//! a plain `cargo test` needs no server; scripts/test always sets it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nudge_aws::Clients;
use nudge_core::links::Signer;
use nudge_lambda::{App, Config};

#[allow(unused_imports)]
pub use nudge_testkit::moto::{endpoint, http, raw_messages, reset, verify_sender};

/// The signing key of the tests' deployments (32 bytes or more, not the development key).
pub const TEST_SIGNING_KEY: &[u8] = b"nudge-lambda-tests-signing-key-0123456789";

/// The shipped workflows' sender.
pub const SENDER: &str = "hello@shop.example.com";

/// moto's endpoint, when the test runs against it (see the module documentation).
pub fn moto(test: &str) -> Option<String> {
    let endpoint = endpoint(test)?;
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "NUDGE_MOTO_ENDPOINT is set but AWS_ENDPOINT_URL is not: the functions' clients would not reach moto"
    );
    Some(endpoint)
}

/// A table name no other test of this process uses.
pub fn fresh_table(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An app on moto at `endpoint` with the workflows under `workflows` (the shipped ones when
/// `None`), on a table of its own, the sender verified; `configure` adjusts the settings.
pub async fn app(
    endpoint: &str,
    test: &str,
    workflows: Option<&Path>,
    configure: impl FnOnce(&mut Config),
) -> App {
    app_with(
        endpoint,
        test,
        Clients::from_env(None).await,
        workflows,
        configure,
    )
    .await
}

/// As [`app`], on `clients` (built with a request meter or injected throttling).
pub async fn app_with(
    endpoint: &str,
    test: &str,
    clients: Clients,
    workflows: Option<&Path>,
    configure: impl FnOnce(&mut Config),
) -> App {
    let table = fresh_table(test);
    clients
        .create_table(&table, Duration::from_secs(10))
        .await
        .expect("the table is created on moto");
    app_on(endpoint, clients, &table, workflows, configure)
}

/// An app on moto at `endpoint` through `clients`, on `table` (which exists), with the
/// workflows under `workflows` (the shipped ones when `None`), the sender verified;
/// `configure` adjusts the settings. Several apps on one table are several Lambda sandboxes
/// of one deployment.
pub fn app_on(
    endpoint: &str,
    clients: Clients,
    table: &str,
    workflows: Option<&Path>,
    configure: impl FnOnce(&mut Config),
) -> App {
    verify_sender(endpoint, SENDER);
    let mut config = Config::from_lookup(|name| match name {
        "NUDGE_TABLE" => Some(table.to_owned()),
        "NUDGE_STACK" => Some("nudge-test".to_owned()),
        "NUDGE_UNSUBSCRIBE_URL" => Some("https://unsubscribe.example.com/".to_owned()),
        _ => None,
    })
    .expect("the test configuration is valid");
    configure(&mut config);
    let project = match workflows {
        Some(dir) => {
            let report = nudge_core::workflow::load(dir).expect("the workflows are readable");
            report.project.unwrap_or_else(|| {
                panic!("the test workflows have errors: {:?}", report.diagnostics)
            })
        }
        None => {
            let scratch = tempfile::tempdir().expect("a scratch folder");
            nudge_lambda::workflows::load(scratch.path()).expect("the built-in workflows load")
        }
    };
    App::new(config, clients, Signer::new(TEST_SIGNING_KEY), project).expect("the app is built")
}

/// `PutParameter` of a SecureString through moto's SSM API (raw JSON: the SDK crates stay in
/// nudge-aws).
pub fn put_parameter(endpoint: &str, name: &str, value: &str) {
    let body = serde_json::json!({
        "Name": name, "Value": value, "Type": "SecureString", "Overwrite": true
    })
    .to_string();
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ssm/aws4_request, \
                SignedHeaders=host, Signature=0";
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "AmazonSSM.PutParameter"),
        ("Authorization", auth),
    ];
    let (status, answer) = http(endpoint, "POST", "/", &headers, &body);
    assert_eq!(status, 200, "PutParameter: {answer}");
}

/// The shop of the tests' Shopify deliveries.
pub const SHOP: &str = "nudge-beans.myshopify.com";

/// A Shopify delivery to the function URL, as AWS hands it over: `topic`, Shopify's event id
/// `event_id`, `body` and, when given, `signature` as `X-Shopify-Hmac-Sha256`.
pub fn shopify_request(
    topic: &str,
    event_id: &str,
    body: &str,
    signature: Option<&str>,
) -> aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest {
    let mut headers = serde_json::json!({
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-shop-domain": SHOP,
        "x-shopify-api-version": "2024-10",
        "x-shopify-webhook-id": format!("w-{event_id}"),
        "x-shopify-event-id": event_id,
    });
    if let Some(signature) = signature {
        headers["x-shopify-hmac-sha256"] = signature.into();
    }
    serde_json::from_value(serde_json::json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                                    "sourceIp": "34.66.1.1", "userAgent": "Shopify"},
                           "requestId": "r", "time": "", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false,
    }))
    .expect("a function URL request")
}

/// Every item of DynamoDB table `table` on moto, sorted (a raw `Scan`, paged): what a test
/// compares to show that a request changed nothing.
pub fn table_items(endpoint: &str, table: &str) -> Vec<String> {
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, \
                SignedHeaders=host, Signature=0";
    let headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", "DynamoDB_20120810.Scan"),
        ("Authorization", auth),
    ];
    let mut items = Vec::new();
    let mut start: Option<serde_json::Value> = None;
    loop {
        let mut body = serde_json::json!({"TableName": table});
        if let Some(key) = start.take() {
            body["ExclusiveStartKey"] = key;
        }
        let (status, answer) = http(endpoint, "POST", "/", &headers, &body.to_string());
        assert_eq!(status, 200, "Scan: {answer}");
        let page: serde_json::Value = serde_json::from_str(&answer).expect("Scan answers JSON");
        for item in page["Items"].as_array().expect("Scan's Items") {
            items.push(item.to_string());
        }
        match page.get("LastEvaluatedKey") {
            Some(key) if !key.is_null() => start = Some(key.clone()),
            _ => break,
        }
    }
    items.sort();
    items
}
