//! What the moto-backed test binaries share: finding moto (`NUDGE_MOTO_ENDPOINT`, set by
//! scripts/test), resetting it, raw HTTP calls to its API, and an SDK configuration on it with
//! fake credentials. Each binary uses what it needs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use nudge_aws::config_loader;

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

/// The SDK configuration on moto at `endpoint`: fake credentials and a fixed region, so nothing
/// is read from the environment or asked of an instance-metadata service.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}
