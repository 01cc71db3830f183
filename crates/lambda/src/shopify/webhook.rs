//! The `shopify-webhook` function URL: Shopify's HTTPS deliveries.
//!
//! Answers (Shopify retries anything but a 2xx, for 48 hours, and removes a subscription that
//! keeps failing):
//! - 401: the signature is missing or wrong, or no secret is set (never accepted unsigned);
//!   nothing is read further and nothing changes;
//! - 400: a signed body that is not a valid payload of its topic: kept as a dead letter (in the
//!   EventBridge partner shape, so that `nudge dead-letters replay` or `ingest` can take it);
//! - 200: applied, a duplicate, parked, erased or ignored;
//! - 500: the store or SSM failed; 503: the work did not finish within [`RESPONSE_BUDGET`].
//!   Both make Shopify deliver again, and the redelivery is idempotent (same event id).
//!
//! Shopify's 5-second limit: all the work (the secrets, cached for
//! [`PARAMETER_TTL`], then a handful of DynamoDB requests and the
//! sends of that one customer) runs under a [`RESPONSE_BUDGET`] of 4 s; past it the function
//! answers 503 at once rather than let Shopify time out.

use std::time::Duration;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use chrono::{DateTime, Utc};
use nudge_aws::{ParameterError, Secret, SecureParameter};
use serde_json::{Value, json};

use super::map::Headers;
use super::signature;
use crate::app::{App, PARAMETER_TTL};
use crate::http;
use crate::ingest::{self, Handled};

/// How long one delivery may take before the function gives up and answers 503 (Shopify
/// waits 5 s).
pub const RESPONSE_BUDGET: Duration = Duration::from_secs(4);

/// The app's webhook secrets: the current one and, during a rotation, the previous one, both
/// SSM SecureStrings (`/<stack>/shopify/secret`, `/<stack>/shopify/previous-secret`), cached.
#[derive(Debug, Clone)]
pub struct Secrets {
    current: SecureParameter,
    previous: SecureParameter,
}

/// Why the secrets cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The current secret is not set.
    #[error("the Shopify webhook secret {0} is not set: every delivery is refused")]
    Missing(String),
    /// SSM could not be read.
    #[error(transparent)]
    Parameter(#[from] ParameterError),
}

impl Secrets {
    /// The name of the current secret of stack `stack`.
    pub fn current_name(stack: &str) -> String {
        format!("/{stack}/shopify/secret")
    }

    /// The name of the previous secret of stack `stack` (set only during a rotation).
    pub fn previous_name(stack: &str) -> String {
        format!("/{stack}/shopify/previous-secret")
    }

    /// The secrets of `app`'s stack (nothing is read until the first delivery).
    pub fn new(app: &App) -> Self {
        let stack = &app.config.stack;
        Secrets {
            current: app
                .clients
                .parameter(Self::current_name(stack), PARAMETER_TTL),
            previous: app
                .clients
                .parameter(Self::previous_name(stack), PARAMETER_TTL),
        }
    }

    /// The secrets to try: the current one (required), then the previous one if set.
    pub async fn load(&self) -> Result<Vec<Secret>, SecretsError> {
        let current = self
            .current
            .get()
            .await?
            .ok_or_else(|| SecretsError::Missing(self.current.name().to_owned()))?;
        let mut secrets = vec![current];
        secrets.extend(self.previous.get().await?);
        Ok(secrets)
    }
}

/// Handles one function URL request from Shopify (see the module documentation), within
/// [`RESPONSE_BUDGET`].
pub async fn handle_webhook(
    app: &App,
    secrets: &Secrets,
    request: LambdaFunctionUrlRequest,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    handle_webhook_within(app, secrets, request, now, RESPONSE_BUDGET).await
}

/// [`handle_webhook`] with another budget: past `budget` the work stops and the answer is 503.
pub async fn handle_webhook_within(
    app: &App,
    secrets: &Secrets,
    request: LambdaFunctionUrlRequest,
    now: DateTime<Utc>,
    budget: Duration,
) -> LambdaFunctionUrlResponse {
    // The commits are bounded; the sends they decided are delivered after (never cut off).
    match crate::ingest::bounded(app, budget, now, answer(app, secrets, &request, now)).await {
        Some(response) => response,
        None => {
            tracing::error!(
                budget_ms = budget.as_millis() as u64,
                "shopify delivery not finished in time: 503, Shopify delivers it again"
            );
            reply(503, json!({"error": "try again"}))
        }
    }
}

