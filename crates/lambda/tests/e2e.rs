//! The functions end to end: the real function binaries, run by `cargo lambda watch` against
//! moto, play one customer story (tests/fixtures/story/events.jsonl) under a virtual clock,
//! and the emails they send are the ones `nudge simulate` gives for the same events.
//!
//! What the driver does (scripts/test, stage "functions end to end", starts moto and one
//! `cargo lambda watch -p <function>` per function with tests/fixtures/story/watch.env, and
//! sets `NUDGE_E2E_WATCH=ingest=PORT,scheduler=PORT,...` (all five functions) and
//! `NUDGE_MOTO_ENDPOINT`):
//! 1. resets moto, creates the table, puts the signing key into SSM (a SecureString),
//!    verifies the sender;
//! 2. plays the events in time order (ties keep file order, as `simulate` does); before each
//!    event, fires every timer due at or before its time: it reads the earliest due timer from
//!    the store's due index ([`all_due`]) and invokes `scheduler` with that very time, until
//!    none is due by the event's time; so each timer fires at its own due time, as `simulate`
//!    fires it (ticking every minute would fire a timer up to a minute late, and a wait of 1h
//!    would then end at another time than in `simulate`). Then it invokes `ingest` with the
//!    event. After the last event it fires the timers due up to [`UNTIL`];
//! 3. runs `nudge simulate --until UNTIL --format json --outbox DIR` with the same signing key;
//! 4. compares the emails: the list of (time, customer, workflow, step) from the functions'
//!    send log equals simulate's `email.sent` rows, every send the functions logged was
//!    delivered, SES (moto) holds exactly as many messages, and each message SES took is byte
//!    for byte the outbox's `.eml` with the same `Message-ID`.
//!
//! Each invocation goes through `cargo lambda invoke` (a subprocess: the emulator's own
//! client), so what is tested is the function binary as Lambda runs it: its cold start (the
//! clients, the signing key from SSM), the runtime API and its JSON.
//!
//! `ingest` applies an event with the wall clock as its clock (as on AWS): the story's events
//! are all in the past, so each is applied at its own time. The scheduler takes its time from
//! its input, which is what makes the virtual clock possible.
//!
//! 5. then drives the other three functions' binaries on the same deployment: a Shopify
//!    delivery signed with the test secret (applied) and a badly signed one (401), a
//!    permanent SES bounce (the address suppressed), and a one-click unsubscribe POST signed
//!    with the deployment's key (the customer unsubscribed).
//!
//! 6. reads the functions' logs (`NUDGE_E2E_LOGS`: the folder of the watches' logs,
//!    .tools/e2e/) and fails if any holds an address or a name of the story or of the other
//!    functions' inputs.
//!
//! Limits: one story, two customers, the shipped workflows; the story itself goes through
//! `ingest` and `scheduler` (the other functions answer single invocations). A function process keeps what it read
//! at its cold start: run again against watches already running, the set-up (moto reset, the
//! same table name, the same key) gives the same deployment, so it still holds. Without `NUDGE_E2E_WATCH` and `NUDGE_MOTO_ENDPOINT`
//! the test says it is skipped (a plain `cargo test` starts no server).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use nudge_aws::Clients;
use nudge_core::links::Signer;
use nudge_core::store::{SendKind, SendStatus, Store, address_key, all_due};
use serde_json::Value;

/// The story's events.
const EVENTS: &str = "tests/fixtures/story/events.jsonl";
/// The environment the functions run with (the script passes it to `cargo lambda watch`).
const WATCH_ENV: &str = include_str!("../../../tests/fixtures/story/watch.env");
/// Where the clock stops after the last event (simulate's `--until`): past the birthday and
/// the last win-back email, before the next birthdays.
const UNTIL: &str = "2026-10-01T00:00:00Z";
/// The deployment's signing key (put into SSM for the functions, `NUDGE_SIGNING_KEY` for
/// `simulate`): at least 32 bytes, not the development key.
const SIGNING_KEY: &str = "nudge-e2e-story-signing-key-0123456789abcdef";
/// How often the scheduler is invoked again for one due time before the test gives up (a
/// scheduler that stops early leaves the rest to its next tick).
const TICKS_PER_DUE_TIME: usize = 3;
/// Scheduler invocations so far (reported).
static TICKS: AtomicUsize = AtomicUsize::new(0);

