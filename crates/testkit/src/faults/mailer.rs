//! [`FaultyMailer`] and [`FaultyWebhooks`]: delivery that fails, answers ambiguously or crashes
//! on the schedule's draw.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nudge_core::mail::{Lookup, MailError, Mailer, Receipt};
use nudge_core::store::SendRecord;
use nudge_core::webhook::{WebhookCaller, WebhookError, WebhookReceipt, WebhookRequest};

use super::invocation::{crash, yield_now};
use super::schedule::{Faults, Happened, SendFault};

/// Draws a [`SendFault`] for `send`, logs it, and says what to do.
async fn draw(
    faults: &Faults,
    rate: impl Fn(&super::FaultRates) -> f64,
    send: &SendRecord,
) -> Option<SendFault> {
    yield_now().await;
    let fault = faults.draw(rate, &SendFault::ALL, SendFault::is_crash);
    if let Some(fault) = fault {
        faults.record(Happened::SendFault {
            kind: send.kind,
            fault,
            customer: send.customer_id.clone(),
            key: send.idempotency_key.clone(),
        });
    }
    fault
}

fn delivered(faults: &Faults, send: &SendRecord) {
    faults.record(Happened::Delivered {
        kind: send.kind,
        customer: send.customer_id.clone(),
        key: send.idempotency_key.clone(),
    });
}

/// A [`Mailer`] that passes every send to `inner`, except those the schedule ([`Faults`])
/// draws a [`SendFault`] for, and logs every message that left
/// ([`Happened::Delivered`]): what the oracle counts deliveries from. `lookup` is `inner`'s.
/// Cloning shares the inner mailer and the schedule.
#[derive(Debug)]
pub struct FaultyMailer<M> {
    inner: Arc<M>,
    faults: Arc<Faults>,
}

impl<M> Clone for FaultyMailer<M> {
    fn clone(&self) -> Self {
        FaultyMailer {
            inner: Arc::clone(&self.inner),
            faults: Arc::clone(&self.faults),
        }
    }
}

impl<M> FaultyMailer<M> {
    /// `inner`, failing on `faults`' draws.
    pub fn new(inner: M, faults: Arc<Faults>) -> Self {
        FaultyMailer {
            inner: Arc::new(inner),
            faults,
        }
    }

    /// The mailer underneath.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

fn mail_error(fault: SendFault) -> MailError {
    let message = |what: &str| format!("{what} (a fault the harness injected)");
    match fault {
        SendFault::Throttled => MailError::Throttled {
            message: message("throttled"),
            source: None,
        },
        SendFault::Rejected => MailError::Rejected {
            message: message("rejected"),
            source: None,
        },
        SendFault::AmbiguousDelivered | SendFault::AmbiguousNotDelivered => MailError::MaybeSent {
            message: message("a 500 after the request was sent"),
            source: None,
        },
        _ => MailError::Unavailable {
            message: message("unavailable"),
            source: None,
        },
    }
}

impl<M: Mailer + Send + Sync> Mailer for FaultyMailer<M> {
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        let fault = draw(&self.faults, |r| r.mailer, send).await;
        if fault == Some(SendFault::CrashBefore) {
            crash().await;
        }
        if fault.is_none() || fault.is_some_and(SendFault::delivers) {
            let receipt = self.inner.send(send).await?;
            delivered(&self.faults, send);
            yield_now().await;
            match fault {
                None => return Ok(receipt),
                Some(SendFault::CrashAfterDelivery) => crash().await,
                Some(_) => {}
            }
        }
        Err(mail_error(fault.unwrap_or(SendFault::Unavailable)))
    }

    async fn lookup(&self, send: &SendRecord) -> Result<Lookup, MailError> {
        self.inner.lookup(send).await
    }
}

/// A [`WebhookCaller`] that passes every call to `inner`, except those the schedule draws a
/// [`SendFault`] for (an ambiguous answer is a timeout), and logs every call the receiver took
/// ([`Happened::Delivered`]). Cloning shares the inner caller and the schedule.
#[derive(Debug)]
pub struct FaultyWebhooks<W> {
    inner: Arc<W>,
    faults: Arc<Faults>,
}

impl<W> Clone for FaultyWebhooks<W> {
    fn clone(&self) -> Self {
        FaultyWebhooks {
            inner: Arc::clone(&self.inner),
            faults: Arc::clone(&self.faults),
        }
    }
}

impl<W> FaultyWebhooks<W> {
    /// `inner`, failing on `faults`' draws.
    pub fn new(inner: W, faults: Arc<Faults>) -> Self {
        FaultyWebhooks {
            inner: Arc::new(inner),
            faults,
        }
    }

    /// The caller underneath.
    pub fn inner(&self) -> &W {
        &self.inner
    }
}

fn webhook_error(fault: SendFault) -> WebhookError {
    match fault {
        SendFault::Throttled => WebhookError::Unavailable { status: 429 },
        SendFault::Rejected => WebhookError::Rejected { status: 400 },
        SendFault::AmbiguousDelivered | SendFault::AmbiguousNotDelivered => {
            WebhookError::Timeout { millis: 3000 }
        }
        _ => WebhookError::Unavailable { status: 503 },
    }
}

impl<W: WebhookCaller + Send + Sync> WebhookCaller for FaultyWebhooks<W> {
    async fn call(
        &self,
        send: &SendRecord,
        request: &WebhookRequest,
        now: DateTime<Utc>,
    ) -> Result<WebhookReceipt, WebhookError> {
        let fault = draw(&self.faults, |r| r.webhooks, send).await;
        if fault == Some(SendFault::CrashBefore) {
            crash().await;
        }
        if fault.is_none() || fault.is_some_and(SendFault::delivers) {
            let receipt = self.inner.call(send, request, now).await?;
            delivered(&self.faults, send);
            yield_now().await;
            match fault {
                None => return Ok(receipt),
                Some(SendFault::CrashAfterDelivery) => crash().await,
                Some(_) => {}
            }
        }
        Err(webhook_error(fault.unwrap_or(SendFault::Unavailable)))
    }
}