async fn answer(
    app: &App,
    secrets: &Secrets,
    request: &LambdaFunctionUrlRequest,
    now: DateTime<Utc>,
) -> LambdaFunctionUrlResponse {
    let secrets = match secrets.load().await {
        Ok(s) => s,
        Err(e @ SecretsError::Missing(_)) => {
            tracing::error!(error = %e, "shopify delivery refused");
            return reply(401, json!({"error": "no webhook secret is set"}));
        }
        Err(e) => {
            tracing::error!(error = %e, "shopify secrets unreadable");
            return reply(500, json!({"error": "try again"}));
        }
    };
    let Ok(body) = http::body(request) else {
        tracing::warn!("shopify delivery refused: the body is not valid base64");
        return reply(401, json!({"error": "invalid signature"}));
    };
    let signed = signature::verify(
        secrets.iter().map(Secret::expose),
        &body,
        http::header(request, "x-shopify-hmac-sha256"),
    );
    if !signed {
        tracing::warn!("shopify delivery refused: missing or invalid X-Shopify-Hmac-Sha256");
        return reply(401, json!({"error": "invalid signature"}));
    }
    let headers = Headers::from_lookup(|name| http::header(request, &name.to_ascii_lowercase()));
    let topic = headers.topic.clone().unwrap_or_default();
    let outcome = match std::str::from_utf8(&body) {
        Ok(text) => {
            let kept = dead_letter_envelope(&headers, text, now);
            super::handle(app, &headers, text, &kept, now).await
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let kept = dead_letter_envelope(&headers, &text, now);
            let event_id = headers.canonical_id().ok();
            let reason = format!("{topic}: the payload is not UTF-8");
            let customer = super::map::customer_named(headers.topic.as_deref(), &text);
            ingest::dead_letter_naming(
                app,
                super::DEAD_LETTER_SOURCE,
                event_id,
                customer,
                reason,
                &kept,
                now,
            )
            .await
        }
    };
    match outcome {
        Ok(handled) => {
            let status = match handled {
                Handled::DeadLettered { .. } => 400,
                _ => 200,
            };
            tracing::info!(topic, status, outcome = ?handled, "shopify delivery");
            reply(
                status,
                serde_json::to_value(&handled).unwrap_or(Value::Null),
            )
        }
        Err(e) => {
            tracing::error!(topic, error = %e, "shopify delivery failed: 500, Shopify retries");
            reply(500, json!({"error": "try again"}))
        }
    }
}

/// A webhook delivery as an EventBridge partner event (what a dead letter keeps): the headers
/// Nudge reads (never the signature) in `detail.metadata`, the body in `detail.payload` (as
/// JSON when it is a JSON object, array, number, boolean or null; as a string otherwise,
/// including when the body is a JSON string).
pub fn dead_letter_envelope(headers: &Headers, body: &str, now: DateTime<Utc>) -> String {
    let mut metadata = serde_json::Map::new();
    for (name, value) in [
        ("X-Shopify-Topic", &headers.topic),
        ("X-Shopify-Shop-Domain", &headers.shop),
        ("X-Shopify-Event-Id", &headers.event_id),
        ("X-Shopify-Webhook-Id", &headers.webhook_id),
        ("X-Shopify-API-Version", &headers.api_version),
        ("X-Shopify-Triggered-At", &headers.triggered_at),
    ] {
        if let Some(v) = value {
            metadata.insert(name.to_owned(), Value::String(v.clone()));
        }
    }
    // A JSON string in `payload` means "the body as text" (`partner_parts`), so a body that is
    // itself a JSON string is kept as text too: read back, it is that body, not the text
    // inside it (which a replay would otherwise map as a different delivery).
    let payload = match serde_json::from_str::<Value>(body) {
        Ok(Value::String(_)) | Err(_) => Value::String(body.to_owned()),
        Ok(value) => value,
    };
    json!({
        "version": "0",
        "id": headers.canonical_id().unwrap_or_else(|_| "shopify:unknown".to_owned()),
        "detail-type": headers.topic.as_deref().unwrap_or("shopifyWebhook"),
        "source": "aws.partner/shopify.com/nudge-webhook",
        "time": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "detail": {"metadata": Value::Object(metadata), "payload": payload},
    })
    .to_string()
}