/// One email: when it was decided, for whom, by which step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Sent {
    at: String,
    customer: String,
    workflow: String,
    step: String,
}

#[tokio::test]
async fn the_functions_play_the_story_and_send_what_simulate_sends() {
    const TEST: &str = "the_functions_play_the_story_and_send_what_simulate_sends";
    let Some(watch) = watch_ports() else {
        eprintln!(
            "{TEST}: skipped, NUDGE_E2E_WATCH is not set (scripts/test starts cargo lambda watch and moto)"
        );
        return;
    };
    let Some(endpoint) = support::moto(TEST) else {
        return;
    };
    let env = watch_env();
    let table = env["NUDGE_TABLE"].clone();
    let parameter = env["NUDGE_SIGNING_KEY_PARAMETER"].clone();
    let root = workspace_root();

    // 1. A deployment on moto.
    support::reset(&endpoint);
    let clients = Clients::from_env(None).await;
    clients
        .create_table(&table, Duration::from_secs(10))
        .await
        .expect("the table is created on moto");
    support::put_parameter(&endpoint, &parameter, SIGNING_KEY);
    support::verify_sender(&endpoint, support::SENDER);
    let store = clients.store(&table);

    // 2. The story through the functions.
    let events = story(&root.join(EVENTS));
    let mut customers = BTreeSet::new();
    for (time, line, event) in &events {
        tick_to(&store, &watch, *time).await;
        let answer = invoke(&watch, "ingest", line);
        assert_eq!(
            answer["outcome"], "applied",
            "ingest applied {}: {answer}",
            event["id"]
        );
        if let Some(c) = event["detail"]["customer"]["id"].as_str() {
            customers.insert(c.to_owned());
        }
    }
    let until = time(UNTIL);
    tick_to(&store, &watch, until).await;
    // One more tick at the end, as simulate retries what is pending at its end: it sweeps a
    // send that the last firing logged but its sweep did not see yet (the index is
    // eventually consistent on AWS).
    invoke(&watch, "scheduler", &tick_input(until));
    assert!(
        all_due(&store, until, 100).await.expect("due").is_empty(),
        "every timer due by {UNTIL} fired"
    );

    let mut functions = Vec::new();
    for customer in &customers {
        for entry in store.sends(customer).await.expect("the send log") {
            let record = &entry.record;
            if !matches!(record.kind, SendKind::Email) {
                continue;
            }
            assert_eq!(
                entry.status,
                SendStatus::Sent,
                "{}/{} of {customer} was delivered",
                record.workflow,
                record.step
            );
            functions.push(Sent {
                at: record.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                customer: customer.clone(),
                workflow: record.workflow.clone(),
                step: record.step.clone(),
            });
        }
    }
    functions.sort();

    // 3. The same events through `nudge simulate`.
    let outbox = tempfile::tempdir().expect("an outbox folder");
    let simulated = simulate(&root, outbox.path());

    // 4. The same emails, at the same times, with the same bytes.
    assert_eq!(
        functions, simulated,
        "the functions' emails (left) are simulate's (right)"
    );
    let workflows: BTreeSet<&str> = functions.iter().map(|s| s.workflow.as_str()).collect();
    for w in [
        "abandoned-checkout",
        "birthday-reward",
        "review-request",
        "shipment-updates",
        "welcome-series",
        "win-back",
    ] {
        assert!(workflows.contains(w), "the story makes {w} send");
    }

    let ses = support::raw_messages(&endpoint);
    assert_eq!(
        ses.len(),
        functions.len(),
        "SES took one message per email, no more"
    );
    eprintln!(
        "{} emails from {} workflows, {} scheduler ticks, {} events",
        functions.len(),
        workflows.len(),
        TICKS.load(Ordering::Relaxed),
        events.len()
    );
    let eml = outbox_messages(outbox.path());
    assert_eq!(eml.len(), simulated.len(), "one .eml per email");
    for (_, raw) in &ses {
        let id = message_id(raw.as_bytes()).expect("SES's message has a Message-ID");
        let expected = eml
            .get(&id)
            .unwrap_or_else(|| panic!("the outbox has no message {id}"));
        if raw.as_bytes() != expected.as_slice() {
            panic!(
                "the message {id} differs between SES (functions) and the outbox (simulate):\n{}",
                first_difference(raw.as_bytes(), expected)
            );
        }
    }

    // 5. The other functions, as binaries, on the same deployment.
    the_other_functions_answer(&watch, &endpoint, &store, &env).await;

    // 6. What the function processes wrote (each watch's log) names no customer.
    the_logs_hold_no_customer_data(&root, &events);
}

