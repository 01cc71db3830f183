//! The events file, read twice so that memory stays small however long it is: a first pass
//! ([`EventsIndex::read`]) keeps only each line's time and place, to sort; the second
//! ([`Lines`]) reads the lines back one at a time, in time order.
//!
//! Neither pass holds more of a line than an event may be: a longer line is kept only up to
//! [`HEAD_BYTES`] (to name it by its id) and skipped to its end. An input that cannot be read
//! twice (a pipe, `/dev/stdin`) is copied to an unnamed temporary file during the first pass,
//! which the second reads. The byte-order mark at the start of the file, if any, is skipped;
//! both passes see every line as the same bytes, and a line that is not UTF-8 is rejected, never
//! read lossily.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use nudge_core::event::{EventError, HEAD_BYTES, MAX_EVENT_BYTES, parse_time};

use super::SimulateError;

/// What the first pass keeps of a line: anything longer is over [`MAX_EVENT_BYTES`] with
/// room for a line end (`\r\n`), and its time is not read.
const INDEX_KEEP: usize = MAX_EVENT_BYTES + 3;

/// A line longer than this, line end included, is over [`MAX_EVENT_BYTES`] whatever its end.
const OVERLONG: usize = MAX_EVENT_BYTES + 2;

/// The UTF-8 byte-order mark, skipped at the start of the file.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// One line of the events file, as the first pass saw it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Indexed {
    /// Its time, when the first pass could read it.
    pub(super) time: Option<DateTime<Utc>>,
    /// 1-based line number.
    pub(super) line: usize,
    /// Where it starts in the file read by the second pass.
    offset: u64,
    /// Its length, line end included.
    len: usize,
    /// Its length without the line end, when it is over [`OVERLONG`] (the second pass then
    /// reads only its head).
    overlong: Option<usize>,
}

/// The non-blank lines of the events file in time order (ties keep file order). Lines whose
/// time cannot be read sort first: they are rejected in the second pass, with the full reason.
pub(super) struct EventsIndex(Vec<Indexed>);

impl EventsIndex {
    /// The first pass over `path`. Returns the index and the file for the second pass: the
    /// file itself, or a temporary copy of it when it cannot be read twice (a pipe).
    pub(super) fn read(path: &Path) -> Result<(Self, File), SimulateError> {
        let read_err = |source| SimulateError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let seekable = file.metadata().map_err(read_err)?.is_file();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        if seekable {
            let index = Self::scan(&mut reader, None::<&mut io::Sink>).map_err(read_err)?;
            return Ok((index, reader.into_inner()));
        }
        let spool_err = |source| SimulateError::Spool {
            path: path.to_path_buf(),
            source,
        };
        let mut spool = BufWriter::new(tempfile::tempfile().map_err(spool_err)?);
        let index = Self::scan(&mut reader, Some(&mut spool)).map_err(|e| match e.kind() {
            // Only writing the copy fails with these; reading a pipe does not.
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => spool_err(e),
            _ => read_err(e),
        })?;
        let spool = spool.into_inner().map_err(|e| spool_err(e.into_error()))?;
        Ok((index, spool))
    }

    /// Reads every line of `reader`, copying it to `copy` when given.
    fn scan(reader: &mut impl BufRead, mut copy: Option<&mut impl Write>) -> io::Result<Self> {
        let mut out = Vec::new();
        let mut buf = Vec::with_capacity(1 << 16);
        let (mut offset, mut line) = (0u64, 0usize);
        loop {
            buf.clear();
            let (n, end) = read_line(reader, &mut buf, INDEX_KEEP, copy.as_deref_mut())?;
            if n == 0 {
                break;
            }
            line += 1;
            // A mark at the start of the file is not part of the first line.
            let skip = if offset == 0 && buf.starts_with(BOM) {
                BOM.len()
            } else {
                0
            };
            let text = trim_line(&buf[skip..]);
            if n > OVERLONG || !text.iter().all(u8::is_ascii_whitespace) {
                out.push(Indexed {
                    time: (n <= OVERLONG).then(|| time_of(text)).flatten(),
                    line,
                    offset: offset + skip as u64,
                    len: n - skip,
                    overlong: (n > OVERLONG).then_some(n - skip - end),
                });
            }
            offset += n as u64;
        }
        if let Some(copy) = copy {
            copy.flush()?;
        }
        // Stable: ties keep file order.
        out.sort_by_key(|i| i.time);
        Ok(EventsIndex(out))
    }

    /// The number of lines.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The earliest time of a line.
    pub(super) fn first_time(&self) -> Option<DateTime<Utc>> {
        self.0.iter().find_map(|i| i.time)
    }

