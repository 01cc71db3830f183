//! MIME building, the outbox and signed links, checked by parsing what was built with the real
//! mail-parser crate, as a mail client would.

use std::path::Path;

use chrono::{TimeZone, Utc};
use mail_parser::{Message, MessageParser, MimeHeaders};
use nudge_core::links::Signer;
use nudge_core::mail::{Category, Email, Lookup, MailError, Mailbox, Mailer, build_mime};
use nudge_core::store::{SendKind, SendRecord};
use nudge_local::OutboxMailer;
use proptest::prelude::*;

const UNSUBSCRIBE: &str = "https://shop.example.com/unsubscribe?c=c-1001&s=AAAAAAAAAAAAAAAAAAAAAA";

/// An MJML template in the style of the shipped ones, with a link whose `/`s minijinja escapes
/// as `&#x2f;` and customer data that needs escaping.
const TEMPLATE: &str = r#"<mjml>
  <mj-head><mj-title>We miss you</mj-title></mj-head>
  <mj-body>
    <mj-section><mj-column>
      <mj-text>
        <p>Merhaba {{ customer.first_name }}, it has been a while &amp; we miss you.</p>
        <p>Our <a href="{{ store.url }}/products/moda-house-blend">Moda House Blend</a> is back.</p>
      </mj-text>
      <mj-button href="{{ store.url }}/discount/COMEBACK15?utm_source=email&utm_medium=win-back">Use my 15% off</mj-button>
    </mj-column></mj-section>
  </mj-body>
</mjml>"#;

/// The template compiled and rendered the way the engine does it.
fn rendered_html() -> String {
    let compiled = nudge_core::workflow::template::compile_mjml(TEMPLATE).expect("MJML compiles");
    // Under its file name, as the engine holds it: template files are HTML-escaped.
    let mut env = nudge_core::workflow::template::environment();
    env.add_template_owned("win-back.mjml", compiled.html)
        .expect("template compiles");
    env.get_template("win-back.mjml")
        .expect("template is there")
        .render(minijinja::context! {
            customer => minijinja::context! { first_name => "Ayşe <3" },
            store => minijinja::context! { url => "https://shop.example.com" },
        })
        .expect("template renders")
}

fn marketing_email() -> Email {
    Email {
        idempotency_key: "r-1.miss-you".into(),
        customer_id: "c-1001".into(),
        workflow: "win-back".into(),
        step: "miss-you".into(),
        category: Category::Marketing,
        to: Mailbox {
            name: Some("Ayşe Yılmaz".into()),
            address: "ayse@example.com".into(),
        },
        from: Mailbox {
            name: Some("Kahve Dükkanı".into()),
            address: "hello@shop.example.com".into(),
        },
        reply_to: Some(Mailbox {
            name: None,
            address: "support@shop.example.com".into(),
        }),
        subject: "Seni özledik, Ayşe ☕".into(),
        preheader: Some("Here is 15% off & more".into()),
        html: rendered_html(),
        date: Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap(),
        tags: vec!["win-back".into()],
        unsubscribe_url: Some(UNSUBSCRIBE.into()),
        postal_address: Some("Moda Cd. 1, İstanbul".into()),
        store_name: "Kahve Dükkanı".into(),
        append_footer: true,
    }
}

fn transactional_email() -> Email {
    Email {
        idempotency_key: "r-2.on-its-way".into(),
        workflow: "shipment-updates".into(),
        step: "on-its-way".into(),
        category: Category::Transactional,
        subject: "Siparişiniz yolda".into(),
        // Set on purpose: a transactional email must ignore them.
        unsubscribe_url: Some(UNSUBSCRIBE.into()),
        append_footer: true,
        ..marketing_email()
    }
}

fn parse(bytes: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(bytes)
        .expect("mail-parser reads the message")
}

/// A header's raw value, unfolded and trimmed.
fn raw<'a>(message: &'a Message<'a>, name: &str) -> Option<String> {
    message
        .header_raw(name)
        .map(|v| v.replace("\r\n", "").trim().to_owned())
}

fn text_part(message: &Message<'_>) -> String {
    assert_eq!(message.text_body_count(), 1, "one text part");
    message.body_text(0).expect("a text part").into_owned()
}