/// The fixtures [`the_other_functions_answer`] sends, besides the story.
const OTHER_INPUTS: [&str; 3] = [
    "tests/fixtures/shopify/invoke/customers-create.json",
    "tests/fixtures/shopify/invoke/bad-signature.json",
    "tests/fixtures/ses/invoke/bounce-permanent.json",
];

/// Every address and name of the story and of [`OTHER_INPUTS`] is absent from the logs of the
/// watches (`NUDGE_E2E_LOGS`, the folder scripts/test writes them to: each function process's
/// own output, at the `RUST_LOG` of watch.env, and cargo-lambda's). Without the variable the
/// scan is skipped, saying so (a watch started by hand logs to a terminal).
fn the_logs_hold_no_customer_data(root: &Path, events: &[(DateTime<Utc>, String, Value)]) {
    let Ok(folder) = std::env::var("NUDGE_E2E_LOGS") else {
        eprintln!("the functions' logs are not scanned: NUDGE_E2E_LOGS is not set");
        return;
    };
    let mut inputs = nudge_testkit::pii::CustomerData::new();
    for (_, _, event) in events {
        inputs.add_json(event);
    }
    for path in OTHER_INPUTS {
        let text =
            std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        inputs.add_text(&text);
    }
    let inputs = inputs.except([support::SENDER, "support@shop.example.com"]);
    let mut logs = 0;
    let mut text = String::new();
    for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{folder}: {e}")) {
        let path = entry.expect("a log").path();
        if path.extension().is_some_and(|e| e == "log") {
            logs += 1;
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            ));
        }
    }
    assert!(logs > 0, "no log in {folder}");
    eprintln!(
        "{logs} logs of the functions ({} lines) scanned for {} addresses and {} names",
        text.lines().count(),
        inputs.addresses().len(),
        inputs.names().len()
    );
    inputs.assert_absent("the functions' logs (cargo lambda watch)", &text);
}

