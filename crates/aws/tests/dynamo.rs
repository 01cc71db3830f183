//! `DynamoDbStore` on the real SDK against moto's DynamoDB, when `NUDGE_MOTO_ENDPOINT` names a
//! running moto server (scripts/test starts one and sets it).
//!
//! Without `NUDGE_MOTO_ENDPOINT` these tests say they are skipped and pass (plain `cargo test`
//! needs no server); with it they run, and fail if moto cannot be reached. moto keeps one state
//! for the whole server, so the tests take a lock, and every store of the contract suite starts
//! from `POST /moto-api/reset` and a new table. moto never cancels a transaction for a conflict,
//! never throttles and its indexes are immediately consistent: those mappings are unit tests in
//! the crate (`dynamo::replay_tests`, on canned answers).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone, Utc};
use nudge_aws::{DynamoDbStore, RequestMeter, config_loader, create_table, dynamodb_client};
use nudge_core::store::{
    Commit, CommitOutcome, DeadLetter, SendKind, SendRecord, Store, StoreError,
};
use nudge_testkit::contract;

/// moto's state is one per server: one moto test at a time.
static MOTO: Mutex<()> = Mutex::new(());

const TABLE: &str = "nudge-test";

/// The moto endpoint, or `None` (saying that the test is skipped) when none is set.
fn moto_endpoint(test: &str) -> Option<String> {
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

/// `POST /moto-api/reset`: moto forgets every table. Panics when moto cannot be reached.
fn reset(endpoint: &str) {
    let authority = endpoint
        .strip_prefix("http://")
        .expect("NUDGE_MOTO_ENDPOINT is http://host:port");
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("moto at {endpoint} cannot be reached: {e}"));
    let request = format!(
        "POST /moto-api/reset HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "reset: {response}"
    );
}

/// A client on `endpoint` with fake credentials and a fixed region, counting into `meter`.
async fn client(endpoint: &str, meter: &RequestMeter) -> Client {
    let config = config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    dynamodb_client(&config, Some(meter))
}

/// A store on a new table of a freshly reset moto, and the meter of its client.
async fn fresh_store(endpoint: &str) -> (DynamoDbStore, RequestMeter) {
    reset(endpoint);
    let meter = RequestMeter::new();
    let client = client(endpoint, &meter).await;
    create_table(&client, TABLE, Duration::from_secs(30))
        .await
        .expect("the table is created");
    meter.take();
    (DynamoDbStore::new(client, TABLE), meter)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The raw item (`pk`, `sk`) of the table, read past the store.
async fn raw_item(
    store_client: &Client,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    store_client
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

#[test]
fn the_store_contract_passes_on_dynamodb() {
    let Some(endpoint) = moto_endpoint("the_store_contract_passes_on_dynamodb") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(contract::run_all(async || fresh_store(&endpoint).await.0));
}

#[test]
fn the_state_is_compressed_and_the_timer_leaves_the_index_when_cleared() {
    let Some(endpoint) = moto_endpoint("the_state_is_compressed") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (store, meter) = fresh_store(&endpoint).await;
        let raw = client(&endpoint, &meter).await;
        let state = r#"{"runs":[{"workflow":"welcome-series","step":"hello"}]}"#.repeat(60);
        let wake = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let first = Commit {
            state: state.as_bytes(),
            next_wake: Some(wake),
            ..contract::new("c-1")
        };
        assert_eq!(
            store.commit(first).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        let item = raw_item(&raw, "C#c-1", "STATE")
            .await
            .expect("the state item");
        let stored = item["st"].as_b().expect("binary state").as_ref().to_vec();
        assert_eq!(stored[0], 1, "a repetitive state is stored deflated");
        assert!(stored.len() * 4 < state.len(), "{} bytes", stored.len());
        assert!(item.contains_key("gpk") && item.contains_key("gsk"));
        assert_eq!(
            store.load("c-1").await.unwrap().unwrap().state,
            state.as_bytes()
        );
        let second = Commit {
            expected_version: 1,
            ..contract::new("c-1")
        };
        assert_eq!(
            store.commit(second).await.unwrap(),
            CommitOutcome::Committed { version: 2 }
        );
        let item = raw_item(&raw, "C#c-1", "STATE")
            .await
            .expect("the state item");
        assert!(
            !item.contains_key("gpk") && !item.contains_key("gsk"),
            "{item:?}"
        );
        assert_eq!(
            item["st"].as_b().unwrap().as_ref(),
            b"\x00{}",
            "a small state stays plain"
        );
    });
}

#[test]
fn too_large_commits_are_refused_before_any_request() {
    let Some(endpoint) = moto_endpoint("too_large_commits_are_refused") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (store, meter) = fresh_store(&endpoint).await;
        let mut rng = fastrand::Rng::with_seed(3);
        // Random bytes do not compress: stored as they are, over the guard.
        let noise: Vec<u8> = (0..360_000).map(|_| rng.u8(..)).collect();
        let big = Commit {
            state: &noise,
            ..contract::new("c-1")
        };
        let result = store.commit(big).await;
        assert!(
            matches!(result, Err(StoreError::TooLarge { .. })),
            "{result:?}"
        );
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let sends: Vec<SendRecord> = (0..100).map(|i| send(&format!("k-{i}"), at)).collect();
        let many = Commit {
            sends: &sends,
            ..contract::new("c-1")
        };
        let result = store.commit(many).await;
        assert!(
            matches!(result, Err(StoreError::TooLarge { .. })),
            "{result:?}"
        );
        assert_eq!(meter.requests(), 0, "{:?}", meter.counts());
        assert_eq!(store.load("c-1").await.unwrap(), None);
    });
}

#[test]
fn dead_letters_keep_large_bodies_and_increasing_ids() {
    let Some(endpoint) = moto_endpoint("dead_letters_keep_large_bodies") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (store, _) = fresh_store(&endpoint).await;
        let letter = DeadLetter {
            id: String::new(),
            event_id: None,
            source: "eventbridge".to_owned(),
            reason: "unreadable".to_owned(),
            body: "x".repeat(DeadLetter::MAX_BODY_BYTES + 10),
            received_at: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
        };
        let a = store.record_dead_letter(&letter).await.unwrap();
        let b = store.record_dead_letter(&letter).await.unwrap();
        assert!(a < b, "{a} {b}");
        let letters = store.dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 2);
        assert_eq!(letters[0].body.len(), DeadLetter::MAX_BODY_BYTES);
        assert_eq!(letters[0].id, a);
        assert_eq!(store.dead_letters(1).await.unwrap().len(), 1);
        assert!(store.dead_letters(0).await.unwrap().is_empty());
    });
}

/// A send of `c-1` under `key`.
fn send(key: &str, at: chrono::DateTime<Utc>) -> SendRecord {
    SendRecord {
        idempotency_key: key.to_owned(),
        customer_id: "c-1".to_owned(),
        workflow: "welcome-series".to_owned(),
        step: "hello".to_owned(),
        kind: SendKind::Email,
        category: "marketing".to_owned(),
        tags: vec!["welcome".to_owned()],
        at,
        payload: b"From: shop\r\n\r\nhello".to_vec(),
    }
}
