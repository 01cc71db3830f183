//! `HttpWebhookCaller` against a real HTTP server started by each test on 127.0.0.1 (a small
//! HTTP/1.1 server on a tokio `TcpListener` that records every request and answers from a
//! script), and `SsmSecrets` against moto's SSM when `NUDGE_MOTO_ENDPOINT` names a running moto
//! server (scripts/test starts one and sets it).
//!
//! Without `NUDGE_MOTO_ENDPOINT` the moto tests say they are skipped and pass (plain `cargo
//! test` needs no server); with it they run, and fail if moto cannot be reached. moto keeps one
//! state for the whole server, so the moto tests take a lock and reset it first.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use nudge_aws::{
    EnvSecrets, HttpWebhookCaller, SecretSource, SsmSecrets, WebhookSettings, ssm_client,
};
use nudge_core::store::{SendKind, SendRecord};
use nudge_core::webhook::{WebhookCaller, WebhookError, WebhookReceipt, WebhookRequest, verify};

mod moto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The secret the tests sign with, and the token in the URL's query: neither may be logged.
const SECRET: &str = "whsec-0f9e8d7c";
const TOKEN: &str = "tok-5b4a3928";
/// A body value standing for customer data: it may not be logged either.
const BODY: &str = r#"{"customer":{"email":"zoe@example.com"},"order":"ord-1001-kq"}"#;

/// How the server answers one request.
#[derive(Clone, Copy)]
enum Reply {
    /// This status, with a short body.
    Status(u16),
    /// 200 with a body of this many bytes.
    Large(usize),
    /// No answer at all (the connection stays open).
    Hang,
}

/// A request as the server received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The test server: its address and what it received.
struct Server {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    /// Starts a server answering the n-th request with `script[n]` (the last reply repeats).
    async fn start(script: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                let script = script.clone();
                tokio::spawn(async move { serve(stream, &log, &script).await });
            }
        });
        Server { port, received }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/in?token={TOKEN}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Reads one request from `stream`, records it and answers it from `script`.
async fn serve(mut stream: TcpStream, log: &Mutex<Vec<Received>>, script: &[Reply]) {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Received {
            method,
            target,
            headers,
            body,
        });
        log.len() - 1
    };
    let reply = script[index.min(script.len() - 1)];
    let (status, answer) = match reply {
        Reply::Status(status) => (status, b"{\"ok\":false}".to_vec()),
        Reply::Large(size) => (200, vec![b'x'; size]),
        Reply::Hang => {
            std::future::pending::<()>().await;
            return;
        }
    };
    let location = if (300..400).contains(&status) {
        "Location: http://127.0.0.1:1/elsewhere\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status} Test\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    // The client may stop reading a large body: a failed write is its choice, not an error.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&answer).await;
    let _ = stream.shutdown().await;
}

/// Settings for tests: plain http allowed (the local server), short timeouts and backoff.
fn settings(attempts: u32) -> WebhookSettings {
    WebhookSettings {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_millis(500),
        attempts,
        backoff: Duration::from_millis(10),
        allow_plain_http: true,
    }
}

fn caller<S: SecretSource + Sync>(secrets: S, attempts: u32) -> HttpWebhookCaller<S> {
    HttpWebhookCaller::new(secrets, settings(attempts)).expect("a caller")
}

fn env_secrets() -> EnvSecrets {
    EnvSecrets::from_vars([("NUDGE_WEBHOOK_SECRET_CRM_PROD", SECRET)])
}

fn send() -> SendRecord {
    SendRecord {
        idempotency_key: "r-0123456789abcdef0123.notify_crm".to_owned(),
        customer_id: "guest:zoe@example.com".to_owned(),
        workflow: "post-purchase".to_owned(),
        step: "notify_crm".to_owned(),
        kind: SendKind::Webhook,
        category: "webhook".to_owned(),
        tags: Vec::new(),
        at: Utc.timestamp_opt(1_767_225_600, 0).unwrap(),
        payload: Vec::new(),
    }
}

fn request(url: String, secret: Option<&str>) -> WebhookRequest {
    WebhookRequest {
        url,
        method: "POST".to_owned(),
        body: BODY.to_owned(),
        secret: secret.map(str::to_owned),
    }
}

fn now() -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_660, 0).unwrap()
}

