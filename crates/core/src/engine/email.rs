//! [`Email`]: an email as the engine decides it, fully rendered, before it becomes MIME bytes
//! (`mail::build_mime`) and leaves through a `Mailer`.

use std::fmt;

use crate::workflow::model::{Category, Mailbox};

/// An email the engine decided to send, fully rendered (HTML from the template, HTML-escaped
/// already).
///
/// Its `Debug` output omits the recipient, subject, bodies and the unsubscribe link, so that an
/// email in a log line or a failed assertion does not put personal data in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    /// `"<run-id>.<step-id>"`, unique per send. It names the message (`Message-ID`) and the
    /// outbox file, so a retried send is recognised as the same message.
    pub idempotency_key: String,
    /// The recipient's customer id (what the unsubscribe link is signed for).
    pub customer_id: String,
    /// The workflow's id (ids only: it goes into an `X-Nudge-Workflow` header).
    pub workflow: String,
    /// The `send_email` step's id (`X-Nudge-Step`).
    pub step: String,
    /// Marketing mail gets the unsubscribe headers and footer; transactional mail never does.
    pub category: Category,
    /// The recipient.
    pub to: Mailbox,
    /// The sender.
    pub from: Mailbox,
    /// Where replies go, when not to `from`.
    pub reply_to: Option<Mailbox>,
    /// The rendered subject (plain text; control characters are replaced when the header is
    /// written).
    pub subject: String,
    /// Preview text that mail clients show beside the subject, hidden in the body.
    pub preheader: Option<String>,
    /// The rendered HTML body.
    pub html: String,
    /// When the email was decided (virtual time in `simulate`): the `Date` header.
    pub date: chrono::DateTime<chrono::Utc>,
    /// The step's tags: the `X-Nudge-Tags` header (SES message tags later).
    pub tags: Vec<String>,
    /// Marketing only: the per-customer signed one-click URL (`List-Unsubscribe`).
    pub unsubscribe_url: Option<String>,
    /// Marketing only: the store's postal address, printed in the footer.
    pub postal_address: Option<String>,
    /// The store's name, printed in the footer.
    pub store_name: String,
    /// Add the standard footer (postal address + unsubscribe link) because the template does not
    /// render both. Only marketing mail gets a footer.
    pub append_footer: bool,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids, times and flags only: `to`, `subject`, `preheader`, `html` and the unsubscribe
        // link (a capability to unsubscribe this customer) are customer data.
        f.debug_struct("Email")
            .field("idempotency_key", &self.idempotency_key)
            .field("customer_id", &self.customer_id)
            .field("workflow", &self.workflow)
            .field("step", &self.step)
            .field("category", &self.category)
            .field("date", &self.date)
            .field("tags", &self.tags)
            .field("append_footer", &self.append_footer)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_debug_leaves_customer_data_out() {
        let email = Email {
            idempotency_key: "r-1.s".into(),
            customer_id: "c-1".into(),
            workflow: "w".into(),
            step: "s".into(),
            category: Category::Marketing,
            to: Mailbox {
                name: Some("Ayşe Yılmaz".into()),
                address: "ayse@example.com".into(),
            },
            from: Mailbox {
                name: None,
                address: "hello@shop.example.com".into(),
            },
            reply_to: None,
            subject: "Secret subject".into(),
            preheader: Some("Secret preheader".into()),
            html: "<p>Secret body</p>".into(),
            date: chrono::DateTime::UNIX_EPOCH,
            tags: vec![],
            unsubscribe_url: Some("https://shop.example.com/u?c=c-1&s=sig".into()),
            postal_address: None,
            store_name: "Store".into(),
            append_footer: false,
        };
        let debug = format!("{email:?}");
        assert!(debug.contains("r-1.s"), "{debug}");
        for secret in ["Ayşe", "ayse@", "Secret", "sig"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
}
