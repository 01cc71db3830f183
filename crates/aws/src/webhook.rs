//! [`HttpWebhookCaller`]: the `WebhookCaller` port over HTTPS (hyper 1 and rustls, the stack
//! the AWS SDK already links, so no second HTTP or TLS stack comes in).
//!
//! One call is a few attempts at most ([`WebhookSettings`]): each with a connect timeout and a
//! total timeout (it runs inside a Lambda invocation, so it must not hang), a retryable failure
//! (unreachable, timed out, 408, 429, 5xx) tried again after a doubling backoff, any other
//! answer settled at once (`nudge_core::webhook::classify`). What is still failing after the
//! last attempt goes back to the send log, whose delivery retries it later and settles it as
//! `webhook.failed` when its own retries run out.
//!
//! - Redirects are not followed: a 3xx is a final `Rejected`. Following one would send the
//!   signed body and the idempotency key to a URL the workflow does not name, and a POST turned
//!   into a GET by a 302 would not be the call the workflow asked for; the fix is the right URL
//!   in the workflow.
//! - The response's body is not used: at most [`RESPONSE_BODY_LIMIT`] bytes of it are read, so
//!   that a short answer leaves the connection reusable, and the rest is dropped with the
//!   connection.
//! - A step that names a secret is signed with its value from a [`SecretSource`]; a secret that
//!   cannot be found is a final `SecretMissing`, never an unsigned call.
//! - Logs name the workflow, the step, the idempotency key and the URL's host, never the URL
//!   itself (its query string may carry a token), the body (customer data) or a secret.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use nudge_core::store::SendRecord;
use nudge_core::webhook::{WebhookCaller, WebhookError, WebhookReceipt, WebhookRequest, classify};
use thiserror::Error;

use crate::webhook_secrets::SecretSource;

/// The most of a response's body that is read (then the rest is dropped with the connection).
pub const RESPONSE_BODY_LIMIT: usize = 4 * 1024;

/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How patient one call is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// The longest a connection (TCP and TLS) may take to open.
    pub connect_timeout: Duration,
    /// The longest one attempt may take, from connecting to the response's status.
    pub attempt_timeout: Duration,
    /// Attempts per call, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub backoff: Duration,
    /// Whether `http://` URLs may be called. `validate` accepts only `https` URLs, so this is
    /// for tests against a local server; never set it in a deployment.
    pub allow_plain_http: bool,
}

impl Default for WebhookSettings {
    /// 3 s to connect, 5 s per attempt, 3 attempts, 250 ms then 500 ms between them, https
    /// only: a call that keeps failing costs about 16 s of a Lambda invocation at worst.
    fn default() -> Self {
        WebhookSettings {
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(250),
            allow_plain_http: false,
        }
    }
}

/// Why an [`HttpWebhookCaller`] could not be made.
#[derive(Debug, Error)]
pub enum WebhookSetupError {
    /// The system's root certificates could not be loaded (none found, or unreadable).
    #[error("cannot load the system's root certificates: {source}")]
    RootCertificates {
        /// The loader's error.
        source: std::io::Error,
    },
}

/// Calls webhooks over HTTPS, signing bodies with secrets from `S`.
#[derive(Debug, Clone)]
pub struct HttpWebhookCaller<S> {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    secrets: S,
    settings: WebhookSettings,
}

