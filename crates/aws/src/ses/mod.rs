//! [`SesMailer`]: the `Mailer` port on SES v2.
//!
//! An email goes out as one `SendEmail` call with `Content.Raw` holding exactly the bytes
//! `nudge_core::mail::build_mime` made (the bytes `simulate --outbox` writes), the configuration
//! set if one is named, and message tags that let SES's events (delivery, bounce, complaint) be
//! traced back to the send without carrying customer data ([`message_tags`]). The SDK retries
//! throttling and 5xx answers itself, a bounded number of times with backoff ([`config_loader`]);
//! what is left when it gives up is mapped onto `MailError` ([`map_send_error`]).

mod error;
mod tags;

use std::time::Duration;

use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::config::timeout::TimeoutConfig;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{EmailContent, RawMessage};
use nudge_core::mail::{MailError, Mailer, Receipt};
use nudge_core::store::SendRecord;

pub use error::map_send_error;
pub use tags::{TAG_CUSTOMER, TAG_KEY, TAG_KEY_SHA256, TAG_STEP, TAG_WORKFLOW, message_tags};

/// Attempts per call, the first included: the SDK's standard retry mode retries throttling,
/// 5xx answers, timeouts and connection failures with exponential backoff and jitter. A
/// bounded few, because the send guarantee retries what is still pending later; a runner must
/// not stall on a struggling service. `SendEmail` is the exception: SES has no idempotency
/// token, so [`SesMailer`] retries it itself, and only when SES certainly did not take the
/// email (throttling, a pause, a connection never made), with the same count and backoff.
const MAX_ATTEMPTS: u32 = 4;
/// The first retry's backoff; it doubles per attempt (with jitter) up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The loader of the SDK configuration for Nudge's AWS clients: standard retries, 4 attempts
/// at most with backoff (200 ms doubling, jittered, to 5 s), and timeouts so that a hung
/// connection is a retryable failure rather than a stuck runner. Loading it (`.load().await`) takes credentials, region and
/// endpoint from the default chain (environment, profile, container or instance role); tests
/// set them explicitly (`.endpoint_url`, `.region`, `.credentials_provider`) so that nothing
/// asks an instance-metadata service.
pub fn config_loader() -> ConfigLoader {
    let retry = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(45))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts)
}

/// The wait before attempt `attempt + 1` of a `SendEmail` that SES certainly did not take:
/// [`INITIAL_BACKOFF`] doubling, at most [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    INITIAL_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// An SES v2 client on `config` (see [`config_loader`]).
pub fn ses_client(config: &SdkConfig) -> Client {
    Client::new(config)
}

/// Sends built emails through SES v2 as raw messages.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
    attempts: u32,
}

impl SesMailer {
    /// A mailer on `client`; `configuration_set` names the SES configuration set whose event
    /// destinations receive the sends' events (and their [`message_tags`]), if any.
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        SesMailer {
            client,
            configuration_set,
            attempts: MAX_ATTEMPTS,
        }
    }

    /// The same mailer making at most `attempts` `SendEmail` attempts per send (at least 1; by
    /// default [`SesMailer::MAX_SEND_ATTEMPTS`]): one for a caller that must bound a send's
    /// time, which leaves a throttled send to the runner's next retry.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.clamp(1, MAX_ATTEMPTS);
        self
    }

    /// The longest one send takes when each attempt ends within `attempt`: its attempts and
    /// the waits between them.
    pub fn worst_send(&self, attempt: Duration) -> Duration {
        let waits: Duration = (1..self.attempts).map(backoff).sum();
        attempt * self.attempts + waits
    }

    /// The most `SendEmail` attempts one send makes (retrying only what SES certainly did not
    /// take: throttling, a connection never made).
    pub const MAX_SEND_ATTEMPTS: u32 = MAX_ATTEMPTS;

    /// The most one send waits between its attempts, in all (200, 400 and 800 ms).
    pub const MAX_BACKOFF_TOTAL: Duration = Duration::from_millis(1400);

    async fn send_raw(&self, email: &SendRecord) -> Result<Receipt, MailError> {
        let tags = message_tags(email)?;
        let raw = RawMessage::builder()
            .data(Blob::new(email.payload.as_slice()))
            .build()
            .map_err(|e| MailError::Rejected {
                message: "the raw SES message could not be built".to_owned(),
                source: Some(Box::new(e)),
            })?;
        // No `Destination`: SES takes the recipients from the message's own headers, and the
        // message holds exactly the one `To` the engine decided (build_mime writes no Cc or
        // Bcc), so the send log's bytes are the only record of the address.
        let mut attempt = 1;
        let output = loop {
            let result = self
                .client
                .send_email()
                .content(EmailContent::builder().raw(raw.clone()).build())
                .set_configuration_set_name(self.configuration_set.clone())
                .set_email_tags(Some(tags.clone()))
                .customize()
                // The SDK would retry a 5xx or a timeout, after which SES may already have the
                // email: this call retries only what SES certainly did not take.
                .config_override(
                    aws_sdk_sesv2::config::Builder::default()
                        .retry_config(RetryConfig::standard().with_max_attempts(1)),
                )
                .send()
                .await;
            let err = match result {
                Ok(output) => break output,
                Err(err) => map_send_error(err),
            };
            // Ids only: the service's own message may quote an address.
            tracing::warn!(
                workflow = %email.workflow,
                step = %email.step,
                idempotency_key = %email.idempotency_key,
                attempt,
                retryable = err.is_retryable(),
                may_have_been_sent = err.may_have_been_sent(),
                "SES did not take the email: {err}"
            );
            if !err.is_retryable() || err.may_have_been_sent() || attempt >= self.attempts {
                return Err(err);
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        };
        // SES always names the message it took; were it not to, the email is still sent, so it
        // is reported as sent (with an empty id), not failed.
        let message_id = output.message_id.unwrap_or_default();
        tracing::debug!(
            workflow = %email.workflow,
            step = %email.step,
            idempotency_key = %email.idempotency_key,
            ses_message_id = %message_id,
            "sent through SES"
        );
        Ok(Receipt { message_id })
    }
}

impl Mailer for SesMailer {
    /// Sends the logged message (`send.payload`) as it is. SES has no idempotency token: the send guarantee (the send log's
    /// claim before the call) is what keeps a retried email from going out twice.
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        self.send_raw(send).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented worst case of one send's waits is what `backoff` gives between its
    /// attempts (the scheduler sizes its batches from it).
    #[test]
    fn the_documented_backoff_total_is_the_sum_of_the_waits() {
        let total: Duration = (1..MAX_ATTEMPTS).map(backoff).sum();
        assert_eq!(total, SesMailer::MAX_BACKOFF_TOTAL);
    }
}
