//! `nudge explain --db dynamodb://TABLE` against moto's DynamoDB: the runner applies two
//! sample customers' events to a table as a deployment does (events at their time, timers at
//! theirs), `simulate --db` applies the same events to an SQLite store, and `explain` tells
//! each customer's story from both stores the same, row for row.
//!
//! Needs `NUDGE_MOTO_ENDPOINT` (and the AWS environment pointing at it: scripts/test sets
//! both); without it the test says it is skipped and passes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nudge_aws::Clients;
use nudge_core::engine::Engine;
use nudge_core::event::{StoreEvent, parse_event};
use nudge_core::links::Signer;
use nudge_core::runner::Runner;
use nudge_core::store::{Store, all_due};
use nudge_local::RecordingMailer;

const TABLE: &str = "nudge-explain";
const CUSTOMERS: [&str; 2] = ["c-1008", "c-1018"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `nudge` with `args` from the repository root; exit code, stdout, stderr.
fn nudge(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("nudge runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The sample's lines of `CUSTOMERS`.
fn sample_lines() -> Vec<String> {
    let sample = std::fs::read_to_string(root().join("events/sample.jsonl")).unwrap();
    sample
        .lines()
        .filter(|l| {
            CUSTOMERS
                .iter()
                .any(|c| l.contains(&format!("\"id\": \"{c}\"")))
        })
        .map(str::to_owned)
        .collect()
}

/// Applies `events` (in time order) through `runner` as `simulate` does: the clock jumps to
/// each event's time, firing every timer due on the way, then runs on to `until`.
async fn apply<S: Store>(
    runner: &Runner<'_, S, RecordingMailer>,
    events: &[StoreEvent],
    until: DateTime<Utc>,
) {
    for event in events {
        fire_due(runner, event.time).await;
        runner.event(event, event.time).await.expect("applied");
    }
    fire_due(runner, until).await;
}

/// Fires every timer due at or before `until`, earliest first, each at its due time.
async fn fire_due<S: Store>(runner: &Runner<'_, S, RecordingMailer>, until: DateTime<Utc>) {
    loop {
        let due = all_due(runner.store(), until, 100).await.expect("due");
        let Some((at, customer)) = due.into_iter().next() else {
            return;
        };
        runner.wake(&customer, at, at).await.expect("woken");
    }
}

#[test]
fn explain_reads_a_dynamodb_table_as_it_reads_the_embedded_store() {
    let Some(endpoint) = nudge_testkit::moto::endpoint(
        "explain_reads_a_dynamodb_table_as_it_reads_the_embedded_store",
    ) else {
        return;
    };
    nudge_testkit::moto::reset(&endpoint);
    let lines = sample_lines();
    let mut events: Vec<StoreEvent> = lines.iter().map(|l| parse_event(l).unwrap()).collect();
    events.sort_by_key(|e| e.time);
    let last = events.last().unwrap().time;
    let until = last + TimeDelta::days(365);
    let project = nudge_core::workflow::load(&root().join("workflows"))
        .unwrap()
        .project
        .expect("the shipped workflows are valid");
    let signer = Signer::new(b"explain");
    let engine = Engine::new(&project, &signer);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clients = Clients::from_env(None).await;
        clients
            .create_table(TABLE, Duration::from_secs(30))
            .await
            .expect("the table is created");
        let runner = Runner::new(&engine, clients.store(TABLE), Some(RecordingMailer));
        apply(&runner, &events, until).await;
    });

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let db = dir.path().join("store.db");
    let until_text = until.to_rfc3339();
    let (code, _, err) = nudge(&[
        "simulate",
        "--events",
        file.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--until",
        &until_text,
    ]);
    assert_eq!(code, 0, "{err}");

    let table = format!("dynamodb://{TABLE}");
    for customer in CUSTOMERS {
        let explain = |store: &str| {
            let (code, out, err) = nudge(&[
                "explain",
                "--db",
                store,
                "--customer",
                customer,
                "--format",
                "json",
            ]);
            assert_eq!(code, 0, "{store}: {err}");
            // The "now" rows are at each store's clock (the table has none: the wall
            // clock): the rest is the story.
            out.lines()
                .filter(|l| !l.contains("\"action\":\"state."))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        };
        let from_dynamodb = explain(&table);
        assert!(
            from_dynamodb.contains("\"action\":\"email.sent\""),
            "{from_dynamodb}"
        );
        assert!(from_dynamodb.contains("\"action\":\"condition.checked\""));
        assert_eq!(from_dynamodb, explain(db.to_str().unwrap()), "{customer}");
    }
    let (code, _, err) = nudge(&["explain", "--db", &table, "--customer", "c-404"]);
    assert_eq!(code, 1, "{err}");
}
