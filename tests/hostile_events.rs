//! Hostile and broken events files against `nudge simulate`: times far apart or out of range,
//! lines that the first pass and the parser could read differently, bytes that are not UTF-8,
//! pipes, overlong lines, control characters, a full disk, a short signing key, and two
//! processes on one store.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::nudge;
use crate::scenarios::{Scenario, WELCOME, customer, ev};

/// `lines` as an events file's bytes, each ended by `\n`.
fn file_bytes(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect()
}

/// An event of `customer.created` for `c` at `time`, as a line.
fn created(id: &str, time: &str, c: &str) -> Vec<u8> {
    ev(
        id,
        "customer.created",
        time,
        c,
        json!({"customer": customer("Ayşe")}),
    )
    .to_string()
    .into_bytes()
}

/// Runs `nudge simulate` on `events` (written to a file in `dir`) with the welcome workflow;
/// `extra` arguments follow (`--format json` unless they give a format).
fn simulate(s: &Scenario, dir: &Path, events: &[u8], extra: &[&str]) -> (i32, String, String) {
    let file = dir.join("events.jsonl");
    std::fs::write(&file, events).unwrap();
    let wf = s.workflows_dir();
    let mut args = vec![
        "simulate",
        "--events",
        file.to_str().unwrap(),
        "--workflows",
        wf.to_str().unwrap(),
    ];
    if !extra.contains(&"--format") {
        args.extend(["--format", "json"]);
    }
    args.extend_from_slice(extra);
    nudge(dir, &args, &[])
}

