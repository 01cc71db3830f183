//! `DynamoDbStore` on the real SDK against moto's DynamoDB, when `NUDGE_MOTO_ENDPOINT` names a
//! running moto server (scripts/test starts one and sets it).
//!
//! Without `NUDGE_MOTO_ENDPOINT` these tests say they are skipped and pass (plain `cargo test`
//! needs no server); with it they run, and fail if moto cannot be reached. moto keeps one state
//! for the whole server, so the tests take a lock, and every store of the contract suite starts
//! from `POST /moto-api/reset` and a new table. moto never cancels a transaction for a conflict,
//! never throttles and its indexes are immediately consistent: those mappings are unit tests in
//! the crate (`dynamo::replay_tests`, on canned answers).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::RuntimeComponents;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use chrono::{TimeZone, Utc};
use nudge_aws::{DynamoDbStore, RequestMeter, create_table, dynamodb_client};
use nudge_core::engine::Engine;
use nudge_core::event::{StoreEvent, parse_event};
use nudge_core::links::Signer;
use nudge_core::mail::{MailError, Mailer, Receipt};
use nudge_core::runner::{Applied, Runner};
use nudge_core::store::{
    Commit, CommitOutcome, DeadLetter, SendKind, SendRecord, Store, StoreError,
};
use nudge_testkit::contract;

mod moto;

/// moto's state is one per server: one moto test at a time.
static MOTO: Mutex<()> = Mutex::new(());

const TABLE: &str = "nudge-test";

/// A client on `endpoint` with fake credentials and a fixed region, counting into `meter`.
/// Its requests reach moto one at a time ([`OneAtATime`]).
async fn client(endpoint: &str, meter: &RequestMeter) -> Client {
    let config = moto::sdk_config(endpoint).await;
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = config
        .to_builder()
        .http_client(SharedHttpClient::new(OneAtATime {
            inner: http,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }))
        .build();
    dynamodb_client(&config, Some(meter))
}

/// An HTTP client that sends one request at a time. DynamoDB applies each request atomically
/// (a conditional write's check and write are one step); moto's threaded server does not (two
/// conditional updates at once can both pass their check), so the contract's concurrent checks
/// (four claims of one send at once: exactly one wins) would fail on moto's race, not the
/// store's. One request at a time gives moto DynamoDB's per-request atomicity while the
/// callers still interleave at every request.
#[derive(Debug)]
struct OneAtATime {
    inner: SharedHttpClient,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Serial {
            inner: self.inner.http_connector(settings, components),
            lock: self.lock.clone(),
        })
    }
}

/// [`OneAtATime`]'s connector.
#[derive(Debug)]
struct Serial {
    inner: SharedHttpConnector,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl HttpConnector for Serial {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, lock) = (self.inner.clone(), self.lock.clone());
        HttpConnectorFuture::new(async move {
            let _one = lock.lock_owned().await;
            inner.call(request).await
        })
    }
}

/// A store on a new table of a freshly reset moto, and the meter of its client.
async fn fresh_store(endpoint: &str) -> (DynamoDbStore, RequestMeter) {
    moto::reset(endpoint);
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
    let Some(endpoint) = moto::endpoint("the_store_contract_passes_on_dynamodb") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(contract::run_all(async || fresh_store(&endpoint).await.0));
}

