//! Reading back a logged MIME message: its recipient and subject, for a timeline row made
//! from the send log without the engine's decision at hand (`simulate`'s sweep rows,
//! `explain`'s emails).

use mail_parser::MessageParser;

/// The address of the message's first `To` recipient and its subject (empty when absent).
pub fn recipient_and_subject(mime: &[u8]) -> (String, String) {
    let Some(message) = MessageParser::new().parse_headers(mime) else {
        return (String::new(), String::new());
    };
    let to = message
        .to()
        .and_then(|to| to.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    let subject = message.subject().unwrap_or_default().to_owned();
    (to, subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipient_and_subject_come_back_decoded() {
        let mime = b"To: \"Ay\xc5\x9fe\" <ayse@example.com>\r\nSubject: =?utf-8?q?Merhaba_Ay=C5=9Fe?=\r\n\r\nbody";
        let (to, subject) = recipient_and_subject(mime);
        assert_eq!(to, "ayse@example.com");
        assert_eq!(subject, "Merhaba Ayşe");
        assert_eq!(recipient_and_subject(b""), (String::new(), String::new()));
    }
}
