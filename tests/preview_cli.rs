//! `nudge preview` as a user runs it: every email of the shipped workflows (every branch),
//! headers equal to the outbox's for the same data, `--data`, hostile data, errors, and
//! `--serve` rebuilding on save.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use nudge_core::workflow::model::StepKind;

use crate::helpers::{copy_dir, nudge, root};

/// Builds the site of `workflows` into `out` (with `data` when given); returns the exit code
/// and stderr.
fn preview(out: &Path, workflows: &Path, data: Option<&Path>) -> (i32, String) {
    let mut args = vec![
        "preview",
        "--out",
        out.to_str().unwrap(),
        "--workflows",
        workflows.to_str().unwrap(),
    ];
    if let Some(d) = data {
        args.extend(["--data", d.to_str().unwrap()]);
    }
    let (code, _, err) = nudge(&root(), &args, &[]);
    (code, err)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_site_has_every_email_step_of_every_shipped_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = preview(dir.path(), &root().join("workflows"), None);
    assert_eq!(code, 0, "{err}");
    let report = nudge_core::workflow::load(&root().join("workflows")).unwrap();
    let project = report.project.unwrap();
    let index = read(&dir.path().join("index.html"));
    let mut count = 0;
    for w in &project.workflows {
        assert!(index.contains(&format!("id=\"{}\"", w.id)), "{}", w.id);
        for step in w.all_steps() {
            let StepKind::SendEmail(_) = &step.kind else {
                continue;
            };
            count += 1;
            let page = format!("emails/{}/{}.html", w.id, step.id);
            assert!(index.contains(&format!("href=\"{page}\"")), "{page}");
            let html = read(&dir.path().join(&page));
            assert!(html.contains("Desktop") && html.contains("Phone"), "{page}");
            assert!(html.contains("List-Unsubscribe") == (w.category.as_str() == "marketing"));
            let body = read(
                &dir.path()
                    .join(format!("emails/{}/{}.body.html", w.id, step.id)),
            );
            assert!(body.contains("</html>") && body.len() > 1000, "{page}");
        }
    }
    // The shipped workflows' branches: win-back's if, welcome-series' ab_split, shipment's if.
    assert!(count >= 15, "{count}");
    for page in [
        "win-back/vip-last-call",
        "win-back/last-call",
        "welcome-series/first-order-a",
        "welcome-series/first-order-b",
        "shipment-updates/delivered",
        "shipment-updates/still-on-its-way",
    ] {
        assert!(
            dir.path().join(format!("emails/{page}.html")).is_file(),
            "{page}"
        );
    }
    assert!(index.contains("made up from what the templates read"));
}

const CREATED: &str = r#"{"version": "0", "id": "e-created-1", "detail-type": "customer.created", "source": "store", "time": "2026-01-05T07:12:31Z", "detail": {"customer": {"id": "c-1001", "email": "ayse.yilmaz@example.com", "first_name": "Ayşe", "last_name": "Yılmaz", "timezone": "Europe/Istanbul", "accepts_marketing": true, "orders_count": 0}}}"#;
const SHIPPED: &str = r#"{"version": "0", "id": "e-shipped-1", "detail-type": "order.shipped", "source": "store", "time": "2026-01-07T11:52:06Z", "detail": {"customer": {"id": "c-1017", "email": "irem.sahin@example.com", "first_name": "İrem"}, "order": {"id": "o-1001", "items": [{"sku": "BEAN", "title": "House Espresso Blend, 500 g", "quantity": 1, "price": 760.0}]}, "shipment": {"carrier": "Yurtiçi Kargo", "tracking_number": "504042270823", "tracking_url": "https://tracking.example.com/yurtici/504042270823"}}}"#;

/// The `.eml` files of an outbox folder by step (`X-Nudge-Step`).
fn outbox_by_step(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .map(|eml| {
            let text = String::from_utf8_lossy(&eml).into_owned();
            let step = text
                .lines()
                .find_map(|l| l.strip_prefix("X-Nudge-Step: "))
                .unwrap()
                .to_owned();
            (step, eml)
        })
        .collect()
}

