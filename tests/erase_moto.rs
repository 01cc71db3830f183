//! `nudge erase` and `nudge dead-letters list|replay` on `dynamodb://TABLE` against moto: a
//! customer applied as a deployment applies them is erased with the dead letters naming them;
//! dead letters are listed with their customers; a replay needs the deployment's signing key,
//! applies a letter good now and leaves its email pending for the scheduler's sweep (nothing is
//! sent from the operator's machine), and keeps a letter still bad.
//!
//! Needs `NUDGE_MOTO_ENDPOINT` (and the AWS environment pointing at it: scripts/test sets
//! both); without it the test says it is skipped and passes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use nudge_aws::Clients;
use nudge_core::engine::Engine;
use nudge_core::event::{customer_named, parse_event};
use nudge_core::links::Signer;
use nudge_core::runner::Runner;
use nudge_core::store::{DeadLetter, SendStatus, Store};
use nudge_local::RecordingMailer;
use serde_json::{Value, json};

const TABLE: &str = "nudge-erase";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `nudge` with `args` and `env` from the repository root; exit code, stdout, stderr.
fn nudge(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .env_remove("NUDGE_SIGNING_KEY")
        .env_remove("NUDGE_UNSUBSCRIBE_URL")
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .expect("nudge runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A `customer.created` event of `customer` at `time`, living where it is noon now (the
/// replay runs on the wall clock, and marketing mail waits for the send window).
fn created(id: &str, customer: &str, time: &str) -> String {
    let offset = 12 - i64::from(Utc::now().hour());
    let zone = match offset {
        0 => "Etc/GMT".to_owned(),
        // `Etc/GMT-3` is three hours ahead of UTC.
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    json!({"version": "0", "id": id, "detail-type": "customer.created", "source": "store",
        "time": time, "detail": {"customer": {"id": customer,
        "email": format!("{customer}@example.com"), "first_name": "Ayse",
        "timezone": zone, "accepts_marketing": true}}})
    .to_string()
}

/// A dead letter of `body` as ingest keeps it.
fn letter(body: &str, reason: &str, at: DateTime<Utc>) -> DeadLetter {
    DeadLetter {
        id: String::new(),
        event_id: None,
        customer_id: customer_named(body),
        source: "eventbridge".to_owned(),
        reason: reason.to_owned(),
        body: body.to_owned(),
        received_at: at,
    }
}

#[test]
fn erase_and_dead_letters_work_on_a_dynamodb_table() {
    let Some(endpoint) =
        nudge_testkit::moto::endpoint("erase_and_dead_letters_work_on_a_dynamodb_table")
    else {
        return;
    };
    nudge_testkit::moto::reset(&endpoint);
    let project = nudge_core::workflow::load(&root().join("workflows"))
        .unwrap()
        .project
        .expect("the shipped workflows are valid");
    let signer = Signer::new(b"erase");
    let engine = Engine::new(&project, &signer);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let now = Utc::now();
    let store = runtime.block_on(async {
        let clients = Clients::from_env(None).await;
        clients
            .create_table(TABLE, Duration::from_secs(30))
            .await
            .expect("the table is created");
        clients.store(TABLE)
    });
    let (bad, good, still) = runtime.block_on(async {
        let runner = Runner::new(&engine, store.clone(), Some(RecordingMailer));
        let event = parse_event(&created("e-1", "c-1", &now.to_rfc3339())).unwrap();
        runner.event(&event, now).await.expect("applied");
        let mut broken: Value = serde_json::from_str(&created("e-1b", "c-1", "x")).unwrap();
        broken["time"] = json!("not a time");
        let bad = store
            .record_dead_letter(&letter(&broken.to_string(), "bad time", now))
            .await
            .unwrap();
        let fixed = created("e-2", "c-2", &now.to_rfc3339());
        let good = store
            .record_dead_letter(&letter(&fixed, "fixed since", now))
            .await
            .unwrap();
        let still = store
            .record_dead_letter(&letter("{not json", "not JSON", now))
            .await
            .unwrap();
        (bad, good, still)
    });
    let table = format!("dynamodb://{TABLE}");

    let (code, out, err) = nudge(
        &["dead-letters", "list", "--db", &table, "--format", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let listed: Vec<(&str, &Value)> = rows
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), &r["customer_id"]))
        .collect();
    assert_eq!(
        listed,
        vec![
            (bad.as_str(), &json!("c-1")),
            (good.as_str(), &json!("c-2")),
            (still.as_str(), &Value::Null)
        ]
    );

    // No signing key: refused, nothing replayed.
    let (code, _, err) = nudge(
        &["dead-letters", "replay", "--db", &table, "--id", &good],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("NUDGE_SIGNING_KEY"), "{err}");
    let key = (
        "NUDGE_SIGNING_KEY",
        "a-deployment-signing-key-of-32-bytes-or-more",
    );
    let url = ("NUDGE_UNSUBSCRIBE_URL", "https://unsubscribe.example.com/u");
    let (code, out, err) = nudge(
        &["dead-letters", "replay", "--db", &table, "--id", &good],
        &[key, url],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("applied e-2") && out.contains("1 left pending"),
        "{out}"
    );
    assert!(err.contains("left to the scheduler's sweep"), "{err}");
    runtime.block_on(async {
        assert!(store.load("c-2").await.unwrap().is_some());
        let sends = store.sends("c-2").await.unwrap();
        assert_eq!(sends.len(), 1);
        assert_eq!(
            sends[0].status,
            SendStatus::Pending,
            "nothing sent from here"
        );
        assert_eq!(sends[0].attempts, 0);
        assert!(store.dead_letter(&good).await.unwrap().is_none());
    });

    // The rest: still bad, kept as they were.
    let (code, out, _) = nudge(&["dead-letters", "replay", "--db", &table], &[key, url]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    // Their reasons were made up here: each is kept under a new id with the real one.
    assert!(out.lines().all(|l| l.contains("still rejected")), "{out}");
    assert!(
        out.contains(&format!("{bad}  eventbridge  still rejected")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{still}  eventbridge  still rejected")),
        "{out}"
    );
    assert_eq!(out.matches("; kept as ").count(), 2, "{out}");

    let (code, out, err) = nudge(
        &[
            "erase",
            "--db",
            &table,
            "--customer",
            "c-1",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let erased: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(erased["state"], true, "{erased}");
    assert_eq!(erased["sends"], 1, "{erased}");
    assert_eq!(erased["journal_commits"], 1, "{erased}");
    assert_eq!(erased["dead_letters"], 1, "{erased}");
    runtime.block_on(async {
        assert!(store.load("c-1").await.unwrap().is_none());
        assert!(store.journal("c-1").await.unwrap().is_empty());
        // The letter that names no customer is left, under the id its replay kept it with.
        let left: Vec<(String, Option<String>)> = store
            .dead_letters(10)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.body, l.customer_id))
            .collect();
        assert_eq!(left, vec![("{not json".to_owned(), None)]);
    });
    let (code, _, _) = nudge(&["explain", "--db", &table, "--customer", "c-1"], &[]);
    assert_eq!(code, 1, "explain knows no such customer any more");
}