/// HMAC-SHA256 of `body` under `secret` as `sha256=<hex>`, computed here independently of the
/// crate under test.
fn expected_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_signed_call_carries_the_headers_and_a_valid_signature() {
    let server = Server::start(vec![Reply::Status(202)]).await;
    let receipt = caller(env_secrets(), 3)
        .call(&send(), &request(server.url(), Some("crm-prod")), now())
        .await
        .expect("accepted");
    assert_eq!(receipt, WebhookReceipt { status: 202 });
    let received = server.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.target, format!("/hooks/in?token={TOKEN}"));
    assert_eq!(got.body, BODY.as_bytes());
    assert_eq!(got.header("content-type"), Some("application/json"));
    let agent = format!("nudge/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(got.header("user-agent"), Some(agent.as_str()));
    assert_eq!(
        got.header("idempotency-key"),
        Some("r-0123456789abcdef0123.notify_crm")
    );
    assert_eq!(got.header("x-nudge-timestamp"), Some("1767225660"));
    assert_eq!(got.header("x-nudge-workflow"), Some("post-purchase"));
    assert_eq!(got.header("x-nudge-step"), Some("notify_crm"));
    let signature = got.header("x-nudge-signature").expect("a signature");
    assert_eq!(signature, expected_signature(SECRET.as_bytes(), &got.body));
    assert!(verify(SECRET.as_bytes(), &got.body, signature));
    assert!(got.header("host").is_some());
}

