//! [`build_mime`]: an [`Email`] as RFC 5322 bytes, `multipart/alternative` with a text part
//! derived from the final HTML.
//!
//! mail-builder writes the message. Two things are done here instead:
//!
//! - Address headers (`From`, `To`, `Reply-To`) are written as raw headers, because
//!   mail-builder 0.4 puts encoded words for non-ASCII display names inside a quoted string
//!   (`"=?utf-8?B?...?="`), which RFC 2047 section 5 forbids and strict clients show verbatim.
//! - The multipart boundary and the `Message-ID` are derived from the email, not from the clock
//!   and a counter as mail-builder would, so the same email always gives the same bytes (the
//!   outbox and snapshot tests rely on it).
//!
//! Customer data cannot add a header: control characters in display names and subjects become
//! spaces before they reach mail-builder, and addresses that would need them are rejected.

use std::borrow::Cow;

use html2text::{Element, Handle};
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::headers::url::URL;
use mail_builder::mime::MimePart;
use sha2::Digest;

use super::{Category, Email, MailError, Mailbox, escape_key};

/// Columns of the text part: the customary width of plain-text mail.
const TEXT_WIDTH: usize = 78;

/// Builds the RFC 5322 message for `email`.
///
/// The message is `multipart/alternative`: a `text/plain` part derived from the final HTML
/// (entities decoded, links listed as footnotes) and the `text/html` part. The final HTML is the
/// template's with the preheader as hidden preview text right after `<body>` and, for marketing
/// mail with [`Email::append_footer`], a footer with the store's name, postal address and
/// unsubscribe link before `</body>`.
///
/// Headers: `From`, `To`, `Reply-To` (display names RFC 2047-encoded when not ASCII),
/// `Subject`, `Date` (from [`Email::date`]), `Message-ID` (`<escaped-key@from-domain>`),
/// `X-Nudge-Workflow` and `X-Nudge-Step`, `X-Nudge-Tags` (`a, b`) when the step has tags, and
/// for marketing mail `List-Unsubscribe` with
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). Transactional mail never
/// gets unsubscribe headers or a footer.
///
/// Deterministic: the same `Email` gives the same bytes.
///
/// # Errors
///
/// An address that is not a plain `local@domain` ([`MailError::InvalidAddress`]), an empty
/// idempotency key, marketing mail without an unsubscribe URL or postal address (which would
/// break the sending rules rather than be sent without them), or an unsubscribe URL that is
/// not an absolute URL, or a tag outside `[A-Za-z0-9_-]{1,64}` ([`MailError::InvalidTag`]).
pub fn build_mime(email: &Email) -> Result<Vec<u8>, MailError> {
    let tags = tags_header(&email.tags)?;
    let from = address_header(&email.from, "From")?;
    let to = address_header(&email.to, "To")?;
    let reply_to = email
        .reply_to
        .as_ref()
        .map(|r| address_header(r, "Reply-To"))
        .transpose()?;
    let message_id = message_id(email)?;

    let unsubscribe = match email.category {
        Category::Marketing => {
            let url = email
                .unsubscribe_url
                .as_deref()
                .ok_or(MailError::MissingUnsubscribeUrl)?;
            check_url(url)?;
            let postal = email
                .postal_address
                .as_deref()
                .ok_or(MailError::MissingPostalAddress)?;
            Some((url, postal))
        }
        Category::Transactional => None,
    };

    let mut html = Cow::Borrowed(email.html.as_str());
    if let Some(preheader) = email.preheader.as_deref().filter(|p| !p.trim().is_empty()) {
        html = Cow::Owned(insert_preheader(&html, preheader));
    }
    if let Some((url, postal)) = unsubscribe.filter(|_| email.append_footer) {
        html = Cow::Owned(insert_footer(&html, &email.store_name, postal, url));
    }
    let text = html_to_text(&html)?;

    let mut message = MessageBuilder::new()
        .header("From", Raw::new(from))
        .header("To", Raw::new(to));
    if let Some(reply_to) = reply_to {
        message = message.header("Reply-To", Raw::new(reply_to));
    }
    message = message
        .subject(Text::new(header_text(&email.subject)))
        .date(Date::new(email.date.timestamp()))
        .message_id(MessageId::new(message_id));
    if let Some((url, _)) = unsubscribe {
        message = message.header("List-Unsubscribe", URL::new(url)).header(
            "List-Unsubscribe-Post",
            Raw::new("List-Unsubscribe=One-Click"),
        );
    }
    message = message
        .header("X-Nudge-Workflow", Text::new(header_text(&email.workflow)))
        .header("X-Nudge-Step", Text::new(header_text(&email.step)));
    if let Some(tags) = tags {
        message = message.header("X-Nudge-Tags", Raw::new(tags));
    }

    let boundary = boundary(&text, &html);
    let body = MimePart::new(
        ContentType::new("multipart/alternative").attribute("boundary", boundary),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new("text/html", html.into_owned()),
        ],
    );
    message
        .body(body)
        .write_to_vec()
        .map_err(|source| MailError::Build { source })
}

