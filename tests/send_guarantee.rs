//! The send guarantee on the local side, as a user meets it: `nudge simulate` with an outbox it
//! cannot write (nothing reported sent, exit 3, delivered by a later run), and a run killed
//! with SIGKILL and run again (each email written once, printed at most once). The crash
//! tests at each point of a delivery, in process, are in `send_guarantee_points`.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{nudge, root};

/// The `.eml` files of `dir`, by name, with their bytes.
fn emails(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// How many `.eml` files `dir` holds (names only: polled every few milliseconds while a run
/// writes, reading every message each time would take the CPU from the run).
fn count_emails(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".eml"))
        })
        .count()
}

/// The names in `dir` that are temporary files of the outbox.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// How many text rows of `out` have the action `action`.
fn rows(out: &str, action: &str) -> usize {
    out.matches(&format!(" {action} ")).count()
}

/// Whether a file can be created in `dir` now.
fn can_write(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Makes `dir` a folder no file can be created in: read-only, and immutable where the user
/// is root (root ignores permissions; `chattr +i` binds root too). Fails the test if neither
/// works here, rather than testing nothing.
fn make_unwritable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if can_write(dir) {
        let status = Command::new("chattr").arg("+i").arg(dir).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "{} stays writable for this user and chattr +i failed: cannot test an unwritable outbox",
            dir.display()
        );
    }
    assert!(!can_write(dir), "{} is still writable", dir.display());
}

/// Undoes [`make_unwritable`].
fn make_writable(dir: &Path) {
    let _ = Command::new("chattr").arg("-i").arg(dir).status();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(can_write(dir));
}

/// `nudge simulate` on the sample with the shipped workflows, an outbox and maybe a store.
fn simulate_sample(outbox: &Path, db: Option<&Path>) -> (i32, String, String) {
    let mut args = vec![
        "simulate",
        "--events",
        "events/sample.jsonl",
        "--outbox",
        outbox.to_str().unwrap(),
    ];
    if let Some(db) = db {
        args.extend(["--db", db.to_str().unwrap()]);
    }
    nudge(&root(), &args, &[("NUDGE_SIGNING_KEY", "")])
}

/// An outbox write that fails is not printed as sent, is counted, makes the exit status 3,
/// and stays pending in the `--db` store: a later run with a writable outbox writes each of
/// those emails once, byte for byte what an undisturbed run writes, and a third run nothing.
#[test]
fn an_unwritable_outbox_sends_nothing_exits_3_and_a_later_run_delivers_each_email_once() {
    let tmp = tempfile::tempdir().unwrap();
    // What an undisturbed run writes.
    let normal = tmp.path().join("normal");
    let (code, out, err) = simulate_sample(&normal, None);
    assert_eq!(code, 0, "{err}");
    let expected = emails(&normal);
    assert_eq!(rows(&out, "email.sent"), expected.len());
    assert!(expected.len() > 100, "{}", expected.len());

    let outbox = tmp.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    make_unwritable(&outbox);
    let db = tmp.path().join("store.db");
    let (code, out, err) = simulate_sample(&outbox, Some(&db));
    make_writable(&outbox);
    assert_eq!(code, 3, "{err}");
    assert_eq!(rows(&out, "email.sent"), 0, "{out}");
    assert_eq!(rows(&out, "email.pending"), expected.len());
    assert!(
        out.contains(&format!(
            "Undelivered: {} emails could not be delivered; they wait in the store",
            expected.len()
        )),
        "{out}"
    );
    assert!(
        !out.contains("  sent "),
        "no workflow counts a sent email:\n{out}"
    );
    assert!(emails(&outbox).is_empty());
    assert!(temp_files(&outbox).is_empty());

    let (code, out, err) = simulate_sample(&outbox, Some(&db));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rows(&out, "email.sent"), expected.len(), "{out}");
    assert_eq!(rows(&out, "email.pending"), 0, "{out}");
    assert!(
        out.contains(&format!(
            "Resumed: {} emails an earlier run left undelivered, tried first (0 found already delivered)",
            expected.len()
        )),
        "{out}"
    );
    assert_eq!(emails(&outbox), expected, "the same files, byte for byte");

    let (code, out, err) = simulate_sample(&outbox, Some(&db));
    assert_eq!(code, 0, "{err}");
    assert_eq!(rows(&out, "email.sent"), 0, "{out}");
    assert!(!out.contains("Resumed:"), "{out}");
    assert_eq!(emails(&outbox), expected);
}

/// Without `--db` the store is thrown away: the emails an outbox could not take are reported
/// as lost with it, and the exit status is 3.
#[test]
fn an_unwritable_outbox_without_a_store_says_the_emails_are_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let outbox = tmp.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    make_unwritable(&outbox);
    let (code, out, err) = simulate_sample(&outbox, None);
    make_writable(&outbox);
    assert_eq!(code, 3, "{err}");
    assert_eq!(rows(&out, "email.sent"), 0);
    assert!(
        out.contains("they are lost with the throwaway store: run with --db"),
        "{out}"
    );
    // The reason names the outbox's file, never the recipient.
    let pending = out.lines().find(|l| l.contains(" email.pending ")).unwrap();
    assert!(pending.contains("cannot write the outbox at"), "{pending}");
}