/// Header lines up to the body, folds joined, without the two that depend on when and in
/// which run the email was decided.
fn stable_headers(eml: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(eml);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .replace("\r\n\t", " ");
    head.replace("\r\n ", " ")
        .lines()
        .filter(|l| !l.starts_with("Date:") && !l.starts_with("Message-ID:"))
        .map(str::to_owned)
        .collect()
}

/// Everything after the headers: the text and HTML parts.
fn body(eml: &[u8]) -> String {
    let text = String::from_utf8_lossy(eml);
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[test]
fn headers_and_parts_equal_the_outbox_for_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, format!("{CREATED}\n{SHIPPED}\n")).unwrap();
    let outbox = dir.path().join("outbox");
    let (code, _, err) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            events.to_str().unwrap(),
            "--outbox",
            outbox.to_str().unwrap(),
            "--until",
            "2026-01-07T12:00:00Z",
        ],
        &[("NUDGE_SIGNING_KEY", ""), ("NUDGE_UNSUBSCRIBE_URL", "")],
    );
    assert_eq!(code, 0, "{err}");
    let sent = outbox_by_step(&outbox);
    let detail = |line: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["detail"].clone()
    };
    let (created, shipped) = (detail(CREATED), detail(SHIPPED));
    let data = serde_json::json!({
        "welcome-series": {"customer": created["customer"], "event": created},
        "shipment-updates": {"customer": shipped["customer"], "event": shipped},
    });
    let data_file = dir.path().join("data.json");
    std::fs::write(&data_file, data.to_string()).unwrap();
    let site = dir.path().join("site");
    let (code, err) = preview(&site, &root().join("workflows"), Some(&data_file));
    assert_eq!(code, 0, "{err}");
    for (workflow, step) in [
        ("welcome-series", "welcome"),
        ("shipment-updates", "on-its-way"),
    ] {
        let (_, outbox_eml) = sent.iter().find(|(s, _)| s == step).unwrap();
        let page = std::fs::read(site.join(format!("emails/{workflow}/{step}.eml"))).unwrap();
        assert_eq!(stable_headers(&page), stable_headers(outbox_eml), "{step}");
        assert_eq!(body(&page), body(outbox_eml), "{step}");
        // The page shows those headers.
        let html = read(&site.join(format!("emails/{workflow}/{step}.html")));
        assert!(html.contains("X-Nudge-Step</th><td><code>"), "{step}");
    }
    let welcome =
        stable_headers(&std::fs::read(site.join("emails/welcome-series/welcome.eml")).unwrap());
    assert!(
        welcome
            .iter()
            .any(|h| h
                .starts_with("List-Unsubscribe: <https://shop.example.com/unsubscribe?c=c-1001&")),
        "{welcome:?}"
    );
    assert!(welcome.contains(&"List-Unsubscribe-Post: List-Unsubscribe=One-Click".to_owned()));
}

#[test]
fn data_overrides_per_workflow_then_default() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.yaml");
    std::fs::write(
        &data,
        "default:\n  customer: {id: c-9, email: zeynep@example.com, first_name: Zeynep}\nwin-back:\n  customer: {email: mehmet@example.com, first_name: Mehmet}\n",
    )
    .unwrap();
    let site = dir.path().join("site");
    let (code, err) = preview(&site, &root().join("workflows"), Some(&data));
    assert_eq!(code, 0, "{err}");
    let miss = read(&site.join("emails/win-back/miss-you.html"));
    assert!(
        miss.contains("We miss you, Mehmet"),
        "win-back uses its own entry"
    );
    assert!(miss.contains("mehmet@example.com"));
    let welcome = read(&site.join("emails/welcome-series/welcome.html"));
    assert!(
        welcome.contains("Zeynep"),
        "welcome-series uses the default entry"
    );
    let index = read(&site.join("index.html"));
    assert!(index.contains("from the data file (this workflow&#39;s entry)"));
    assert!(index.contains("from the data file (its default entry)"));
    // A bad data file is a usage error.
    std::fs::write(&data, "win-back: [1]\n").unwrap();
    let (code, err) = preview(&site, &root().join("workflows"), Some(&data));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("entry `win-back`"), "{err}");
}

