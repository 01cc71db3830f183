//! What the local side reads back from a logged MIME message: its `Message-ID` (the
//! receipt), and its recipient and subject (a timeline row for a send delivered without the
//! engine's decision at hand, such as one a stopped run left).

use mail_parser::MessageParser;

/// The message's `Message-ID`, without angle brackets.
pub(crate) fn message_id(mime: &[u8]) -> Option<String> {
    let message = MessageParser::new().parse_headers(mime)?;
    message.message_id().map(str::to_owned)
}

/// The address of the message's first `To` recipient and its subject (moved to core, where
/// `explain` reads it too).
pub use nudge_core::mail::recipient_and_subject;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_come_back_decoded() {
        let mime = b"Message-ID: <r-1.s@shop.example>\r\nTo: \"Ay\xc5\x9fe\" <ayse@example.com>\r\nSubject: =?utf-8?q?Merhaba_Ay=C5=9Fe?=\r\n\r\nbody";
        assert_eq!(message_id(mime).as_deref(), Some("r-1.s@shop.example"));
        let (to, subject) = recipient_and_subject(mime);
        assert_eq!(to, "ayse@example.com");
        assert_eq!(subject, "Merhaba Ayşe");
        assert_eq!(message_id(b""), None);
    }
}