/// An email the outbox never takes is retried by each later run on the store, and settled
/// failed when its attempts run out (`MAX_SEND_ATTEMPTS`, 8: the run's own attempt and one at
/// its end, then two per later run): an `email.failed` row saying so, exit 3; after that
/// nothing is pending, and a run exits 0. In JSON, a pending email's row has the reason and
/// the time of its next try.
#[test]
fn an_email_the_outbox_never_takes_fails_when_its_attempts_run_out() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(root().join("events/sample.jsonl")).unwrap();
    let events = tmp.path().join("one.jsonl");
    std::fs::write(&events, sample.lines().next().unwrap()).unwrap();
    let outbox = tmp.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let db = tmp.path().join("store.db");
    let args = |format: &'static str| {
        [
            "simulate",
            "--events",
            events.to_str().unwrap(),
            "--outbox",
            outbox.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--format",
            format,
        ]
        .map(str::to_owned)
    };
    let run = |format| {
        let args = args(format);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nudge(&root(), &args, &[("NUDGE_SIGNING_KEY", "")])
    };
    make_unwritable(&outbox);
    let first = run("json");
    let rest: Vec<_> = (0..3).map(|_| run("text")).collect();
    make_writable(&outbox);
    let (code, out, err) = first;
    assert_eq!(code, 3, "{err}");
    let pending: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|row| row["action"] == "email.pending")
        .collect();
    assert!(!pending.is_empty(), "{out}");
    for row in &pending {
        let reason = row["reason"].as_str().unwrap();
        assert!(reason.contains("cannot write the outbox"), "{row}");
        assert!(row["until"].as_str().is_some(), "{row}");
    }
    for (code, out, err) in &rest[..2] {
        assert_eq!(*code, 3, "{err}");
        assert!(out.contains("Undelivered:"), "{out}");
        assert_eq!(
            rows(out, "email.failed") + rows(out, "email.sent"),
            0,
            "{out}"
        );
    }
    let (code, out, err) = &rest[2];
    assert_eq!(*code, 3, "{err}");
    assert!(!out.contains("Undelivered:"), "{out}");
    assert_eq!(rows(out, "email.failed"), pending.len(), "{out}");
    assert!(out.contains("8 attempts failed; the last: "), "{out}");
    assert!(emails(&outbox).is_empty());
    let (code, out, err) = run("text");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&out, "email.failed") + rows(&out, "email.sent"),
        0,
        "{out}"
    );
    assert!(!out.contains("Resumed:"), "{out}");
    assert!(emails(&outbox).is_empty());
}

/// The idempotency keys (`<run>.<step>`) of the `email.sent` rows of a JSON timeline.
fn sent_keys(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|row| row["action"] == "email.sent")
        .map(|row| {
            format!(
                "{}.{}",
                row["run"].as_str().unwrap(),
                row["step"].as_str().unwrap()
            )
        })
        .collect()
}

/// The idempotency key of an outbox file: what follows the third `_`, before `.eml`.
fn key_of(name: &str) -> String {
    name.strip_suffix(".eml")
        .unwrap()
        .splitn(4, '_')
        .nth(3)
        .unwrap()
        .to_owned()
}

/// A `nudge simulate --format json` command on `events` with an outbox and a store.
fn simulate_command(events: &Path, outbox: &Path, db: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nudge"));
    cmd.current_dir(root())
        .env("NUDGE_SIGNING_KEY", "")
        .args(["simulate", "--format", "json", "--events"])
        .arg(events)
        .arg("--outbox")
        .arg(outbox)
        .arg("--db")
        .arg(db);
    cmd
}

/// `dir` if it exists (the outbox before the first run has not), else an empty folder.
fn outbox_or_empty(dir: &Path) -> std::path::PathBuf {
    if dir.exists() {
        return dir.to_path_buf();
    }
    let empty = dir.with_extension("empty");
    std::fs::create_dir_all(&empty).unwrap();
    empty
}

/// The keys of the emails in `after` that are not in `before`.
fn new_keys(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> BTreeSet<String> {
    after
        .keys()
        .filter(|n| !before.contains_key(*n))
        .map(|n| key_of(n))
        .collect()
}

/// Runs `cmd` until `outbox` holds `n` emails, then kills it with SIGKILL; returns the keys
/// of the `email.sent` rows it printed (its stdout goes to the file `out`).
fn kill_when_written(mut cmd: Command, outbox: &Path, n: usize, out: &Path) -> Vec<String> {
    let mut child = cmd
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it was killed");
        }
        if outbox.exists() && count_emails(outbox) >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    sent_keys(&std::fs::read_to_string(out).unwrap())
}

