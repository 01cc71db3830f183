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
        if outbox.exists() && emails(outbox).len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    sent_keys(&std::fs::read_to_string(out).unwrap())
}

/// A run killed with SIGKILL in the middle, then run again with the same `--db` and
/// `--outbox`: the outbox ends with exactly the emails of an undisturbed run, each written
/// once, byte for byte, and no temporary file; the second run prints an `email.sent` row for
/// each email it wrote and for none the killed run wrote; no email is printed by both. (The
/// killed run's last rows, of emails written just before the kill, may be missing: output
/// and files cannot be written atomically together. Their files are there.)
#[test]
fn a_run_killed_mid_run_and_run_again_writes_each_email_once() {
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

    // Killed once a third of the emails are written.
    let outbox = tmp.path().join("outbox");
    let db = tmp.path().join("store.db");
    let killed_keys = kill_when_written(
        simulate_command(&events_file, &outbox, &db),
        &outbox,
        expected.len() / 3,
        &tmp.path().join("killed.jsonl"),
    );
    let at_kill = emails(&outbox);
    assert!(at_kill.len() < expected.len(), "killed too late");

    // Run again to the end.
    let again = simulate_command(&events_file, &outbox, &db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    let again_keys = sent_keys(&String::from_utf8(again.stdout).unwrap());

    let after = emails(&outbox);
    assert_eq!(after, expected, "each email written once, byte for byte");
    assert!(temp_files(&outbox).is_empty(), "{:?}", temp_files(&outbox));
    let written_before: BTreeSet<String> = at_kill.keys().map(|n| key_of(n)).collect();
    let written_again: BTreeSet<String> = after
        .keys()
        .filter(|n| !at_kill.contains_key(*n))
        .map(|n| key_of(n))
        .collect();
    // The second run printed exactly the emails it wrote, each once.
    let printed_again: BTreeSet<String> = again_keys.iter().cloned().collect();
    assert_eq!(printed_again.len(), again_keys.len(), "a row printed twice");
    assert_eq!(printed_again, written_again);
    // The killed run printed only emails it wrote, each once, and none the second run printed.
    let printed_before: BTreeSet<String> = killed_keys.iter().cloned().collect();
    assert_eq!(
        printed_before.len(),
        killed_keys.len(),
        "a row printed twice"
    );
    assert!(printed_before.is_subset(&written_before));
    assert!(printed_before.is_disjoint(&printed_again));
    eprintln!(
        "killed run: {} emails written, {} rows printed; second run: {} written and printed; \
         {} in all ({} rows lost with the killed run's last output)",
        written_before.len(),
        printed_before.len(),
        printed_again.len(),
        after.len(),
        written_before.len() - printed_before.len(),
    );
}
