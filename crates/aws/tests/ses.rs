//! `SesMailer` on the real SDK: against moto's SES emulation when `NUDGE_MOTO_ENDPOINT` names
//! a running moto server (scripts/test starts one and sets it), and against a closed port.
//!
//! Without `NUDGE_MOTO_ENDPOINT` the moto tests say they are skipped and pass (plain
//! `cargo test` needs no server); with it they run, and fail if moto cannot be reached.
//! moto keeps one state for the whole server, so the moto tests take a lock and reset it
//! (`POST /moto-api/reset`) before each. moto drops `ConfigurationSetName` and `EmailTags`:
//! the tags are checked by the unit tests of `message_tags`.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use nudge_aws::{SesMailer, ses_client};
use nudge_core::mail::{Category, Email, MailError, Mailbox, Mailer, build_mime};
use nudge_core::store::{SendKind, SendRecord};

mod moto;

use nudge_testkit::moto::{raw_messages, verify_sender};

/// moto's state is one per server: one moto test at a time.
static MOTO: Mutex<()> = Mutex::new(());

const SENDER: &str = "shop@example.com";

/// A mailer on `endpoint` with fake credentials and a fixed region: nothing is read from the
/// environment or asked of an instance-metadata service.
async fn mailer(endpoint: &str) -> SesMailer {
    let config = moto::sdk_config(endpoint).await;
    SesMailer::new(ses_client(&config), Some("nudge-test".to_owned()))
}

/// A log sink for [`logged`].
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends `email` through a mailer on `endpoint` and returns the result with everything logged
/// meanwhile: this crate's logs at every level, the SDK's at `info` and above (a deployment's
/// level).
fn send_logged(endpoint: &str, email: &Email, mime: &[u8]) -> (Result<String, MailError>, String) {
    let sink = Sink::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,nudge_aws=trace"))
        .with_ansi(false)
        .with_writer({
            let sink = sink.clone();
            move || sink.clone()
        })
        .finish();
    let result = tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async { mailer(endpoint).await.send(&record(email, mime)).await })
    });
    let logs =
        String::from_utf8_lossy(&sink.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    (result.map(|r| r.message_id), logs)
}

