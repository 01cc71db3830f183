//! Talking to moto's server (the AWS emulator scripts/test starts) from tests, with no SDK:
//! finding it (`NUDGE_MOTO_ENDPOINT`), resetting it, and raw HTTP calls to its API
//! (`/moto-api/data.json` shows what SES took, byte for byte).

use std::io::{Read, Write};
use std::net::TcpStream;

/// The moto endpoint, or `None` (saying, past the test harness's capture, that `test` is
/// skipped) when none is set: a plain `cargo test` needs no server. When the variable is set,
/// a moto that cannot be reached fails the test ([`http`] panics).
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var("NUDGE_MOTO_ENDPOINT") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_owned()),
        _ => {
            let line = format!(
                "{test}: skipped, NUDGE_MOTO_ENDPOINT is not set (scripts/test starts moto)\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

/// One HTTP/1.1 request to moto (`http://host:port`), answered with its status and body.
pub fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let authority = endpoint
        .strip_prefix("http://")
        .expect("NUDGE_MOTO_ENDPOINT is http://host:port");
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("moto at {endpoint} cannot be reached: {e}"));
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("response read");
    let response = String::from_utf8(response).expect("moto answers UTF-8");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "a chunked answer is not expected from moto: {head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

/// `POST /moto-api/reset`: moto forgets everything. Panics when moto cannot be reached.
pub fn reset(endpoint: &str) {
    let (status, body) = http(endpoint, "POST", "/moto-api/reset", &[], "");
    assert_eq!(status, 200, "reset: {body}");
}

/// Verifies `address` with the SES v1 query API, as moto needs before it sends from it. moto
/// routes an unsigned request by the service named in the `Authorization` header.
pub fn verify_sender(endpoint: &str, address: &str) {
    let body = format!(
        "Action=VerifyEmailIdentity&Version=2010-12-01&EmailAddress={}",
        address.replace('@', "%40")
    );
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ses/aws4_request, \
                SignedHeaders=host, Signature=0";
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Authorization", auth),
    ];
    let (status, answer) = http(endpoint, "POST", "/", &headers, &body);
    assert_eq!(status, 200, "VerifyEmailIdentity: {answer}");
}

/// The raw messages moto's SES holds, as (message id, raw data).
pub fn raw_messages(endpoint: &str) -> Vec<(String, String)> {
    // moto's data.json can fail with a 500 while other requests change its state (tests of one
    // binary run at once): asked again a few times before giving up.
    let mut answer = http(endpoint, "GET", "/moto-api/data.json", &[], "");
    for _ in 0..4 {
        if answer.0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        answer = http(endpoint, "GET", "/moto-api/data.json", &[], "");
    }
    let (status, body) = answer;
    assert_eq!(status, 200, "data.json: {body}");
    let data: serde_json::Value = serde_json::from_str(&body).expect("data.json is JSON");
    let messages = data["ses"]["RawMessage"]
        .as_array()
        .unwrap_or_else(|| panic!("no ses.RawMessage in data.json: {body}"));
    messages
        .iter()
        .map(|m| {
            let text = |field: &str| m[field].as_str().expect(field).to_owned();
            (text("id"), text("raw_data"))
        })
        .collect()
}
