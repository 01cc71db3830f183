//! The mailers of `nudge simulate`: [`RecordingMailer`] (no `--outbox`: emails are recorded
//! as sent, nothing is written) and [`LocalMailer`], either one.

use nudge_core::mail::{Lookup, MailError, Mailer, Receipt, escape_key};
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
            LocalMailer::Outbox(outbox) => Ok(match outbox.lookup(send).await? {
                Lookup::Delivered(receipt) => Some(receipt),
                Lookup::NotDelivered | Lookup::Unknown => None,
            }),
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

    async fn lookup(&self, send: &SendRecord) -> Result<Lookup, MailError> {
        match self {
            LocalMailer::Outbox(outbox) => outbox.lookup(send).await,
            LocalMailer::Record(record) => record.lookup(send).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::store::SendKind;

    fn send(payload: &[u8]) -> SendRecord {
        SendRecord {
            idempotency_key: "r-1.s".into(),
            customer_id: "c-1".into(),
            workflow: "w".into(),
            step: "s".into(),
            kind: SendKind::Email,
            category: "marketing".into(),
            tags: vec![],
            at: chrono::DateTime::UNIX_EPOCH,
            payload: payload.to_vec(),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_recorder_reports_the_message_id_and_never_that_it_delivered() {
        let with_id = send(b"Message-ID: <r-1.s@shop.example>\r\n\r\nbody");
        let receipt = block_on(RecordingMailer.send(&with_id)).unwrap();
        assert_eq!(receipt.message_id, "r-1.s@shop.example");
        let without = block_on(RecordingMailer.send(&send(b""))).unwrap();
        assert_eq!(without.message_id, "r-1.s");
        let mailer = LocalMailer::Record(RecordingMailer);
        assert_eq!(block_on(mailer.delivered(&with_id)).unwrap(), None);
    }

    #[test]
    fn the_outbox_says_for_sure_what_it_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = LocalMailer::Outbox(OutboxMailer::new(dir.path()).unwrap());
        let s = send(b"Message-ID: <r-1.s@shop.example>\r\n\r\nbody");
        assert_eq!(block_on(mailer.delivered(&s)).unwrap(), None);
        let receipt = block_on(mailer.send(&s)).unwrap();
        assert_eq!(
            block_on(mailer.delivered(&s)).unwrap(),
            Some(receipt.clone())
        );
        assert_eq!(
            block_on(mailer.lookup(&s)).unwrap(),
            Lookup::Delivered(receipt)
        );
    }
}
