//! What `nudge-local` reads back from its own files, on arbitrary bytes: the MIME headers of a
//! logged message (`RecordingMailer::send`'s `Message-ID`, `mime::recipient_and_subject`), and
//! the outbox's file names (`OutboxMailer::new` over a folder holding files of the input's
//! names, which keeps `.eml` keys and removes its temporary files, then `lookup`). Never a
//! panic; a receipt always has a message id.
//!
//! Input: byte 0 the part (even: a message; odd: file names, one a line, at most 8).
#![no_main]

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use nudge_core::mail::Mailer;
use nudge_core::store::{SendKind, SendRecord};
use nudge_fuzz::block_on;
use nudge_local::{OutboxMailer, RecordingMailer, mime};

fn record(key: &str, payload: &[u8]) -> SendRecord {
    SendRecord {
        idempotency_key: key.to_owned(),
        customer_id: "c-1".to_owned(),
        workflow: "w".to_owned(),
        step: "s".to_owned(),
        kind: SendKind::Email,
        category: "marketing".to_owned(),
        tags: Vec::new(),
        at: DateTime::<Utc>::UNIX_EPOCH,
        payload: payload.to_vec(),
    }
}

/// One folder for every run, emptied each time.
fn folder() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fuzz_target!(|data: &[u8]| {
    let Some((&part, rest)) = data.split_first() else {
        return;
    };
    if part % 2 == 0 {
        let receipt = block_on(RecordingMailer.send(&record("r-1", rest))).unwrap();
        assert!(!receipt.message_id.is_empty());
        let _ = mime::recipient_and_subject(rest);
        return;
    }
    let dir = folder().join("outbox");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = String::from_utf8_lossy(rest);
    let mut keys = Vec::new();
    for name in text.lines().take(8) {
        // Only names a folder can hold.
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
            continue;
        }
        if name.len() > 200 || std::fs::write(dir.join(name), b"x").is_err() {
            continue;
        }
        keys.push(name.to_owned());
    }
    let outbox = OutboxMailer::new(&dir).unwrap();
    for key in keys {
        let _ = block_on(outbox.lookup(&record(&key, b"")));
    }
});
