//! `nudge report --db dynamodb://TABLE` on moto: the report fixture's events
//! (tests/fixtures/report) go through the runner into a `DynamoDbStore` and into an SQLite
//! store, the same SES feedback is counted on both (`record_feedback`, as the `ses-events`
//! function does), and the report of the table is the report of the file, in every format.
//!
//! A test binary of its own (scripts/test runs it with moto restarted): it needs
//! `NUDGE_MOTO_ENDPOINT` and the AWS environment (`AWS_ENDPOINT_URL`, fake credentials, a
//! region) that scripts/test sets; without `NUDGE_MOTO_ENDPOINT` it says it is skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nudge_core::engine::Engine;
use nudge_core::links::Signer;
use nudge_core::runner::Runner;
use nudge_core::store::{Feedback, FeedbackKind, Store};
use nudge_local::simulate::{Options, Runners, simulate};
use nudge_local::sqlite::SqliteStore;
use nudge_local::{LocalMailer, RecordingMailer};

const TABLE: &str = "nudge-report";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report")
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// The SES feedback both stores count: (event id, workflow, step, kind).
const FEEDBACK: [(&str, &str, &str, FeedbackKind); 5] = [
    ("ses:1", "welcome", "hello", FeedbackKind::Delivered),
    ("ses:2", "welcome", "hello", FeedbackKind::Delivered),
    ("ses:3", "welcome", "hello", FeedbackKind::Opened),
    ("ses:4", "welcome", "tips", FeedbackKind::Complained),
    // Counted once, however often SES delivers it.
    ("ses:4", "welcome", "tips", FeedbackKind::Complained),
];

/// Runs the fixture's events through the runner on `store`, then counts [`FEEDBACK`].
fn write<S: Store + Sync>(store: S, rt: &tokio::runtime::Runtime) {
    let loaded = nudge_core::workflow::load(&fixture().join("workflows")).unwrap();
    let project = loaded.project.expect("the fixture's workflows validate");
    let signer = Signer::new(b"report test key");
    let engine = Engine::new(&project, &signer);
    let mailer = LocalMailer::Record(RecordingMailer);
    let runner = Runner::new(&engine, store, Some(&mailer)).deliver_later();
    let options = Options {
        until: Some(t("2026-03-05T00:00:00Z")),
        ..Default::default()
    };
    let summary = simulate(
        Runners::Shared(&runner),
        &fixture().join("events.jsonl"),
        &options,
        |_, _| {},
        |_| {},
        |_, _| {},
    )
    .unwrap();
    assert_eq!(summary.rejected, 0, "{summary:?}");
    for (id, workflow, step, kind) in FEEDBACK {
        let feedback = Feedback {
            event_id: id,
            workflow,
            step,
            kind,
            at: t("2026-03-02T12:00:00Z"),
        };
        rt.block_on(runner.store().record_feedback(&feedback))
            .unwrap();
    }
}

fn report(db: &str, format: &str, endpoint: &str) -> String {
    let workflows = fixture().join("workflows");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["report", "--db", db, "--format", format, "--workflows"])
        .arg(&workflows)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .expect("nudge runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{db} {format}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_table_and_the_file_give_the_same_report() {
    let Some(endpoint) =
        nudge_testkit::moto::endpoint("the_table_and_the_file_give_the_same_report")
    else {
        return;
    };
    nudge_testkit::moto::reset(&endpoint);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dynamo = rt.block_on(async {
        let clients = nudge_aws::Clients::from_env(None).await;
        clients
            .create_table(TABLE, Duration::from_secs(30))
            .await
            .unwrap();
        clients.store(TABLE)
    });
    write(dynamo, &rt);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.db");
    write(SqliteStore::open(&file).unwrap(), &rt);

    let table = format!("dynamodb://{TABLE}");
    for format in ["json", "text", "markdown"] {
        let from_table = report(&table, format, &endpoint);
        let from_file = report(file.to_str().unwrap(), format, &endpoint);
        assert_eq!(from_table, from_file, "--format {format}");
    }

    // The journal's feedback and SES's counts add up: hello was delivered twice by SES's
    // count and once by c-1's `email.delivered`; tips's complaint is SES's, counted once.
    let rows: Vec<serde_json::Value> = report(&table, "json", &endpoint)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let step = |id: &str| {
        rows.iter()
            .find(|r| r["workflow"] == "welcome" && r["step"] == id)
            .unwrap()
            .clone()
    };
    let hello = step("hello");
    assert_eq!(
        (
            &hello["sent"],
            &hello["delivered"],
            &hello["opened"],
            &hello["bounced"]
        ),
        (&4.into(), &3.into(), &2.into(), &1.into()),
        "{hello}"
    );
    let tips = step("tips");
    assert_eq!(
        (&tips["sent"], &tips["complained"], &tips["unsubscribed"]),
        (&2.into(), &1.into(), &1.into()),
        "{tips}"
    );
}