#[tokio::test]
async fn an_unsigned_call_has_no_signature_and_keeps_its_method() {
    let server = Server::start(vec![Reply::Status(200)]).await;
    let mut put = request(server.url(), None);
    put.method = "PUT".to_owned();
    caller(env_secrets(), 3)
        .call(&send(), &put, now())
        .await
        .expect("accepted");
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "PUT");
    assert_eq!(received[0].header("x-nudge-signature"), None);
    assert!(received[0].header("idempotency-key").is_some());
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_key_body_and_signature() {
    let server = Server::start(vec![Reply::Status(500), Reply::Status(200)]).await;
    let receipt = caller(env_secrets(), 3)
        .call(&send(), &request(server.url(), Some("crm-prod")), now())
        .await
        .expect("accepted on the second attempt");
    assert_eq!(receipt.status, 200);
    let received = server.received();
    assert_eq!(received.len(), 2);
    for name in ["idempotency-key", "x-nudge-signature", "x-nudge-timestamp"] {
        assert_eq!(received[0].header(name), received[1].header(name), "{name}");
    }
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn a_400_is_final_and_not_retried() {
    let server = Server::start(vec![Reply::Status(400), Reply::Status(200)]).await;
    let err = caller(env_secrets(), 3)
        .call(&send(), &request(server.url(), None), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Rejected { status: 400 }),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = Server::start(vec![Reply::Status(302), Reply::Status(200)]).await;
    let err = caller(env_secrets(), 3)
        .call(&send(), &request(server.url(), Some("crm-prod")), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Rejected { status: 302 }),
        "{err}"
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn throttling_and_5xx_use_every_attempt_then_stay_retryable() {
    let replies = vec![Reply::Status(429), Reply::Status(503), Reply::Status(408)];
    let server = Server::start(replies).await;
    let err = caller(env_secrets(), 3)
        .call(&send(), &request(server.url(), None), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Unavailable { status: 408 }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn a_hung_endpoint_times_out_on_each_attempt() {
    let server = Server::start(vec![Reply::Hang]).await;
    let err = caller(env_secrets(), 2)
        .call(&send(), &request(server.url(), None), now())
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Timeout { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/in?token={TOKEN}");
    let err = caller(env_secrets(), 2)
        .call(&send(), &request(url, None), now())
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

#[tokio::test]
async fn a_large_response_body_does_not_fail_the_call() {
    let server = Server::start(vec![Reply::Large(8 * 1024 * 1024)]).await;
    let receipt = caller(env_secrets(), 1)
        .call(&send(), &request(server.url(), None), now())
        .await
        .expect("accepted");
    assert_eq!(receipt.status, 200);
}

#[tokio::test]
async fn a_missing_secret_is_final_and_nothing_is_sent() {
    let server = Server::start(vec![Reply::Status(200)]).await;
    let err = caller(env_secrets(), 3)
        .call(&send(), &request(server.url(), Some("other")), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, WebhookError::SecretMissing { name } if name == "other"),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn plain_http_and_other_methods_are_refused_before_any_request() {
    let server = Server::start(vec![Reply::Status(200)]).await;
    let strict = HttpWebhookCaller::new(env_secrets(), WebhookSettings::default()).unwrap();
    let err = strict
        .call(&send(), &request(server.url(), None), now())
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::InvalidRequest { .. }), "{err}");
    let mut get = request(server.url(), None);
    get.method = "GET".to_owned();
    let err = caller(env_secrets(), 3)
        .call(&send(), &get, now())
        .await
        .unwrap_err();
    assert!(matches!(err, WebhookError::InvalidRequest { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(server.received().is_empty());
}

/// A log sink.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_name_the_host_but_not_the_query_the_body_or_the_secret() {
    let sink = Sink::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_ansi(false)
        .with_writer({
            let sink = sink.clone();
            move || sink.clone()
        })
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let server = Server::start(vec![Reply::Status(503), Reply::Status(404)]).await;
            caller(env_secrets(), 3)
                .call(&send(), &request(server.url(), Some("crm-prod")), now())
                .await
        })
    });
    assert!(matches!(
        result,
        Err(WebhookError::Rejected { status: 404 })
    ));
    let logs = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    assert!(logs.contains("127.0.0.1"), "the host is logged:\n{logs}");
    assert!(logs.contains("r-0123456789abcdef0123.notify_crm"), "{logs}");
    let signature = expected_signature(SECRET.as_bytes(), BODY.as_bytes());
    for hidden in [
        SECRET,
        TOKEN,
        "zoe@example.com",
        "ord-1001-kq",
        "/hooks/in",
        &signature[7..],
    ] {
        assert!(!logs.contains(hidden), "the logs show {hidden}:\n{logs}");
    }
}

// ---- SSM Parameter Store, against moto ----

/// moto's state is one per server: one moto test at a time.
static MOTO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const STACK: &str = "nudge-test";

/// An SSM client on `endpoint` with fake credentials and a fixed region.
async fn ssm(endpoint: &str) -> aws_sdk_ssm::Client {
    let config = moto::sdk_config(endpoint).await;
    ssm_client(&config)
}

async fn put_secret(client: &aws_sdk_ssm::Client, name: &str, value: &str) {
    client
        .put_parameter()
        .name(nudge_aws::ssm_parameter_name(STACK, name))
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter");
}

#[tokio::test]
async fn ssm_secrets_read_a_secure_string_and_sign_with_it() {
    let Some(endpoint) = moto::endpoint("ssm_secrets_read_a_secure_string_and_sign_with_it") else {
        return;
    };
    let _moto = MOTO.lock().await;
    moto::reset(&endpoint);
    let client = ssm(&endpoint).await;
    put_secret(&client, "crm-prod", SECRET).await;
    let secrets = SsmSecrets::new(client.clone(), STACK, SsmSecrets::DEFAULT_TTL);
    let secret = secrets.secret("crm-prod").await.expect("the stored secret");
    assert_eq!(secret.expose(), SECRET.as_bytes());
    let err = secrets.secret("other").await.unwrap_err();
    assert!(
        matches!(&err, WebhookError::SecretMissing { name } if name == "other"),
        "{err}"
    );
    assert!(!err.is_retryable());

    // End to end: the call is signed with the value SSM holds.
    let server = Server::start(vec![Reply::Status(200)]).await;
    caller(secrets, 1)
        .call(&send(), &request(server.url(), Some("crm-prod")), now())
        .await
        .expect("accepted");
    let received = server.received();
    let signature = received[0].header("x-nudge-signature").expect("signed");
    assert!(verify(SECRET.as_bytes(), BODY.as_bytes(), signature));
}

#[tokio::test]
async fn ssm_secrets_are_cached_for_their_ttl() {
    let Some(endpoint) = moto::endpoint("ssm_secrets_are_cached_for_their_ttl") else {
        return;
    };
    let _moto = MOTO.lock().await;
    moto::reset(&endpoint);
    let client = ssm(&endpoint).await;
    put_secret(&client, "crm", "first").await;
    let cached = SsmSecrets::new(client.clone(), STACK, SsmSecrets::DEFAULT_TTL);
    let uncached = SsmSecrets::new(client.clone(), STACK, Duration::ZERO);
    assert_eq!(cached.secret("crm").await.unwrap().expose(), b"first");
    assert_eq!(uncached.secret("crm").await.unwrap().expose(), b"first");
    put_secret(&client, "crm", "rotated").await;
    assert_eq!(cached.secret("crm").await.unwrap().expose(), b"first");
    assert_eq!(uncached.secret("crm").await.unwrap().expose(), b"rotated");
}

#[tokio::test]
async fn an_unreachable_ssm_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = ssm(&format!("http://127.0.0.1:{port}")).await;
    let err = SsmSecrets::new(client, STACK, SsmSecrets::DEFAULT_TTL)
        .secret("crm")
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::SecretUnavailable { .. }),
        "{err}"
    );
    assert!(err.is_retryable());
}
