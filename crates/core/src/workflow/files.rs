//! Reading the files of a workflows folder (workflows, `settings.yaml`, templates): only
//! regular files inside the folder, at most [`MAX_FILE_BYTES`], as UTF-8 text with a leading
//! byte-order mark dropped and CRLF line ends made LF (Windows editors and git's `autocrlf`
//! write both). Line numbers are unchanged by either.

use std::io::Read;
use std::path::Path;

use crate::workflow::template::offset_to_pos;
use crate::workflow::yaml::Pos;

/// The largest workflow, settings or template file Nudge reads: 1 MiB. Real ones are a few
/// kilobytes; the bound keeps a link to `/dev/zero` or a runaway generated file from filling
/// memory. At most one byte more than this is ever read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a file of the workflows folder was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file system refused.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// A folder, a device, a pipe or a socket.
    #[error("not a regular file (a folder, device or pipe); Nudge reads only regular files")]
    NotAFile,
    /// A link (or a path through one) that leads out of the workflows folder.
    #[error("a link to a file outside the workflows folder; Nudge reads only files inside it")]
    Outside,
    /// Over [`MAX_FILE_BYTES`].
    #[error("file is larger than {MAX_FILE_BYTES} bytes (1 MiB), the limit")]
    TooLarge,
    /// Bytes that are not UTF-8, the first of them at `pos`.
    #[error("file is not UTF-8 text: invalid byte 0x{byte:02x}")]
    NotUtf8 {
        /// Line and column of the first invalid byte.
        pos: Pos,
        /// That byte.
        byte: u8,
    },
}

impl ReadError {
    /// Where in the file the problem is: the first invalid byte, else the file's start.
    pub fn pos(&self) -> Pos {
        match self {
            ReadError::NotUtf8 { pos, .. } => *pos,
            _ => Pos::new(1, 1),
        }
    }
}

/// Reads `path` as text. With `root` (the workflows folder, canonical), a path that resolves
/// outside it is refused.
pub fn read_text(path: &Path, root: Option<&Path>) -> Result<String, ReadError> {
    if let Some(root) = root
        && !std::fs::canonicalize(path)?.starts_with(root)
    {
        return Err(ReadError::Outside);
    }
    // Checked before opening: opening a FIFO for reading waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(ReadError::NotAFile);
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    decode(bytes)
}

/// UTF-8 text without a byte-order mark and with LF line ends.
pub fn decode(mut bytes: Vec<u8>) -> Result<String, ReadError> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        // The valid prefix is text; the invalid byte sits just after it.
        let prefix = String::from_utf8_lossy(&bytes[..valid]);
        let pos = offset_to_pos(&prefix, valid);
        ReadError::NotUtf8 {
            pos,
            byte: bytes[valid],
        }
    })?;
    Ok(if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text
    })
}

/// The workflows folder as `read_text` compares paths with it; none when it cannot be
/// resolved (then every read reports its own error).
pub fn canonical_root(dir: &Path) -> Option<std::path::PathBuf> {
    std::fs::canonicalize(dir).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_marks_and_crlf_are_accepted_and_lines_kept() {
        let text = decode(b"\xEF\xBB\xBFa: 1\r\nb: 2\r\n".to_vec()).unwrap();
        assert_eq!(text, "a: 1\nb: 2\n");
    }

    #[test]
    fn invalid_utf8_is_placed_at_its_first_byte() {
        let e = decode(b"a: 1\nname: \"D\xC3\xBCkkan\xFF\"\n".to_vec()).unwrap_err();
        assert_eq!(e.pos(), Pos::new(2, 14));
        assert_eq!(e.to_string(), "file is not UTF-8 text: invalid byte 0xff");
    }
}
