//! Helpers shared by the fuzz targets: a fuzz input split into the files of a small project,
//! and [`block_on`] for the futures of stores and mailers that never wait.
//!
//! A project input is text in sections, each introduced by a header line `==> NAME <==`
//! (the format of `head` given several files); text before the first header is the workflow
//! file `fuzz.yaml`. For example:
//!
//! ```text
//! ==> settings.yaml <==
//! store: { name: Shop, url: "https://shop.example.com" }
//! ==> welcome.yaml <==
//! id: welcome
//! ...
//! ==> templates/welcome/hi.mjml <==
//! <mjml>...</mjml>
//! ```
//!
//! Names are cleaned so that every file stays inside the project folder (see [`clean_name`]).

use std::future::Future;
use std::path::Path;
use std::task::{Context, Poll, Waker};

/// The header that starts a section: `==> NAME <==` on a line of its own.
const OPEN: &str = "==> ";
const CLOSE: &str = " <==";

/// The name of text before the first header.
pub const DEFAULT_FILE: &str = "fuzz.yaml";

/// At most this many files are written: more say nothing new and cost file-system time.
pub const MAX_FILES: usize = 12;

/// The files of a project input, as (cleaned relative path, contents) in input order.
/// A later section of the same name replaces an earlier one.
pub fn sections(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut name = DEFAULT_FILE.to_owned();
    let mut body: Vec<u8> = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        if let Some(header) = header_name(line) {
            push(&mut files, name, std::mem::take(&mut body));
            name = header;
        } else {
            body.extend_from_slice(line);
        }
    }
    push(&mut files, name, body);
    files.truncate(MAX_FILES);
    files
}

/// Adds a section, unless it is an empty default (no text before the first header).
fn push(files: &mut Vec<(String, Vec<u8>)>, name: String, body: Vec<u8>) {
    if name == DEFAULT_FILE && body.is_empty() && files.is_empty() {
        return;
    }
    files.retain(|(n, _)| *n != name);
    files.push((name, body));
}

/// The cleaned name of a header line, if `line` is one.
fn header_name(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let name = line.strip_prefix(OPEN)?.strip_suffix(CLOSE)?;
    clean_name(name)
}

/// `name` as a relative path that stays inside the project: ASCII letters, digits, `.`, `-`,
/// `_` and `/` only, no empty, `.` or `..` component, at most 4 components and 80 bytes.
/// `None` when nothing is left.
pub fn clean_name(name: &str) -> Option<String> {
    let parts: Vec<String> = name
        .split('/')
        .map(|p| {
            p.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect::<String>()
        })
        .filter(|p| !p.is_empty() && p != "." && p != "..")
        .take(4)
        .collect();
    let joined = parts.join("/");
    (!joined.is_empty() && joined.len() <= 80).then_some(joined)
}

/// Writes the sections of `data` under `dir`; a file that cannot be written (a name that is
/// both a file and a folder) is skipped: the loader sees what is there.
pub fn write_project(dir: &Path, data: &[u8]) {
    for (name, body) in sections(data) {
        let path = dir.join(&name);
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_err()
        {
            continue;
        }
        let _ = std::fs::write(&path, body);
    }
}

/// Runs a future that never waits (`SqliteStore` and the local mailers answer at once) to its
/// end on the calling thread, without a runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_headers() {
        let input = b"id: x\n==> settings.yaml <==\na: 1\n==> templates/a/b.mjml <==\n<mjml/>\n";
        let files = sections(input);
        assert_eq!(
            files,
            vec![
                ("fuzz.yaml".to_owned(), b"id: x\n".to_vec()),
                ("settings.yaml".to_owned(), b"a: 1\n".to_vec()),
                ("templates/a/b.mjml".to_owned(), b"<mjml/>\n".to_vec()),
            ]
        );
    }

    #[test]
    fn names_stay_inside() {
        assert_eq!(
            clean_name("../../etc/passwd"),
            Some("etc/passwd".to_owned())
        );
        assert_eq!(clean_name("/abs//x"), Some("abs/x".to_owned()));
        assert_eq!(clean_name(".."), None);
    }
}