fn reply(status: i64, body: Value) -> LambdaFunctionUrlResponse {
    http::response(status, "application/json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shopify::map::{Mapped, map};

    const TEST_SECRET: &[u8] = b"nudge-test-shopify-secret";
    const INVOKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/shopify");

    fn invocation(name: &str) -> LambdaFunctionUrlRequest {
        let path = format!("{INVOKE}/invoke/{name}.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The invocations `cargo lambda invoke` plays carry real signatures of their bodies (rerun
    /// tests/fixtures/shopify/invoke/generate.py when a payload changes) and map as intended.
    #[test]
    fn committed_invocations_are_signed_with_the_test_secret() {
        let expected = [
            ("customers-create", "customer.created"),
            ("orders-create", "order.placed"),
            ("fulfillments-create", "fulfillment"),
            ("fulfillments-update-delivered", "fulfillment"),
            ("checkouts-create", "checkout.started"),
            (
                "customers-email-marketing-consent-update",
                "customer.updated",
            ),
            ("customers-redact", "redact"),
        ];
        let received = chrono::DateTime::UNIX_EPOCH;
        for (name, outcome) in expected {
            let request = invocation(name);
            let body = http::body(&request).unwrap();
            let signature = http::header(&request, "x-shopify-hmac-sha256");
            assert!(
                signature::verify([TEST_SECRET], &body, signature),
                "{name}: stale signature, run tests/fixtures/shopify/invoke/generate.py"
            );
            assert_eq!(
                signature,
                Some(signature::sign(TEST_SECRET, &body).as_str())
            );
            let headers = Headers::from_lookup(|n| http::header(&request, &n.to_ascii_lowercase()));
            let text = std::str::from_utf8(&body).unwrap();
            let got = match map(&headers, text, received) {
                Mapped::Event(e) => e.event_type,
                Mapped::Fulfillment(_) => "fulfillment".to_owned(),
                Mapped::Redact { .. } => "redact".to_owned(),
                other => format!("{other:?}"),
            };
            assert_eq!(got, outcome, "{name}");
        }
        let bad = invocation("bad-signature");
        let body = http::body(&bad).unwrap();
        assert!(!signature::verify(
            [TEST_SECRET],
            &body,
            http::header(&bad, "x-shopify-hmac-sha256")
        ));
    }

    #[test]
    fn a_dead_letter_envelope_is_a_partner_delivery_with_the_same_headers_and_body() {
        let headers = Headers {
            topic: Some("orders/create".to_owned()),
            shop: Some("s.myshopify.com".to_owned()),
            event_id: Some("e".to_owned()),
            webhook_id: None,
            api_version: Some("2024-10".to_owned()),
            triggered_at: None,
        };
        // A body that is a JSON string (not a payload Shopify sends, but a signed body all the
        // same) stays that string: read back, it is not the text inside it.
        let bodies = [
            r#"{"id": "x"}"#,
            "not json at all",
            "[1,2]",
            r#""{\"id\": \"x\"}""#,
            r#""plain""#,
        ];
        for body in bodies {
            let kept = dead_letter_envelope(&headers, body, chrono::DateTime::UNIX_EPOCH);
            let delivery = crate::shopify::partner_delivery(&kept).expect("a partner delivery");
            let (h, b) = crate::shopify::partner_parts(&delivery).unwrap();
            assert_eq!(h, headers);
            let same = match (
                serde_json::from_str::<Value>(&b),
                serde_json::from_str::<Value>(body),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => b == body,
            };
            assert!(same, "{body} came back as {b}");
        }
    }

    #[test]
    fn secret_names_follow_the_stack() {
        assert_eq!(Secrets::current_name("shop"), "/shop/shopify/secret");
        assert_eq!(
            Secrets::previous_name("shop"),
            "/shop/shopify/previous-secret"
        );
    }
}