/// The dead letters of the store in `db`: (reason, body).
fn dead_letters(db: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT reason, body FROM dead_letters ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every `at` and `until` of the JSON rows of `out` is an RFC 3339 UTC time with a 4-digit year.
fn assert_rfc3339_rows(out: &str) {
    for row in out.lines() {
        let row: Value = serde_json::from_str(row).unwrap();
        for field in ["at", "until"] {
            if let Some(t) = row[field].as_str() {
                assert!(
                    t.len() == 20
                        && t.ends_with('Z')
                        && chrono::DateTime::parse_from_rfc3339(t).is_ok(),
                    "{field}: {t}"
                );
            }
        }
    }
}

fn db_arg(db: &Path) -> [&str; 2] {
    ["--db", db.to_str().unwrap()]
}

// ---- 1. Times ----

#[test]
fn a_gap_of_decades_fires_the_timers_in_it_in_bounded_rounds() {
    // 300 customers an hour apart, each with timers (the welcome waits two days), then one
    // event 36 years later: the timers in the gap fire an hour's worth at a time, not all in
    // the round before that event.
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let mut lines: Vec<String> = (0..300)
        .map(|i| {
            let t = (start + chrono::TimeDelta::hours(i))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            String::from_utf8(created(&format!("e{i}"), &t, &format!("c{i}"))).unwrap()
        })
        .collect();
    lines.push(String::from_utf8(created("late", "2062-03-01T00:00:00Z", "c-late")).unwrap());
    let file = tmp.path().join("events.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let db = tmp.path().join("store.db");
    let store = nudge_local::sqlite::SqliteStore::open(&db).unwrap();
    let project = nudge_core::workflow::load(&s.workflows_dir())
        .unwrap()
        .project
        .unwrap();
    let signer = nudge_core::links::Signer::development();
    let engine = nudge_core::engine::Engine::new(&project, &signer);
    let runner =
        nudge_core::runner::Runner::new(&engine, store, Some(nudge_local::RecordingMailer))
            .deliver_later();
    let options = nudge_local::simulate::Options {
        until: Some("2062-03-10T00:00:00Z".parse().unwrap()),
        shards: 2,
        ..Default::default()
    };
    let summary = nudge_local::simulate::simulate(
        nudge_local::simulate::Runners::Shared(&runner),
        &file,
        &options,
        |_, _| {},
        |_| {},
        |_, _| {},
    )
    .unwrap();
    assert_eq!(summary.events, 301);
    assert!(summary.wakes >= 300, "{summary:?}");
    assert!(
        summary.largest_round <= 20,
        "one round held {} inputs",
        summary.largest_round
    );
}

#[test]
fn a_gap_of_millennia_costs_no_more_than_its_timers() {
    // Hours without a timer are skipped: 7,000 years an hour at a time would never end.
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let events = file_bytes(&[
        created("e1", "2026-01-01T00:00:00Z", "c1"),
        created("e2", "8999-01-01T00:00:00Z", "c2"),
    ]);
    let started = std::time::Instant::now();
    let (code, out, err) = simulate(&s, tmp.path(), &events, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_rfc3339_rows(&out);
    assert!(
        err.contains("to 8999-12-31T23:59:59Z"),
        "the default end stays in range: {err}"
    );
}

#[test]
fn a_time_outside_the_range_is_a_bad_line_and_never_reaches_the_stored_clock() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let events = file_bytes(&[
        created("e1", "2026-03-01T10:00:00Z", "c1"),
        created("e-far", "9999-12-31T23:59:59Z", "c2"),
        created("e-old", "1969-07-20T20:17:00Z", "c3"),
    ]);
    let (code, out, err) = simulate(&s, tmp.path(), &events, &db_arg(&db));
    assert_eq!(code, 1, "{err}");
    for (line, id) in [(2, "e-far"), (3, "e-old")] {
        assert!(
            err.lines().any(|l| l.contains(&format!(
                "events.jsonl:{line}: rejected: event `{id}`: time:"
            )) && l.contains("outside the accepted range")),
            "{err}"
        );
    }
    assert_rfc3339_rows(&out);
    assert_eq!(dead_letters(&db).len(), 2);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let clock: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'simulate.clock'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(clock, "2027-03-01T10:00:00Z");
    drop(conn);
    // A later run reads the clock back.
    let (code, _, err) = simulate(
        &s,
        tmp.path(),
        &file_bytes(&[created("e4", "2027-04-01T10:00:00Z", "c4")]),
        &db_arg(&db),
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_until_outside_the_range_is_a_usage_error() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let events = file_bytes(&[created("e1", "2026-03-01T10:00:00Z", "c1")]);
    for until in ["9999-12-31T23:59:59Z", "1960-01-01T00:00:00Z"] {
        let (code, _, err) = simulate(&s, tmp.path(), &events, &["--until", until]);
        assert_eq!(code, 2, "{until}: {err}");
        assert!(err.contains("outside the accepted range"), "{err}");
    }
}

#[test]
fn a_stored_clock_outside_the_range_is_reported_clearly() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let events = file_bytes(&[created("e1", "2026-03-01T10:00:00Z", "c1")]);
    let (code, _, err) = simulate(&s, tmp.path(), &events, &db_arg(&db));
    assert_eq!(code, 0, "{err}");
    for (clock, why) in [
        ("+10000-12-30T23:59:59Z", "is not an RFC 3339 time"),
        ("9500-01-01T00:00:00Z", "is outside the accepted range"),
    ] {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'simulate.clock'",
            [clock],
        )
        .unwrap();
        drop(conn);
        let (code, _, err) = simulate(&s, tmp.path(), &events, &db_arg(&db));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!(
                "simulation clock `{clock}` (metadata `simulate.clock`) {why}"
            )),
            "{err}"
        );
    }
}

// ---- 2. Event lines ----

/// The notices of `err` that say an event was processed late.
fn late(err: &str) -> Vec<&str> {
    err.lines()
        .filter(|l| l.contains("before the store's clock"))
        .collect()
}

#[test]
fn a_byte_order_mark_is_skipped_at_the_start_of_the_file_only() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let mut first = b"\xef\xbb\xbf".to_vec();
    first.extend(created("e1", "2026-03-01T10:00:00Z", "c1"));
    let mut marked = b"\xef\xbb\xbf".to_vec();
    marked.extend(created("e3", "2026-03-05T10:00:00Z", "c3"));
    let events = file_bytes(&[first, created("e2", "2026-03-02T10:00:00Z", "c2"), marked]);
    let (code, _, err) = simulate(&s, tmp.path(), &events, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(late(&err).is_empty(), "{err}");
    let rejected: Vec<&str> = err.lines().filter(|l| l.contains(": rejected: ")).collect();
    assert_eq!(rejected.len(), 1, "{err}");
    assert!(
        rejected[0].contains("events.jsonl:3: rejected: event (id unreadable): not valid JSON"),
        "{err}"
    );
}

