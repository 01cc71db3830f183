//! [`OutboxMailer`]: delivery to a folder of `.eml` files, for `nudge simulate --outbox` and
//! tests.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nudge_core::engine::customer_ref;
use nudge_core::mail::{Lookup, MailError, Mailer, Receipt, escape_key};
use nudge_core::store::SendRecord;

/// The outbox folder could not be created or read, so no mailer was made.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the outbox at {}: {source}", path.display())]
pub struct OutboxError {
    /// The folder.
    pub path: PathBuf,
    /// The file system's error.
    pub source: std::io::Error,
}

/// Writes each email as
/// `<dir>/<YYYYMMDDTHHMMSSZ>_<customer>_<workflow>_<escaped idempotency key>.eml` (the key is
/// `<run>.<step>`), a file any mail client opens:
/// `20260105T071231Z_c-1001_welcome-series_r-0e1ac569837839ccdff0.welcome.eml`. The time is
/// when the email was decided ([`SendRecord::at`]), so a listing sorts in sending order; the
/// customer and workflow let a marketer find one customer's or one workflow's emails
/// (`ls *_c-1001_*`); the key, unique per send, keeps names unique. The customer is shown by
/// `customer_ref` (a guest's address never reaches a name: a short hash does), and characters
/// other than ASCII letters, digits, `-` and `.` in the customer and workflow become `-`. The
/// file holds the send's payload, the MIME message, byte for byte.
///
/// The outbox is a mailer of the send guarantee (docs/ARCHITECTURE.md):
/// - atomic: each file is written to a temporary dot file in the same folder and renamed, so
///   a file with an `.eml` name is a whole email, and one is there exactly when the email was
///   delivered, whenever the process is killed. A temporary file a crash left is removed when
///   the outbox is opened. Files are not synced to disk one by one (two fsyncs per email made
///   a simulation of 22,000 emails three times slower): like the store's default durability,
///   a crash of the process loses nothing, a power loss may lose the last files;
/// - idempotent: an email whose idempotency key already has a file (from this mailer or an
///   earlier run on the same folder) is not written again, and gets the same [`Receipt`];
/// - it can tell ([`Mailer::lookup`]) whether a send was delivered, so a send whose sender
///   stopped mid-way is never written twice;
/// - a write that fails (a read-only folder, a full disk) is [`MailError::Unavailable`]: the
///   send stays in the send log for a retry, and a later run with a writable outbox delivers
///   it.
///
/// One process at a time should write to a folder: the keys already written are read once,
/// when the mailer is made.
#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    /// Escaped keys of the emails in `dir`. The lock is held while a file is written, so two
    /// sends of one key cannot both write.
    written: Mutex<HashSet<String>>,
}

impl OutboxMailer {
    /// An outbox in `dir`, which is created if missing. Emails already in it count as sent;
    /// temporary files left by a process that stopped while writing are removed.
    ///
    /// # Errors
    ///
    /// [`OutboxError`] when the folder cannot be created or read.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, OutboxError> {
        let dir = dir.into();
        let io_error = |source| OutboxError {
            path: dir.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io_error)?;
        let mut written = HashSet::new();
        for entry in fs::read_dir(&dir).map_err(io_error)? {
            let name = entry.map_err(io_error)?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(key) = key_of_file_name(name) {
                written.insert(key.to_owned());
            } else if is_temp_file_name(name) {
                // Half an email, never renamed: its send was not delivered (the store still
                // has it pending or claimed), so it is written again in full.
                fs::remove_file(dir.join(name)).map_err(io_error)?;
                tracing::debug!(file = %name, "temporary outbox file removed");
            }
        }
        Ok(Self {
            dir,
            written: Mutex::new(written),
        })
    }

    /// The folder the emails are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The set of written keys, locked. It is only changed after a successful write, so a
    /// panic elsewhere while it was locked leaves it consistent: carry on with it.
    fn written(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        let receipt = receipt(send);
        let key = escape_key(&send.idempotency_key);
        let mut written = self.written();
        if written.contains(&key) {
            return Ok(receipt);
        }
        let name = file_name(send, &key);
        let path = self.dir.join(&name);
        // A dot file in the same folder: the rename is then atomic, and the name is not an
        // `.eml` that a reader (or `new`) would take for a sent email.
        let temp = self
            .dir
            .join(format!(".{key}.{}{TEMP_SUFFIX}", std::process::id()));
        if let Err(source) = write_atomically(&temp, &path, &send.payload) {
            let _ = fs::remove_file(&temp);
            return Err(write_error(&path, source));
        }
        written.insert(key);
        tracing::debug!(file = %name, "email written to the outbox");
        Ok(receipt)
    }
}