#[test]
fn hostile_sample_data_is_escaped_in_the_pages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.json");
    let evil = r#"<script>alert(1)</script><img src=x onerror=alert(2)>"'"#;
    let customer = serde_json::json!({"id": evil, "email": "evil@example.com", "first_name": evil, "last_name": evil});
    let event = serde_json::json!({"order": {"id": evil}, "checkout": {"url": evil}});
    std::fs::write(
        &data,
        serde_json::json!({"default": {"customer": customer, "event": event}}).to_string(),
    )
    .unwrap();
    let site = dir.path().join("site");
    let (code, err) = preview(&site, &root().join("workflows"), Some(&data));
    assert_eq!(code, 0, "{err}");
    let mut pages = 0;
    for entry in walk(&site) {
        let text = read(&entry);
        assert!(!text.contains("<script>alert"), "{}", entry.display());
        assert!(!text.contains("<img src=x"), "{}", entry.display());
        pages += 1;
    }
    assert!(pages > 30, "{pages}");
    let shipped = read(&site.join("emails/shipment-updates/on-its-way.html"));
    assert!(shipped.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

/// Every `.html` file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
    out
}

#[test]
fn workflows_with_errors_exit_1_with_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    copy_dir(&root().join("workflows"), &workflows);
    let file = workflows.join("win-back.yaml");
    std::fs::write(
        &file,
        read(&file).replace("category: marketing", "category: spam"),
    )
    .unwrap();
    let (code, err) = preview(&dir.path().join("site"), &workflows, None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("win-back.yaml:") && err.contains("error"),
        "{err}"
    );
    assert!(!dir.path().join("site/index.html").exists());
}

/// `GET path` on `addr`: the body.
fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Polls `GET path` until its body contains `want` (or 20 s pass).
fn eventually(addr: &str, path: &str, want: &str) -> String {
    let start = Instant::now();
    loop {
        let page = get(addr, path);
        if page.contains(want) || start.elapsed() > Duration::from_secs(20) {
            return page;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_rebuilds_on_save_and_survives_a_broken_edit() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    copy_dir(&root().join("workflows"), &workflows);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(["preview", "--serve", "127.0.0.1:0", "--workflows"])
        .arg(&workflows)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    assert!(get(&addr, "/").contains("We miss you, Ayşe"));
    assert!(get(&addr, "/emails/win-back/miss-you.html").contains("Phone"));
    // Served pages reload themselves after a rebuild; the email's own HTML stays as sent.
    assert!(get(&addr, "/").contains("/_nudge/version"));
    assert!(!get(&addr, "/emails/win-back/miss-you.body.html").contains("/_nudge/version"));
    assert_eq!(get(&addr, "/_nudge/version"), "0");
    assert!(get(&addr, "/nope.html").contains("not found"));
    // An endless request line is read up to a bound and answered, not buffered forever.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(200_000));
    let _ = s.write_all(long.as_bytes());
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer:.80}");
    assert!(
        get(&addr, "/").contains("We miss you, Ayşe"),
        "still serving"
    );

    let file = workflows.join("win-back.yaml");
    let original = read(&file);
    std::fs::write(&file, original.replace("We miss you,", "Come back soon,")).unwrap();
    assert!(eventually(&addr, "/", "Come back soon, Ayşe").contains("Come back soon, Ayşe"));
    assert_ne!(get(&addr, "/_nudge/version"), "0");

    std::fs::write(
        &file,
        original.replace("category: marketing", "category: ["),
    )
    .unwrap();
    let broken = eventually(&addr, "/", "have errors");
    assert!(broken.contains("win-back.yaml"), "{broken}");

    std::fs::write(&file, &original).unwrap();
    assert!(eventually(&addr, "/", "We miss you, Ayşe").contains("We miss you, Ayşe"));
}

#[test]
fn serve_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:8025", "[::]:8025", "192.0.2.1:8025", "localhost"] {
        let (code, _, err) = nudge(dir.path(), &["preview", "--serve", addr], &[]);
        assert_eq!(code, 2, "{addr}: {err}");
        assert!(err.contains("--serve"), "{addr}: {err}");
    }
}

