//! One email step rendered by the engine ([`Engine::preview_email`]) and built into the MIME
//! message the outbox writes ([`build_mime`]); what the page shows is read back from those
//! bytes, so it is what the outbox would write.

use chrono::{DateTime, Utc};
use mail_parser::MessageParser;

use nudge_core::engine::{EmailSample, Engine, PreviewError};
use nudge_core::mail::{Category, MailError, build_mime};

use super::sample::Sample;

/// An email as the outbox would write it, taken apart for the page.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The message's header lines as written (folded lines joined), in order.
    pub headers: Vec<(String, String)>,
    /// `From`, decoded.
    pub from: String,
    /// `To`, decoded.
    pub to: String,
    /// `Reply-To`, decoded, when there is one.
    pub reply_to: Option<String>,
    /// The subject.
    pub subject: String,
    /// The preheader, when the step has one that renders to text.
    pub preheader: Option<String>,
    /// The HTML part as sent (preheader and footer included).
    pub html: String,
    /// The text part as sent.
    pub text: String,
    /// Marketing or transactional.
    pub category: Category,
    /// The whole message, as the outbox's `.eml` file.
    pub eml: Vec<u8>,
}

/// Why one email could not be shown: the page shows this in its place.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The engine would not send it for this data (render error, invalid address).
    #[error(transparent)]
    Engine(#[from] PreviewError),
    /// The message could not be built (the runner would fail the send the same way).
    #[error("the message cannot be built: {0}")]
    Mime(#[from] MailError),
    /// The built message does not read back (not expected: it was just written).
    #[error("the built message cannot be read back")]
    Parse,
}

/// Renders step `step` of `workflow` for `sample` at `now`.
///
/// # Errors
///
/// What [`RenderError`] lists.
pub fn render(
    engine: &Engine<'_>,
    workflow: &str,
    step: &str,
    sample: &Sample,
    now: DateTime<Utc>,
) -> Result<Rendered, RenderError> {
    let input = EmailSample {
        customer_id: sample.customer_id.clone(),
        profile: sample.customer.clone(),
        event: sample.event.clone(),
        run_id: nudge_core::engine::run_id(workflow, &sample.customer_id, None, "preview"),
        now,
    };
    let email = engine.preview_email(workflow, step, &input)?;
    let eml = build_mime(&email)?;
    let message = MessageParser::default()
        .parse(&eml[..])
        .ok_or(RenderError::Parse)?;
    let html = message.body_html(0).ok_or(RenderError::Parse)?.into_owned();
    let text = message.body_text(0).ok_or(RenderError::Parse)?.into_owned();
    let address = |a: Option<&mail_parser::Address<'_>>| a.map(show_address);
    Ok(Rendered {
        headers: raw_headers(&eml),
        from: address(message.from()).unwrap_or_default(),
        to: address(message.to()).unwrap_or_default(),
        reply_to: address(message.reply_to()),
        subject: message.subject().unwrap_or_default().to_owned(),
        preheader: email.preheader.clone(),
        html,
        text,
        category: email.category,
        eml,
    })
}

/// `Name <address>` of each mailbox, joined.
fn show_address(address: &mail_parser::Address<'_>) -> String {
    address
        .iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(name), Some(addr)) => format!("{name} <{addr}>"),
            (None, Some(addr)) => addr.to_owned(),
            (Some(name), None) => name.to_owned(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The header lines of `eml` (up to the first empty line), each folded header joined into one
/// line with its continuation's whitespace kept.
pub fn raw_headers(eml: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(eml);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.to_owned(), value.trim_start().to_owned()));
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_up_to_the_body_with_folds_joined() {
        let eml = b"From: <a@x.com>\r\nSubject: one\r\n two\r\nX: 1\r\n\r\nBody: no\r\n";
        assert_eq!(
            raw_headers(eml),
            vec![
                ("From".to_owned(), "<a@x.com>".to_owned()),
                ("Subject".to_owned(), "one two".to_owned()),
                ("X".to_owned(), "1".to_owned()),
            ]
        );
    }
}