#[test]
fn a_repeated_time_is_a_bad_line_not_an_early_one() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let twice = String::from_utf8(created("e2", "2026-03-01T09:00:00Z", "c2"))
        .unwrap()
        .replacen(
            "\"time\":",
            "\"time\":\"2026-03-09T00:00:00Z\",\"time\":",
            1,
        )
        .into_bytes();
    let events = file_bytes(&[
        created("e1", "2026-03-01T10:00:00Z", "c1"),
        twice,
        created("e3", "2026-03-02T10:00:00Z", "c3"),
    ]);
    let (code, out, err) = simulate(&s, tmp.path(), &events, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(late(&err).is_empty(), "{err}");
    assert!(
        err.contains(
            "events.jsonl:2: rejected: event `e2`: not valid JSON: the key \"time\" appears twice"
        ),
        "{err}"
    );
    assert!(!out.contains("\"c2\""), "{out}");
}

#[test]
fn a_line_that_is_not_utf8_is_rejected_and_kept_with_its_bytes_escaped() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let bad = String::from_utf8(created("e2", "2026-03-01T11:00:00Z", "c2"))
        .unwrap()
        .replace("Ayşe", "Ay\u{1}e")
        .into_bytes()
        .into_iter()
        .map(|b| if b == 1 { 0xfe } else { b })
        .collect();
    let events = file_bytes(&[created("e1", "2026-03-01T10:00:00Z", "c1"), bad]);
    let (code, out, err) = simulate(&s, tmp.path(), &events, &db_arg(&db));
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains('\u{fffd}'), "{out}");
    assert!(
        err.contains("events.jsonl:2: rejected: event `e2`: not valid UTF-8"),
        "{err}"
    );
    let letters = dead_letters(&db);
    assert_eq!(letters.len(), 1);
    assert!(letters[0].1.contains("\"Ay\\xFEe\""), "{}", letters[0].1);
    assert!(!letters[0].1.contains('\u{fffd}'));
}

#[test]
fn events_from_a_pipe_run_as_from_a_file() {
    use std::io::Write;
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    // Out of order, so that the second pass must seek.
    let events = file_bytes(&[
        created("e2", "2026-03-02T10:00:00Z", "c2"),
        created("e1", "2026-03-01T10:00:00Z", "c1"),
    ]);
    let (code, from_file, err) = simulate(&s, tmp.path(), &events, &[]);
    assert_eq!(code, 0, "{err}");
    let wf = s.workflows_dir();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args([
            "simulate",
            "--events",
            "/dev/stdin",
            "--format",
            "json",
            "--workflows",
        ])
        .arg(&wf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&events).unwrap();
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), from_file);
}

