//! `nudge preview`: wiring only (the site is `nudge_review::preview`). Writes the site to
//! `--out`, or with `--serve` serves it from memory on a small HTTP server and rebuilds it when
//! a file under `--workflows` (or the `--data` file) changes. The server answers `GET` of the
//! site's files on the address given (localhost by default) and nothing else; its pages poll
//! `/_nudge/version` and reload themselves after a rebuild.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{SubsecRound, Utc};

use super::{escape_controls, exit};
use nudge_core::diagnostic::{Diagnostic, Severity};
use nudge_core::workflow::LoadError;
use nudge_review::preview::{self, DataError, SampleData, Site};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write the site into this folder.
    #[arg(long, value_name = "DIR", default_value = "preview/")]
    out: PathBuf,
    /// Sample data: a YAML or JSON file keyed by workflow id (`default` applies to all), each
    /// entry with a `customer` and/or an `event` object. Without it (or where it gives none),
    /// the data is made up from what the templates read.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Serve the site on this address instead of writing it, and rebuild it whenever a
    /// workflow, template or the data file changes. Loopback addresses only (127.0.0.1,
    /// `[::1]`): the sample data may be a real customer's.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8025", value_parser = loopback_addr)]
    serve: Option<SocketAddr>,
    /// The workflows folder.
    #[arg(long, value_name = "DIR", default_value = "workflows/")]
    workflows: PathBuf,
}

/// A `--serve` address: a socket address on a loopback interface.
fn loopback_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|e| format!("`{text}` is not an address like 127.0.0.1:8025 ({e})"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{} is not a loopback address: the preview is served on this machine only \
             (127.0.0.1 or [::1]), since its sample data may be a real customer's",
            addr.ip()
        ))
    }
}

/// The most requests answered at once; a connection beyond them is closed unanswered.
const MAX_CONNECTIONS: usize = 32;

/// The most bytes of a request read (its line and headers): a request is a `GET` of a path.
const MAX_REQUEST_BYTES: u64 = 16 * 1024;

/// Why the site could not be built or served: printed as `nudge: <why>`, exit code 2.
#[derive(Debug, thiserror::Error)]
enum RunError {
    /// The workflows folder cannot be read.
    #[error(transparent)]
    Workflows(#[from] LoadError),
    /// The data file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadData {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The data file is not usable.
    #[error("{}: {source}", path.display())]
    Data { path: PathBuf, source: DataError },
    /// The site cannot be written.
    #[error("cannot write the site into {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What one build gave.
enum Built {
    /// The site.
    Site(Site),
    /// The workflows have errors: these.
    Invalid(Vec<Diagnostic>),
}

/// Runs `nudge preview`; returns the exit code.
pub(crate) fn run(args: &Args) -> u8 {
    let result = match args.serve {
        Some(addr) => serve(args, addr),
        None => write_once(args),
    };
    result.unwrap_or_else(|e| {
        let _ = writeln!(
            anstream::stderr(),
            "nudge: {}",
            escape_controls(&e.to_string())
        );
        exit::USAGE
    })
}

/// Loads the workflows and the data and builds the site; prints the diagnostics to stderr.
fn build(args: &Args) -> Result<Built, RunError> {
    let report = nudge_core::workflow::load(&args.workflows)?;
    let mut err = anstream::stderr();
    for d in &report.diagnostics {
        let _ = writeln!(err, "{d}");
    }
    let Some(project) = report.project else {
        return Ok(Built::Invalid(report.diagnostics));
    };
    let data = match &args.data {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| RunError::ReadData {
                path: path.clone(),
                source,
            })?;
            SampleData::parse(&text).map_err(|source| RunError::Data {
                path: path.clone(),
                source,
            })?
        }
        None => SampleData::default(),
    };
    let options = preview::Options {
        now: Utc::now().trunc_subsecs(0),
        data_file: args.data.as_ref().map(|p| p.display().to_string()),
    };
    Ok(Built::Site(preview::build(
        project,
        &report.diagnostics,
        &data,
        &options,
    )))
}

fn write_once(args: &Args) -> Result<u8, RunError> {
    let site = match build(args)? {
        Built::Site(site) => site,
        Built::Invalid(_) => {
            let _ = writeln!(
                anstream::stderr(),
                "nudge: the workflows have errors; fix them (nudge validate) and run again"
            );
            return Ok(exit::PROBLEMS);
        }
    };
    site.write(&args.out).map_err(|source| RunError::Write {
        path: args.out.clone(),
        source,
    })?;
    let _ = writeln!(
        anstream::stdout(),
        "{} into {}",
        summary(&site),
        args.out.join("index.html").display()
    );
    Ok(exit::OK)
}

/// `12 emails (1 not renderable for its sample)`.
fn summary(site: &Site) -> String {
    let mut text = super::counted(site.emails, "email", "emails");
    if site.failed > 0 {
        text.push_str(&format!(" ({} not renderable for its sample)", site.failed));
    }
    text
}