/// The Shopify webhook, SES feedback and unsubscribe functions, each through its real binary
/// with a committed invocation: a delivery signed with the test secret is applied and a badly
/// signed one refused; a permanent bounce suppresses its address; a one-click POST signed with
/// the deployment's key unsubscribes a customer of the story.
async fn the_other_functions_answer(
    watch: &BTreeMap<String, u16>,
    endpoint: &str,
    store: &impl Store,
    env: &BTreeMap<String, String>,
) {
    let root = workspace_root();
    let fixture = |path: &str| {
        std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let stack = &env["NUDGE_STACK"];
    support::put_parameter(
        endpoint,
        &format!("/{stack}/shopify/secret"),
        "nudge-test-shopify-secret",
    );
    let signed = invoke(
        watch,
        "shopify-webhook",
        &fixture("tests/fixtures/shopify/invoke/customers-create.json"),
    );
    assert_eq!(signed["statusCode"], 200, "a signed delivery: {signed}");
    assert!(
        store
            .load("706405506930370084")
            .await
            .expect("load")
            .is_some(),
        "the Shopify customer was created"
    );
    let forged = invoke(
        watch,
        "shopify-webhook",
        &fixture("tests/fixtures/shopify/invoke/bad-signature.json"),
    );
    assert_eq!(
        forged["statusCode"], 401,
        "a badly signed delivery: {forged}"
    );

    let bounced = invoke(
        watch,
        "ses-events",
        &fixture("tests/fixtures/ses/invoke/bounce-permanent.json"),
    );
    assert_eq!(
        bounced["outcome"], "counted",
        "a permanent bounce: {bounced}"
    );
    assert!(
        store
            .suppression(&address_key("bounce@simulator.amazonses.com"))
            .await
            .expect("suppression")
            .is_some(),
        "the bounced address is suppressed"
    );

    let base = url::Url::parse(&env["NUDGE_UNSUBSCRIBE_URL"]).expect("a URL");
    let link = Signer::new(SIGNING_KEY.as_bytes()).unsubscribe_url(&base, "c-2001");
    let query = link.split_once('?').expect("a query").1;
    let request = serde_json::json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "nudgeunsubscribe",
            "domainName": "nudgeunsubscribe.lambda-url.us-east-1.on.aws",
            "domainPrefix": "nudgeunsubscribe",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "mail provider"},
            "requestId": "req-unsubscribe-e2e",
            "routeKey": "$default",
            "stage": "$default",
            "time": "02/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1_796_205_600_000_u64
        },
        "body": "List-Unsubscribe=One-Click",
        "isBase64Encoded": false
    });
    let done = invoke(watch, "unsubscribe", &request.to_string());
    assert_eq!(done["statusCode"], 200, "a one-click unsubscribe: {done}");
    let record = store.load("c-2001").await.expect("load").expect("c-2001");
    let state: Value = serde_json::from_slice(&record.state).expect("a JSON state");
    assert!(
        !state["unsubscribed_at"].is_null(),
        "c-2001 is unsubscribed: {}",
        state["unsubscribed_at"]
    );
}

/// `NUDGE_E2E_WATCH`: `function=port,...`, each function's `cargo lambda watch` port.
fn watch_ports() -> Option<BTreeMap<String, u16>> {
    let text = std::env::var("NUDGE_E2E_WATCH").ok()?;
    let mut ports = BTreeMap::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (name, port) = pair
            .split_once('=')
            .unwrap_or_else(|| panic!("NUDGE_E2E_WATCH is function=port,...: {text}"));
        let port = port
            .parse()
            .unwrap_or_else(|_| panic!("NUDGE_E2E_WATCH: `{port}` is not a port"));
        ports.insert(name.to_owned(), port);
    }
    Some(ports)
}

/// watch.env as a map.
fn watch_env() -> BTreeMap<String, String> {
    WATCH_ENV
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE lines");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

/// The story's events in the order `simulate` applies them: by time, ties in file order.
fn story(path: &Path) -> Vec<(DateTime<Utc>, String, Value)> {
    let text = std::fs::read_to_string(path).expect("the story's events");
    let mut events: Vec<_> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("an event per line");
            let at = time(event["time"].as_str().expect("a time"));
            (at, line.to_owned(), event)
        })
        .collect();
    events.sort_by_key(|(at, _, _)| *at);
    events
}

/// Fires every timer due at or before `to`, each at its own due time (see the module
/// documentation).
async fn tick_to(store: &impl Store, watch: &BTreeMap<String, u16>, to: DateTime<Utc>) {
    let mut last: Option<(DateTime<Utc>, usize)> = None;
    loop {
        let due = all_due(store, to, 100).await.expect("the due index");
        let Some((at, _)) = due.first() else { return };
        let tries = match last {
            Some((t, n)) if t == *at => n + 1,
            _ => 1,
        };
        assert!(
            tries <= TICKS_PER_DUE_TIME,
            "the scheduler invoked {TICKS_PER_DUE_TIME} times at {at} left timers due then"
        );
        last = Some((*at, tries));
        invoke(watch, "scheduler", &tick_input(*at));
    }
}

