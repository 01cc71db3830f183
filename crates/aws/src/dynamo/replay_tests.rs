//! `DynamoDbStore` on the real SDK against canned HTTP answers: what moto never produces
//! (cancelled transactions for conflicts and throttling, throttled and failed requests, size
//! refusals, a retried commit) goes through the SDK's own deserialisation and retries here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use nudge_core::store::{
    Commit, CommitOutcome, SendKind, SendRecord, SendStatus, Settle, Store, StoreError,
};

use super::{DynamoDbStore, RequestMeter};

/// Answers each request with the next canned `(status, body)` and keeps the request bodies.
#[derive(Debug, Clone, Default)]
struct Replay {
    answers: Arc<Mutex<Vec<(u16, String)>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl HttpConnector for Replay {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let sent = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
        self.requests.lock().unwrap().push(sent.clone());
        let mut answers = self.answers.lock().unwrap();
        assert!(!answers.is_empty(), "more requests than canned answers");
        let (status, mut body) = answers.remove(0);
        if body.contains("$CID") {
            // The claim nonce the request carries, as DynamoDB would return it.
            let sent: serde_json::Value = serde_json::from_str(&sent).expect("a JSON request");
            let cid = sent["ExpressionAttributeValues"][":cid"]["S"]
                .as_str()
                .expect("a claim's nonce");
            body = body.replace("$CID", cid);
        }
        let response = Response::new(
            StatusCode::try_from(status).expect("a status"),
            SdkBody::from(body),
        );
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// A store whose client gets `answers` in turn, with up to `attempts` attempts per call, the
/// replay (for the requests sent) and the meter.
fn replayed(answers: &[(u16, &str)], attempts: u32) -> (DynamoDbStore, Replay, RequestMeter) {
    let replay = Replay::default();
    *replay.answers.lock().unwrap() = answers
        .iter()
        .map(|(status, body)| (*status, (*body).to_owned()))
        .collect();
    let connector = SharedHttpConnector::new(replay.clone());
    let meter = RequestMeter::new();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url("http://dynamodb.invalid")
        .http_client(http_client_fn(move |_, _| connector.clone()))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(2)),
        )
        .interceptor(meter.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    (DynamoDbStore::new(client, "t"), replay, meter)
}

/// An error answer of DynamoDB (awsJson 1.0) of type `kind`, with `extra` JSON members.
fn error(kind: &str, extra: &str) -> String {
    format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"m"{extra}}}"#)
}