/// Builds, or the diagnostics page when the workflows have errors (or the data file is
/// unusable), so that a broken edit shows what is wrong instead of stopping the server.
fn build_or_page(args: &Args) -> Site {
    match build(args) {
        Ok(Built::Site(site)) => site,
        Ok(Built::Invalid(diags)) => preview::diagnostics_site(&diags),
        Err(e) => {
            let _ = writeln!(
                anstream::stderr(),
                "nudge: {}",
                escape_controls(&e.to_string())
            );
            preview::diagnostics_site(&[Diagnostic {
                path: args.data.clone().unwrap_or_else(|| args.workflows.clone()),
                pos: nudge_core::workflow::yaml::Pos::default(),
                severity: Severity::Error,
                message: e.to_string(),
            }])
        }
    }
}

fn serve(args: &Args, addr: SocketAddr) -> Result<u8, RunError> {
    let listener = TcpListener::bind(addr).map_err(|source| RunError::Listen { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    let site = Arc::new(Mutex::new(Served {
        site: build_or_page(args),
        version: 0,
    }));
    let _ = writeln!(
        anstream::stdout(),
        "Serving the preview at http://{local}/ (rebuilt when a file under {} changes; Ctrl-C stops)",
        args.workflows.display()
    );
    let _ = std::io::stdout().flush();
    let watched = Arc::clone(&site);
    let args_copy = Args {
        out: args.out.clone(),
        data: args.data.clone(),
        serve: args.serve,
        workflows: args.workflows.clone(),
    };
    std::thread::spawn(move || watch(&args_copy, &watched));
    let busy = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming().flatten() {
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let site = Arc::clone(&site);
        let busy = Arc::clone(&busy);
        std::thread::spawn(move || {
            let _ = answer(stream, &site);
            busy.fetch_sub(1, Ordering::AcqRel);
        });
    }
    Ok(exit::OK)
}

/// The site being served, and how many times it was rebuilt.
struct Served {
    site: Site,
    version: u64,
}

/// Where a served page asks which build it is showing.
const VERSION_PATH: &str = "_nudge/version";

/// Reloads the page once the site was rebuilt (served pages only, not the written site).
const RELOAD: &str = "<script>(function(){var v=null;setInterval(function(){fetch('/_nudge/version',{cache:'no-store'}).then(function(r){return r.text()}).then(function(t){if(v===null){v=t}else if(t!==v){location.reload()}}).catch(function(){})},1000)})();</script>";

/// `contents` of the page `path`, with the reload script before `</body>` when it is a page
/// of the site (an email's own HTML, shown in frames, stays as it is).
fn page_with_reload(path: &str, contents: &[u8]) -> Vec<u8> {
    if !path.ends_with(".html") || path.ends_with(".body.html") {
        return contents.to_vec();
    }
    let text = String::from_utf8_lossy(contents);
    match text.rfind("</body>") {
        Some(at) => format!("{}{RELOAD}{}", &text[..at], &text[at..]).into_bytes(),
        None => contents.to_vec(),
    }
}

/// Polls the files every half second and rebuilds the site when they changed.
fn watch(args: &Args, site: &Mutex<Served>) {
    let mut seen = fingerprint(&args.workflows, args.data.as_deref());
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = fingerprint(&args.workflows, args.data.as_deref());
        if now == seen {
            continue;
        }
        seen = now;
        let rebuilt = build_or_page(args);
        let _ = writeln!(anstream::stdout(), "rebuilt: {}", summary(&rebuilt));
        let _ = std::io::stdout().flush();
        let mut served = site.lock().unwrap_or_else(PoisonError::into_inner);
        served.site = rebuilt;
        served.version += 1;
    }
}

/// Every file under `dir` (and `data`) with its modification time and length, sorted.
fn fingerprint(dir: &Path, data: Option<&Path>) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    pending.extend(data.map(Path::to_path_buf));
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else {
            out.push((path, meta.modified().ok(), meta.len()));
        }
    }
    out.sort();
    out
}

/// Answers one HTTP/1.1 request: `GET` (or `HEAD`) of a file of the site, `/` being
/// `index.html`.
fn answer(stream: TcpStream, site: &Mutex<Served>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?.take(MAX_REQUEST_BYTES));
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are read and ignored.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let found = {
        let served = site.lock().unwrap_or_else(PoisonError::into_inner);
        if path == VERSION_PATH {
            Some(served.version.to_string().into_bytes())
        } else {
            served
                .site
                .get(path)
                .map(|f| page_with_reload(path, &f.contents))
        }
    };
    let (status, kind, body) = match (method, found) {
        ("GET" | "HEAD", Some(body)) => ("200 OK", content_type(path), body),
        ("GET" | "HEAD", None) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"not found\n".to_vec(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            b"only GET\n".to_vec(),
        ),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}

fn content_type(path: &str) -> &'static str {
    if path == VERSION_PATH {
        "text/plain; charset=utf-8"
    } else if path.ends_with(".html") {
        "text/html; charset=utf-8"
    } else if path.ends_with(".eml") {
        "message/rfc822"
    } else {
        "application/octet-stream"
    }
}
