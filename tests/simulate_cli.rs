//! `nudge simulate` as a user runs it: the sample, formats, bad input, `--db`, `--until`,
//! `--outbox`.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::{nudge, root};
use crate::scenarios::{Scenario, WELCOME, customer, ev};

pub(super) fn write_events(dir: &Path, lines: &[String]) -> std::path::PathBuf {
    let path = dir.join("events.jsonl");
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    path
}

/// Runs `nudge simulate --format json` on `events` with the scenario's workflows and the store
/// in `db`, until `until`.
pub(super) fn simulate_json(
    cwd: &Path,
    events: &Path,
    workflows: &Path,
    db: &Path,
    until: &str,
) -> (i32, String, String) {
    let args = [
        "simulate",
        "--events",
        events.to_str().unwrap(),
        "--workflows",
        workflows.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
        "--until",
        until,
    ];
    nudge(cwd, &args, &[])
}

#[test]
fn the_sample_runs_through_the_shipped_workflows() {
    let (code, out, err) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            "events/sample.jsonl",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every shipped workflow sends mail, and the rows come in time order.
    for w in [
        "welcome-series",
        "shipment-updates",
        "review-request",
        "win-back",
        "birthday-reward",
    ] {
        assert!(
            rows.iter()
                .any(|r| r["workflow"] == w && r["action"] == "email.sent"),
            "{w} sent nothing"
        );
    }
    let times: Vec<&str> = rows.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "rows out of time order"
    );
    // Both branches of the branching workflows are taken.
    for step in [
        "delivered",
        "still-on-its-way",
        "vip-last-call",
        "last-call",
        "first-order-a",
        "first-order-b",
    ] {
        assert!(
            rows.iter()
                .any(|r| r["step"] == step && r["action"] == "email.sent"),
            "no {step}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r["workflow"] == "review-request" && r["reason"] == "goal")
    );
    // Run-level rows carry no step; times are whole seconds in UTC.
    assert!(
        rows.iter()
            .filter(|r| r["action"] == "run.started")
            .all(|r| r.get("step").is_none())
    );
    assert!(times.iter().all(|t| t.len() == 20 && t.ends_with('Z')));
    // The summary goes to stderr in JSON mode; the duplicate in the sample is reported there.
    assert!(
        err.contains("Summary: 252 events applied (1 duplicate, 0 rejected)"),
        "{err}"
    );
    assert!(err.contains("was seen before; ignored"), "{err}");
}

#[test]
fn the_text_timeline_ends_with_a_summary_a_marketer_reads() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let events = write_events(
        tmp.path(),
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("Ayşe"),
        )
        .to_string()],
    );
    let wf = s.workflows_dir();
    let (code, out, _) = nudge(
        tmp.path(),
        &[
            "simulate",
            "--events",
            events.to_str().unwrap(),
            "--workflows",
            wf.to_str().unwrap(),
            "--until",
            "2026-03-10T00:00:00Z",
        ],
        &[],
    );
    assert_eq!(code, 0);
    insta::assert_snapshot!("simulate_text", out);
}

/// A good line, five bad ones (not JSON, a field missing, a field of the wrong type, a time
/// that cannot be read, over EventBridge's size limit), and another good line.
fn good_and_bad_lines() -> Vec<String> {
    let good = |i: usize| {
        ev(
            &format!("e{i}"),
            "customer.created",
            "2026-03-02T07:00:00Z",
            &format!("c{i}"),
            customer("A"),
        )
        .to_string()
    };
    let bad = |id: &str, customer_id: &str| {
        ev(
            id,
            "customer.created",
            "2026-03-02T07:00:00Z",
            customer_id,
            customer("A"),
        )
    };
    let mut no_customer = ev(
        "bad-2",
        "customer.created",
        "2026-03-02T07:00:00Z",
        "x",
        json!({}),
    );
    no_customer["detail"]
        .as_object_mut()
        .unwrap()
        .remove("customer");
    let mut wrong_type = bad("bad-3", "c9");
    wrong_type["detail"]["customer"]["accepts_marketing"] = json!("yes");
    let mut bad_time = bad("bad-4", "c8");
    bad_time["time"] = json!("yesterday");
    let mut huge = bad("bad-5", "c7");
    huge["detail"]["padding"] = json!("x".repeat(300 * 1024));
    vec![
        good(1),
        "{not json".to_owned(),
        no_customer.to_string(),
        wrong_type.to_string(),
        bad_time.to_string(),
        huge.to_string(),
        good(2),
    ]
}