/// Each run (what it wrote, the keys of the rows it printed) printed rows only for emails it
/// wrote, each once, the last run for every one it wrote, and no email was printed by two
/// runs; `emails` were written in all.
fn check_rows(runs: &[(BTreeSet<String>, Vec<String>)], emails: usize) {
    let mut printed_by_all = BTreeSet::new();
    for (i, (written, printed)) in runs.iter().enumerate() {
        let set: BTreeSet<String> = printed.iter().cloned().collect();
        assert_eq!(set.len(), printed.len(), "run {i}: a row printed twice");
        // A run prints only emails it wrote; the last, every one it wrote.
        assert!(set.is_subset(written), "run {i}");
        if i == runs.len() - 1 {
            assert_eq!(&set, written, "run {i}");
        }
        assert!(
            printed_by_all.is_disjoint(&set),
            "run {i}: printed by two runs"
        );
        printed_by_all.extend(set);
        eprintln!(
            "run {i}: {} emails written, {} rows printed",
            written.len(),
            printed.len()
        );
    }
    eprintln!(
        "{} emails in all, {} rows ({} lost with the killed runs' last output)",
        emails,
        printed_by_all.len(),
        emails - printed_by_all.len()
    );
}

/// A run killed with SIGKILL in the middle, run again with the same `--db` and `--outbox`
/// and killed again, then run to the end: the outbox ends with exactly the emails of an
/// undisturbed run, each written once, byte for byte, and no temporary file; each run prints
/// an `email.sent` row only for emails it wrote (the last run: for each one it wrote), and no
/// email is printed by two runs. (A killed run's last rows, of emails written just before the
/// kill, may be missing: output and files cannot be written atomically together. Their files
/// are there.)
#[test]
fn runs_killed_mid_run_and_run_again_write_each_email_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, events, err) = nudge(
        &root(),
        &["generate-events", "--customers", "300", "--days", "30"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let events_file = tmp.path().join("events.jsonl");
    std::fs::write(&events_file, events).unwrap();

    // Undisturbed.
    let full = tmp.path().join("full");
    let out = simulate_command(&events_file, &full, &tmp.path().join("full.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = emails(&full);
    assert_eq!(
        sent_keys(&String::from_utf8(out.stdout).unwrap()).len(),
        expected.len()
    );
    assert!(expected.len() > 500, "{}", expected.len());

    // Killed once a third of the emails are written, then again at two thirds (a resumed run
    // killed in turn), then run to the end: each run with what it wrote and what it printed.
    let outbox = tmp.path().join("outbox");
    let db = tmp.path().join("store.db");
    let mut runs: Vec<(BTreeSet<String>, Vec<String>)> = Vec::new();
    for third in [1, 2] {
        let before = emails(&outbox_or_empty(&outbox));
        let printed = kill_when_written(
            simulate_command(&events_file, &outbox, &db),
            &outbox,
            expected.len() * third / 3,
            &tmp.path().join(format!("killed-{third}.jsonl")),
        );
        let written = new_keys(&before, &emails(&outbox));
        assert!(emails(&outbox).len() < expected.len(), "killed too late");
        runs.push((written, printed));
    }
    let before = emails(&outbox);
    let last = simulate_command(&events_file, &outbox, &db)
        .output()
        .unwrap();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    let printed = sent_keys(&String::from_utf8(last.stdout).unwrap());
    runs.push((new_keys(&before, &emails(&outbox)), printed));

    assert_eq!(
        emails(&outbox),
        expected,
        "each email written once, byte for byte"
    );
    assert!(temp_files(&outbox).is_empty(), "{:?}", temp_files(&outbox));
    check_rows(&runs, expected.len());
}

/// A `--db` store written by a run without `--outbox` (which records its emails as sent and
/// builds no message) and left with sends pending or claimed, as a run killed mid-round leaves
/// them, is continued by a run with `--outbox`: those sends are recorded sent, as their own
/// run meant, never failed for their missing message, and nothing is written for them.
#[test]
fn sends_a_run_without_an_outbox_left_are_recorded_by_a_run_with_one() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.db");
    let db_arg = db.to_str().unwrap();
    let (code, _, err) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            "events/sample.jsonl",
            "--db",
            db_arg,
        ],
        &[("NUDGE_SIGNING_KEY", "")],
    );
    assert_eq!(code, 0, "{err}");
    // As a kill mid-round would leave them: three pending, two claimed.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let changed = conn
        .execute(
            "UPDATE sends SET status = CASE WHEN length(idempotency_key) % 2 = 0 \
             THEN 'pending' ELSE 'sending' END, retry_at = at, message_id = NULL \
             WHERE idempotency_key IN \
             (SELECT idempotency_key FROM sends WHERE kind = 'email' LIMIT 5)",
            [],
        )
        .unwrap();
    assert_eq!(changed, 5);
    drop(conn);
    let outbox = tmp.path().join("out");
    std::fs::create_dir(&outbox).unwrap();
    let (code, out, err) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            "events/sample.jsonl",
            "--db",
            db_arg,
            "--outbox",
            outbox.to_str().unwrap(),
        ],
        &[("NUDGE_SIGNING_KEY", "")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(rows(&out, "email.failed"), 0, "{out}");
    assert!(emails(&outbox).is_empty(), "nothing is written for them");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let open: i64 = conn
        .query_row(
            "SELECT count(*) FROM sends WHERE status IN ('pending', 'sending', 'failed')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open, 0, "every send settled sent");
}