fn html_part(message: &Message<'_>) -> String {
    assert_eq!(message.html_body_count(), 1, "one HTML part");
    message.body_html(0).expect("an HTML part").into_owned()
}

#[test]
fn addresses_and_subject_decode_back_to_unicode() {
    let bytes = build_mime(&marketing_email()).unwrap();
    let message = parse(&bytes);

    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Kahve Dükkanı"));
    assert_eq!(from.address(), Some("hello@shop.example.com"));
    let to = message.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("Ayşe Yılmaz"));
    assert_eq!(to.address(), Some("ayse@example.com"));
    let reply_to = message.reply_to().unwrap().first().unwrap();
    assert_eq!(reply_to.address(), Some("support@shop.example.com"));
    assert_eq!(message.subject(), Some("Seni özledik, Ayşe ☕"));

    // RFC 2047 section 5: encoded words, not raw UTF-8 and not inside quotes.
    let from_raw = raw(&message, "From").unwrap();
    assert!(from_raw.starts_with("=?utf-8?"), "{from_raw}");
    assert!(from_raw.is_ascii() && !from_raw.contains('"'), "{from_raw}");
    assert!(raw(&message, "Subject").unwrap().is_ascii());
}

#[test]
fn message_id_date_and_ids_come_from_the_email() {
    let email = marketing_email();
    let message_bytes = build_mime(&email).unwrap();
    let message = parse(&message_bytes);
    assert_eq!(message.message_id(), Some("r-1.miss-you@shop.example.com"));
    assert_eq!(
        message.date().unwrap().to_timestamp(),
        email.date.timestamp()
    );
    assert_eq!(
        raw(&message, "Date").as_deref(),
        Some("Sun, 1 Mar 2026 10:00:00 +0000")
    );
    assert_eq!(
        raw(&message, "X-Nudge-Workflow").as_deref(),
        Some("win-back")
    );
    assert_eq!(raw(&message, "X-Nudge-Step").as_deref(), Some("miss-you"));
}

#[test]
fn tags_go_into_an_x_nudge_tags_header() {
    let email = Email {
        tags: vec!["win-back".into(), "vip_2026".into()],
        ..marketing_email()
    };
    let bytes = build_mime(&email).unwrap();
    let message = parse(&bytes);
    assert_eq!(
        raw(&message, "X-Nudge-Tags").as_deref(),
        Some("win-back, vip_2026")
    );
    // Without tags, no header at all.
    let untagged = Email {
        tags: vec![],
        ..marketing_email()
    };
    let bytes = build_mime(&untagged).unwrap();
    assert_eq!(raw(&parse(&bytes), "X-Nudge-Tags"), None);
}