/// What stderr says of each bad line of [`good_and_bad_lines`], in line order.
const REJECTIONS: [&str; 5] = [
    ":2: rejected: event (id unreadable): not valid JSON",
    ":3: rejected: event `bad-2`: detail.customer: missing",
    ":4: rejected: event `bad-3`: detail.customer.accepts_marketing: expected true/false",
    ":5: rejected: event `bad-4`: time: `yesterday` is not an RFC 3339 time",
    ":6: rejected: event `bad-5`: 307482 bytes, over EventBridge's limit",
];

#[test]
fn bad_lines_are_reported_kept_and_do_not_stop_the_rest() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let events = write_events(tmp.path(), &good_and_bad_lines());
    let db = tmp.path().join("store.db");
    let wf = s.workflows_dir();
    let (code, out, err) = simulate_json(tmp.path(), &events, &wf, &db, "2026-03-03T00:00:00Z");
    assert_eq!(code, 1, "rejected lines make the exit code 1");
    // In file line order, as an operator fixing the file reads it (the run meets them in
    // time order, and a line whose time cannot be read first).
    let rejected: Vec<&str> = err.lines().filter(|l| l.contains(": rejected: ")).collect();
    assert_eq!(rejected.len(), 5, "{err}");
    for (line, want) in rejected.iter().zip(REJECTIONS) {
        assert!(line.contains(want), "{line}\n  should contain {want}");
        assert!(line.ends_with("(kept as a dead letter)"));
    }
    // The events around them went on.
    let sent = out.lines().filter(|l| l.contains("email.sent")).count();
    assert_eq!(sent, 2, "{out}");
    // Every bad line is kept as a dead letter.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let kept: i64 = conn
        .query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 5);
}

#[test]
fn a_db_store_continues_from_its_state_and_clock() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let wf = s.workflows_dir();
    let run = |events: &[String], until: &str| {
        let file = write_events(tmp.path(), events);
        simulate_json(tmp.path(), &file, &wf, &db, until)
    };
    let (code, out, _) = run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        )
        .to_string()],
        "2026-03-03T00:00:00Z",
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");
    // The second run prints only what happens in it: the pending wait fires; an event older
    // than the clock says so, and is applied at the later of its own time and its customer's
    // last applied time (c2 is new: at its own time).
    let late = ev(
        "e2",
        "customer.created",
        "2026-03-01T00:00:00Z",
        "c2",
        customer("B"),
    )
    .to_string();
    let (code, out, err) = run(&[late], "2026-03-05T00:00:00Z");
    assert_eq!(code, 0);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["at"], "2026-03-01T00:00:00Z");
    assert_eq!(rows[0]["customer"], "c2");
    assert!(err.contains("event e2 happened at 2026-03-01T00:00:00Z before the store's clock (2026-03-03T00:00:00Z); applied at the later of its time and the customer's last applied time"), "{err}");
    assert!(
        rows.iter().any(|r| r["customer"] == "c1"
            && r["step"] == "story"
            && r["at"] == "2026-03-04T07:00:00Z"),
        "{out}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r["customer"] == "c1" && r["step"] == "hello"),
        "nothing from the first run is printed again"
    );
}

