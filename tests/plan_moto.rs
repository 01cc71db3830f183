//! `nudge plan --db dynamodb://TABLE` against moto's DynamoDB, when `NUDGE_MOTO_ENDPOINT` names
//! a running moto server (scripts/test starts one per moto binary and sets it, with
//! `AWS_ENDPOINT_URL` and fake credentials, which the `nudge` process inherits).
//!
//! The sample runs under `simulate --db` to a time T; every customer's state is written into
//! a new table through `DynamoDbStore` (commits with their timers, as the runner writes them);
//! then `plan` on the table at `--at T` must say exactly what `plan` on the SQLite store says.
//! It also measures what reading every state costs (`Scan` requests and read units per
//! customer). Without `NUDGE_MOTO_ENDPOINT` the test says it is skipped and passes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nudge_aws::{Clients, RequestMeter};
use nudge_core::engine::state::CustomerState;
use nudge_core::store::{Commit, CommitOutcome, Store};
use nudge_local::SqliteStore;

const TABLE: &str = "nudge-plan-test";
const T: &str = "2026-03-15T00:00:00Z";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `nudge` with `args` in `cwd`: (exit code, stdout, stderr).
fn nudge(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("nudge runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The shipped workflows copied into `dir`, with a step where runs wait removed, a wait
/// shortened and a workflow disabled.
fn edited(dir: &Path) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let out = dir.join("edited");
    copy(&root().join("workflows"), &out);
    let edit = |file: &str, old: &str, new: &str| {
        let path = out.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(old), "{file}: {old}");
        std::fs::write(&path, text.replacen(old, new, 1)).unwrap();
    };
    edit("review-request.yaml", "  - id: wait-3d\n    wait: 3d\n", "");
    edit("welcome-series.yaml", "    wait: 2d", "    wait: 1d");
    edit("abandoned-checkout.yaml", "enabled: true", "enabled: false");
    out
}

#[test]
fn plan_on_dynamodb_says_what_plan_on_sqlite_says() {
    let Some(endpoint) = nudge_testkit::moto::endpoint("plan_on_dynamodb") else {
        return;
    };
    nudge_testkit::moto::reset(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let db = cwd.join("store.db");
    let base = root().join("workflows");
    let (code, _, err) = nudge(
        cwd,
        &[
            "simulate",
            "--events",
            root().join("events/sample.jsonl").to_str().unwrap(),
            "--workflows",
            base.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--until",
            T,
        ],
    );
    assert_eq!(code, 0, "{err}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let meter = RequestMeter::new();
    let customers = rt.block_on(async {
        let clients = Clients::from_env(Some(&meter)).await;
        clients
            .create_table(TABLE, Duration::from_secs(30))
            .await
            .unwrap();
        let table = clients.store(TABLE);
        let sqlite = SqliteStore::open(&db).unwrap();
        let mut copied = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let page = sqlite.customers(cursor.as_deref(), 100).await.unwrap();
            for (id, record) in &page.customers {
                let state: CustomerState = serde_json::from_slice(&record.state).unwrap();
                let outcome = table
                    .commit(Commit {
                        customer_id: id,
                        expected_version: 0,
                        state: &record.state,
                        next_wake: state.next_wake(),
                        event_id: None,
                        sends: &[],
                        journal: &[],
                    })
                    .await
                    .unwrap();
                assert_eq!(outcome, CommitOutcome::Committed { version: 1 });
                copied += 1;
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        // What reading every state costs, measured.
        meter.take();
        let mut read = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let page = table.customers(cursor.as_deref(), 10).await.unwrap();
            assert!(page.customers.len() <= 10);
            read += page.customers.len() as u64;
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(read, copied, "every customer read once");
        copied
    });
    let scan = meter.take().get("Scan").copied().unwrap_or_default();
    eprintln!(
        "customers() on DynamoDB: {customers} customers in {} Scan requests (pages of 10), {:.1} read units ({:.3} per customer)",
        scan.requests,
        scan.capacity,
        scan.capacity / customers as f64
    );
    assert!(scan.requests >= customers.div_ceil(10));

    let edited = edited(cwd);
    let plan = |store: &str| {
        let (code, out, err) = nudge(
            cwd,
            &[
                "plan",
                "--base",
                base.to_str().unwrap(),
                "--workflows",
                edited.to_str().unwrap(),
                "--db",
                store,
                "--at",
                T,
                "--format",
                "json",
            ],
        );
        assert_eq!(code, 0, "{store}: {err}");
        out
    };
    let on_sqlite = plan(db.to_str().unwrap());
    let on_dynamodb = plan(&format!("dynamodb://{TABLE}"));
    assert!(on_sqlite.contains("\"change\":\"step_removed\",\"step\":\"wait-3d\""));
    assert!(on_sqlite.contains("\"change\":\"runs_at_step\""));
    assert_eq!(on_dynamodb, on_sqlite);
}