/// A cancelled transaction with these reason codes.
fn cancelled(codes: &[&str]) -> String {
    let reasons: Vec<String> = codes
        .iter()
        .map(|c| format!(r#"{{"Code":"{c}","Message":"x"}}"#))
        .collect();
    error(
        "TransactionCanceledException",
        &format!(r#","CancellationReasons":[{}]"#, reasons.join(",")),
    )
}

fn send(key: &str) -> SendRecord {
    SendRecord {
        idempotency_key: key.to_owned(),
        customer_id: "c-1".to_owned(),
        workflow: "w".to_owned(),
        step: "s".to_owned(),
        kind: SendKind::Email,
        category: "transactional".to_owned(),
        tags: vec![],
        at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        payload: b"mime".to_vec(),
    }
}

fn commit<'a>(event: Option<&'a str>, sends: &'a [SendRecord]) -> Commit<'a> {
    Commit {
        customer_id: "c-1",
        expected_version: 4,
        state: b"{}",
        next_wake: None,
        event_id: event,
        sends,
        journal: &[],
    }
}

/// The `ClientRequestToken` of a TransactWriteItems request body.
fn token(body: &str) -> &str {
    let start = body.find(r#""ClientRequestToken":""#).expect("a token") + 22;
    &body[start..start + 32]
}

#[tokio::test]
async fn cancellation_reasons_map_to_outcomes() {
    let cases: [(&[&str], Option<&str>, CommitOutcome); 4] = [
        (
            &["None", "ConditionalCheckFailed"],
            Some("e-1"),
            CommitOutcome::AlreadyProcessed,
        ),
        (
            &["ConditionalCheckFailed", "ConditionalCheckFailed"],
            Some("e-1"),
            CommitOutcome::AlreadyProcessed,
        ),
        (
            &["ConditionalCheckFailed", "None"],
            Some("e-1"),
            CommitOutcome::Conflict,
        ),
        (
            &["None", "TransactionConflict"],
            Some("e-1"),
            CommitOutcome::Conflict,
        ),
    ];
    for (codes, event, expected) in cases {
        let (store, _, meter) = replayed(&[(400, &cancelled(codes))], 3);
        assert_eq!(
            store.commit(commit(event, &[])).await.unwrap(),
            expected,
            "{codes:?}"
        );
        assert_eq!(
            meter.requests(),
            1,
            "a cancelled transaction is not retried"
        );
    }
}

#[tokio::test]
async fn throttling_and_size_are_errors_of_their_kind() {
    let (store, _, meter) = replayed(&[(400, &cancelled(&["None", "ThrottlingError"]))], 3);
    let result = store.commit(commit(Some("e-1"), &[])).await;
    assert!(
        matches!(result, Err(StoreError::Throttled { .. })),
        "{result:?}"
    );
    assert_eq!(meter.requests(), 1);
    let throttled = error("ProvisionedThroughputExceededException", "");
    let (store, _, meter) = replayed(&[(400, &throttled), (400, &throttled)], 2);
    let result = store.load("c-1").await;
    assert!(
        matches!(result, Err(StoreError::Throttled { .. })),
        "{result:?}"
    );
    assert_eq!(
        meter.counts()["GetItem"].requests,
        2,
        "the SDK retried the throttled read"
    );
    let size = r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Item size has exceeded the maximum allowed size"}"#;
    let (store, _, _) = replayed(&[(400, size)], 3);
    let result = store.set_meta("k", "v").await;
    assert!(
        matches!(result, Err(StoreError::TooLarge { .. })),
        "{result:?}"
    );
    let missing = error("ResourceNotFoundException", "");
    let (store, _, _) = replayed(&[(400, &missing)], 3);
    let result = store.get_meta("k").await;
    assert!(
        matches!(result, Err(StoreError::Failed { .. })),
        "{result:?}"
    );
    let down = error("InternalServerError", "");
    let (store, _, _) = replayed(&[(500, &down), (500, &down)], 2);
    let result = store.is_processed("e").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_sdk_retry_of_a_commit_sends_the_same_token() {
    let (store, replay, meter) =
        replayed(&[(500, &error("InternalServerError", "")), (200, "{}")], 3);
    let sends = [send("k-1")];
    let outcome = store.commit(commit(Some("e-1"), &sends)).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed { version: 5 });
    let requests = replay.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(token(&requests[0]), token(&requests[1]));
    assert_eq!(requests[0], requests[1], "the retry is the same request");
    assert_eq!(meter.counts()["TransactWriteItems"].requests, 2);
    // The same commit from another process has the same token (DynamoDB answers it as done);
    // another commit (another state) has another one.
    let (again, replay3, _) = replayed(&[(200, "{}")], 1);
    let _ = again.commit(commit(Some("e-1"), &sends)).await.unwrap();
    assert_eq!(
        token(&replay3.requests.lock().unwrap()[0]),
        token(&requests[0])
    );
    let (other, replay2, _) = replayed(&[(200, "{}")], 1);
    let changed = Commit {
        state: b"{\"a\":1}",
        ..commit(Some("e-1"), &sends)
    };
    let _ = other.commit(changed).await.unwrap();
    let second = replay2.requests.lock().unwrap()[0].clone();
    assert_ne!(token(&second), token(&requests[0]));
}

#[tokio::test]
async fn a_send_already_logged_is_left_out_and_the_commit_goes_through() {
    // Items: customer, event, k-1, k-2; k-2's condition fails (already logged).
    let first = cancelled(&["None", "None", "None", "ConditionalCheckFailed"]);
    let (store, replay, meter) = replayed(&[(400, &first), (200, "{}")], 3);
    let sends = [send("k-1"), send("k-2")];
    let outcome = store.commit(commit(Some("e-1"), &sends)).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed { version: 5 });
    let requests = replay.requests.lock().unwrap().clone();
    assert_eq!(meter.requests(), 2);
    assert!(requests[0].contains("S#k-2") && !requests[1].contains("S#k-2"));
    assert!(requests[1].contains("S#k-1"));
    assert_ne!(
        token(&requests[0]),
        token(&requests[1]),
        "another request, another token"
    );
}

/// A claim DynamoDB applied but answered with a 500 is retried by the SDK; the retry's
/// condition fails on that very claim (its item is `sending` with this call's nonce), and the
/// claim is this call's: the entry as it was before it comes back, not `None` ("another sender
/// holds it", which would leave the send to nobody until a sweep took it over after the lease).
#[tokio::test]
async fn a_claim_the_sdk_retries_after_it_applied_is_still_ours() {
    let own_claim = error(
        "ConditionalCheckFailedException",
        &format!(r#","Item":{}"#, claimed_item("$CID")),
    );
    let (store, replay, _) = replayed(
        &[(500, &error("InternalServerError", "")), (400, &own_claim)],
        3,
    );
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let claimed = store
        .claim_send("c-1", "k-1", now, now + chrono::TimeDelta::minutes(5))
        .await;
    let requests = replay.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "the SDK retried");
    assert_eq!(requests[0], requests[1], "the retry is the same request");
    let before = claimed.unwrap().expect("the store's own applied claim");
    assert_eq!(before.status, SendStatus::Pending);
    assert_eq!(before.attempts, 0);
    assert_eq!(
        before.retry_at,
        Some(Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap())
    );
    assert_eq!(before.record.idempotency_key, "k-1");
    assert_eq!(before.record.payload, b"mime");
}

/// A claim whose condition fails on another claim (another nonce) is not this call's: `None`.
#[tokio::test]
async fn a_claim_held_under_another_nonce_is_not_ours() {
    let other = error(
        "ConditionalCheckFailedException",
        &format!(r#","Item":{}"#, claimed_item("0123456789abcdef-7")),
    );
    let (store, _, _) = replayed(&[(400, &other)], 3);
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let claimed = store
        .claim_send("c-1", "k-1", now, now + chrono::TimeDelta::minutes(5))
        .await;
    assert!(matches!(claimed, Ok(None)), "{claimed:?}");
}

/// The item of send `k-1` of `c-1` held by the claim of nonce `cid` (its first attempt), which
/// replaced `pending` due 2026-02-28 23:00 UTC.
fn claimed_item(cid: &str) -> String {
    format!(
        r#"{{"pk":{{"S":"C#c-1"}},"sk":{{"S":"S#k-1"}},"wf":{{"S":"w"}},"step":{{"S":"s"}},"kind":{{"S":"email"}},"cat":{{"S":"marketing"}},"tags":{{"L":[]}},"at":{{"N":"1772319600000"}},"body":{{"B":"{}"}},"stat":{{"S":"sending"}},"retry":{{"N":"1772323500000"}},"att":{{"N":"1"}},"cid":{{"S":"{cid}"}},"pst":{{"S":"pending"}},"prt":{{"N":"1772319600000"}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(super::codec::encode(b"mime"))
    )
}

fn feedback(event_id: &str) -> nudge_core::store::Feedback<'_> {
    nudge_core::store::Feedback {
        event_id,
        workflow: "w",
        step: "s",
        kind: nudge_core::store::FeedbackKind::Clicked,
        at: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
    }
}

/// A feedback transaction that meets another is sent again (the same items, a new token) until
/// it goes through or the attempts run out (`Unavailable`, retryable); one cancelled on its
/// marker was counted before.
#[tokio::test]
async fn feedback_transactions_are_sent_again_after_a_conflict() {
    let conflict = cancelled(&["None", "TransactionConflict"]);
    let (store, replay, meter) = replayed(&[(400, &conflict), (400, &conflict), (200, "{}")], 1);
    assert!(store.record_feedback(&feedback("f-1")).await.unwrap());
    assert_eq!(meter.requests(), 3);
    let sent = replay.requests.lock().unwrap().clone();
    // Each attempt is a new call, with the SDK's own random token (kept across the SDK's
    // retries of that call): the rest is the same request.
    let mut parsed: Vec<serde_json::Value> = sent
        .iter()
        .map(|r| serde_json::from_str(r).expect("a JSON request"))
        .collect();
    let tokens: Vec<serde_json::Value> = parsed
        .iter_mut()
        .map(|r| {
            r.as_object_mut()
                .unwrap()
                .remove("ClientRequestToken")
                .unwrap()
        })
        .collect();
    assert!(
        tokens[0] != tokens[1] && tokens[1] != tokens[2],
        "{tokens:?}"
    );
    assert!(
        parsed.iter().all(|r| *r == parsed[0]),
        "the same request each time: {sent:#?}"
    );
    assert!(sent[0].contains("attribute_not_exists(pk)") && sent[0].contains("ADD #n :one"));

    let answers = vec![(400, conflict.as_str()); super::aside::CONFLICT_ATTEMPTS];
    let (store, _, meter) = replayed(&answers, 1);
    let result = store.record_feedback(&feedback("f-1")).await;
    assert!(
        matches!(&result, Err(e @ StoreError::Unavailable { .. }) if e.is_retryable()),
        "{result:?}"
    );
    assert_eq!(meter.requests(), super::aside::CONFLICT_ATTEMPTS as u64);

    let counted = cancelled(&["ConditionalCheckFailed", "None"]);
    let (store, _, meter) = replayed(&[(400, &counted)], 3);
    assert!(!store.record_feedback(&feedback("f-1")).await.unwrap());
    assert_eq!(meter.requests(), 1);
}

/// An erasure sends again the deletes DynamoDB left unprocessed, and deletes an order only on
/// the condition that it is still the customer's.
#[tokio::test]
async fn an_erasure_sends_unprocessed_deletes_again() {
    let query = r#"{"Count":3,"Items":[
        {"pk":{"S":"C#c-1"},"sk":{"S":"O#1001"}},
        {"pk":{"S":"C#c-1"},"sk":{"S":"S#k-1"}},
        {"pk":{"S":"C#c-1"},"sk":{"S":"STATE"}}]}"#;
    let unprocessed = r#"{"UnprocessedItems":{"t":[
        {"DeleteRequest":{"Key":{"pk":{"S":"C#c-1"},"sk":{"S":"STATE"}}}}]}}"#;
    let (store, replay, meter) = replayed(
        &[
            (200, query),
            (200, "{}"),
            (200, unprocessed),
            (200, r#"{"UnprocessedItems":{}}"#),
            // The partition read again: empty, so the erasure is done.
            (200, r#"{"Count":0,"Items":[]}"#),
            // The dead letters naming the customer: none.
            (200, r#"{"Count":0,"Items":[]}"#),
        ],
        1,
    );
    let erased = store.erase_customer("c-1").await.unwrap();
    assert_eq!(
        erased,
        nudge_core::store::Erased {
            state: true,
            sends: 1,
            orders: 1,
            journal_commits: 0,
            dead_letters: 0,
        }
    );
    let counts = meter.counts();
    assert_eq!(counts["BatchWriteItem"].requests, 2);
    assert_eq!(counts["DeleteItem"].requests, 1);
    assert_eq!(counts["Query"].requests, 3);
    let sent = replay.requests.lock().unwrap().clone();
    assert!(
        sent[5].contains("DEAD") && sent[5].contains("#c = :c"),
        "{}",
        sent[5]
    );
    assert!(
        sent[1].contains("cust = :c") && sent[1].contains("O#1001"),
        "{}",
        sent[1]
    );
    assert_eq!(sent[2].matches("DeleteRequest").count(), 3);
    assert_eq!(sent[3].matches("DeleteRequest").count(), 1);
    assert!(sent[3].contains("STATE"));
}

#[tokio::test]
async fn conditional_writes_tell_a_failed_condition_from_an_error() {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let failed = error("ConditionalCheckFailedException", "");
    let (store, _, _) = replayed(&[(200, "{}"), (400, &failed)], 1);
    assert!(matches!(store.set_aside("c-1", now).await, Ok(true)));
    assert!(matches!(store.set_aside("c-1", now).await, Ok(false)));
    let missing = error("ResourceNotFoundException", "");
    let (store, _, _) = replayed(&[(400, &missing)], 1);
    let result = store.set_aside("c-1", now).await;
    assert!(
        matches!(result, Err(StoreError::Failed { .. })),
        "{result:?}"
    );
    // A settle whose condition failed on no entry names the send.
    let (store, _, _) = replayed(&[(400, &failed)], 1);
    let result = store
        .settle_send("c-1", "k-1", Settle::Sent { message_id: None })
        .await;
    assert!(
        matches!(&result, Err(StoreError::UnknownSend(k)) if k == "k-1"),
        "{result:?}"
    );
}