#[test]
fn events_after_until_are_not_processed() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "e2",
                "customer.created",
                "2026-03-09T07:00:00Z",
                "c2",
                customer("B"),
            ),
        ],
        "2026-03-04T07:00:00Z",
    );
    // The timer due exactly at --until fires; the later event does not.
    assert!(
        rows.iter()
            .any(|r| r.starts_with("2026-03-04T07:00:00Z c1 welcome/story email.sent")),
        "{rows:#?}"
    );
    assert!(!rows.iter().any(|r| r.contains(" c2 ")), "{rows:#?}");
}

#[test]
fn the_outbox_holds_real_mail_that_a_mail_parser_reads() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let outbox = tempfile::tempdir().unwrap();
    let mut c = customer("Ayşe");
    c["customer"]["last_name"] = json!("Yılmaz\r\nBcc: evil@example.com");
    s.run_with_outbox(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c1",
            c,
        )],
        "2026-03-10T00:00:00Z",
        Some(outbox.path()),
    );
    let mut files: Vec<_> = std::fs::read_dir(outbox.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2);
    let bytes = std::fs::read(&files[0]).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(msg.subject(), Some("Welcome Ayşe"));
    assert_eq!(
        msg.from().unwrap().first().unwrap().address(),
        Some("hello@shop.example.com")
    );
    let to = msg.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("aye@example.com"));
    assert!(msg.header("Bcc").is_none(), "a name can never add a header");
    let unsubscribe = msg
        .header("List-Unsubscribe")
        .unwrap()
        .as_text_list()
        .map(|l| l.join(","))
        .or_else(|| msg.header_raw("List-Unsubscribe").map(str::to_owned))
        .unwrap();
    assert!(
        unsubscribe.contains("https://shop.example.com/unsubscribe?c=c1"),
        "{unsubscribe}"
    );
    assert_eq!(
        msg.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        msg.body_text(0)
            .unwrap()
            .contains("1 Test Street, Testville")
    );
    assert!(msg.body_html(0).unwrap().contains("Unsubscribe"));
}

/// Synthetic events for 300 customers over 150 days, with bad and duplicate lines: a
/// duplicate of an early event late in the file, a bad line, a line without a time, and the
/// ids of two events again for other customers (who may belong to another thread) at the same
/// time (the same chunk of lines) and 60 days later (a later chunk).
fn lines_for_threads() -> Vec<String> {
    let mut events = Vec::new();
    let synth = nudge_synth::SynthOptions {
        customers: 300,
        days: 150,
        seed: 11,
        ..Default::default()
    };
    nudge_synth::generate(&synth, &mut events).unwrap();
    let mut lines: Vec<String> = String::from_utf8(events)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.push(lines[10].clone());
    lines.insert(500, "{not json".to_owned());
    lines.insert(
        900,
        r#"{"id":"x","detail-type":"order.placed","detail":{}}"#.to_owned(),
    );
    // The first one of each id wins.
    for (line, days) in [(40, 0), (60, 60)] {
        let original: serde_json::Value = serde_json::from_str(&lines[line]).unwrap();
        let time = chrono::DateTime::parse_from_rfc3339(original["time"].as_str().unwrap())
            .unwrap()
            + chrono::Duration::days(days);
        for customer in ["c-1", "c-2", "c-3"] {
            let mut copy = original.clone();
            copy["time"] = time.to_rfc3339().into();
            copy["detail"]["customer"]["id"] = customer.into();
            lines.push(copy.to_string());
        }
    }
    lines
}

/// The signature of customer `c1`'s unsubscribe link under the development key, computed
/// outside Nudge from the key as documented (`nudge_core::links::DEVELOPMENT_KEY`):
/// `hmac.new(key, b"unsubscribe\0c1", hashlib.sha256).digest()[:16]` in Python, in base64url
/// without padding.
const DEV_SIGNATURE_C1: &str = "kpjE5JsniuGKaGou0rl10Q";