/// The message's id without angle brackets: the escaped idempotency key at the sender's domain.
///
/// Derived, not random, so that a retried send carries the same `Message-ID` (receivers that
/// deduplicate on it drop the copy) and the outbox can report it for a file it already wrote.
pub fn message_id(email: &Email) -> Result<String, MailError> {
    if email.idempotency_key.is_empty() {
        return Err(MailError::EmptyIdempotencyKey);
    }
    check_address(&email.from.address, "From")?;
    let domain = email
        .from
        .address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .ok_or(MailError::InvalidAddress { field: "From" })?;
    let domain = if domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        domain.to_ascii_lowercase()
    } else {
        // An internationalised domain: a Message-ID is ASCII, so use its punycode form.
        match url::Host::parse(domain) {
            Ok(url::Host::Domain(ascii)) => ascii,
            _ => return Err(MailError::InvalidAddress { field: "From" }),
        }
    };
    Ok(format!("{}@{domain}", escape_key(&email.idempotency_key)))
}

/// The `X-Nudge-Tags` value, `a, b`, or none without tags. Tags are SES's alphabet
/// (`[A-Za-z0-9_-]{1,64}`, which `validate` enforces): nothing in them can fold or end the
/// header, so a tag outside it is refused rather than escaped.
fn tags_header(tags: &[String]) -> Result<Option<String>, MailError> {
    if let Some(tag) = tags.iter().find(|t| !super::is_message_tag(t)) {
        return Err(MailError::InvalidTag { tag: tag.clone() });
    }
    Ok((!tags.is_empty()).then(|| tags.join(", ")))
}

/// Rejects what would not be a plain address inside `<...>`: besides the syntax check, no
/// whitespace, control characters or angle brackets, which could end the header or the
/// address early.
fn check_address(address: &str, field: &'static str) -> Result<(), MailError> {
    let breaks_header = address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if breaks_header || !email_address::EmailAddress::is_valid(address) {
        return Err(MailError::InvalidAddress { field });
    }
    Ok(())
}

/// `Name <address>` (or `<address>`), with the name RFC 2047-encoded when it needs to be.
fn address_header(mailbox: &Mailbox, field: &'static str) -> Result<String, MailError> {
    check_address(&mailbox.address, field)?;
    let name = mailbox.name.as_deref().map(header_text);
    Ok(
        match name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => format!("{} <{}>", phrase(name), mailbox.address),
            None => format!("<{}>", mailbox.address),
        },
    )
}

/// Customer text made safe for a header: every control character (CR and LF above all) and
/// Unicode line or paragraph separator becomes a space, a run of them a single space, so that
/// the text can never end the header and start another.
fn header_text(text: &str) -> Cow<'_, str> {
    let is_break = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !text.contains(is_break) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut after_break = false;
    for c in text.chars() {
        if is_break(c) {
            if !after_break {
                out.push(' ');
            }
            after_break = true;
        } else {
            out.push(c);
            after_break = false;
        }
    }
    Cow::Owned(out)
}