impl<S: SecretSource + Sync> HttpWebhookCaller<S> {
    /// A caller with `settings`, trusting the system's root certificates (rustls with the
    /// aws-lc-rs provider, as the AWS SDK uses). It keeps a pool of connections: make one per
    /// process and share it.
    pub fn new(secrets: S, settings: WebhookSettings) -> Result<Self, WebhookSetupError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(settings.connect_timeout));
        // hyper's connector refuses https URLs unless told otherwise; rustls wraps it.
        http.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|source| WebhookSetupError::RootCertificates { source })?;
        let builder = if settings.allow_plain_http {
            builder.https_or_http()
        } else {
            builder.https_only()
        };
        let connector = builder.enable_http1().wrap_connector(http);
        // Idle connections are closed after a while: a Lambda function frozen between
        // invocations would otherwise find its pooled connections dead on the next call.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(HttpWebhookCaller {
            client,
            secrets,
            settings,
        })
    }

    /// The method and URL of `request`, checked: POST, PUT or PATCH, an absolute https URL
    /// (or http when allowed).
    fn target(&self, request: &WebhookRequest) -> Result<(Method, Uri), WebhookError> {
        let invalid = |reason: &str| WebhookError::InvalidRequest {
            reason: reason.to_owned(),
        };
        let method = match request.method.as_str() {
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            _ => return Err(invalid("the method is not POST, PUT or PATCH")),
        };
        // The URL is not quoted: its query string may carry a token.
        let uri: Uri = request
            .url
            .parse()
            .map_err(|_| invalid("the URL does not parse"))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.settings.allow_plain_http => {}
            _ => return Err(invalid("the URL is not an https URL")),
        }
        if uri.host().is_none() {
            return Err(invalid("the URL has no host"));
        }
        Ok((method, uri))
    }

    /// One attempt: the request sent, the status classified, a little of the body read.
    async fn attempt(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &[(&'static str, String)],
        body: &Bytes,
    ) -> Result<WebhookReceipt, WebhookError> {
        let mut builder = Request::builder().method(method.clone()).uri(uri.clone());
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        let http_request =
            builder
                .body(Full::new(body.clone()))
                .map_err(|e| WebhookError::InvalidRequest {
                    reason: format!("the HTTP request cannot be built: {e}"),
                })?;
        let timeout = self.settings.attempt_timeout;
        let response = tokio::time::timeout(timeout, self.client.request(http_request))
            .await
            .map_err(|_| WebhookError::Timeout {
                millis: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            })?
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        // The body is not used; reading a little lets a short answer keep the connection.
        let _ = tokio::time::timeout(timeout, drain(response.into_body())).await;
        classify(status)
    }
}

/// Reads `body` until it ends, fails or [`RESPONSE_BODY_LIMIT`] bytes are read, drops what it
/// read and says how much that was.
async fn drain<B>(mut body: B) -> usize
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut read = 0;
    while read < RESPONSE_BODY_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            _ => break,
        }
    }
    read
}

/// A failed exchange as [`WebhookError::Unreachable`], with the error's chain of causes (which
/// names no URL: hyper's and rustls's messages say what failed, at most naming the host).
fn unreachable(err: hyper_util::client::legacy::Error) -> WebhookError {
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    WebhookError::Unreachable { reason }
}

impl<S: SecretSource + Sync> WebhookCaller for HttpWebhookCaller<S> {
    /// Calls the endpoint, up to [`WebhookSettings::attempts`] times while the failure is
    /// retryable. The secret is read once per call (from the source's cache, usually).
    async fn call(
        &self,
        send: &SendRecord,
        request: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<WebhookReceipt, WebhookError> {
        let host = request.host();
        let result = async {
            let (method, uri) = self.target(request)?;
            let secret = match &request.secret {
                Some(name) => Some(self.secrets.secret(name).await?),
                None => None,
            };
            let headers = request.headers(send, secret.as_ref().map(|s| s.expose()), now)?;
            let body = Bytes::from(request.body.clone());
            let mut backoff = self.settings.backoff;
            let mut attempt = 1;
            loop {
                match self.attempt(&method, &uri, &headers, &body).await {
                    Err(err) if err.is_retryable() && attempt < self.settings.attempts => {
                        tracing::debug!(
                            workflow = %send.workflow,
                            step = %send.step,
                            idempotency_key = %send.idempotency_key,
                            host = %host,
                            attempt,
                            "webhook attempt failed, retrying: {err}"
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = backoff.saturating_mul(2);
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        }
        .await;
        match &result {
            Ok(receipt) => tracing::debug!(
                workflow = %send.workflow,
                step = %send.step,
                idempotency_key = %send.idempotency_key,
                host = %host,
                status = receipt.status,
                "webhook called"
            ),
            Err(err) => tracing::warn!(
                workflow = %send.workflow,
                step = %send.step,
                idempotency_key = %send.idempotency_key,
                host = %host,
                retryable = err.is_retryable(),
                "webhook call failed: {err}"
            ),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper::body::{Body, Frame};

    use super::*;

    /// A body of `frames` frames of 1 KB, counting the frames it gave.
    struct Frames {
        frames: usize,
        given: usize,
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.given == self.frames {
                return Poll::Ready(None);
            }
            self.given += 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 1024])))))
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn a_response_body_is_read_up_to_the_limit_only() {
        let mut long = Frames {
            frames: 1000,
            given: 0,
        };
        let read = block_on(drain(&mut long));
        assert_eq!(read, RESPONSE_BODY_LIMIT);
        assert_eq!(long.given, RESPONSE_BODY_LIMIT / 1024);
        let mut short = Frames {
            frames: 2,
            given: 0,
        };
        assert_eq!(block_on(drain(&mut short)), 2048);
    }
}
