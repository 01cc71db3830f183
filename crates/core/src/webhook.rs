//! Webhook calls: what the send log keeps of one ([`WebhookRequest`]), how it is signed
//! ([`sign`], [`verify`]) and which headers it carries ([`WebhookRequest::headers`]), and the
//! [`WebhookCaller`] port that makes the call.
//!
//! A `webhook` step's decision ([`WebhookCall`]) is committed to the send log like an email:
//! its payload is the JSON form of a [`WebhookRequest`] (the body already rendered, as compact
//! JSON text, so that a retry sends the very bytes the first attempt sent and the signature
//! stays the same). Delivery claims the entry, calls the endpoint through a [`WebhookCaller`]
//! and settles it: a [retryable](WebhookError::is_retryable) failure is tried again later with
//! backoff, a final one settles as `webhook.failed`. The response's body is not used. A runner
//! without a caller ([`NoWebhooks`], `simulate`'s) logs no calls: they stay timeline records.
//!
//! The signature is exactly what the contract says: `X-Nudge-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of the body's bytes under the named secret. `X-Nudge-Timestamp` is not signed,
//! so a receiver cannot trust it to reject replays; the `Idempotency-Key` (`<run>.<step>`,
//! the same on every retry) is what lets a receiver drop a call it already handled.
//!
//! Nothing here logs: the URL may carry a token in its query string and the body carries
//! customer data, so [`WebhookRequest`]'s `Debug` output shows the host and the body's length
//! only, and no [`WebhookError`] message quotes the URL, the body or a secret.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::engine::WebhookCall;
use crate::store::SendRecord;

/// `Content-Type`: the body is JSON.
pub const CONTENT_TYPE: &str = "application/json";
/// The header naming the call for the receiver's de-duplication: `<run>.<step>`, the same on
/// every retry of the call.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// The header with the body's signature, `sha256=<hex>`, when the step names a secret.
pub const SIGNATURE_HEADER: &str = "X-Nudge-Signature";
/// The header with the call's time in unix seconds (not signed: see the module's docs).
pub const TIMESTAMP_HEADER: &str = "X-Nudge-Timestamp";
/// The header naming the workflow.
pub const WORKFLOW_HEADER: &str = "X-Nudge-Workflow";
/// The header naming the step.
pub const STEP_HEADER: &str = "X-Nudge-Step";
/// The `User-Agent` of every call: `nudge/<version>`.
pub const USER_AGENT: &str = concat!("nudge/", env!("CARGO_PKG_VERSION"));
/// The prefix of a signature's value.
const SIGNATURE_PREFIX: &str = "sha256=";

/// A webhook call as the send log keeps it (the send's payload, as JSON): everything needed to
/// make the call again, the body already rendered.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// Where to call (an `https` URL, as `validate` checks). May carry a token in its query
    /// string: never logged, only its host.
    pub url: String,
    /// `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// The body, compact JSON text: sent, and signed, byte for byte.
    pub body: String,
    /// The name of the stored secret that signs the body, if any.
    pub secret: Option<String>,
}

impl WebhookRequest {
    /// The request the engine's `call` asks for: its body rendered as compact JSON text.
    pub fn from_call(call: &WebhookCall) -> Self {
        WebhookRequest {
            url: call.url.clone(),
            method: call.method.to_owned(),
            // A `Value`'s `Display` is its compact JSON text and cannot fail.
            body: call.body.to_string(),
            secret: call.secret.clone(),
        }
    }

    /// The send log's payload: this request as JSON.
    pub fn to_payload(&self) -> Vec<u8> {
        // Four strings serialise infallibly.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The request a send log's payload holds.
    pub fn from_payload(payload: &[u8]) -> Result<Self, WebhookError> {
        serde_json::from_slice(payload).map_err(|e| WebhookError::InvalidRequest {
            // serde_json's message names a position and a type, never the payload's text.
            reason: format!("the send's payload is not a webhook request: {e}"),
        })
    }

    /// The URL's host, what logs may show of it (`-` when the URL has none).
    pub fn host(&self) -> String {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "-".to_owned())
    }

