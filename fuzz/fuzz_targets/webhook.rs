//! The webhook side of `nudge_core::webhook` on arbitrary bytes: `WebhookRequest::from_payload`
//! (a send log's stored payload), `host`, `to_payload` (round trip), `headers` (with arbitrary
//! send ids, secret and time), `sign`/`verify` and `classify`: a result or an error, never a
//! panic. A request read back is the one written; a signature made verifies, and headers given
//! are printable ASCII.
//!
//! Input: fields separated by `0xff` bytes (never in UTF-8 text): payload, secret, signature,
//! key, workflow, step; the first two bytes of the input are also the status, the next eight
//! the time.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use nudge_core::store::{SendKind, SendRecord};
use nudge_core::webhook::{WebhookRequest, classify, sign, verify};

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|&b| b == 0xff);
    let mut next = || fields.next().unwrap_or_default();
    let (payload, secret, signature) = (next(), next(), next());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (key, workflow, step) = (text(next()), text(next()), text(next()));
    let mut head = [0u8; 10];
    let n = data.len().min(10);
    head[..n].copy_from_slice(&data[..n]);
    let status = u16::from_le_bytes([head[0], head[1]]);
    let millis = i64::from_le_bytes(head[2..10].try_into().unwrap());
    let now = DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);

    // classify: 2xx accepted, anything else an error.
    assert_eq!(classify(status).is_ok(), (200..300).contains(&status));

    // sign and verify on arbitrary bytes; an arbitrary signature is checked without a panic.
    let made = sign(secret, payload);
    assert!(verify(secret, payload, &made));
    let _ = verify(secret, payload, &String::from_utf8_lossy(signature));

    let Ok(request) = WebhookRequest::from_payload(payload) else {
        return;
    };
    let _ = request.host();
    let _ = format!("{request:?}");
    let again = WebhookRequest::from_payload(&request.to_payload()).expect("own payload reads");
    assert!(again == request);

    let send = SendRecord {
        idempotency_key: key,
        customer_id: "c-1".to_owned(),
        workflow,
        step,
        kind: SendKind::Webhook,
        category: "transactional".to_owned(),
        tags: Vec::new(),
        at: now,
        payload: payload.to_vec(),
    };
    for given in [None, Some(secret)] {
        match request.headers(&send, given, now) {
            Ok(headers) => {
                for (_, value) in &headers {
                    assert!(!value.is_empty() && value.bytes().all(|b| (0x20..0x7f).contains(&b)));
                }
                if request.secret.is_some() {
                    let (_, sig) = headers.last().unwrap();
                    assert!(verify(secret, request.body.as_bytes(), sig));
                }
            }
            Err(e) => {
                let _ = (e.to_string(), e.is_retryable());
            }
        }
    }
});