/// Panics if `logs` show the recipient's or the sender's address or name, or the subject.
fn assert_no_customer_data(logs: &str, email: &Email) {
    let mut secrets = vec![
        email.to.address.as_str(),
        email.from.address.as_str(),
        email.subject.as_str(),
        "Zo",
    ];
    secrets.extend(email.to.name.as_deref());
    for secret in secrets {
        assert!(!logs.contains(secret), "the logs show {secret}:\n{logs}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// `email` as the runner logs it, its message `mime`.
fn record(email: &Email, mime: &[u8]) -> SendRecord {
    SendRecord {
        idempotency_key: email.idempotency_key.clone(),
        customer_id: email.customer_id.clone(),
        workflow: email.workflow.clone(),
        step: email.step.clone(),
        kind: SendKind::Email,
        category: email.category.as_str().to_owned(),
        tags: email.tags.clone(),
        at: email.date,
        payload: mime.to_vec(),
    }
}

/// An email as the engine decides it, with a name and subject beyond ASCII so that the MIME
/// carries encoded headers.
fn email(from: &str) -> Email {
    Email {
        idempotency_key: "r-0123456789abcdef0123.thank_you".to_owned(),
        customer_id: "guest:zoe@example.com".to_owned(),
        workflow: "post-purchase".to_owned(),
        step: "thank_you".to_owned(),
        category: Category::Transactional,
        to: Mailbox {
            name: Some("Zoë Ünal".to_owned()),
            address: "zoe@example.com".to_owned(),
        },
        from: Mailbox {
            name: Some("The Shop".to_owned()),
            address: from.to_owned(),
        },
        reply_to: None,
        subject: "Merci, Zoë — your order is on its way".to_owned(),
        preheader: Some("Tracking inside".to_owned()),
        html: "<h1>Thank you</h1><p>Your order ships today.</p>".to_owned(),
        date: chrono::DateTime::from_timestamp(1_767_225_600, 0).expect("a date"),
        tags: vec!["post-purchase".to_owned(), "order_1".to_owned()],
        unsubscribe_url: None,
        postal_address: None,
        store_name: "The Shop".to_owned(),
        append_footer: false,
    }
}

#[test]
fn ses_mailer_sends_the_mime_byte_for_byte_and_returns_the_ses_message_id() {
    let Some(endpoint) = moto::endpoint("ses_mailer_sends_the_mime_byte_for_byte") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    moto::reset(&endpoint);
    verify_sender(&endpoint, SENDER);
    let email = email(SENDER);
    let mime = build_mime(&email).expect("the email builds");

    let (result, logs) = send_logged(&endpoint, &email, &mime);
    let message_id = result.expect("moto takes the email");
    assert_no_customer_data(&logs, &email);
    assert!(
        logs.contains(&message_id),
        "the send is logged with its id: {logs}"
    );

    let messages = raw_messages(&endpoint);
    assert_eq!(messages.len(), 1, "one message sent");
    let (id, raw) = &messages[0];
    assert_eq!(&message_id, id, "the receipt holds SES's message id");
    assert!(
        raw.as_bytes() == mime.as_slice(),
        "SES got other bytes than the MIME:\n--- sent\n{raw}\n--- built\n{}",
        String::from_utf8_lossy(&mime)
    );
}

#[test]
fn a_send_from_an_unverified_sender_is_a_final_rejection() {
    let Some(endpoint) = moto::endpoint("a_send_from_an_unverified_sender_is_rejected") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    moto::reset(&endpoint);
    verify_sender(&endpoint, SENDER);
    let email = email("stranger@example.org");
    let mime = build_mime(&email).expect("the email builds");

    let (result, logs) = send_logged(&endpoint, &email, &mime);
    let err = result.expect_err("moto refuses an unverified sender");
    assert_no_customer_data(&logs, &email);
    assert!(
        logs.contains("MessageRejected"),
        "the refusal is logged: {logs}"
    );

    assert!(matches!(err, MailError::Rejected { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(
        !err.to_string().contains("stranger"),
        "{err} shows the address"
    );
    assert!(raw_messages(&endpoint).is_empty(), "nothing was sent");
}

#[test]
fn a_connection_dropped_after_the_request_is_not_retried_and_may_have_sent() {
    // A server that takes each connection, reads the request and closes it without answering:
    // SES may have queued the email, so sending it again could deliver it twice.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    listener.set_nonblocking(true).expect("non-blocking");
    let done = Arc::new(AtomicBool::new(false));
    let server = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut connections = 0;
            while !done.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        connections += 1;
                        stream.set_nonblocking(false).expect("blocking");
                        let _ = read_request(&mut stream);
                        drop(stream);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
            connections
        })
    };
    let email = email(SENDER);
    let mime = build_mime(&email).expect("the email builds");

    let (result, logs) = send_logged(&endpoint, &email, &mime);
    let err = result.expect_err("nobody answers");
    assert_no_customer_data(&logs, &email);
    assert!(
        logs.contains(&email.idempotency_key),
        "the failure is logged: {logs}"
    );
    done.store(true, Ordering::SeqCst);
    let connections = server.join().expect("the server thread");

    assert!(matches!(err, MailError::MaybeSent { .. }), "{err}");
    assert!(err.is_retryable() && err.may_have_been_sent());
    assert_eq!(connections, 1, "one attempt: a second could send it twice");
}

#[test]
fn throttling_is_retried_a_bounded_number_of_times_and_a_500_is_not() {
    // 429, 429, then the message id: three requests, one email.
    let (endpoint, server) = scripted_server(vec![429, 429, 200]);
    let email = email(SENDER);
    let mime = build_mime(&email).expect("the email builds");
    let (result, _) = send_logged(&endpoint, &email, &mime);
    assert_eq!(result.expect("sent at the third attempt"), "0100-test-id");
    assert_eq!(server.join().expect("the server"), 3);

    // Throttled four times: it gives up, retryable, nothing sent.
    let (endpoint, server) = scripted_server(vec![429, 429, 429, 429]);
    let (result, _) = send_logged(&endpoint, &email, &mime);
    let err = result.expect_err("throttled");
    assert!(matches!(err, MailError::Throttled { .. }), "{err}");
    assert_eq!(server.join().expect("the server"), 4);

    // A 500: SES may have it; no second request.
    let (endpoint, server) = scripted_server(vec![500]);
    let (result, _) = send_logged(&endpoint, &email, &mime);
    let err = result.expect_err("a 500");
    assert!(matches!(err, MailError::MaybeSent { .. }), "{err}");
    assert_eq!(server.join().expect("the server"), 1);
}

/// Reads one HTTP request (head and `Content-Length` body) from `stream`.
fn read_request(stream: &mut std::net::TcpStream) -> std::io::Result<Vec<u8>> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(request);
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..i]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while request.len() < i + 4 + length {
                let n = stream.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            return Ok(request);
        }
    }
}