    /// The headers of the call for `send` at `now`, in this order: `Content-Type`,
    /// `User-Agent`, `Idempotency-Key` (the send's key), `X-Nudge-Timestamp` (`now` in unix
    /// seconds), `X-Nudge-Workflow`, `X-Nudge-Step`, and `X-Nudge-Signature` ([`sign`] of the
    /// body) when the request names a secret.
    ///
    /// `secret` is the named secret's value. When the request names a secret and `secret` is
    /// `None` this is [`WebhookError::SecretMissing`]: a call that should be signed is never
    /// sent unsigned. A value given for a request that names none is not used.
    pub fn headers(
        &self,
        send: &SendRecord,
        secret: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, String)>, WebhookError> {
        let mut headers = vec![
            ("Content-Type", CONTENT_TYPE.to_owned()),
            ("User-Agent", USER_AGENT.to_owned()),
            (IDEMPOTENCY_KEY_HEADER, send.idempotency_key.clone()),
            (TIMESTAMP_HEADER, now.timestamp().to_string()),
            (WORKFLOW_HEADER, send.workflow.clone()),
            (STEP_HEADER, send.step.clone()),
        ];
        if let Some(name) = &self.secret {
            let Some(secret) = secret else {
                return Err(WebhookError::SecretMissing { name: name.clone() });
            };
            headers.push((SIGNATURE_HEADER, sign(secret, self.body.as_bytes())));
        }
        // Ids and names come from the workflow and the engine; one that could break a header
        // (a control character, a non-ASCII byte) is refused rather than sent mangled.
        if let Some((name, _)) = headers.iter().find(|(_, v)| !header_safe(v)) {
            return Err(WebhookError::InvalidRequest {
                reason: format!("the `{name}` header's value is not printable ASCII"),
            });
        }
        Ok(headers)
    }
}

/// Whether `value` can go into an HTTP header as it is: non-empty printable ASCII.
fn header_safe(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Shows the host and the body's length only: the URL may carry a token, the body customer
/// data.
impl fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("host", &self.host())
            .field("method", &self.method)
            .field("body_len", &self.body.len())
            .field("secret", &self.secret)
            .finish()
    }
}

/// No webhook caller: a runner with it logs no webhook calls (`simulate` records them in its
/// timeline and calls none).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWebhooks;

impl WebhookCaller for NoWebhooks {
    fn call(
        &self,
        _send: &SendRecord,
        _request: &WebhookRequest,
        _now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WebhookReceipt, WebhookError>> + Send {
        std::future::ready(Err(WebhookError::InvalidRequest {
            reason: "no webhook caller is configured".to_owned(),
        }))
    }
}

/// `sha256=` and the lowercase hex of HMAC-SHA256 of `body` under `secret`: the value of
/// `X-Nudge-Signature`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex::encode(hmac(secret).chain_update(body).finalize().into_bytes())
    )
}

/// Whether `signature` (an `X-Nudge-Signature` value) is [`sign`] of `body` under `secret`,
/// compared in constant time: what a receiver (or a test) checks. A value without the
/// `sha256=` prefix or with invalid hex is not.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(digest) = signature
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    hmac(secret)
        .chain_update(body)
        .verify_slice(&digest)
        .is_ok()
}

/// An HMAC-SHA256 keyed with `secret`.
fn hmac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (a long one is hashed first), so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// What a [`WebhookCaller`] reports for a call the endpoint accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookReceipt {
    /// The response's status (2xx).
    pub status: u16,
}

/// The outcome a response's status means: 2xx accepted; 408, 429 and 5xx
/// [`Unavailable`](WebhookError::Unavailable) (a retry may pass); any other status
/// [`Rejected`](WebhookError::Rejected) (final: a 4xx says the request itself is wrong, and
/// redirects are not followed, so a 3xx is not the endpoint's answer either).
pub fn classify(status: u16) -> Result<WebhookReceipt, WebhookError> {
    match status {
        200..=299 => Ok(WebhookReceipt { status }),
        408 | 429 | 500..=599 => Err(WebhookError::Unavailable { status }),
        _ => Err(WebhookError::Rejected { status }),
    }
}