/// The scheduler's input for a tick at `at` (what the SAM template's schedule passes).
fn tick_input(at: DateTime<Utc>) -> String {
    serde_json::json!({ "time": at.to_rfc3339_opts(SecondsFormat::Secs, true) }).to_string()
}

/// Invokes `function` through `cargo lambda invoke` with `payload`; its answer.
fn invoke(watch: &BTreeMap<String, u16>, function: &str, payload: &str) -> Value {
    let port = watch
        .get(function)
        .unwrap_or_else(|| panic!("NUDGE_E2E_WATCH names no port for {function}"));
    if function == "scheduler" {
        TICKS.fetch_add(1, Ordering::Relaxed);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["lambda", "invoke", function, "--color", "never"])
        .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
        .arg(port.to_string())
        .args(["--output-format", "json", "--data-ascii", payload])
        .output()
        .expect("cargo lambda invoke runs (scripts/test installs it into .tools/cargo-lambda)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{function} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{function} answered no JSON ({e}): {stdout}"))
}

/// `nudge simulate` on the story (the workspace's own `nudge`, through `cargo run`, so that it
/// is the current one: a no-op build when the test stages built it); its `email.sent` rows.
fn simulate(root: &Path, outbox: &Path) -> Vec<Sent> {
    // `NUDGE_BIN`: a built `nudge` (scripts/test passes the one its cargo test stage built);
    // else `cargo run`, which builds it (the root package alone: over a minute on 2 cores).
    let mut command = match std::env::var_os("NUDGE_BIN") {
        Some(bin) => Command::new(bin),
        None => {
            let mut cargo =
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
            cargo.args(["run", "--locked", "--quiet", "--bin", "nudge", "--"]);
            cargo
        }
    };
    let output = command
        .current_dir(root)
        .args(["simulate", "--events", EVENTS, "--workflows", "workflows/"])
        .args(["--until", UNTIL, "--format", "json", "--outbox"])
        .arg(outbox)
        .env("NUDGE_SIGNING_KEY", SIGNING_KEY)
        .output()
        .expect("nudge runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "nudge simulate failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut sent: Vec<Sent> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON row"))
        .filter(|row| row["action"] == "email.sent")
        .map(|row| {
            let text = |f: &str| row[f].as_str().unwrap_or_default().to_owned();
            Sent {
                at: text("at"),
                customer: text("customer"),
                workflow: text("workflow"),
                step: text("step"),
            }
        })
        .collect();
    sent.sort();
    sent
}

/// The outbox's messages by `Message-ID`.
fn outbox_messages(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut messages = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("the outbox") {
        let path = entry.expect("an outbox entry").path();
        if path.extension().is_some_and(|e| e == "eml") {
            let bytes = std::fs::read(&path).expect("an .eml");
            let id = message_id(&bytes)
                .unwrap_or_else(|| panic!("{} has no Message-ID", path.display()));
            messages.insert(id, bytes);
        }
    }
    messages
}

/// The `Message-ID` header's value (in the header block, unfolded).
fn message_id(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("message-id")
            .then(|| value.trim().to_owned())
    })
}

/// Where two messages first differ, with the lines around it.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let around = |m: &[u8]| {
        let start = at.saturating_sub(200);
        let end = (at + 200).min(m.len());
        String::from_utf8_lossy(&m[start.min(end)..end]).into_owned()
    };
    format!(
        "lengths {} and {}, first difference at byte {at}\n--- SES:\n{}\n--- outbox:\n{}",
        a.len(),
        b.len(),
        around(a),
        around(b)
    )
}