#[test]
fn an_overlong_line_is_rejected_with_its_head_kept() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    let mut huge = br#"{"id":"e-huge","pad":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 3 << 20));
    huge.extend(br#""}"#);
    let events = file_bytes(&[
        created("e1", "2026-03-01T10:00:00Z", "c1"),
        huge,
        created("e3", "2026-03-02T10:00:00Z", "c3"),
    ]);
    let (code, out, err) = simulate(&s, tmp.path(), &events, &db_arg(&db));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "events.jsonl:2: rejected: event `e-huge`: 3145752 bytes, over EventBridge's limit"
        ),
        "{err}"
    );
    assert!(out.contains("\"c3\""), "the lines after it go on: {out}");
    let letters = dead_letters(&db);
    assert_eq!(letters.len(), 1);
    assert!(letters[0].1.starts_with(r#"{"id":"e-huge","pad":"xxx"#));
    assert_eq!(letters[0].1.len(), nudge_core::event::MAX_EVENT_BYTES);
}

// ---- 3. Messages ----

#[test]
fn a_full_disk_is_named_as_the_cause_of_the_lost_batch() {
    // A file size limit makes SQLite's writes fail as on a full disk (SIGXFSZ ignored, so that
    // the write fails instead of killing the process).
    let tmp = tempfile::tempdir().unwrap();
    let (code, events, err) = nudge(tmp.path(), &["generate-events", "--customers", "300"], &[]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(tmp.path().join("events.jsonl"), events).unwrap();
    let script = format!(
        "trap '' XFSZ; ulimit -f 200; exec '{}' simulate --events events.jsonl --workflows '{}' --db store.db --format json",
        env!("CARGO_BIN_EXE_nudge"),
        crate::helpers::root().join("workflows").display()
    );
    let (code, _, err) = sh(tmp.path(), &script);
    assert_eq!(code, 2, "{err}");
    let line = err.lines().find(|l| l.starts_with("nudge: ")).unwrap();
    assert!(line.contains("the store rolled back a batch"), "{err}");
    let (_, cause) = line.split_once("were lost: ").expect("the cause follows");
    assert!(cause.contains("disk"), "{line}");
}

/// Runs `script` with `sh -c` in `cwd`; returns (exit code, stdout, stderr).
fn sh(cwd: &Path, script: &str) -> (i32, String, String) {
    let out = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn control_characters_from_the_events_are_escaped_in_text() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let evil = "c\r\n2026-01-01T00:00:00Z  forged\u{1b}[2J";
    let events = file_bytes(&[
        created("e\n1", "2026-03-01T10:00:00Z", evil),
        created("e\n1", "2026-03-01T11:00:00Z", "c2"),
    ]);
    let (code, out, err) = simulate(&s, tmp.path(), &events, &["--format", "text"]);
    assert_eq!(code, 0, "{err}");
    for text in [&out, &err] {
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
        assert!(
            !text
                .lines()
                .any(|l| l.contains("forged") && !l.contains("c\\r\\n")),
            "{text}"
        );
    }
    assert!(
        out.contains("c\\r\\n2026-01-01T00:00:00Z  forged\\u{1b}[2J"),
        "{out}"
    );
    assert!(
        err.contains("event e\\n1 was seen before; ignored"),
        "{err}"
    );
}

#[test]
fn a_short_signing_key_is_refused_and_an_empty_one_is_said_to_be_empty() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("events.jsonl");
    std::fs::write(
        &file,
        file_bytes(&[created("e1", "2026-03-01T10:00:00Z", "c1")]),
    )
    .unwrap();
    let wf = s.workflows_dir();
    let args = [
        "simulate",
        "--events",
        file.to_str().unwrap(),
        "--workflows",
        wf.to_str().unwrap(),
    ];
    let (code, out, err) = nudge(tmp.path(), &args, &[("NUDGE_SIGNING_KEY", "Q")]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("nudge: NUDGE_SIGNING_KEY is 1 bytes long"),
        "{err}"
    );
    assert!(err.contains("at least 32 bytes"), "{err}");
    let (code, _, err) = nudge(tmp.path(), &args, &[("NUDGE_SIGNING_KEY", "")]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("NUDGE_SIGNING_KEY is empty"), "{err}");
    let key = "0123456789abcdef0123456789abcdef";
    let (code, _, err) = nudge(tmp.path(), &args, &[("NUDGE_SIGNING_KEY", key)]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("NUDGE_SIGNING_KEY"), "{err}");
}

// ---- 4. One process per store ----

#[test]
fn a_second_process_on_a_store_in_use_is_refused_at_once() {
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    // Enough events that the first run prints far more than a pipe holds (64 KiB): it stops,
    // holding the store, until this test reads its output, so the second is tried while the
    // first is still running, however fast or slow the machine.
    let (code, events, err) = nudge(tmp.path(), &["generate-events", "--customers", "200"], &[]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(tmp.path().join("big.jsonl"), events).unwrap();
    let small = tmp.path().join("small.jsonl");
    std::fs::write(
        &small,
        file_bytes(&[created("e1", "2026-03-01T10:00:00Z", "c1")]),
    )
    .unwrap();
    let wf = crate::helpers::root().join("workflows");
    let run = |events: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"));
        cmd.args([
            "simulate", "--events", events, "--db", "store.db", "--format", "json",
        ])
        .arg("--workflows")
        .arg(&wf)
        .current_dir(tmp.path());
        cmd
    };
    let spawn_big = || {
        run("big.jsonl")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let second = || {
        let out = run("small.jsonl").output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // The first process holds the store once it prints.
    let mut first = spawn_big();
    let mut stdout = std::io::BufReader::new(first.stdout.take().unwrap());
    let mut row = String::new();
    stdout.read_line(&mut row).unwrap();
    assert!(row.starts_with('{'), "{row}");
    // ... and is still running: it cannot end before its output is read.
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run is running"
    );
    let started = std::time::Instant::now();
    let (code, err) = second();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "refused at once"
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("store.db is in use by another nudge process"),
        "{err}"
    );
    let rest = std::io::copy(&mut stdout, &mut std::io::sink()).unwrap();
    assert!(
        rest > 1 << 20,
        "the first run printed {rest} bytes after its first row: more than a pipe holds"
    );
    assert!(
        first.wait().unwrap().success(),
        "the first run is undisturbed"
    );

    // Released when the first ends, and when it is killed.
    let (code, err) = second();
    assert_eq!(code, Some(0), "{err}");
    let mut killed = spawn_big();
    let mut stdout = std::io::BufReader::new(killed.stdout.take().unwrap());
    stdout.read_line(&mut row).unwrap();
    killed.kill().unwrap();
    killed.wait().unwrap();
    let (code, err) = second();
    assert_eq!(
        code,
        Some(0),
        "a killed run's lock does not outlive it: {err}"
    );
}

// ---- What held up, kept ----

#[test]
fn a_corrupt_store_is_a_clear_error_not_a_crash() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.db");
    std::fs::write(&db, vec![0x5a; 64 * 1024]).unwrap();
    let events = file_bytes(&[created("e1", "2026-03-01T10:00:00Z", "c1")]);
    let (code, out, err) = simulate(&s, tmp.path(), &events, &db_arg(&db));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    let line = err.lines().find(|l| l.starts_with("nudge: ")).unwrap();
    assert!(line.contains("store.db"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_numbers_are_bad_lines_naming_the_field() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let with = |id: &str, field: &str, value: &str| {
        String::from_utf8(created(id, "2026-03-01T10:00:00Z", "c1"))
            .unwrap()
            .replacen(
                "\"id\":\"c1\"",
                &format!("\"id\":\"c1\",\"{field}\":{value}"),
                1,
            )
            .into_bytes()
    };
    let events = file_bytes(&[
        with("n1", "orders_count", "-1"),
        with("n2", "orders_count", "1e400"),
        with("n3", "orders_count", "2.5"),
        created("n4", "2026-03-01T10:00:00Z", "c2"),
    ]);
    let (code, out, err) = simulate(&s, tmp.path(), &events, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "event `n1`: detail.customer.orders_count: expected a non-negative whole number"
        ),
        "{err}"
    );
    assert!(
        err.contains(":2: rejected: event `n2`: not valid JSON"),
        "{err}"
    );
    assert!(
        err.contains("event `n3`: detail.customer.orders_count"),
        "{err}"
    );
    assert!(out.contains("\"c2\""), "{out}");
}

#[test]
fn many_events_of_one_customer_all_apply() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let lines: Vec<Vec<u8>> = (0..5_000)
        .map(|i| {
            let t = (start + chrono::TimeDelta::minutes(7 * i))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            ev(
                &format!("o{i}"),
                "order.placed",
                &t,
                "c1",
                json!({"customer": customer("Ayşe")}),
            )
            .to_string()
            .into_bytes()
        })
        .collect();
    let (code, out, err) = simulate(&s, tmp.path(), &file_bytes(&lines), &["--format", "text"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Summary: 5000 events applied (0 duplicates, 0 rejected)"),
        "{out}"
    );
}

#[test]
fn logs_never_carry_an_address_or_a_name() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let tmp = tempfile::tempdir().unwrap();
    let secret = |id: &str, c: &str, time: &str| {
        ev(
            id,
            "customer.created",
            time,
            c,
            json!({"customer": {"email": "zeynep.secret@example.com", "first_name": "Zeynepsecret",
                                "accepts_marketing": true}}),
        )
        .to_string()
        .into_bytes()
    };
    let mut bad = secret("b1", "c2", "2026-03-01T11:00:00Z");
    bad.truncate(bad.len() - 3);
    let events = file_bytes(&[
        secret("e1", "c1", "2026-03-01T10:00:00Z"),
        bad,
        secret("e1", "c1", "2026-03-01T12:00:00Z"),
    ]);
    let file = tmp.path().join("events.jsonl");
    std::fs::write(&file, events).unwrap();
    let wf = s.workflows_dir();
    let (code, out, err) = nudge(
        tmp.path(),
        &[
            "simulate",
            "--events",
            file.to_str().unwrap(),
            "--workflows",
            wf.to_str().unwrap(),
        ],
        &[("NUDGE_LOG", "trace")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("zeynep.secret@example.com"),
        "stdout is the operator's report: {out}"
    );
    assert!(
        !err.contains("zeynep.secret") && !err.contains("Zeynepsecret"),
        "{err}"
    );
}