/// Runs the real binary without `NUDGE_SIGNING_KEY` (whatever the caller's environment) on
/// one `customer.created` event for `c1`, with an outbox in `outbox`; returns the
/// `List-Unsubscribe` header of every email, in file name order.
fn unsubscribe_headers_of_a_run(outbox: &Path) -> Vec<String> {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let events = write_events(
        tmp.path(),
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        )
        .to_string()],
    );
    let wf = s.workflows_dir();
    let args = [
        "simulate",
        "--events",
        events.to_str().unwrap(),
        "--workflows",
        wf.to_str().unwrap(),
        "--outbox",
        outbox.to_str().unwrap(),
        "--until",
        "2026-03-10T00:00:00Z",
    ];
    let done = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(tmp.path())
        .env_remove("NUDGE_SIGNING_KEY")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{err}");
    assert!(err.contains("signed with the development key"), "{err}");
    let mut files: Vec<_> = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
            msg.header_raw("List-Unsubscribe")
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect()
}

/// Links signed with the development key in one run must verify in the next, in another
/// process or another release: two processes sign alike, and as the documented key does.
#[test]
fn the_development_key_is_the_same_in_every_process() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let once = unsubscribe_headers_of_a_run(first.path());
    let again = unsubscribe_headers_of_a_run(second.path());
    assert_eq!(once.len(), 2, "{once:?}");
    assert_eq!(
        once, again,
        "two processes signed the same links differently"
    );
    let want = format!("<https://shop.example.com/unsubscribe?c=c1&s={DEV_SIGNATURE_C1}>");
    for header in &once {
        assert_eq!(header, &want);
    }
}

/// A send log: each email with where it stands.
type SendLog = Vec<nudge_core::store::SendEntry>;

/// Timers: when, and whose.
type Timers = Vec<(chrono::DateTime<chrono::Utc>, String)>;

/// What a run with some number of threads gave, to compare with another.
struct ThreadsRun {
    /// The timeline.
    rows: Vec<String>,
    /// The notices, as `Debug`.
    notices: Vec<String>,
    summary: nudge_local::simulate::Summary,
    /// Every store's send log (customers `c-1` to `c-300`), by idempotency key.
    sends: SendLog,
    /// Every store's timers, sorted.
    timers: Vec<(chrono::DateTime<chrono::Utc>, String)>,
}

/// Runs `file` on `shards` threads that share one store or each have their own, in `dir`.
fn run_with_threads(
    engine: &nudge_core::engine::Engine<'_>,
    dir: &Path,
    file: &Path,
    shards: usize,
    own_stores: bool,
) -> ThreadsRun {
    use nudge_core::runner::Runner;
    use nudge_local::simulate::{Options, Runners, simulate};
    use nudge_local::{RecordingMailer, SqliteOptions, SqliteStore};

    let stores = if own_stores { shards } else { 1 };
    let runners: Vec<Runner<'_, _, RecordingMailer>> = (0..stores)
        .map(|i| {
            let path = dir.join(format!("s{shards}-{own_stores}-{i}.db"));
            let store =
                SqliteStore::open_with(&path, SqliteOptions::default().batch(1_000)).unwrap();
            Runner::new(engine, store, Some(RecordingMailer)).deliver_later()
        })
        .collect();
    let (mut rows, mut notices) = (Vec::new(), Vec::new());
    let options = Options {
        until: None,
        shards,
        // Own stores commit their batches together many times in this run.
        flush_inputs: 100,
    };
    let summary = simulate(
        if own_stores {
            Runners::PerShard(&runners)
        } else {
            Runners::Shared(&runners[0])
        },
        file,
        &options,
        |a, d| rows.push(crate::scenarios::delivered_row(a, d)),
        |n| notices.push(format!("{n:?}")),
        |_, _| {},
    )
    .unwrap();
    let (sends, timers) = store_contents(runners.iter().map(Runner::store));
    ThreadsRun {
        rows,
        notices,
        summary,
        sends,
        timers,
    }
}