    /// The latest time of a line.
    pub(super) fn last_time(&self) -> Option<DateTime<Utc>> {
        self.0.iter().filter_map(|i| i.time).max()
    }
}

/// Reads one line (through its `\n`, or to the end of the input) from `reader`, keeping at
/// most `keep` bytes of it in `buf` and copying all of it to `copy`. Returns its length and
/// the length of its line end (`\n` or `\r\n`); a length of 0 is the end of the input.
fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    keep: usize,
    mut copy: Option<&mut impl Write>,
) -> io::Result<(usize, usize)> {
    let (mut n, mut last2) = (0usize, [0u8; 2]);
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let newline = available.iter().position(|b| *b == b'\n');
        let take = newline.map_or(available.len(), |i| i + 1);
        let part = &available[..take];
        if let Some(copy) = copy.as_deref_mut() {
            copy.write_all(part)?;
        }
        let room = keep.saturating_sub(buf.len()).min(take);
        buf.extend_from_slice(&part[..room]);
        last2 = match part {
            [.., a, b] => [*a, *b],
            [b] => [last2[1], *b],
            [] => last2,
        };
        n += take;
        reader.consume(take);
        if newline.is_some() {
            break;
        }
    }
    let end = match last2 {
        [b'\r', b'\n'] if n >= 2 => 2,
        [_, b'\n'] => 1,
        _ => 0,
    };
    Ok((n, end))
}

/// The `time` field of a line, if it can be read without parsing the whole event, exactly
/// as the parser reads it: a line whose `time` is repeated, not valid, or out of range has
/// none here, and the parser rejects it.
fn time_of(text: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct TimeOnly<'a> {
        // serde's derive refuses a repeated field, as the parser refuses a repeated key.
        #[serde(borrow)]
        time: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<TimeOnly>(text)
        .ok()
        .and_then(|t| t.time)
        .and_then(|t| parse_time(&t).ok())
}

/// A line without its line end (`\n`, `\r\n`, or any run of them).
fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

/// A line the second pass cannot hand to the parser: why, and its body for the dead letter.
pub(super) type Unreadable = (EventError, String);

/// The second pass: the indexed lines read back one at a time, in time order. Seeks only
/// when the next line is not the one after the last (the file is often in time order).
pub(super) struct Lines {
    index: Vec<Indexed>,
    /// The file's path, for errors.
    path: PathBuf,
    file: BufReader<File>,
    /// Where the file is.
    pos: u64,
    /// The last line read.
    buf: Vec<u8>,
}

impl Lines {
    /// The second pass over `index`, in `file` (from [`EventsIndex::read`]), named `path`.
    pub(super) fn open(index: EventsIndex, file: File, path: &Path) -> Self {
        Lines {
            index: index.0,
            path: path.to_path_buf(),
            file: BufReader::with_capacity(1 << 16, file),
            // Unknown: the first read seeks.
            pos: u64::MAX,
            buf: Vec::new(),
        }
    }

    /// The number of lines.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// The `n`th line in time order, as indexed.
    pub(super) fn entry(&self, n: usize) -> Indexed {
        self.index[n]
    }

    /// The text of `entry`, without its line end; or, for a line over [`MAX_EVENT_BYTES`] or
    /// not UTF-8, why not, with its body for the dead letter (see [`dead_letter_body`]).
    pub(super) fn read(
        &mut self,
        entry: &Indexed,
    ) -> Result<Result<&str, Unreadable>, SimulateError> {
        let read_err = |source| SimulateError::Read {
            path: self.path.clone(),
            source,
        };
        if self.pos != entry.offset {
            self.file
                .seek(SeekFrom::Start(entry.offset))
                .map_err(read_err)?;
        }
        let want = entry
            .overlong
            .map_or(entry.len, |_| HEAD_BYTES.min(entry.len));
        self.buf.resize(want, 0);
        self.file.read_exact(&mut self.buf).map_err(read_err)?;
        self.pos = entry.offset + want as u64;
        if let Some(bytes) = entry.overlong {
            let error = EventError::too_large(&self.buf, bytes);
            return Ok(Err((error, dead_letter_body(&self.buf))));
        }
        let line = trim_line(&self.buf);
        Ok(std::str::from_utf8(line)
            .map_err(|e| (EventError::not_utf8(line, e), dead_letter_body(line))))
    }
}

/// The body kept in a dead letter for a line that is not parsed: its first
/// [`MAX_EVENT_BYTES`] bytes, each byte that is not UTF-8 written as `\xNN` (which valid JSON
/// never holds, so it cannot be mistaken for the line's own text in a JSON line).
pub(super) fn dead_letter_body(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().min(MAX_EVENT_BYTES));
    for chunk in bytes[..bytes.len().min(MAX_EVENT_BYTES)].utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}