/// A display name as an RFC 5322 phrase: a quoted string when it is printable ASCII and short
/// enough not to be folded (folding inside quotes would change the name), otherwise RFC 2047
/// "Q" encoded words of at most 75 characters, split between characters, never inside one.
fn phrase(name: &str) -> String {
    use std::fmt::Write;

    const QUOTED_MAX: usize = 60;
    // "=?utf-8?Q?" + text + "?=" must fit in 75 characters (RFC 2047 section 2).
    const TEXT_MAX: usize = 75 - "=?utf-8?Q?".len() - "?=".len();

    if name.len() <= QUOTED_MAX && name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        let mut out = String::with_capacity(name.len() + 2);
        out.push('"');
        for c in name.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        return out;
    }

    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in name.chars() {
        let mut encoded = String::new();
        if c == ' ' {
            encoded.push('_');
        } else if c.is_ascii_alphanumeric() || "!*+-/".contains(c) {
            // The characters RFC 2047 section 5 (3) allows unencoded in a phrase.
            encoded.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(encoded, "={b:02X}");
            }
        }
        if word.len() + encoded.len() > TEXT_MAX {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&encoded);
    }
    words.push(word);
    words
        .iter()
        .map(|w| format!("=?utf-8?Q?{w}?="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The unsubscribe URL must be absolute and must not be able to end `<...>` or the header.
fn check_url(url: &str) -> Result<(), MailError> {
    let breaks_header = url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if breaks_header || url::Url::parse(url).is_err() {
        return Err(MailError::InvalidUnsubscribeUrl);
    }
    Ok(())
}

/// `text` safe in HTML text and in a double- or single-quoted attribute value: `&`, `<`,
/// `>`, `"` and `'` escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where the content of the body starts: right after the opening `<body ...>` tag. Without a
/// `<body>` tag, after `</head>` or the opening `<html ...>` tag or a leading doctype, so that the
/// preview text never lands before the doctype (which would switch browsers to quirks mode);
/// failing all of those, at the start.
fn body_start(html: &str) -> usize {
    let lower = html.to_ascii_lowercase();
    if let Some(end) = open_tag_end(html, &lower, "<body") {
        return end;
    }
    if let Some(pos) = lower.find("</head>") {
        return pos + "</head>".len();
    }
    if let Some(end) = open_tag_end(html, &lower, "<html") {
        return end;
    }
    if lower.trim_start().starts_with("<!doctype")
        && let Some(pos) = lower.find('>')
    {
        return pos + 1;
    }
    0
}

/// The byte just after the `>` that closes the first `<name ...>` tag (`tag` is `"<name"`,
/// lowercase; `lower` is `html` lowercased, which keeps byte offsets). A `>` inside a quoted
/// attribute value does not close the tag.
fn open_tag_end(html: &str, lower: &str, tag: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = lower[from..].find(tag) {
        let start = from + found;
        let after = start + tag.len();
        // `<body>` or `<body style=...>`, not `<bodyguard>`.
        if matches!(
            html.as_bytes().get(after),
            Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
        ) {
            let mut quote = None;
            for (i, b) in html.bytes().enumerate().skip(after) {
                match (quote, b) {
                    (None, b'"' | b'\'') => quote = Some(b),
                    (Some(q), _) if b == q => quote = None,
                    (None, b'>') => return Some(i + 1),
                    _ => {}
                }
            }
            return None;
        }
        from = after;
    }
    None
}

/// Inserts the preheader as hidden preview text right after `<body ...>`: mail clients show the
/// first text of the body beside the subject, and the `display:none` (with `mso-hide:all` for
/// Outlook) keeps it out of the message itself.
fn insert_preheader(html: &str, preheader: &str) -> String {
    let at = body_start(html);
    let div = format!(
        "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">{}</div>",
        escape_html(preheader.trim())
    );
    let mut out = String::with_capacity(html.len() + div.len());
    out.push_str(&html[..at]);
    out.push_str(&div);
    out.push_str(&html[at..]);
    out
}

/// Inserts the footer (store name, postal address, unsubscribe link) before `</body>`, or
/// appends it when there is none. Inline styles only: mail clients drop `<style>` in places.
fn insert_footer(html: &str, store_name: &str, postal_address: &str, url: &str) -> String {
    let footer = format!(
        "<div style=\"padding:24px 16px;font-family:Arial,Helvetica,sans-serif;font-size:12px;\
line-height:18px;color:#6b6b6b;text-align:center\">\
<p style=\"margin:0 0 8px\">{store}<br>{postal}</p>\
<p style=\"margin:0\"><a href=\"{url}\" style=\"color:#6b6b6b;text-decoration:underline\">\
Unsubscribe</a></p></div>",
        store = escape_html(store_name),
        postal = escape_html(postal_address),
        url = escape_html(url),
    );
    let at = html
        .to_ascii_lowercase()
        .rfind("</body")
        .unwrap_or(html.len());
    let mut out = String::with_capacity(html.len() + footer.len());
    out.push_str(&html[..at]);
    out.push_str(&footer);
    out.push_str(&html[at..]);
    out
}

/// The text part, from the final HTML: what a reader sees, in reading order. Entities are
/// decoded (so minijinja's `&#x2f;` reads `/`), links are listed as numbered footnotes with their
/// full URL, layout tables are read cell by cell rather than drawn, and hidden elements
/// (`display:none`: the preheader, MJML's preview) are left out because html2text, without its
/// CSS feature, would print them.
fn html_to_text(html: &str) -> Result<String, MailError> {
    let config = html2text::config::plain_no_decorate()
        .link_footnotes(true)
        .raw_mode(true)
        .no_link_wrapping()
        .allow_width_overflow();
    let dom = config.parse_html(html.as_bytes())?;
    remove_hidden(&dom.document);
    let tree = config.dom_to_render_tree(&dom)?;
    Ok(config.render_to_string(tree, TEXT_WIDTH)?)
}

/// Removes every element whose inline style says `display:none`, with its content.
fn remove_hidden(node: &Handle) {
    node.children.borrow_mut().retain(|child| !is_hidden(child));
    for child in node.children.borrow().iter() {
        remove_hidden(child);
    }
}

fn is_hidden(node: &Handle) -> bool {
    let Element { attrs, .. } = &node.data else {
        return false;
    };
    attrs.borrow().iter().any(|attr| {
        &*attr.name.local == "style" && {
            let style: String = attr.value.chars().filter(|c| !c.is_whitespace()).collect();
            style.to_ascii_lowercase().contains("display:none")
        }
    })
}

/// A boundary derived from the parts: deterministic, and it cannot occur in them. `=_` never
/// appears in quoted-printable or base64 output, and a 7-bit part would have to contain a hash
/// of itself.
fn boundary(text: &str, html: &str) -> String {
    let mut hash = sha2::Sha256::new();
    hash.update(text.as_bytes());
    hash.update([0]);
    hash.update(html.as_bytes());
    format!("=_nudge_{}", hex::encode(&hash.finalize()[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_join_and_only_the_header_safe_alphabet_passes() {
        assert_eq!(tags_header(&[]).unwrap(), None);
        let tags = ["welcome".to_owned(), "vip_2-a".to_owned()];
        assert_eq!(tags_header(&tags).unwrap().unwrap(), "welcome, vip_2-a");
        for bad in ["", "a b", "a,b", "a\r\nBcc: x", "ş", &"x".repeat(65)] {
            assert!(
                matches!(
                    tags_header(&[bad.to_owned()]),
                    Err(MailError::InvalidTag { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(tags_header(&["x".repeat(64)]).is_ok());
    }

    #[test]
    fn header_text_replaces_breaks_with_one_space() {
        assert_eq!(header_text("plain"), "plain");
        assert_eq!(
            header_text("Ayşe\r\nBcc: evil@example.com"),
            "Ayşe Bcc: evil@example.com"
        );
        assert_eq!(header_text("a\tb\0c\u{2028}d\u{85}e"), "a b c d e");
    }

    #[test]
    fn phrase_quotes_ascii_and_escapes_quotes() {
        assert_eq!(phrase("Coffee Shop"), "\"Coffee Shop\"");
        assert_eq!(phrase(r#"A "B" \ C"#), r#""A \"B\" \\ C""#);
    }

    #[test]
    fn phrase_q_encodes_non_ascii_outside_quotes() {
        assert_eq!(
            phrase("Kahve Dükkanı"),
            "=?utf-8?Q?Kahve_D=C3=BCkkan=C4=B1?="
        );
        // `_`, `=`, `?` and `"` are encoded too, so the word cannot end early.
        assert_eq!(phrase("ı_=?\""), "=?utf-8?Q?=C4=B1=5F=3D=3F=22?=");
    }

    #[test]
    fn phrase_splits_long_names_between_characters() {
        let name = "Ğ".repeat(40);
        let encoded = phrase(&name);
        let words: Vec<&str> = encoded.split(' ').collect();
        assert!(words.len() > 1, "{encoded}");
        for word in &words {
            assert!(word.len() <= 75, "{word}");
            // Each word holds whole characters: two bytes, `=C4=9E`, six characters each.
            let text = &word["=?utf-8?Q?".len()..word.len() - 2];
            assert_eq!(text.len() % 6, 0, "{word}");
        }
    }

    #[test]
    fn long_ascii_names_are_encoded_rather_than_folded_inside_quotes() {
        let name = "A very long display name that goes on and on and on for a while";
        assert!(phrase(name).starts_with("=?utf-8?Q?A_very_long"));
    }

    #[test]
    fn addresses_that_could_break_a_header_are_rejected() {
        for bad in [
            "a@b.example\r\nBcc: evil@example.com",
            "a b@example.com",
            "a@example.com>",
            "Name <a@example.com>",
            "not-an-address",
            "",
        ] {
            let mailbox = Mailbox {
                name: None,
                address: bad.into(),
            };
            assert!(
                matches!(
                    address_header(&mailbox, "To"),
                    Err(MailError::InvalidAddress { field: "To" })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn preheader_goes_right_after_the_body_tag() {
        let html = r#"<html><head></head><body style="a>b" class=x><p>Hi</p></body></html>"#;
        let out = insert_preheader(html, "Soon & <now>");
        assert!(
            out.contains(r#"class=x><div style="display:none;max-height:0;overflow:hidden;mso-hide:all">Soon &amp; &lt;now&gt;</div><p>Hi</p>"#),
            "{out}"
        );
    }

    #[test]
    fn preheader_without_a_body_tag_stays_after_the_doctype_and_head() {
        assert!(insert_preheader("<p>Hi</p>", "P").starts_with("<div style="));
        let out = insert_preheader("<!DOCTYPE html><p>Hi</p>", "P");
        assert!(out.starts_with("<!DOCTYPE html><div style="), "{out}");
        let out = insert_preheader("<html><head><title>T</title></head><p>Hi</p>", "P");
        assert!(out.contains("</head><div style="), "{out}");
        let out = insert_preheader("<BODYGUARD><BODY>x", "P");
        assert!(out.starts_with("<BODYGUARD><BODY><div"), "{out}");
    }

    #[test]
    fn footer_goes_before_the_last_closing_body_tag_or_at_the_end() {
        let out = insert_footer("<body><p>Hi</p></BODY></html>", "S", "P", "https://u");
        assert!(out.ends_with("</div></BODY></html>"), "{out}");
        let out = insert_footer("<p>Hi</p>", "S", "P", "https://u");
        assert!(out.starts_with("<p>Hi</p><div"), "{out}");
        assert!(out.ends_with("</div>"), "{out}");
    }

    #[test]
    fn footer_escapes_what_it_prints() {
        let out = insert_footer("", "A&B <Shop>", "1 \"Main\" St", "https://u/?a=1&b=2");
        assert!(out.contains("A&amp;B &lt;Shop&gt;"), "{out}");
        assert!(out.contains("1 &quot;Main&quot; St"), "{out}");
        assert!(out.contains("href=\"https://u/?a=1&amp;b=2\""), "{out}");
    }

    #[test]
    fn text_reads_naturally() {
        let html = concat!(
            "<html><head><style>p{color:red}</style></head><body>",
            "<div style=\"display: None\">hidden preview</div>",
            "<table><tr><td><p>Merhaba Ay&#x15f;e &amp; friends &#x2f; all.</p>",
            "<p><a href=\"https:&#x2f;&#x2f;shop.example.com&#x2f;c?a=1&amp;b=2\">Shop now</a></p>",
            "</td></tr></table></body></html>"
        );
        let text = html_to_text(html).unwrap();
        assert!(text.contains("Merhaba Ayşe & friends / all."), "{text}");
        assert!(text.contains("Shop now"), "{text}");
        assert!(
            text.contains("https://shop.example.com/c?a=1&b=2"),
            "{text}"
        );
        assert!(!text.contains("hidden preview"), "{text}");
        assert!(!text.contains("color:red"), "{text}");
        assert!(!text.contains('│') && !text.contains('─'), "{text}");
    }

    #[test]
    fn boundary_depends_on_the_content_only() {
        assert_eq!(boundary("a", "b"), boundary("a", "b"));
        assert_ne!(boundary("a", "b"), boundary("ab", ""));
        assert!(boundary("a", "b").starts_with("=_nudge_"));
    }
}