/// A server that answers one request per connection with the next of `statuses` (200 carries
/// a message id; 429 SES's throttling error; 500 an internal failure), and returns how many
/// requests it answered.
fn scripted_server(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<usize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    let server = std::thread::spawn(move || {
        let mut answered = 0;
        for status in statuses {
            let (mut stream, _) = listener.accept().expect("the SDK connects");
            read_request(&mut stream).expect("a request");
            let (reason, body) = match status {
                200 => ("OK", r#"{"MessageId":"0100-test-id"}"#),
                429 => ("Too Many Requests", r#"{"message":"slow down"}"#),
                _ => ("Internal Server Error", r#"{"message":"oops"}"#),
            };
            let error_type = match status {
                429 => "TooManyRequestsException",
                500 => "InternalFailure",
                _ => "",
            };
            let mut response = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if !error_type.is_empty() {
                response.push_str(&format!("x-amzn-ErrorType: {error_type}\r\n"));
            }
            response.push_str("\r\n");
            response.push_str(body);
            stream.write_all(response.as_bytes()).expect("the answer");
            answered += 1;
        }
        answered
    });
    (endpoint, server)
}

/// A one-request HTTP server on a free loopback port that answers `SendEmail` with a message id
/// and hands back the request's body.
fn one_request_server() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("the SDK connects");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        let body_start = loop {
            let n = stream.read(&mut buf).expect("the request");
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
            if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("a content length");
        while request.len() < body_start + length {
            let n = stream.read(&mut buf).expect("the body");
            assert!(n > 0, "the body ended early");
            request.extend_from_slice(&buf[..n]);
        }
        let answer = r#"{"MessageId":"0100-test-id"}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{answer}",
            answer.len()
        );
        stream.write_all(response.as_bytes()).expect("the answer");
        String::from_utf8(request[body_start..].to_vec()).expect("a JSON body")
    });
    (endpoint, server)
}

#[test]
fn the_request_carries_the_raw_mime_the_configuration_set_and_the_tags() {
    let (endpoint, server) = one_request_server();
    let email = email(SENDER);
    let mime = build_mime(&email).expect("the email builds");

    let (result, _) = send_logged(&endpoint, &email, &mime);
    let body: serde_json::Value =
        serde_json::from_str(&server.join().expect("the server thread")).expect("JSON");

    assert_eq!(result.expect("sent"), "0100-test-id", "SES's message id");
    let raw = body["Content"]["Raw"]["Data"]
        .as_str()
        .expect("raw content");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .expect("base64");
    assert!(raw == mime, "the raw content is the MIME byte for byte");
    // No envelope: SES reads the recipient from the message's own `To`, the one the engine
    // decided (the send log keeps the message, not the address apart).
    assert!(body.get("Destination").is_none(), "no Destination: {body}");
    let to = String::from_utf8_lossy(&raw)
        .lines()
        .find(|l| l.starts_with("To: "))
        .map(str::to_owned);
    assert!(
        to.as_deref()
            .is_some_and(|l| l.ends_with("<zoe@example.com>")),
        "the message's To names the recipient: {to:?}"
    );
    assert_eq!(body["ConfigurationSetName"], "nudge-test");
    let tags: Vec<String> = body["EmailTags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| {
            format!(
                "{}={}",
                t["Name"].as_str().unwrap(),
                t["Value"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(tags.len(), 6, "{tags:?}");
    assert!(
        tags.contains(&"nudge-workflow=post-purchase".to_owned()),
        "{tags:?}"
    );
    assert!(
        tags.contains(&"nudge-step=thank_you".to_owned()),
        "{tags:?}"
    );
    assert!(tags.contains(&"tag-post-purchase=1".to_owned()), "{tags:?}");
    assert!(tags.contains(&"tag-order_1=1".to_owned()), "{tags:?}");
    assert!(
        tags.iter().any(|t| t.starts_with("nudge-customer=")),
        "{tags:?}"
    );
    assert!(tags.iter().any(|t| t.starts_with("nudge-key=")), "{tags:?}");
    assert!(!format!("{tags:?}").contains("zoe"), "{tags:?}");
}