#[test]
fn the_state_is_compressed_and_the_timer_leaves_the_index_when_cleared() {
    let Some(endpoint) = moto::endpoint("the_state_is_compressed") else {
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
fn too_large_commits_and_ids_are_refused_before_any_request() {
    let Some(endpoint) = moto::endpoint("too_large_commits_are_refused") else {
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
        let long_id = "c".repeat(nudge_aws::MAX_CUSTOMER_ID_BYTES + 1);
        let result = store.commit(contract::new(&long_id)).await;
        assert!(
            matches!(result, Err(StoreError::InvalidRequest(_))),
            "{result:?}"
        );
        let result = store.load(&long_id).await;
        assert!(
            matches!(result, Err(StoreError::InvalidRequest(_))),
            "{result:?}"
        );
        assert_eq!(meter.requests(), 0, "{:?}", meter.counts());
        assert_eq!(store.load("c-1").await.unwrap(), None);
    });
}

#[test]
fn dead_letters_keep_large_bodies_and_increasing_ids() {
    let Some(endpoint) = moto::endpoint("dead_letters_keep_large_bodies") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (store, _) = fresh_store(&endpoint).await;
        let letter = DeadLetter {
            id: String::new(),
            event_id: None,
            customer_id: None,
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

/// A mailer that takes every email (the cost test counts DynamoDB, not SES).
struct TakeAll;

impl Mailer for TakeAll {
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        Ok(Receipt {
            message_id: format!("m-{}", send.idempotency_key),
        })
    }
}

/// The first event of type `kind` in the sample events, parsed.
fn sample_event(kind: &str, customer: &str) -> StoreEvent {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/sample.jsonl");
    let text = std::fs::read_to_string(path).expect("events/sample.jsonl");
    let line = text
        .lines()
        .find(|l| {
            l.contains(&format!(r#""detail-type": "{kind}""#))
                && l.contains(&format!(r#""id": "{customer}""#))
        })
        .unwrap_or_else(|| panic!("no {kind} of {customer} in the sample"));
    parse_event(line).expect("a sample event parses")
}

/// Prints the sizes DynamoDB bills the customer's items by: the state item and the send-log
/// entry `key` (MIME compressed as stored).
async fn print_sizes(raw: &Client, store: &DynamoDbStore, key: &str) {
    let state = store.load("c-1001").await.unwrap().unwrap();
    let state_item = raw_item(raw, "C#c-1001", "STATE")
        .await
        .expect("state item");
    let send_item = raw_item(raw, "C#c-1001", &format!("S#{key}"))
        .await
        .expect("send item");
    let sends = store.sends("c-1001").await.unwrap();
    eprintln!(
        "  state: {} bytes of JSON, item {} bytes; send: {} bytes of MIME, stored {} bytes, item {} bytes",
        state.state.len(),
        item_bytes(&state_item),
        sends[0].record.payload.len(),
        send_item["body"].as_b().unwrap().as_ref().len(),
        item_bytes(&send_item),
    );
    // The journal item of the customer's first commit (`J#<version>`).
    let journal_item = raw_item(raw, "C#c-1001", "J#00000000000000000001")
        .await
        .expect("journal item");
    eprintln!(
        "  journal: {} entries, stored {} bytes, item {} bytes",
        store.journal("c-1001").await.unwrap().len(),
        journal_item["j"].as_b().unwrap().as_ref().len(),
        item_bytes(&journal_item),
    );
}

/// An item's size as DynamoDB counts it, near enough (names plus values; a number as its digits).
fn item_bytes(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::L(l) => 3 + l.len() * 16,
                    _ => 1,
                }
        })
        .sum()
}

/// Prints what one input cost (requests and reported capacity per operation) and returns the
/// number of requests.
fn report(input: &str, meter: &RequestMeter) -> u64 {
    let counts = meter.take();
    let total: u64 = counts.values().map(|c| c.requests).sum();
    let detail: Vec<String> = counts
        .iter()
        .map(|(op, c)| format!("{op} x{} ({:.1} CU reported)", c.requests, c.capacity))
        .collect();
    eprintln!("{input}: {total} requests: {}", detail.join(", "));
    total
}

/// DynamoDB requests per input through the runner, with the shipped workflows (docs/COST.md
/// takes its counts from here: run with `--nocapture` to see them). moto's consumed capacity
/// is not DynamoDB's (it reports fixed units): the bill is computed from the item sizes.
#[test]
fn requests_per_input_through_the_runner() {
    let Some(endpoint) = moto::endpoint("requests_per_input_through_the_runner") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    let project = shipped_project();
    let signer = Signer::new(b"cost");
    let engine = Engine::new(&project, &signer);
    runtime().block_on(async {
        let (store, meter) = fresh_store(&endpoint).await;
        let runner = Runner::new(&engine, store.clone(), Some(TakeAll));
        let created = sample_event("customer.created", "c-1001");
        let applied = runner.event(&created, created.time).await.expect("applied");
        let sent = report("customer.created (starts welcome-series, sends)", &meter);
        let Applied::Done {
            deliveries,
            next_wake,
            ..
        } = applied
        else {
            panic!("a new event is applied")
        };
        assert_eq!(deliveries.len(), 1, "{deliveries:?}");
        // Load, commit, the suppression list's entry for the address the engine decided to
        // write to (sending rule 2 for addresses SES reported), claim, settle.
        assert!(sent <= 5, "an event that sends took {sent} requests");
        let raw = client(&endpoint, &RequestMeter::new()).await;
        print_sizes(&raw, &store, &deliveries[0].idempotency_key).await;
        meter.take();
        let due = next_wake.expect("the series waits");
        let page = store
            .due(nudge_core::store::due_shard("c-1001"), due, 10, None)
            .await
            .unwrap();
        assert_eq!(page.due, [(due, "c-1001".to_owned())]);
        report("due (one shard's page)", &meter);
        runner.wake("c-1001", due, due).await.expect("woken");
        let woken = report("timer firing (welcome-series step 2, sends)", &meter);
        assert!(woken <= 5, "a timer that sends took {woken} requests");
        let mut unwanted = sample_event("customer.updated", "c-1014");
        unwanted.customer_id = "c-1001".to_owned();
        let before = store.load("c-1001").await.unwrap().unwrap().version;
        meter.take();
        runner.event(&unwanted, due).await.expect("applied");
        let ignored = report("customer.updated (no workflow wants it)", &meter);
        assert!(ignored <= 2, "an unwanted event took {ignored} requests");
        assert_eq!(
            store.load("c-1001").await.unwrap().unwrap().version,
            before + 1
        );
        meter.take();
        runner.event(&unwanted, due).await.expect("applied");
        report("the same event again (a duplicate)", &meter);
    });
}

#[test]
fn a_cursor_of_the_timers_is_refused_by_the_send_sweep_and_the_other_way_round() {
    let Some(endpoint) = moto::endpoint("a_cursor_of_the_timers_is_refused") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (store, _) = fresh_store(&endpoint).await;
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let sends = [send("k-1", at), send("k-2", at)];
        let first = Commit {
            next_wake: Some(at),
            sends: &sends,
            ..contract::new("c-1")
        };
        assert_eq!(
            store.commit(first).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        let shard = nudge_core::store::due_shard("c-1");
        let timers = store.due(shard, at, 1, None).await.unwrap();
        let pending = store.pending_sends(shard, at, 1, None).await.unwrap();
        let (timer_cursor, send_cursor) = (timers.cursor.unwrap(), pending.cursor.unwrap());
        let wrong = store.pending_sends(shard, at, 1, Some(&timer_cursor)).await;
        assert!(
            matches!(wrong, Err(StoreError::InvalidRequest(_))),
            "{wrong:?}"
        );
        let wrong = store.due(shard, at, 1, Some(&send_cursor)).await;
        assert!(
            matches!(wrong, Err(StoreError::InvalidRequest(_))),
            "{wrong:?}"
        );
        let next = store
            .pending_sends(shard, at, 1, Some(&send_cursor))
            .await
            .unwrap();
        assert_eq!(next.due, [(at, "c-1".to_owned(), "k-2".to_owned())]);
    });
}

/// The shipped workflows (`workflows/`), loaded.
fn shipped_project() -> nudge_core::workflow::Project {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");
    nudge_core::workflow::load(std::path::Path::new(dir))
        .expect("the shipped workflows load")
        .project
        .expect("the shipped workflows are valid")
}

#[test]
fn the_send_guarantee_holds_on_dynamodb_under_crashes() {
    let Some(endpoint) = moto::endpoint("the_send_guarantee_holds_on_dynamodb") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    let project = shipped_project();
    let signer = Signer::new(b"guarantee");
    let engine = Engine::new(&project, &signer);
    runtime().block_on(nudge_testkit::guarantee::run_all(
        async || fresh_store(&endpoint).await.0,
        &engine,
    ));
}

/// The requests each call on feedback counts, parked inputs and erasure makes (the module docs
/// of `dynamo::aside` state them), and the items behind them: the feedback marker and the
/// parked input expire by TTL, erasing a customer leaves nothing in their partition and the
/// order another customer took since.
#[test]
fn feedback_parking_and_erasure_cost_what_the_docs_say() {
    let Some(endpoint) = moto::endpoint("feedback_parking_and_erasure_cost") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (store, meter) = fresh_store(&endpoint).await;
        let raw = client(&endpoint, &RequestMeter::new()).await;
        let ops = |meter: &RequestMeter| -> Vec<(String, u64)> {
            meter
                .take()
                .into_iter()
                .map(|(op, c)| (op, c.requests))
                .collect()
        };
        let one = |op: &str, n: u64| vec![(op.to_owned(), n)];
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let feedback = nudge_core::store::Feedback {
            event_id: "ses-1",
            workflow: "welcome-series",
            step: "hello",
            kind: nudge_core::store::FeedbackKind::Opened,
            at,
        };
        assert!(store.record_feedback(&feedback).await.unwrap());
        assert_eq!(
            ops(&meter),
            one("TransactWriteItems", 1),
            "a new feedback event"
        );
        assert!(!store.record_feedback(&feedback).await.unwrap());
        assert_eq!(ops(&meter), one("TransactWriteItems", 1), "a duplicate");
        let marker = raw_item(&raw, "F#ses-1", "FEEDBACK").await.expect("marker");
        let ttl: i64 = marker["ttl"].as_n().unwrap().parse().unwrap();
        let days = (ttl - Utc::now().timestamp()) / 86_400;
        assert!(
            (34..=35).contains(&days),
            "the marker expires in {days} days"
        );
        assert_eq!(store.feedback_counts().await.unwrap().len(), 1);
        assert_eq!(ops(&meter), one("Query", 1), "feedback_counts");

        let parked = nudge_core::store::Parked {
            order_id: "1001".to_owned(),
            event_id: "e-1".to_owned(),
            body: "{}".to_owned(),
            expires_at: at,
        };
        store.park(&parked).await.unwrap();
        assert_eq!(ops(&meter), one("PutItem", 1), "park");
        store.park(&parked).await.unwrap();
        assert_eq!(ops(&meter), one("PutItem", 1), "park again");
        let item = raw_item(&raw, "O#1001", "P#e-1").await.expect("parked");
        assert_eq!(item["ttl"].as_n().unwrap(), &at.timestamp().to_string());
        let before = at - chrono::Duration::seconds(1);
        assert_eq!(store.parked("1001", before).await.unwrap(), [parked]);
        assert_eq!(ops(&meter), one("Query", 1), "parked");
        store.unpark("1001", "e-1").await.unwrap();
        assert_eq!(ops(&meter), one("DeleteItem", 1), "unpark");

        let sends: Vec<SendRecord> = (0..30).map(|i| send(&format!("k-{i}"), at)).collect();
        let first = Commit {
            next_wake: Some(at),
            sends: &sends,
            ..contract::new("c-1")
        };
        assert_eq!(
            store.commit(first).await.unwrap(),
            CommitOutcome::Committed { version: 1 }
        );
        meter.take();
        store.link_order("1001", "c-1").await.unwrap();
        assert_eq!(ops(&meter), one("PutItem", 2), "link_order");
        assert!(raw_item(&raw, "C#c-1", "O#1001").await.is_some());
        store.link_order("1002", "c-1").await.unwrap();
        store.link_order("1002", "c-2").await.unwrap();
        meter.take();
        let erased = store.erase_customer("c-1").await.unwrap();
        assert_eq!(
            erased,
            nudge_core::store::Erased {
                state: true,
                sends: 30,
                orders: 1,
                journal_commits: 0,
                dead_letters: 0,
            }
        );
        // 1 state + 30 sends + 2 reverse links = 33 items: two batches; one conditional delete
        // per order linked; the partition read, and read again to find it empty (a commit that
        // raced the first read would be erased by a second round); the dead letters' partition
        // read for theirs (none).
        assert_eq!(
            ops(&meter),
            vec![
                ("BatchWriteItem".to_owned(), 2),
                ("DeleteItem".to_owned(), 2),
                ("Query".to_owned(), 3)
            ],
            "erase_customer"
        );
        let left = raw
            .query()
            .table_name(TABLE)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", AttributeValue::S("C#c-1".to_owned()))
            .send()
            .await
            .expect("Query");
        assert_eq!(left.count(), 0, "{:?}", left.items());
        assert_eq!(
            store.order_customer("1002").await.unwrap().as_deref(),
            Some("c-2")
        );
    });
}

