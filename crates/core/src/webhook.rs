//! Webhook calls: what a `webhook` step sends, the [`WebhookCaller`] port that sends it, and the
//! signature.
//!
//! The engine decides a call ([`WebhookCall`]); the runner logs it in the send log as a
//! [`WebhookRequest`] (JSON), beside the emails, and delivers it as it delivers email: claimed,
//! called, settled, retried with backoff, `webhook.failed` when retries run out. A run never
//! waits for one. `simulate` records calls and makes none.
//!
//! The request carries `Idempotency-Key: <run>.<step>`, `X-Nudge-Timestamp` (unix seconds) and,
//! when the step names a secret, `X-Nudge-Signature: sha256=<hex of HMAC-SHA256 of the body>`
//! ([`sign`]).

use std::future::Future;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::engine::WebhookCall;
use crate::store::SendRecord;

/// A webhook call as the send log keeps it (its payload, as JSON).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// Where.
    pub url: String,
    /// `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// The body: the step's rendered body as compact JSON text.
    pub body: String,
    /// The name of the secret that signs the body, when the step names one.
    pub secret: Option<String>,
}

impl WebhookRequest {
    /// The request for the engine's decision `call`.
    pub fn from_call(call: &WebhookCall) -> Self {
        Self {
            url: call.url.clone(),
            method: call.method.to_owned(),
            body: call.body.to_string(),
            secret: call.secret.clone(),
        }
    }

    /// As stored in the send log.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a WebhookRequest is plain strings")
    }

    /// From the send log's payload.
    pub fn from_payload(payload: &[u8]) -> Result<Self, WebhookError> {
        serde_json::from_slice(payload).map_err(|e| WebhookError::Invalid {
            message: format!("the stored webhook request is unreadable: {e}"),
        })
    }
}

/// Without the URL's path and query (they may carry tokens) and the body (customer data).
impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("method", &self.method)
            .field("body_bytes", &self.body.len())
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// What a [`WebhookCaller`] reports for a call the receiver accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookReceipt {
    /// The receiver's HTTP status (2xx).
    pub status: u16,
}

/// Why a webhook call failed. Messages name the host at most, never the path, query or body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The receiver could not be reached, timed out, or answered 408, 429 or 5xx: the same
    /// call may succeed later.
    #[error("the webhook receiver is unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
    },
    /// The receiver refused the call (another 4xx): retrying the same call cannot help.
    #[error("the webhook receiver refused the call with HTTP {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// The secret the step names cannot be found: the call is not made unsigned.
    #[error("the webhook secret `{name}` is not configured")]
    MissingSecret {
        /// The secret's name (not its value).
        name: String,
    },
    /// The request cannot be made (an unreadable stored request, a URL that is not http(s)).
    #[error("invalid webhook request: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
}

impl WebhookError {
    /// Whether the same call may succeed later: [`WebhookError::Unavailable`] only.
    pub fn is_retryable(&self) -> bool {
        matches!(self, WebhookError::Unavailable { .. })
    }
}

/// Makes webhook calls.
pub trait WebhookCaller {
    /// Calls the receiver with `request` (the payload of `send`, decoded), signing it at `now`
    /// (`X-Nudge-Timestamp`).
    fn call(
        &self,
        send: &SendRecord,
        request: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WebhookReceipt, WebhookError>> + Send;
}

/// A shared caller.
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
        std::future::ready(Err(WebhookError::Invalid {
            message: "no webhook caller is configured".to_owned(),
        }))
    }
}

/// `sha256=<lowercase hex of HMAC-SHA256(secret, body)>`: the `X-Nudge-Signature` header.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_request_round_trips_through_the_payload() {
        let request = WebhookRequest {
            url: "https://hooks.example.com/x?token=t".to_owned(),
            method: "POST".to_owned(),
            body: r#"{"a":1}"#.to_owned(),
            secret: Some("crm".to_owned()),
        };
        assert_eq!(
            WebhookRequest::from_payload(&request.to_payload()).unwrap(),
            request
        );
        assert!(!format!("{request:?}").contains("token"));
        assert!(WebhookRequest::from_payload(b"{").is_err());
    }
}