/// The send logs (customers `c-1` to `c-300`) and timers of `stores` together, sorted.
fn store_contents<'a>(
    stores: impl Iterator<Item = &'a nudge_local::SqliteStore>,
) -> (SendLog, Timers) {
    use nudge_core::store::Store;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut sends = Vec::new();
    let mut timers = Vec::new();
    for store in stores {
        sends.extend((1..=300).flat_map(|i| rt.block_on(store.sends(&format!("c-{i}"))).unwrap()));
        timers.extend(
            rt.block_on(nudge_core::store::all_due(
                store,
                chrono::DateTime::<chrono::Utc>::MAX_UTC,
                1000,
            ))
            .unwrap(),
        );
    }
    sends.sort_by(|a, b| a.record.idempotency_key.cmp(&b.record.idempotency_key));
    timers.sort();
    (sends, timers)
}

/// The work is split among threads by customer; the timeline, the notices, the summary and the
/// store come out the same whatever the number of threads, and whether the threads share one
/// store or each has its own, bad and duplicate lines included (ids repeated for other
/// customers, who may belong to another thread, in the same chunk of lines and much later).
#[test]
fn any_number_of_threads_gives_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_events(dir.path(), &lines_for_threads());
    let report = nudge_core::workflow::load(&root().join("workflows")).unwrap();
    let project = report.project.unwrap();
    let signer = nudge_core::links::Signer::new(b"threads");
    let engine = nudge_core::engine::Engine::new(&project, &signer);
    let run = |shards, own_stores| run_with_threads(&engine, dir.path(), &file, shards, own_stores);
    let one = run(1, false);
    assert!(one.rows.len() > 1_000, "{} rows", one.rows.len());
    assert!(one.sends.len() > 100, "{} sends", one.sends.len());
    assert_eq!(one.notices.len(), 9, "{:?}", one.notices);
    assert_eq!((one.summary.rejected, one.summary.duplicates), (2, 7));
    // Two counts and both ways of storing (each a whole run of 300 customers: the slowest
    // test of the suite when it ran all four pairs).
    for (shards, own_stores) in [(2, false), (5, true)] {
        let other = run(shards, own_stores);
        let how = format!("{shards} threads, own stores: {own_stores}");
        assert!(one.rows == other.rows, "timeline differs with {how}");
        assert_eq!(one.notices, other.notices, "notices differ with {how}");
        assert_eq!(one.summary, other.summary, "summary differs with {how}");
        assert!(one.sends == other.sends, "send log differs with {how}");
        assert_eq!(one.timers, other.timers, "timers differ with {how}");
    }
}