#[test]
fn journal_items_past_their_ttl_or_without_a_customer_are_read_by_neither_journal_read() {
    let Some(endpoint) = moto::endpoint("journal_items_past_their_ttl") else {
        return;
    };
    let _moto = MOTO.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (store, meter) = fresh_store(&endpoint).await;
        let raw = client(&endpoint, &meter).await;
        let entry = |at: chrono::DateTime<Utc>, run: &str| nudge_core::journal::JournalEntry {
            at,
            workflow: Some("w".into()),
            run: Some(run.into()),
            step: None,
            zone: None,
            what: nudge_core::journal::Happened::RunStarted,
        };
        // The first item's TTL is set in the past below; the second's is 400 days ahead.
        let old = [entry(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            "r-old",
        )];
        let new = [entry(
            Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
            "r-new",
        )];
        for (version, journal) in [(0, &old), (1, &new)] {
            let commit = Commit {
                expected_version: version,
                journal,
                ..contract::new("c-1")
            };
            assert!(matches!(
                store.commit(commit).await.unwrap(),
                CommitOutcome::Committed { .. }
            ));
        }
        let expired = Utc
            .with_ymd_and_hms(2021, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        raw.update_item()
            .table_name(TABLE)
            .key("pk", AttributeValue::S("C#c-1".to_owned()))
            .key("sk", AttributeValue::S("J#00000000000000000001".to_owned()))
            .update_expression("SET #ttl = :t")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":t", AttributeValue::N(expired.to_string()))
            .send()
            .await
            .expect("UpdateItem");
        assert!(
            raw_item(&raw, "C#c-1", "J#00000000000000000001")
                .await
                .is_some(),
            "the expired item is still in the table (DynamoDB removes them within days)"
        );
        // A journal item of a customer without a state item (an erasure under way).
        let mut ghost = raw_item(&raw, "C#c-1", "J#00000000000000000002")
            .await
            .expect("the live item");
        ghost.insert("pk".to_owned(), AttributeValue::S("C#c-0".to_owned()));
        raw.put_item()
            .table_name(TABLE)
            .set_item(Some(ghost))
            .send()
            .await
            .expect("PutItem");
        assert_eq!(store.journal("c-1").await.unwrap(), new.to_vec());
        assert_eq!(store.journal("c-0").await.unwrap(), vec![]);
        for limit in [1, 100] {
            let mut entries = Vec::new();
            let mut cursor = None;
            loop {
                let page = store
                    .journal_page(None, cursor.as_deref(), limit)
                    .await
                    .unwrap();
                entries.extend(page.entries);
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
            assert_eq!(entries, vec![("c-1".to_owned(), new[0].clone())], "{limit}");
        }
    });
}
