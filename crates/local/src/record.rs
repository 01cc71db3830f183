//! The mailers of `nudge simulate`: [`RecordingMailer`] (no `--outbox`: emails are recorded
//! as sent, nothing is written) and [`LocalMailer`], either one.

use nudge_core::mail::{MailError, Mailer, Receipt, escape_key};
use nudge_core::store::SendRecord;

use crate::OutboxMailer;

/// Delivers nothing and reports every email as sent, with the `Message-ID` its message
/// carries: `simulate` without `--outbox` decides and records the emails, and the send log of
/// a `--db` store then holds them as sent rather than pending forever.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecordingMailer;

impl Mailer for RecordingMailer {
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        Ok(Receipt {
            message_id: crate::mime::message_id(&send.payload)
                .unwrap_or_else(|| escape_key(&send.idempotency_key)),
        })
    }
}

/// The mailer of a `simulate` run: the outbox, or the recorder. Both know for sure whether
/// they delivered a send ([`LocalMailer::delivered`]): a file is in the outbox exactly when
/// its email was delivered, and the recorder delivers nothing, so recording again is harmless.
#[derive(Debug)]
pub enum LocalMailer {
    /// `--outbox`: `.eml` files.
    Outbox(OutboxMailer),
    /// No `--outbox`: recorded as sent.
    Record(RecordingMailer),
}

impl LocalMailer {
    /// Whether `send` was delivered, for sure: `Some` with its receipt when it was, `None`
    /// when it was not (so delivering it now cannot deliver it twice), unlike
    /// [`Mailer::lookup`], whose `None` may mean "cannot tell".
    pub async fn delivered(&self, send: &SendRecord) -> Result<Option<Receipt>, MailError> {
        match self {
            LocalMailer::Outbox(outbox) => outbox.lookup(send).await,
            LocalMailer::Record(_) => Ok(None),
        }
    }
}

impl Mailer for LocalMailer {
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        match self {
            LocalMailer::Outbox(outbox) => outbox.send(send).await,
            LocalMailer::Record(record) => record.send(send).await,
        }
    }

    async fn lookup(&self, send: &SendRecord) -> Result<Option<Receipt>, MailError> {
        match self {
            LocalMailer::Outbox(outbox) => outbox.lookup(send).await,
            LocalMailer::Record(record) => record.lookup(send).await,
        }
    }
}