#[test]
fn warnings_are_shown_beside_the_email_they_concern() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    copy_dir(&root().join("workflows"), &workflows);
    let file = workflows.join("win-back.yaml");
    std::fs::write(
        &file,
        read(&file).replace(
            "We miss you, {{ customer.first_name",
            "We miss you, {{ customer.frist_name",
        ),
    )
    .unwrap();
    let template = workflows.join("templates/shipment-updates/on-its-way.mjml");
    std::fs::write(
        &template,
        read(&template).replace(
            "Hi {{ customer.first_name | default('there', true) }}",
            "Hi {{ customer.nmae }}",
        ),
    )
    .unwrap();
    let site = dir.path().join("site");
    let (code, err) = preview(&site, &workflows, None);
    assert_eq!(code, 0, "{err}");
    let warned = |page: &str, what: &str| {
        let html = read(&site.join(format!("emails/{page}.html")));
        html.contains("<li class=\"warning\"><code>")
            && html.contains(&format!("unknown customer attribute `customer.{what}`"))
    };
    // The subject's warning is the step's; the template's, every email that uses it.
    assert!(warned("win-back/miss-you", "frist_name"));
    assert!(!warned("win-back/last-call", "frist_name"));
    assert!(warned("shipment-updates/on-its-way", "nmae"));
    assert!(!warned("shipment-updates/delivered", "nmae"));
    // A misspelt attribute is not made up: it renders empty, as for every customer.
    let index = read(&site.join("index.html"));
    assert!(index.contains("We miss you, friend"), "the default shows");
    assert!(index.contains("<b>2</b><span>warnings</span>"));
}

#[test]
fn an_email_the_engine_would_not_send_for_the_sample_shows_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.yaml");
    std::fs::write(
        &data,
        "win-back:\n  customer: {email: not-an-address, first_name: Ali}\n",
    )
    .unwrap();
    let site = dir.path().join("site");
    let (code, err) = preview(&site, &root().join("workflows"), Some(&data));
    assert_eq!(code, 0, "{err}");
    let page = read(&site.join("emails/win-back/miss-you.html"));
    assert!(page.contains("Not sent for this sample"), "{page}");
    assert!(page.contains("the customer&#39;s email is missing or not a valid address"));
    assert!(!site.join("emails/win-back/miss-you.eml").exists());
    assert!(read(&site.join("index.html")).contains("Not sent for this data"));
    // The other workflows' emails still render.
    assert!(site.join("emails/welcome-series/welcome.eml").is_file());
}

#[test]
fn hostile_workflow_text_and_oversized_data_break_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    copy_dir(&root().join("workflows"), &workflows);
    let file = workflows.join("abandoned-checkout.yaml");
    std::fs::write(
        &file,
        read(&file).replace(
            "name: Abandoned checkout",
            "name: \"<b onmouseover=alert(1)>Cart</b>\"",
        ),
    )
    .unwrap();
    // A cart so large that the email is over the render limit: the engine would skip it.
    let items: Vec<_> = (0..20_000)
        .map(|i| serde_json::json!({"title": format!("Bag {i}"), "quantity": 1, "price": 1.5}))
        .collect();
    let data = dir.path().join("data.json");
    std::fs::write(
        &data,
        serde_json::json!({"abandoned-checkout": {"event": {"checkout": {"items": items}}}})
            .to_string(),
    )
    .unwrap();
    let site = dir.path().join("site");
    let (code, err) = preview(&site, &workflows, Some(&data));
    assert_eq!(code, 0, "{err}");
    let index = read(&site.join("index.html"));
    assert!(!index.contains("<b onmouseover"));
    assert!(index.contains("&lt;b onmouseover=alert(1)&gt;Cart&lt;/b&gt;"));
    let page = read(&site.join("emails/abandoned-checkout/reminder.html"));
    assert!(page.contains("over the limit"), "the render limit is named");
    assert!(site.join("emails/win-back/miss-you.eml").is_file());
}