#[test]
fn a_tag_that_could_break_the_header_is_refused() {
    for bad in ["two words", "a\r\nBcc: evil@example.com", "", "çay"] {
        let email = Email {
            tags: vec!["ok".into(), bad.into()],
            ..marketing_email()
        };
        let err = build_mime(&email).unwrap_err();
        assert!(
            matches!(err, MailError::InvalidTag { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn message_id_escapes_keys_that_are_not_atoms() {
    let email = Email {
        idempotency_key: "r 1/<x>.miss-you".into(),
        ..marketing_email()
    };
    let bytes = build_mime(&email).unwrap();
    let message = parse(&bytes);
    assert_eq!(
        message.message_id(),
        Some("r=201=2F=3Cx=3E.miss-you@shop.example.com")
    );
}

#[test]
fn marketing_mail_has_one_click_unsubscribe_headers() {
    let bytes = build_mime(&marketing_email()).unwrap();
    let message = parse(&bytes);
    assert_eq!(
        raw(&message, "List-Unsubscribe"),
        Some(format!("<{UNSUBSCRIBE}>"))
    );
    assert_eq!(
        raw(&message, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
}

#[test]
fn transactional_mail_has_no_unsubscribe_headers_and_no_footer() {
    let bytes = build_mime(&transactional_email()).unwrap();
    let message = parse(&bytes);
    assert_eq!(message.subject(), Some("Siparişiniz yolda"));
    assert_eq!(raw(&message, "List-Unsubscribe"), None);
    assert_eq!(raw(&message, "List-Unsubscribe-Post"), None);
    let html = html_part(&message);
    assert!(!html.contains("Unsubscribe"), "{html}");
    assert!(!html.contains("Moda Cd. 1"), "{html}");
}

#[test]
fn body_is_multipart_alternative_with_text_then_html() {
    let bytes = build_mime(&marketing_email()).unwrap();
    let message = parse(&bytes);
    let root = message.root_part().content_type().unwrap();
    assert_eq!(root.ctype(), "multipart");
    assert_eq!(root.subtype(), Some("alternative"));
    let parts: Vec<String> = message.parts[1..]
        .iter()
        .map(|p| {
            let ct = p.content_type().unwrap();
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
        })
        .collect();
    assert_eq!(parts, ["text/plain", "text/html"]);
    assert!(html_part(&message).contains("Moda House Blend"));
}

#[test]
fn text_part_reads_naturally_with_entities_decoded_and_links_visible() {
    let email = marketing_email();
    // What this test is about: the rendered HTML really has minijinja's escapes.
    assert!(
        email
            .html
            .contains("https:&#x2f;&#x2f;shop.example.com/products")
    );
    assert!(email.html.contains("Ayşe &lt;3"));

    let bytes = build_mime(&email).unwrap();
    let text = text_part(&parse(&bytes));
    assert!(
        text.contains("Merhaba Ayşe <3, it has been a while & we miss you."),
        "{text}"
    );
    assert!(text.contains("Moda House Blend"), "{text}");
    assert!(
        text.contains("https://shop.example.com/products/moda-house-blend"),
        "{text}"
    );
    assert!(
        text.contains(
            "https://shop.example.com/discount/COMEBACK15?utm_source=email&utm_medium=win-back"
        ),
        "{text}"
    );
    assert!(text.contains("Use my 15% off"), "{text}");
    for leftover in ["&#x2f;", "&amp;", "&lt;", "<p", "<a ", "mj-"] {
        assert!(!text.contains(leftover), "{leftover} in {text}");
    }
    // Layout tables are read, not drawn.
    assert!(!text.contains('│') && !text.contains('─'), "{text}");
}

#[test]
fn preheader_is_hidden_preview_text_right_after_the_body_tag() {
    let bytes = build_mime(&marketing_email()).unwrap();
    let message = parse(&bytes);
    let html = html_part(&message);
    let body = html.find("<body").expect("a body tag");
    let after_body = body + html[body..].find('>').unwrap() + 1;
    assert!(
        html[after_body..].starts_with(
            "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">\
             Here is 15% off &amp; more</div>"
        ),
        "{}",
        &html[body..]
    );
    // Hidden in the HTML, so not part of the text either.
    assert!(!text_part(&message).contains("Here is 15% off"));
}

#[test]
fn no_preheader_means_no_hidden_div() {
    let email = Email {
        preheader: None,
        ..marketing_email()
    };
    let bytes = build_mime(&email).unwrap();
    assert!(!html_part(&parse(&bytes)).contains("mso-hide:all"));
}

#[test]
fn footer_is_added_before_the_end_of_the_body_when_asked() {
    let bytes = build_mime(&marketing_email()).unwrap();
    let message = parse(&bytes);
    let html = html_part(&message);
    let footer = html
        .find("Moda Cd. 1, İstanbul")
        .expect("postal address in the HTML");
    let link = html
        .find(&format!("href=\"{}\"", UNSUBSCRIBE.replace('&', "&amp;")))
        .expect("escaped unsubscribe link in the HTML");
    let end = html.find("</body>").expect("a closing body tag");
    assert!(footer < end && link < end, "footer after </body>");
    assert!(
        html[..footer].ends_with("Kahve Dükkanı<br>"),
        "store name right before the postal address"
    );

    let text = text_part(&message);
    assert!(text.contains("Moda Cd. 1, İstanbul"), "{text}");
    assert!(text.contains("Unsubscribe"), "{text}");
    assert!(text.contains(UNSUBSCRIBE), "{text}");
}

#[test]
fn footer_is_left_to_the_template_when_not_asked() {
    let email = Email {
        append_footer: false,
        ..marketing_email()
    };
    let bytes = build_mime(&email).unwrap();
    let message = parse(&bytes);
    let html = html_part(&message);
    assert!(!html.contains("Moda Cd. 1"), "{html}");
    assert!(!html.contains("unsubscribe?c="), "{html}");
    // The headers do not depend on the footer.
    assert!(raw(&message, "List-Unsubscribe").is_some());
}

#[test]
fn footer_is_escaped_and_appended_when_there_is_no_body_tag() {
    let email = Email {
        html: "<p>Hi</p>".into(),
        store_name: "Kahve & Co <Moda>".into(),
        ..marketing_email()
    };
    let bytes = build_mime(&email).unwrap();
    let html = html_part(&parse(&bytes));
    assert!(html.starts_with("<div style=\"display:none"), "{html}");
    assert!(html.contains("<p>Hi</p><div"), "{html}");
    assert!(html.contains("Kahve &amp; Co &lt;Moda&gt;"), "{html}");
}

#[test]
fn customer_data_cannot_add_a_header() {
    for name in [
        "Ayşe\r\nBcc: evil@example.com",
        "Ayse\r\nBcc: evil@example.com",
        "Ayse\nBcc: evil@example.com",
        "Ayse\rBcc: evil@example.com",
    ] {
        let email = Email {
            to: Mailbox {
                name: Some(name.into()),
                address: "ayse@example.com".into(),
            },
            from: Mailbox {
                name: Some(name.into()),
                address: "hello@shop.example.com".into(),
            },
            subject: format!("Hello {name}"),
            preheader: Some(name.into()),
            ..marketing_email()
        };
        let bytes = build_mime(&email).unwrap();
        let message = parse(&bytes);
        assert!(message.bcc().is_none(), "{name:?}");
        assert_eq!(message.header_values("Bcc").count(), 0, "{name:?}");
        assert_eq!(message.header_values("To").count(), 1, "{name:?}");
        let to: Vec<_> = message.to().unwrap().iter().collect();
        assert_eq!(to.len(), 1, "{name:?}");
        assert_eq!(to[0].address(), Some("ayse@example.com"));
        assert!(to[0].name().unwrap().contains("Bcc: evil"), "kept as text");
        assert!(
            message.subject().unwrap().contains("Bcc: evil"),
            "kept as text"
        );
        let head = String::from_utf8_lossy(&bytes);
        let head = head.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
            "{head}"
        );
    }
}

#[test]
fn an_address_that_would_break_the_header_is_refused() {
    let email = Email {
        to: Mailbox {
            name: None,
            address: "ayse@example.com>\r\nBcc: <evil@example.com".into(),
        },
        ..marketing_email()
    };
    let err = build_mime(&email).unwrap_err();
    assert!(
        matches!(err, MailError::InvalidAddress { field: "To" }),
        "{err:?}"
    );
    // The error names the field, not the customer's data.
    assert!(!err.to_string().contains("evil"), "{err}");
}

#[test]
fn marketing_mail_without_its_compliance_data_is_refused() {
    let no_link = Email {
        unsubscribe_url: None,
        ..marketing_email()
    };
    assert!(matches!(
        build_mime(&no_link),
        Err(MailError::MissingUnsubscribeUrl)
    ));
    let no_address = Email {
        postal_address: None,
        ..marketing_email()
    };
    assert!(matches!(
        build_mime(&no_address),
        Err(MailError::MissingPostalAddress)
    ));
    let bad_link = Email {
        unsubscribe_url: Some("https://shop.example.com/u>\r\nBcc: x".into()),
        ..marketing_email()
    };
    assert!(matches!(
        build_mime(&bad_link),
        Err(MailError::InvalidUnsubscribeUrl)
    ));
    // Transactional mail needs neither.
    let transactional = Email {
        unsubscribe_url: None,
        postal_address: None,
        ..transactional_email()
    };
    assert!(build_mime(&transactional).is_ok());
}

#[test]
fn build_mime_is_deterministic() {
    let email = marketing_email();
    let first = build_mime(&email).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let second = std::thread::spawn(move || build_mime(&email).unwrap())
        .join()
        .unwrap();
    assert_eq!(first, second);

    let other = Email {
        subject: "Another subject".into(),
        ..marketing_email()
    };
    assert_ne!(first, build_mime(&other).unwrap());
}

fn eml_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn outbox_writes_each_email_once_under_its_time_customer_workflow_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/outbox");
    let outbox = OutboxMailer::new(&dir).unwrap();
    assert_eq!(outbox.dir(), dir);

    let email = marketing_email();
    let mime = build_mime(&email).unwrap();
    let receipt = outbox.send(&record(&email)).await.unwrap();
    assert_eq!(receipt.message_id, "r-1.miss-you@shop.example.com");
    assert_eq!(
        eml_files(&dir),
        ["20260301T100000Z_c-1001_win-back_r-1.miss-you.eml"]
    );
    let written =
        std::fs::read(dir.join("20260301T100000Z_c-1001_win-back_r-1.miss-you.eml")).unwrap();
    assert_eq!(written, mime);
    assert_eq!(
        parse(&written).message_id(),
        Some(receipt.message_id.as_str())
    );

    // The same key again, even rebuilt later with another date: no second file.
    let again = outbox.send(&record(&email)).await.unwrap();
    assert_eq!(again, receipt);
    let later = Email {
        date: email.date + chrono::Duration::hours(1),
        ..email.clone()
    };
    assert_eq!(outbox.send(&record(&later)).await.unwrap(), receipt);
    // The file is never rewritten: it still holds the first message.
    let kept =
        std::fs::read(dir.join("20260301T100000Z_c-1001_win-back_r-1.miss-you.eml")).unwrap();
    assert_eq!(kept, mime);
    assert_eq!(
        eml_files(&dir),
        ["20260301T100000Z_c-1001_win-back_r-1.miss-you.eml"]
    );

    // Another key is another file.
    let other = transactional_email();
    outbox.send(&record(&other)).await.unwrap();
    assert_eq!(
        eml_files(&dir),
        [
            "20260301T100000Z_c-1001_shipment-updates_r-2.on-its-way.eml",
            "20260301T100000Z_c-1001_win-back_r-1.miss-you.eml",
        ]
    );
}

#[tokio::test]
async fn outbox_remembers_what_an_earlier_run_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let email = marketing_email();
    let first = OutboxMailer::new(tmp.path())
        .unwrap()
        .send(&record(&email))
        .await
        .unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "not an email").unwrap();

    let reopened = OutboxMailer::new(tmp.path()).unwrap();
    assert_eq!(
        reopened.lookup(&record(&email)).await.unwrap(),
        Lookup::Delivered(first.clone())
    );
    assert_eq!(reopened.send(&record(&email)).await.unwrap(), first);
    assert_eq!(
        eml_files(tmp.path()),
        [
            "20260301T100000Z_c-1001_win-back_r-1.miss-you.eml",
            "notes.txt"
        ]
    );
}

/// A folder written by an earlier version (`<time>-<key>.eml`) still counts: its emails are
/// not written again under the new names.
#[tokio::test]
async fn outbox_recognises_the_names_earlier_versions_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let email = marketing_email();
    let mime = build_mime(&email).unwrap();
    std::fs::write(tmp.path().join("20260301T100000Z-r-1.miss-you.eml"), &mime).unwrap();
    let outbox = OutboxMailer::new(tmp.path()).unwrap();
    outbox.send(&record(&email)).await.unwrap();
    assert_eq!(eml_files(tmp.path()), ["20260301T100000Z-r-1.miss-you.eml"]);
}

/// A guest checkout's id holds the address: the file name shows a hash instead.
#[tokio::test]
async fn outbox_names_hide_a_guests_address() {
    let tmp = tempfile::tempdir().unwrap();
    let outbox = OutboxMailer::new(tmp.path()).unwrap();
    let email = Email {
        customer_id: "guest:ayse@example.com".into(),
        ..marketing_email()
    };
    outbox.send(&record(&email)).await.unwrap();
    let hash =
        nudge_core::engine::customer_ref("guest:ayse@example.com").replace("guest:", "guest-");
    assert_eq!(
        eml_files(tmp.path()),
        [format!("20260301T100000Z_{hash}_win-back_r-1.miss-you.eml")]
    );
}

#[tokio::test]
async fn outbox_escapes_keys_into_safe_file_names() {
    let tmp = tempfile::tempdir().unwrap();
    let outbox = OutboxMailer::new(tmp.path()).unwrap();
    for key in ["../r/1.step", "r_1.step", "r=2F1.step"] {
        let email = Email {
            idempotency_key: key.into(),
            ..transactional_email()
        };
        outbox.send(&record(&email)).await.unwrap();
    }
    // Distinct keys stay distinct files, all inside the outbox.
    assert_eq!(
        eml_files(tmp.path()),
        [
            "20260301T100000Z_c-1001_shipment-updates_=2E.=2Fr=2F1.step.eml",
            "20260301T100000Z_c-1001_shipment-updates_r=3D2F1.step.eml",
            "20260301T100000Z_c-1001_shipment-updates_r_1.step.eml",
        ]
    );
}

#[test]
fn outbox_reports_a_folder_it_cannot_create() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = OutboxMailer::new(file.join("outbox")).unwrap_err();
    assert_eq!(err.path, file.join("outbox"));
    assert!(err.to_string().contains("a-file"), "{err}");
}

/// The send-log record the runner logs for `email`: its MIME message built once.
fn record(email: &Email) -> SendRecord {
    SendRecord {
        idempotency_key: email.idempotency_key.clone(),
        customer_id: email.customer_id.clone(),
        workflow: email.workflow.clone(),
        step: email.step.clone(),
        kind: SendKind::Email,
        category: email.category.as_str().to_owned(),
        tags: email.tags.clone(),
        at: email.date,
        payload: build_mime(email).unwrap(),
    }
}

/// A folder gone after the mailer was made (or one that cannot be written) is worth a retry:
/// the send stays in the send log, and a later attempt with the folder back writes it. The
/// error names the file, never the recipient.
#[tokio::test]
async fn outbox_cannot_write_now_is_retryable_and_a_later_attempt_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox");
    let outbox = OutboxMailer::new(&dir).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let email = transactional_email();
    let err = outbox.send(&record(&email)).await.unwrap_err();
    assert!(matches!(err, MailError::Unavailable { .. }), "{err:?}");
    assert!(err.is_retryable());
    let message = err.to_string();
    assert!(message.contains("outbox"), "{message}");
    assert!(!message.contains(&email.to.address), "{message}");
    assert_eq!(
        outbox.lookup(&record(&email)).await.unwrap(),
        Lookup::NotDelivered
    );

    std::fs::create_dir(&dir).unwrap();
    outbox.send(&record(&email)).await.unwrap();
    assert_eq!(
        eml_files(&dir),
        ["20260301T100000Z_c-1001_shipment-updates_r-2.on-its-way.eml"]
    );
    assert!(matches!(
        outbox.lookup(&record(&email)).await.unwrap(),
        Lookup::Delivered(_)
    ));
}