/// Stores of a previous run, one per thread: an event id processed then is a duplicate in a
/// later run whatever its customer, although no one store saw both customers.
#[test]
fn an_id_of_a_previous_run_is_a_duplicate_with_a_store_per_thread() {
    use nudge_core::engine::Engine;
    use nudge_core::links::Signer;
    use nudge_core::runner::Runner;
    use nudge_local::simulate::{Options, Runners, simulate};
    use nudge_local::{RecordingMailer, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let event = |id: &str, customer: &str, time: &str| {
        serde_json::json!({"version": "0", "id": id, "detail-type": "customer.created",
            "source": "store", "time": time,
            "detail": {"customer": {"id": customer, "email": format!("{customer}@example.com")}}})
        .to_string()
    };
    let report = nudge_core::workflow::load(&root().join("workflows")).unwrap();
    let project = report.project.unwrap();
    let signer = Signer::new(b"resume");
    let engine = Engine::new(&project, &signer);
    let run = |lines: &[String]| {
        let file = write_events(dir.path(), lines);
        let runners: Vec<Runner<'_, _, RecordingMailer>> = (0..2)
            .map(|i| {
                let store = SqliteStore::open(&dir.path().join(format!("s{i}.db"))).unwrap();
                Runner::new(&engine, store, Some(RecordingMailer)).deliver_later()
            })
            .collect();
        let options = Options {
            until: Some("2026-03-02T00:00:00Z".parse().unwrap()),
            shards: 2,
            ..Options::default()
        };
        simulate(
            Runners::PerShard(&runners),
            &file,
            &options,
            |_, _| {},
            |_| {},
            |_, _| {},
        )
        .unwrap()
    };
    let first = run(&[event("e-1", "c-1", "2026-03-01T10:00:00Z")]);
    assert_eq!((first.events, first.duplicates), (1, 0));
    // The same id for other customers (some of them on the other thread), and a new one.
    let again: Vec<String> = (2..=6)
        .map(|i| event("e-1", &format!("c-{i}"), "2026-03-01T11:00:00Z"))
        .chain([event("e-2", "c-7", "2026-03-01T11:00:00Z")])
        .collect();
    let second = run(&again);
    assert_eq!((second.events, second.duplicates), (1, 5));
}

/// A store or outbox that cannot be used is named once, with the cause, and the command
/// exits 2 (the message used to say "cannot open the store X: cannot open the store X: ...").
#[test]
fn a_store_or_outbox_that_cannot_be_used_is_named_once() {
    let tmp = tempfile::tempdir().unwrap();
    let events = write_events(tmp.path(), &[good_and_bad_lines()[0].clone()]);
    let folder = tmp.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let workflows = root().join("workflows");
    for (flag, path, says) in [
        ("--db", &folder, "cannot open the store"),
        ("--outbox", &file, "cannot write the outbox"),
    ] {
        let (code, _, err) = nudge(
            tmp.path(),
            &[
                "simulate",
                "--workflows",
                workflows.to_str().unwrap(),
                "--events",
                events.to_str().unwrap(),
                flag,
                path.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code, 2, "{err}");
        let line = err.lines().last().unwrap();
        assert!(line.starts_with(&format!("nudge: {says}")), "{line}");
        assert_eq!(line.matches(says).count(), 1, "{line}");
    }
}

/// `unsubscribe_url` is optional in settings.yaml (deployed, links point at the `unsubscribe`
/// function's URL): `validate` accepts workflows without it, and `simulate` links to
/// `NUDGE_UNSUBSCRIBE_URL`, or else to a reserved placeholder domain and says so.
#[test]
fn without_an_unsubscribe_url_simulate_links_to_the_variable_or_a_placeholder() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let settings = s.workflows_dir().join("settings.yaml");
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(text.contains("unsubscribe_url"), "{text}");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("unsubscribe_url"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&settings, kept).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let events = write_events(
        tmp.path(),
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T07:00:00Z",
            "c1",
            customer("A"),
        )
        .to_string()],
    );
    let wf = s.workflows_dir();
    let validated = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["validate", wf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stdout)
    );
    for (var, want, note) in [
        (None, "<https://unsubscribe.invalid/?c=c1&s=", true),
        (
            Some("https://u.example.org/x"),
            "<https://u.example.org/x?c=c1&s=",
            false,
        ),
    ] {
        let outbox = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"));
        cmd.args([
            "simulate",
            "--events",
            events.to_str().unwrap(),
            "--workflows",
        ])
        .arg(&wf)
        .arg("--outbox")
        .arg(outbox.path())
        .args(["--until", "2026-03-10T00:00:00Z"])
        .env_remove("NUDGE_UNSUBSCRIBE_URL");
        if let Some(v) = var {
            cmd.env("NUDGE_UNSUBSCRIBE_URL", v);
        }
        let done = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(done.status.success(), "{err}");
        assert_eq!(err.contains("https://unsubscribe.invalid/"), note, "{err}");
        let file = std::fs::read_dir(outbox.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let bytes = std::fs::read(file).unwrap();
        let msg = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let header = msg
            .header_raw("List-Unsubscribe")
            .unwrap()
            .trim()
            .to_owned();
        assert!(header.starts_with(want), "{header}");
    }
}
