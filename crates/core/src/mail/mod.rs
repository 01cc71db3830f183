//! Email: what the engine decided to send, its MIME form, and the [`Mailer`] that delivers it.
//!
//! The engine renders an [`Email`] (subject, HTML, the unsubscribe link) as part of deciding; the
//! runner turns it into RFC 5322 bytes with [`build_mime`] and hands both to a [`Mailer`]. Building
//! the message is separate from delivering it so that every mailer sends the same bytes: what
//! `nudge simulate --outbox` writes is what SES would send.
//!
//! `nudge_local::OutboxMailer` writes `.eml` files to a folder (the command line); an SES mailer will send
//! the same bytes as raw email.
//!
//! Customer data (names, addresses, subjects) is never logged here: errors name the field that
//! is wrong, not its value, and [`Email`]'s `Debug` output leaves customer data out.

mod mime;
mod parse;

use std::future::Future;

pub use crate::engine::Email;
pub use crate::workflow::model::{Category, Mailbox};
pub use mime::{build_mime, message_id};
pub use parse::recipient_and_subject;

use crate::store::SendRecord;

/// What a [`Mailer`] reports for a delivered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message's id as the mailer knows it. For `OutboxMailer` it is the `Message-ID`
    /// header without its angle brackets (`key@domain`); SES will report its own id.
    pub message_id: String,
}

/// Delivers built emails.
///
/// The runner hands a mailer a send of the send log ([`SendRecord`]): its payload is the MIME
/// message exactly as [`build_mime`] made it when the email was decided, and the record gives
/// the envelope (customer, idempotency key, workflow, step, tags) without parsing the bytes
/// again. The runner calls [`Mailer::send`] only while it holds the send's claim
/// ([`Store::claim_send`](crate::store::Store::claim_send)), so two runners never deliver one
/// send at the same time; a send whose sender stopped mid-way may be handed over again
/// (transactional mail) after [`Mailer::lookup`] is asked whether it already left.
pub trait Mailer {
    /// Delivers the message `send.payload`.
    fn send(&self, send: &SendRecord) -> impl Future<Output = Result<Receipt, MailError>> + Send;

    /// Whether the message of `send` was already delivered, when this mailer can tell (the
    /// outbox sees its file; SES cannot be asked, so the default says it does not know).
    fn lookup(&self, send: &SendRecord) -> impl Future<Output = Result<Lookup, MailError>> + Send {
        let _ = send;
        std::future::ready(Ok(Lookup::Unknown))
    }
}

/// What a [`Mailer`] knows of a send it may have delivered ([`Mailer::lookup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It was delivered: this is its receipt.
    Delivered(Receipt),
    /// It was not delivered: sending it now sends it once.
    NotDelivered,
    /// The mailer cannot tell (SES): the send's category decides
    /// ([`SendRecord::resend_when_unknown`]).
    Unknown,
}

/// A shared mailer: several runners (one per `simulate` shard, say) may deliver through one.
impl<T: Mailer + Sync> Mailer for &T {
    fn send(&self, send: &SendRecord) -> impl Future<Output = Result<Receipt, MailError>> + Send {
        (**self).send(send)
    }

    fn lookup(&self, send: &SendRecord) -> impl Future<Output = Result<Lookup, MailError>> + Send {
        (**self).lookup(send)
    }
}