/// A temporary file a crash left (a write never renamed) is removed when the outbox opens,
/// and its email, not delivered, is written whole when it is sent.
#[tokio::test]
async fn outbox_removes_a_temporary_file_left_by_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let email = transactional_email();
    let temp = tmp.path().join(".r-2.on-its-way.4242.tmp");
    std::fs::write(&temp, b"half an ema").unwrap();
    let outbox = OutboxMailer::new(tmp.path()).unwrap();
    assert!(!temp.exists());
    assert_eq!(
        outbox.lookup(&record(&email)).await.unwrap(),
        Lookup::NotDelivered
    );
    outbox.send(&record(&email)).await.unwrap();
    let names = eml_files(tmp.path());
    assert_eq!(
        names,
        ["20260301T100000Z_c-1001_shipment-updates_r-2.on-its-way.eml"]
    );
    let written = std::fs::read(tmp.path().join(&names[0])).unwrap();
    assert_eq!(written, record(&email).payload);
}

/// The customer id and signature as the unsubscribe endpoint would read them from the link.
fn query_of(link: &str) -> (String, String) {
    let url = url::Url::parse(link).unwrap();
    let get = |k: &str| {
        url.query_pairs()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    (get("c"), get("s"))
}

#[test]
fn signed_link_round_trips_and_detects_tampering() {
    let base = url::Url::parse("https://shop.example.com/unsubscribe").unwrap();
    let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
    let link = signer.unsubscribe_url(&base, "c-1001");
    assert!(
        link.starts_with("https://shop.example.com/unsubscribe?c=c-1001&s="),
        "{link}"
    );
    let (id, sig) = query_of(&link);
    assert_eq!(sig.len(), 22, "16 bytes, base64url without padding");
    assert!(signer.verify_unsubscribe(&id, &sig));

    assert!(
        !signer.verify_unsubscribe("c-1002", &sig),
        "another customer"
    );
    assert!(
        !Signer::development().verify_unsubscribe(&id, &sig),
        "another key"
    );
    let mut flipped = sig.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert!(!signer.verify_unsubscribe(&id, std::str::from_utf8(&flipped).unwrap()));
}

/// A development link verifies under the development key and under no other. That the key is
/// the same in every process (links of one `simulate` run verify in the next) is checked on
/// two runs of the binary, in `simulate_cli`.
#[test]
fn a_development_link_verifies_only_under_the_development_key() {
    let base = url::Url::parse("https://shop.example.com/u").unwrap();
    let (id, sig) = query_of(&Signer::development().unsubscribe_url(&base, "c-1"));
    assert!(Signer::development().verify_unsubscribe(&id, &sig));
    assert!(!Signer::new(b"another key").verify_unsubscribe(&id, &sig));
}

proptest! {
    #[test]
    fn any_customer_id_round_trips_through_the_url(id in "\\PC{0,40}") {
        let base = url::Url::parse("https://shop.example.com/unsubscribe?list=news").unwrap();
        let signer = Signer::development();
        let (got_id, sig) = query_of(&signer.unsubscribe_url(&base, &id));
        prop_assert_eq!(&got_id, &id);
        prop_assert!(signer.verify_unsubscribe(&got_id, &sig));
    }

    #[test]
    fn a_signature_verifies_for_its_own_customer_only(
        id in "[a-z0-9-]{1,20}",
        other in "[a-z0-9-]{1,20}",
    ) {
        prop_assume!(id != other);
        let base = url::Url::parse("https://shop.example.com/unsubscribe").unwrap();
        let signer = Signer::development();
        let (_, sig) = query_of(&signer.unsubscribe_url(&base, &id));
        prop_assert!(!signer.verify_unsubscribe(&other, &sig));
    }

    #[test]
    fn any_changed_signature_character_is_rejected(
        id in "[a-z0-9-]{1,20}",
        pos in 0usize..22,
        replacement in "[A-Za-z0-9_-]",
    ) {
        let base = url::Url::parse("https://shop.example.com/unsubscribe").unwrap();
        let signer = Signer::development();
        let (_, sig) = query_of(&signer.unsubscribe_url(&base, &id));
        let mut tampered: Vec<char> = sig.chars().collect();
        let replacement = replacement.chars().next().unwrap();
        prop_assume!(tampered[pos] != replacement);
        tampered[pos] = replacement;
        let tampered: String = tampered.into_iter().collect();
        prop_assert!(!signer.verify_unsubscribe(&id, &tampered));
    }

    #[test]
    fn any_display_name_and_subject_stay_in_their_header(
        name in "\\PC{0,30}|[a-zA-Z\\r\\n:ş ]{0,30}",
        subject in "[a-zA-Z\\r\\n:ğ ]{0,40}",
    ) {
        let email = Email {
            to: Mailbox { name: Some(name), address: "ayse@example.com".into() },
            subject,
            html: "<p>Hi</p>".into(),
            ..transactional_email()
        };
        let bytes = build_mime(&email).unwrap();
        let message = parse(&bytes);
        let names: Vec<&str> = message.headers().iter().map(mail_parser::Header::name).collect();
        prop_assert_eq!(
            names,
            [
                "From", "To", "Reply-To", "Subject", "Date", "Message-ID", "X-Nudge-Workflow",
                "X-Nudge-Step", "X-Nudge-Tags", "MIME-Version", "Content-Type",
            ]
        );
        prop_assert_eq!(message.header_values("To").count(), 1);
        prop_assert_eq!(message.to().unwrap().iter().count(), 1);
        prop_assert_eq!(message.to().unwrap().first().unwrap().address(), Some("ayse@example.com"));
        prop_assert_eq!(message.header_values("Subject").count(), 1);
        prop_assert!(message.bcc().is_none());
    }
}