/// Why a webhook call did not go through. Messages never quote the URL, the body or a secret
/// (a secret's name is not secret: it is in the workflow).
#[derive(Debug, Error)]
pub enum WebhookError {
    /// The endpoint could not be reached (DNS, connection refused or reset, TLS): retryable.
    #[error("the endpoint could not be reached: {reason}")]
    Unreachable {
        /// What failed, without the URL.
        reason: String,
    },
    /// The endpoint did not answer in time: retryable.
    #[error("the endpoint did not answer within {millis} ms")]
    Timeout {
        /// The time allowed, in milliseconds.
        millis: u64,
    },
    /// The endpoint answered 408, 429 or 5xx: retryable.
    #[error("the endpoint answered {status}: unavailable for now")]
    Unavailable {
        /// The status.
        status: u16,
    },
    /// The endpoint answered another non-2xx status (a 4xx, or a redirect, which is not
    /// followed): final.
    #[error("the endpoint refused the call with status {status}")]
    Rejected {
        /// The status.
        status: u16,
    },
    /// The step names a secret that is not stored: final (a call that should be signed is
    /// never sent unsigned; storing the secret and replaying is the fix).
    #[error("the webhook secret `{name}` is not stored")]
    SecretMissing {
        /// The secret's name, as the step gives it.
        name: String,
    },
    /// The secret store could not be read now (unreachable, throttled): retryable.
    #[error("the webhook secret `{name}` could not be read: {reason}")]
    SecretUnavailable {
        /// The secret's name.
        name: String,
        /// What failed.
        reason: String,
    },
    /// The request cannot be made (a URL that does not parse or is not https, a method other
    /// than POST, PUT or PATCH, a payload that is not a request): final.
    #[error("invalid webhook request: {reason}")]
    InvalidRequest {
        /// What is wrong, without the URL.
        reason: String,
    },
}

impl WebhookError {
    /// Whether trying the call again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            WebhookError::Unreachable { .. }
            | WebhookError::Timeout { .. }
            | WebhookError::Unavailable { .. }
            | WebhookError::SecretUnavailable { .. } => true,
            WebhookError::Rejected { .. }
            | WebhookError::SecretMissing { .. }
            | WebhookError::InvalidRequest { .. } => false,
        }
    }
}