/// Why an email could not be built or delivered.
///
/// Messages name the field at fault, never its value: errors are logged, and values are
/// customer data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// An address that is not a plain `local@domain` (or that would break the header it goes in).
    #[error("the {field} address is not a valid email address")]
    InvalidAddress {
        /// The header it was meant for: `From`, `To` or `Reply-To`.
        field: &'static str,
    },
    /// An empty idempotency key cannot name a message or a file.
    #[error("the email has an empty idempotency key")]
    EmptyIdempotencyKey,
    /// Marketing mail must carry `List-Unsubscribe` (RFC 8058), so it needs the signed link.
    #[error("marketing email without an unsubscribe URL")]
    MissingUnsubscribeUrl,
    /// Marketing mail must carry the store's postal address.
    #[error("marketing email without the store's postal address")]
    MissingPostalAddress,
    /// The unsubscribe URL is not an absolute URL that fits in `List-Unsubscribe`.
    #[error("the unsubscribe URL is not a valid absolute URL")]
    InvalidUnsubscribeUrl,
    /// A tag outside `[A-Za-z0-9_-]{1,64}` (SES's tag alphabet, which `validate` checks): it
    /// could not go into `X-Nudge-Tags` safely. A tag is the workflow's text, not customer
    /// data, so the message quotes it.
    #[error("the tag `{}` is not 1 to 64 of A-Z, a-z, 0-9, `_` and `-`", .tag.escape_debug())]
    InvalidTag {
        /// The tag.
        tag: String,
    },
    /// html2text could not make the text part of the HTML.
    #[error("cannot derive the text part from the HTML: {source}")]
    HtmlToText {
        /// html2text's error.
        #[from]
        source: html2text::Error,
    },
    /// mail-builder failed to write the message (it writes to memory, so this is not expected).
    #[error("cannot write the MIME message: {source}")]
    Build {
        /// The writer's error.
        source: std::io::Error,
    },
    /// The mail service (or the outbox folder) could not take the email now: unreachable,
    /// timed out, out of disk. The same email may be delivered later.
    #[error("the mailer is unavailable: {message}")]
    Unavailable {
        /// What went wrong (names a file or a service, never a recipient).
        message: String,
        /// The service's or the file system's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The mail service may or may not have taken the email: the request was sent, and then it
    /// answered with a server error, or no answer came in time, or the connection broke. A
    /// mail service without an idempotency token (SES) may have queued it: sending it again
    /// may deliver it twice. Retryable for mail that must arrive (the runner sends it again:
    /// at least once), settled unknown for mail that must not arrive twice (at most once; see
    /// [`SendRecord::resend_when_unknown`]).
    #[error("the mailer may have taken the email: {message}")]
    MaybeSent {
        /// What happened (names a service, never a recipient).
        message: String,
        /// The service's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The mail service refused for exceeding the account's sending rate or quota; the same
    /// email may be delivered after backing off.
    #[error("the mailer is throttling sends: {message}")]
    Throttled {
        /// What the service said.
        message: String,
        /// The service's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The mail service refused this email for good (a sender it does not accept, a message
    /// it will not send, a folder that cannot be written). Retrying the same email cannot
    /// help.
    #[error("the mailer refused the email: {message}")]
    Rejected {
        /// What went wrong (names a file or a service, never a recipient).
        message: String,
        /// The service's or the file system's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl MailError {
    /// Whether delivering the same email again later may succeed: [`MailError::Unavailable`],
    /// [`MailError::Throttled`] and [`MailError::MaybeSent`] (which may also deliver it twice:
    /// see [`MailError::may_have_been_sent`]). An email that cannot be built, or that the
    /// service rejected, fails again the same way.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MailError::Unavailable { .. }
                | MailError::Throttled { .. }
                | MailError::MaybeSent { .. }
        )
    }

    /// Whether the mail service may have taken the email despite the error
    /// ([`MailError::MaybeSent`]): sending it again may deliver it twice.
    pub fn may_have_been_sent(&self) -> bool {
        matches!(self, MailError::MaybeSent { .. })
    }
}

/// Escapes an idempotency key to characters that are valid both in a `Message-ID` (RFC 5322
/// `dot-atom-text`) and in a file name on any system: ASCII letters, digits, `-`, `_`, and `.`
/// between two other characters stay; everything else becomes `=XX` per UTF-8 byte, `=` included.
///
/// The escaping is injective (distinct keys stay distinct), which matters because the outbox
/// recognises a repeated send by this name. Keys longer than 160 escaped characters keep their
/// first 120, a `+` (which escaping never produces, so a shortened key cannot equal another
/// key's escape) and a SHA-256 of the whole key, so that file names stay under every file
/// system's limit.
pub fn escape_key(key: &str) -> String {
    use std::fmt::Write;

    const MAX: usize = 160;
    let bytes = key.as_bytes();
    let mut out = String::with_capacity(key.len());
    for (i, &b) in bytes.iter().enumerate() {
        let plain_dot = b == b'.' && i > 0 && i + 1 < bytes.len() && !out.ends_with('.');
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || plain_dot {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "={b:02X}");
        }
    }
    if out.len() > MAX {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        out.truncate(120);
        // `+` is atext, so a cut right after a dot still leaves a valid id.
        out.push('+');
        out.push_str(&hex::encode(&digest[..16]));
    }
    out
}

