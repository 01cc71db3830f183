//! The events file, read twice so that memory stays small however long it is: a first pass
//! ([`EventsIndex::read`]) keeps only each line's time and place, to sort; the second
//! ([`Lines`]) reads the lines back one at a time, in time order.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use nudge_core::event::MAX_EVENT_BYTES;

use super::SimulateError;

/// One line of the events file, as the first pass saw it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Indexed {
    /// Its time, when the first pass could read it.
    pub(super) time: Option<DateTime<Utc>>,
    /// 1-based line number.
    pub(super) line: usize,
    /// Where it starts in the file.
    offset: u64,
    /// Its length, line end included.
    len: usize,
}

/// The non-blank lines of the events file in time order (ties keep file order). Lines whose
/// time cannot be read sort first: they are rejected in the second pass, with the full reason.
pub(super) struct EventsIndex(Vec<Indexed>);

impl EventsIndex {
    /// The first pass over `path`.
    pub(super) fn read(path: &Path) -> Result<Self, SimulateError> {
        let read_err = |source| SimulateError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let (mut offset, mut line) = (0u64, 0usize);
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            line += 1;
            let text = trim_line(&buf);
            if !text.iter().all(u8::is_ascii_whitespace) {
                out.push(Indexed {
                    time: time_of(text),
                    line,
                    offset,
                    len: n,
                });
            }
            offset += n as u64;
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

/// The `time` field of a line, if it can be read without parsing the whole event.
fn time_of(text: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct TimeOnly<'a> {
        #[serde(borrow)]
        time: Option<Cow<'a, str>>,
    }
    (text.len() <= MAX_EVENT_BYTES)
        .then(|| serde_json::from_slice::<TimeOnly>(text).ok())
        .flatten()
        .and_then(|t| t.time)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// A line without its line end (`\n`, `\r\n`, or any run of them).
fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

/// The second pass: the indexed lines read back one at a time, in time order. Seeks only
/// when the next line is not the one after the last (the file is often in time order).
pub(super) struct Lines {
    index: Vec<Indexed>,
    /// The file's path, for errors.
    path: PathBuf,
    file: BufReader<std::fs::File>,
    /// Where the file is.
    pos: u64,
    /// The last line read.
    buf: Vec<u8>,
}

impl Lines {
    /// Opens `path` for the second pass over `index`.
    pub(super) fn open(index: EventsIndex, path: &Path) -> Result<Self, SimulateError> {
        let file = std::fs::File::open(path).map_err(|source| SimulateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Lines {
            index: index.0,
            path: path.to_path_buf(),
            file: BufReader::with_capacity(1 << 16, file),
            pos: 0,
            buf: Vec::new(),
        })
    }

    /// The number of lines.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// The `n`th line in time order, as indexed.
    pub(super) fn entry(&self, n: usize) -> Indexed {
        self.index[n]
    }

    /// The text of `entry`, without its line end (invalid UTF-8 replaced by U+FFFD).
    pub(super) fn read(&mut self, entry: &Indexed) -> Result<Cow<'_, str>, SimulateError> {
        let read_err = |source| SimulateError::Read {
            path: self.path.clone(),
            source,
        };
        if self.pos != entry.offset {
            self.file
                .seek(SeekFrom::Start(entry.offset))
                .map_err(read_err)?;
        }
        self.buf.resize(entry.len, 0);
        self.file.read_exact(&mut self.buf).map_err(read_err)?;
        self.pos = entry.offset + entry.len as u64;
        Ok(String::from_utf8_lossy(trim_line(&self.buf)))
    }
}