/// Calls webhooks. The runner's delivery hands it a claimed send and its request; the response's
/// body is not used.
///
/// Calls may be repeated (a retry after a timeout whose request did arrive, a claim that
/// expired): every call of one send carries the same `Idempotency-Key` and the same body, so
/// the receiver can drop repeats.
pub trait WebhookCaller {
    /// Calls `request`'s endpoint for `send` (whose key, workflow and step go into the
    /// headers) at `now` (the `X-Nudge-Timestamp`).
    fn call(
        &self,
        send: &SendRecord,
        request: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WebhookReceipt, WebhookError>> + Send;
}

/// A shared caller: several runners may call through one.
impl<T: WebhookCaller + Sync> WebhookCaller for &T {
    fn call(
        &self,
        send: &SendRecord,
        request: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WebhookReceipt, WebhookError>> + Send {
        (**self).call(send, request, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SendKind;
    use chrono::TimeZone;
    use serde_json::json;

    fn send() -> SendRecord {
        SendRecord {
            idempotency_key: "r-0123456789abcdef0123.notify".to_owned(),
            customer_id: "c-1".to_owned(),
            workflow: "order-followup".to_owned(),
            step: "notify".to_owned(),
            kind: SendKind::Webhook,
            category: "webhook".to_owned(),
            tags: Vec::new(),
            at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            payload: Vec::new(),
        }
    }

    fn request(secret: Option<&str>) -> WebhookRequest {
        WebhookRequest {
            url: "https://hooks.example.com/in?token=s3cr3t".to_owned(),
            method: "POST".to_owned(),
            body: r#"{"order":"1001"}"#.to_owned(),
            secret: secret.map(str::to_owned),
        }
    }

    #[test]
    fn sign_matches_the_rfc_4231_vector() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_the_signature_and_nothing_else() {
        let signature = sign(b"k", b"{}");
        assert!(verify(b"k", b"{}", &signature));
        assert!(!verify(b"other", b"{}", &signature));
        assert!(!verify(b"k", b"{ }", &signature));
        assert!(!verify(
            b"k",
            b"{}",
            signature.trim_start_matches("sha256=")
        ));
        assert!(!verify(b"k", b"{}", "sha256=zz"));
        assert!(!verify(b"k", b"{}", &signature[..signature.len() - 2]));
        assert!(verify(
            b"k",
            b"{}",
            &signature.to_uppercase().replacen("SHA256=", "sha256=", 1)
        ));
    }

    #[test]
    fn headers_carry_key_timestamp_names_and_signature() {
        let now = Utc.timestamp_opt(1_700_000_123, 0).unwrap();
        let headers = request(Some("crm"))
            .headers(&send(), Some(b"k"), now)
            .unwrap();
        let expected = vec![
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", format!("nudge/{}", env!("CARGO_PKG_VERSION"))),
            (
                "Idempotency-Key",
                "r-0123456789abcdef0123.notify".to_owned(),
            ),
            ("X-Nudge-Timestamp", "1700000123".to_owned()),
            ("X-Nudge-Workflow", "order-followup".to_owned()),
            ("X-Nudge-Step", "notify".to_owned()),
            ("X-Nudge-Signature", sign(b"k", br#"{"order":"1001"}"#)),
        ];
        assert_eq!(headers, expected);
    }

    #[test]
    fn an_unsigned_request_has_no_signature_even_with_a_secret_at_hand() {
        let now = Utc.timestamp_opt(0, 0).unwrap();
        let headers = request(None).headers(&send(), Some(b"k"), now).unwrap();
        assert_eq!(headers.len(), 6);
        assert!(headers.iter().all(|(n, _)| *n != SIGNATURE_HEADER));
    }

    #[test]
    fn a_named_secret_without_its_value_is_a_final_error() {
        let now = Utc.timestamp_opt(0, 0).unwrap();
        let err = request(Some("crm"))
            .headers(&send(), None, now)
            .unwrap_err();
        assert!(matches!(&err, WebhookError::SecretMissing { name } if name == "crm"));
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_header_value_that_is_not_printable_ascii_is_refused() {
        let now = Utc.timestamp_opt(0, 0).unwrap();
        let mut bad = send();
        bad.step = "a\r\nX-Evil: 1".to_owned();
        let err = request(None).headers(&bad, None, now).unwrap_err();
        assert!(matches!(err, WebhookError::InvalidRequest { .. }), "{err}");
        assert!(err.to_string().contains("X-Nudge-Step"), "{err}");
    }

    #[test]
    fn statuses_are_classified() {
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(classify(status).unwrap(), WebhookReceipt { status });
        }
        for status in [408, 429, 500, 502, 503, 504, 599] {
            let err = classify(status).unwrap_err();
            assert!(matches!(err, WebhookError::Unavailable { .. }), "{status}");
            assert!(err.is_retryable(), "{status}");
        }
        for status in [100, 301, 302, 307, 400, 401, 403, 404, 409, 410, 422] {
            let err = classify(status).unwrap_err();
            assert!(matches!(err, WebhookError::Rejected { .. }), "{status}");
            assert!(!err.is_retryable(), "{status}");
        }
    }

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        let retryable = [
            WebhookError::Unreachable {
                reason: "refused".to_owned(),
            },
            WebhookError::Timeout { millis: 5000 },
            WebhookError::SecretUnavailable {
                name: "a".to_owned(),
                reason: "throttled".to_owned(),
            },
        ];
        assert!(retryable.iter().all(WebhookError::is_retryable));
        let invalid = WebhookError::InvalidRequest {
            reason: "x".to_owned(),
        };
        assert!(!invalid.is_retryable());
    }

    #[test]
    fn from_call_renders_the_body_as_compact_json_and_round_trips_as_payload() {
        let call = WebhookCall {
            idempotency_key: "r-1.notify".to_owned(),
            url: "https://hooks.example.com/in".to_owned(),
            method: "PATCH",
            body: json!({"customer": {"id": "c-1"}, "n": 2, "tags": ["a", "b"]}),
            secret: Some("crm".to_owned()),
        };
        let request = WebhookRequest::from_call(&call);
        assert_eq!(
            request.body,
            r#"{"customer":{"id":"c-1"},"n":2,"tags":["a","b"]}"#
        );
        assert_eq!(request.method, "PATCH");
        assert_eq!(request.secret.as_deref(), Some("crm"));
        let back = WebhookRequest::from_payload(&request.to_payload()).unwrap();
        assert_eq!(back, request);
        let err = WebhookRequest::from_payload(b"From: a@b").unwrap_err();
        assert!(matches!(err, WebhookError::InvalidRequest { .. }));
        assert!(!err.to_string().contains("a@b"), "{err}");
    }

    #[test]
    fn debug_shows_the_host_but_not_the_query_or_the_body() {
        let shown = format!("{:?}", request(Some("crm")));
        assert!(shown.contains("hooks.example.com"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("1001"), "{shown}");
    }
}