/// The suffix of the outbox's temporary files.
const TEMP_SUFFIX: &str = ".tmp";

/// Whether `name` is a temporary file of an outbox: `.<escaped key>.<process id>.tmp`.
fn is_temp_file_name(name: &str) -> bool {
    let Some(inner) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
    else {
        return false;
    };
    inner.rsplit_once('.').is_some_and(|(key, pid)| {
        !key.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Writes `bytes` to `temp` and renames it to `path`, so that after a crash of the process
/// `path` is either absent or whole.
fn write_atomically(temp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(temp)?;
    file.write_all(bytes)?;
    drop(file);
    fs::rename(temp, path)
}

/// What the outbox reports for `send`: the `Message-ID` the message carries (without its
/// angle brackets), or else the escaped key.
fn receipt(send: &SendRecord) -> Receipt {
    Receipt {
        message_id: crate::mime::message_id(&send.payload)
            .unwrap_or_else(|| escape_key(&send.idempotency_key)),
    }
}

impl Mailer for OutboxMailer {
    /// Writes the email's file unless its key already has one. The file system is used
    /// directly (blocking): files are small and local, and `simulate` runs on a
    /// current-thread runtime where there is nothing else to run meanwhile.
    async fn send(&self, send: &SendRecord) -> Result<Receipt, MailError> {
        self.write(send)
    }

    /// Whether the email's file is there: the outbox knows for sure, since a file is there
    /// exactly when the email was delivered.
    async fn lookup(&self, send: &SendRecord) -> Result<Lookup, MailError> {
        let key = escape_key(&send.idempotency_key);
        Ok(if self.written().contains(&key) {
            Lookup::Delivered(receipt(send))
        } else {
            Lookup::NotDelivered
        })
    }
}

/// A failed write of the file `path` as a [`MailError::Unavailable`], whatever the cause (a
/// read-only folder, a full disk, a folder removed): the outbox stands for a mail service,
/// and each of these may pass, so the send is kept for a retry rather than failed for good.
fn write_error(path: &Path, source: std::io::Error) -> MailError {
    MailError::Unavailable {
        message: format!("cannot write the outbox at {}: {source}", path.display()),
        source: Some(Box::new(source)),
    }
}

/// The most characters of the customer and of the workflow in a file name: with the time and
/// the longest escaped key (153), a name stays under the 255 bytes file systems allow.
const PART_MAX: usize = 32;

/// The file name of `send`, whose escaped idempotency key is `key`:
/// `<time>_<customer>_<workflow>_<key>.eml`. The customer is [`customer_ref`] (a `guest:` id,
/// or any id with an `@`, becomes a short hash: never an address in a file name); in it and in
/// the workflow id, every character but ASCII letters, digits, `-` and `.` becomes `-`, and
/// each is cut to [`PART_MAX`] characters. Neither part can then hold `_`, so the key is
/// whatever follows the third `_` (see [`key_of_file_name`]).
fn file_name(send: &SendRecord, key: &str) -> String {
    format!(
        "{}_{}_{}_{key}.eml",
        send.at.format("%Y%m%dT%H%M%SZ"),
        name_part(&customer_ref(&send.customer_id)),
        name_part(&send.workflow),
    )
}

/// `text` for a file name: see [`file_name`]. Never empty (`-` for empty text).
fn name_part(text: &str) -> String {
    let part: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(PART_MAX)
        .collect();
    if part.is_empty() { "-".into() } else { part }
}

/// The escaped key in an outbox file name (`20260301T100000Z_<customer>_<workflow>_<key>.eml`,
/// or `20260301T100000Z-<key>.eml` as earlier versions wrote), or `None` for any other file.
fn key_of_file_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".eml")?;
    let (time, rest) = stem.split_at_checked(16)?;
    let key = match rest.strip_prefix('_') {
        // Customer and workflow parts never hold `_`: the key follows the third.
        Some(parts) => parts.splitn(3, '_').nth(2)?,
        None => rest.strip_prefix('-')?,
    };
    let is_time = time.bytes().enumerate().all(|(i, b)| match i {
        8 => b == b'T',
        15 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    (is_time && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_back_their_key() {
        assert_eq!(
            key_of_file_name("20260301T100000Z_c-1_win-back_r-1.miss-you.eml"),
            Some("r-1.miss-you")
        );
        assert_eq!(
            key_of_file_name("20260301T100000Z_c-1_win-back_r_1.a_b.eml"),
            Some("r_1.a_b")
        );
        assert_eq!(key_of_file_name("20260301T100000Z_c-1_win-back.eml"), None);
        assert_eq!(key_of_file_name("20260301T100000Z_c-1_win-back_.eml"), None);
        // As earlier versions named them: still recognised, so no email is written twice.
        assert_eq!(
            key_of_file_name("20260301T100000Z-r-1.miss-you.eml"),
            Some("r-1.miss-you")
        );
        assert_eq!(key_of_file_name("20260301T100000Z-.eml"), None);
        assert_eq!(key_of_file_name("20260301T100000Z-r-1.eml.tmp"), None);
        assert_eq!(key_of_file_name(".r-1.123.tmp"), None);
        assert_eq!(key_of_file_name("notes.eml"), None);
        assert_eq!(key_of_file_name("2026030XT100000Z-r-1.eml"), None);
        assert_eq!(key_of_file_name("20260301T100000Zxr-1.eml"), None);
        assert_eq!(key_of_file_name("ş0260301T100000Z-r-1.eml"), None);
    }

    fn email(customer: &str, workflow: &str, key: &str) -> SendRecord {
        SendRecord {
            idempotency_key: key.into(),
            customer_id: customer.into(),
            workflow: workflow.into(),
            step: "s".into(),
            kind: nudge_core::store::SendKind::Email,
            category: "transactional".into(),
            tags: vec![],
            at: chrono::DateTime::UNIX_EPOCH,
            payload: b"Message-ID: <k@example.com>\r\n\r\nhello".to_vec(),
        }
    }

    #[test]
    fn temporary_files_are_dot_files_ending_in_tmp() {
        assert!(is_temp_file_name(".r-1.s.123.tmp"));
        assert!(!is_temp_file_name("r-1.s.123.tmp"));
        assert!(!is_temp_file_name(".hidden"));
        // Another program's dot file is left alone.
        assert!(!is_temp_file_name(".notes.tmp"));
        assert!(!is_temp_file_name(".r-1.s.12a.tmp"));
        assert!(!is_temp_file_name("..123.tmp"));
    }

    #[test]
    fn file_names_name_customer_workflow_and_key_and_give_the_key_back() {
        let e = email("c-1001", "welcome-series", "r-0e1a.welcome");
        let name = file_name(&e, &escape_key(&e.idempotency_key));
        assert_eq!(
            name,
            "19700101T000000Z_c-1001_welcome-series_r-0e1a.welcome.eml"
        );
        assert_eq!(key_of_file_name(&name), Some("r-0e1a.welcome"));
    }

    #[test]
    fn a_guest_address_never_reaches_a_file_name() {
        for id in ["guest:ayse@example.com", "ayse@example.com"] {
            let e = email(id, "w", "r-1.s");
            let name = file_name(&e, "r-1.s");
            assert!(!name.contains("ayse") && !name.contains('@'), "{name}");
            assert_eq!(key_of_file_name(&name), Some("r-1.s"), "{name}");
        }
        let guest = file_name(&email("guest:ayse@example.com", "w", "k"), "k");
        assert!(guest.starts_with("19700101T000000Z_guest-"), "{guest}");
    }

    #[test]
    fn unsafe_or_long_ids_are_cut_and_replaced_and_the_key_still_comes_back() {
        let long = "x".repeat(100);
        for (customer, workflow) in [
            ("a_b/../c d", "w_x"),
            ("", ""),
            ("müşteri:1\n", "w"),
            (long.as_str(), long.as_str()),
        ] {
            let e = email(customer, workflow, "r_1.step_2");
            let name = file_name(&e, "r_1.step_2");
            assert!(!name.contains('/') && !name.contains(' '), "{name}");
            assert!(!name.contains(char::is_control), "{name}");
            assert!(name.len() <= 16 + 3 + 2 * PART_MAX + 10 + 4, "{name}");
            assert_eq!(key_of_file_name(&name), Some("r_1.step_2"), "{name}");
        }
    }
}