/// The most characters a message tag (`send_email.tags`) may have.
pub const MAX_MESSAGE_TAG_CHARS: usize = 64;

/// Whether `tag` matches `[A-Za-z0-9_-]{1,64}`, the tag alphabet of Amazon SES (which refuses
/// the whole message for a tag outside it). `validate` holds `send_email.tags` to it, and
/// [`build_mime`] refuses any other: nothing in such a tag can fold or end a header.
pub fn is_message_tag(tag: &str) -> bool {
    (1..=MAX_MESSAGE_TAG_CHARS).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unavailable_throttled_or_maybe_sent_mailer_is_worth_a_retry() {
        let message = || "m".to_owned();
        let maybe = MailError::MaybeSent {
            message: message(),
            source: None,
        };
        assert!(maybe.is_retryable() && maybe.may_have_been_sent());
        assert!(
            MailError::Unavailable {
                message: message(),
                source: None
            }
            .is_retryable()
        );
        assert!(
            MailError::Throttled {
                message: message(),
                source: None
            }
            .is_retryable()
        );
        for error in [
            MailError::Rejected {
                message: message(),
                source: None,
            },
            MailError::InvalidAddress { field: "To" },
            MailError::MissingUnsubscribeUrl,
            MailError::EmptyIdempotencyKey,
        ] {
            assert!(!error.is_retryable(), "{error:?}");
            assert!(!error.may_have_been_sent(), "{error:?}");
        }
        let unavailable = MailError::Unavailable {
            message: message(),
            source: None,
        };
        assert!(!unavailable.may_have_been_sent());
    }

    #[test]
    fn escape_key_keeps_ordinary_keys_readable() {
        assert_eq!(escape_key("r-3f9a.miss-you"), "r-3f9a.miss-you");
        assert_eq!(escape_key("run_1.step_2"), "run_1.step_2");
    }

    #[test]
    fn escape_key_escapes_what_is_not_an_atom_or_a_file_name() {
        assert_eq!(escape_key("a/b"), "a=2Fb");
        assert_eq!(escape_key("a=b"), "a=3Db");
        assert_eq!(escape_key("a b@c<d>"), "a=20b=40c=3Cd=3E");
        assert_eq!(escape_key("ş"), "=C5=9F");
        assert_eq!(escape_key("a\r\nb"), "a=0D=0Ab");
    }

    #[test]
    fn escape_key_never_leaves_a_leading_trailing_or_double_dot() {
        assert_eq!(escape_key(".a"), "=2Ea");
        assert_eq!(escape_key("a."), "a=2E");
        assert_eq!(escape_key("a..b"), "a.=2Eb");
        assert_eq!(escape_key("."), "=2E");
    }

    #[test]
    fn escape_key_is_injective_on_lookalikes() {
        let keys = [
            "a/b", "a=2Fb", "a_b", "a-b", "a.b", "a=2Eb", "a..b", "a.=2Eb",
        ];
        let escaped: std::collections::HashSet<_> = keys.iter().map(|k| escape_key(k)).collect();
        assert_eq!(escaped.len(), keys.len());
    }

    #[test]
    fn escape_key_bounds_long_keys_and_keeps_them_distinct() {
        let a = "x".repeat(300);
        let b = format!("{}y", "x".repeat(299));
        let (ea, eb) = (escape_key(&a), escape_key(&b));
        assert!(ea.len() <= 160, "{}", ea.len());
        assert_ne!(ea, eb);
        assert!(ea.starts_with(&format!("{}+", "x".repeat(120))), "{ea}");
    }
}
