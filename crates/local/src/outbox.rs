//! [`OutboxMailer`]: delivery to a folder of `.eml` files, for `nudge simulate --outbox` and
//! tests.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nudge_core::mail::{Email, MailError, Mailer, Receipt, escape_key, message_id};

/// The outbox folder could not be created or read, so no mailer was made.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the outbox at {}: {source}", path.display())]
pub struct OutboxError {
    /// The folder.
    pub path: PathBuf,
    /// The file system's error.
    pub source: std::io::Error,
}

/// Writes each email as `<dir>/<YYYYMMDDTHHMMSSZ>-<escaped idempotency key>.eml`, a file any
/// mail client opens. The time is [`Email::date`], so a listing sorts in sending order.
///
/// Idempotent: an email whose idempotency key already has a file (from this mailer or an earlier
/// run on the same folder) is not written again, and gets the same [`Receipt`]. Each file is
/// written to a temporary name in the same folder and renamed, so a reader never sees half an
/// email. One process at a time should write to a folder: the keys already written are read
/// once, when the mailer is made.
#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    /// Escaped keys of the emails in `dir`. The lock is held while a file is written, so two
    /// sends of one key cannot both write.
    written: Mutex<HashSet<String>>,
}

impl OutboxMailer {
    /// An outbox in `dir`, which is created if missing. Emails already in it count as sent.
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
            if let Some(key) = name.to_str().and_then(key_of_file_name) {
                written.insert(key.to_owned());
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

    fn write(&self, email: &Email, mime: &[u8]) -> Result<Receipt, MailError> {
        let receipt = Receipt {
            message_id: message_id(email)?,
        };
        let key = escape_key(&email.idempotency_key);
        // The set is only changed after a successful write, so a panic elsewhere while it was
        // locked leaves it consistent: carry on with it.
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if written.contains(&key) {
            return Ok(receipt);
        }

        let name = format!("{}-{key}.eml", email.date.format("%Y%m%dT%H%M%SZ"));
        let path = self.dir.join(&name);
        // A dot file in the same folder: the rename is then atomic, and the name is not an
        // `.eml` that a reader (or `new`) would take for a sent email.
        let temp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let result = fs::File::create(&temp)
            .and_then(|mut file| file.write_all(mime))
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(source) = result {
            let _ = fs::remove_file(&temp);
            return Err(write_error(&path, source));
        }
        written.insert(key);
        tracing::debug!(file = %name, "email written to the outbox");
        Ok(receipt)
    }
}

impl Mailer for OutboxMailer {
    /// Writes the email's file unless its key already has one. The file system is used
    /// directly (blocking): files are small and local, and `simulate` runs on a
    /// current-thread runtime where there is nothing else to run meanwhile.
    async fn send(&self, email: &Email, mime: &[u8]) -> Result<Receipt, MailError> {
        self.write(email, mime)
    }
}

/// A failed write of the file `path` as a [`MailError`]: a file system that refuses it for
/// good (permissions, a read-only mount, a name it does not take, a folder gone, a quota) is
/// [`MailError::Rejected`]; anything else (a full disk, an I/O error) is
/// [`MailError::Unavailable`], worth a retry.
fn write_error(path: &Path, source: std::io::Error) -> MailError {
    use std::io::ErrorKind;

    let message = format!("cannot write the outbox at {}: {source}", path.display());
    let kind = source.kind();
    let source = Some(Box::new(source) as Box<dyn std::error::Error + Send + Sync>);
    match kind {
        ErrorKind::NotFound
        | ErrorKind::PermissionDenied
        | ErrorKind::ReadOnlyFilesystem
        | ErrorKind::InvalidFilename
        | ErrorKind::InvalidInput
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::FileTooLarge
        | ErrorKind::QuotaExceeded => MailError::Rejected { message, source },
        _ => MailError::Unavailable { message, source },
    }
}

/// The escaped key in an outbox file name (`20260301T100000Z-<key>.eml`), or `None` for any
/// other file.
fn key_of_file_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".eml")?;
    let (time, key) = stem.split_at_checked(16)?;
    let key = key.strip_prefix('-')?;
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
}
