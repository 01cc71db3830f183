//! Hostile workflows and templates run through the real binary: a panic, a stack overflow (an
//! abort no test thread survives) or a hang must never happen, whatever the files hold. Each
//! run has a deadline, so a hang fails the test instead of stalling the suite.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{copy_dir, root};

/// How long one command may take before the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// A `workflows/` folder: the validation cases' base (settings, templates) plus `files`
/// (path relative to the folder, content).
fn project(files: &[(&str, &[u8])]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    copy_dir(&root().join("tests/cases/validate/_base"), &dir);
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    (tmp, dir)
}

/// Runs `nudge args` in `cwd` with a deadline; returns (exit code, stdout, stderr). A process
/// killed by a signal (an abort on stack overflow) has no exit code and fails here.
fn run(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (tmp.path().join("out"), tmp.path().join("err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_nudge"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("nudge runs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("nudge {args:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = String::from_utf8_lossy(&std::fs::read(out_path).unwrap()).into_owned();
    let err = String::from_utf8_lossy(&std::fs::read(err_path).unwrap()).into_owned();
    let code = status
        .code()
        .unwrap_or_else(|| panic!("nudge {args:?} died of a signal ({status}); stderr:\n{err}"));
    assert_ne!(code, 101, "nudge {args:?} panicked:\n{err}");
    (code, out, err)
}

/// `nudge validate workflows/`.
fn validate(tmp: &tempfile::TempDir) -> (i32, String, String) {
    run(tmp.path(), &["validate", "workflows/"])
}

/// One customer.created event for a customer with these names.
fn created_event(first: &str, last: &str) -> String {
    let detail = serde_json::json!({"customer": {
        "id": "c-1", "email": "sean@example.com", "first_name": first, "last_name": last,
        "timezone": "Europe/Istanbul", "accepts_marketing": true
    }});
    let event = serde_json::json!({
        "version": "0", "id": "e-1", "detail-type": "customer.created", "source": "store",
        "account": "1", "time": "2026-01-05T07:12:31Z", "region": "eu-central-1",
        "resources": [], "detail": detail
    });
    format!("{event}\n")
}

/// `nudge simulate --format json` on the project with `events`.
fn simulate(tmp: &tempfile::TempDir, events: &str) -> (i32, String, String) {
    std::fs::write(tmp.path().join("events.jsonl"), events).unwrap();
    run(
        tmp.path(),
        &[
            "simulate",
            "--workflows",
            "workflows/",
            "--events",
            "events.jsonl",
            "--format",
            "json",
        ],
    )
}

/// A transactional workflow triggered by customer.created with these steps (YAML, indented
/// by four spaces).
fn workflow(steps: &str) -> String {
    format!(
        "id: w\ncategory: transactional\ntrigger: {{ event: customer.created }}\nsteps:\n{steps}"
    )
}

/// The JSON lines of simulate's output with this action.
fn actions(out: &str, action: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["action"] == action)
        .collect()
}

#[test]
fn multibyte_text_around_an_undefined_name_is_reported_not_a_panic() {
    let w = workflow(
        "  - id: hello\n    send_email: { template: demo/order.html, subject: \"Hoş geldin {{ custmer.first_name }}\" }\n  - id: p\n    update_profile: { set: { x: '{{ \"a\\\"ğ\" ~ custmer.first_name }}' } }\n",
    );
    let w = w.replace(
        "customer.created }",
        "customer.created, when: '\"a\\\"ğ\" ~ custmer.first_name' }",
    );
    let (tmp, _) = project(&[("w.yaml", w.as_bytes())]);
    let (code, out, err) = validate(&tmp);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.matches("undefined variable `custmer`").count(),
        3,
        "{out}"
    );
    assert!(out.contains("workflows/w.yaml:6:"), "{out}");
}

#[test]
fn subjects_profile_values_and_webhook_bodies_are_not_html_escaped() {
    let steps = "  - id: hello\n    send_email: { template: demo/order.html, subject: \"Welcome, {{ customer.first_name }} {{ customer.last_name }}\" }\n  - id: p\n    update_profile: { set: { nick: \"{{ customer.last_name }}\" } }\n";
    let (tmp, _) = project(&[("w.yaml", workflow(steps).as_bytes())]);
    let (code, out, err) = simulate(&tmp, &created_event("Seán", "O'Brien & Co <b>"));
    assert_eq!(code, 0, "{out}{err}");
    let sent = actions(&out, "email.sent");
    assert_eq!(
        sent[0]["subject"], "Welcome, Seán O'Brien & Co <b>",
        "{out}"
    );
    let updated = actions(&out, "profile.updated");
    assert_eq!(updated[0]["changes"]["nick"], "O'Brien & Co <b>", "{out}");
}

/// A workflow sending `demo/x.<ext>` with `subject`.
fn sending(ext: &str, subject: &str) -> String {
    workflow(&format!(
        "  - id: hello\n    send_email: {{ template: demo/x.{ext}, subject: \"{subject}\" }}\n"
    ))
}

#[test]
fn deeply_nested_text_is_reported_at_its_spot_not_a_stack_overflow() {
    let mjml = |inner: String| {
        format!(
            "<mjml><mj-body><mj-section><mj-column><mj-text>{inner}</mj-text></mj-column></mj-section></mj-body></mjml>"
        )
    };
    let cases: [(&str, String, String, &str); 5] = [
        (
            "mjml",
            "Hi".to_owned(),
            format!(
                "<mjml><mj-body>\n{}{}</mj-body></mjml>",
                "<mj-wrapper>".repeat(2_000),
                "</mj-wrapper>".repeat(2_000)
            ),
            "templates/demo/x.mjml:2:577: error: elements nest too deeply: more than 50 levels",
        ),
        (
            "mjml",
            "Hi".to_owned(),
            mjml(format!(
                "{}x{}",
                "<div>".repeat(10_000),
                "</div>".repeat(10_000)
            )),
            "templates/demo/x.mjml:1:273: error: elements nest too deeply",
        ),
        (
            "html",
            "Hi".to_owned(),
            format!("<p>\n{{{{ 1{} }}}}</p>", " + 1".repeat(100_000)),
            "templates/demo/x.html:2:1206: error: expression too long: more than 300 operators",
        ),
        (
            "html",
            "Hi".to_owned(),
            format!("{{{{ customer.first_name{} }}}}", "|upper".repeat(30_000)),
            "templates/demo/x.html:1:1817: error: expression too long",
        ),
        (
            "html",
            format!("{{{{ 1{} }}}}", " + 1".repeat(100_000)),
            "<p>x</p>".to_owned(),
            "w.yaml:6:1257: error: expression too long",
        ),
    ];
    for (ext, subject, body, expected) in cases {
        let template = format!("templates/demo/x.{ext}");
        let w = sending(ext, &subject);
        let (tmp, _) = project(&[("w.yaml", w.as_bytes()), (&template, body.as_bytes())]);
        let (code, out, err) = validate(&tmp);
        assert_eq!(code, 1, "{out}{err}");
        assert!(out.contains(&format!("workflows/{expected}")), "{out}");
        let (code, _, err) = simulate(&tmp, &created_event("A", "B"));
        assert_eq!(code, 2, "{err}");
    }
}

#[test]
fn a_long_condition_is_reported_not_a_stack_overflow() {
    let w = sending("html", "Hi").replace(
        "customer.created }",
        &format!("customer.created, when: \"1{}\" }}", " + 1".repeat(100_000)),
    );
    let (tmp, _) = project(&[
        ("w.yaml", w.as_bytes()),
        ("templates/demo/x.html", b"<p>x</p>"),
    ]);
    let (code, out, err) = validate(&tmp);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("workflows/w.yaml:3:1246: error: expression too long"),
        "{out}"
    );
}

#[test]
fn a_template_that_never_finishes_is_stopped_and_skipped_as_render_error() {
    let bodies: [(&[u8], &str); 2] = [
        (
            b"{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
            "ran out of render fuel at demo/x.html:1: over the limit of 1000000 steps",
        ),
        (
            b"{% for i in range(50000) %}{{ 'x' * 100 }}{% endfor %}",
            "rendered output is over the limit of 1048576 bytes",
        ),
    ];
    for (body, why) in bodies {
        let w = sending("html", "Hi");
        let (tmp, _) = project(&[("w.yaml", w.as_bytes()), ("templates/demo/x.html", body)]);
        let (code, out, err) = validate(&tmp);
        assert_eq!((code, out.as_str()), (0, ""), "{err}");
        let started = Instant::now();
        let (code, out, err) = simulate(&tmp, &created_event("Seán", "O'Brien"));
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "took {:?}",
            started.elapsed()
        );
        let skipped = actions(&out, "email.skipped");
        assert_eq!(skipped[0]["reason"], "render_error", "{out}");
        assert!(err.contains("template=demo/x.html"), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(
            !err.contains("sean@example.com") && !err.contains("Seán"),
            "{err}"
        );
    }
}

/// The base's `demo/hello.mjml`, as a marketer's editor on Windows might save it.
fn hello_mjml() -> String {
    std::fs::read_to_string(root().join("tests/cases/validate/_base/templates/demo/hello.mjml"))
        .unwrap()
}

#[test]
fn mjml_with_crlf_line_ends_or_a_byte_order_mark_is_accepted_with_lines_kept() {
    let crlf = hello_mjml().replace('\n', "\r\n");
    let bom = format!("\u{feff}{}", hello_mjml());
    for body in [crlf.clone(), bom] {
        let w = sending("mjml", "Hi");
        let (tmp, _) = project(&[
            ("w.yaml", w.as_bytes()),
            ("templates/demo/x.mjml", body.as_bytes()),
        ]);
        let (code, out, err) = validate(&tmp);
        assert_eq!((code, out.as_str()), (0, ""), "{err}");
    }
    // An error on line 3 of a CRLF file is still reported on line 3.
    let broken = crlf.replacen("<mj-section>", "<mj-sectio>", 1);
    let w = sending("mjml", "Hi");
    let (tmp, _) = project(&[
        ("w.yaml", w.as_bytes()),
        ("templates/demo/x.mjml", broken.as_bytes()),
    ]);
    let (_, out, _) = validate(&tmp);
    assert!(
        out.contains(
            "workflows/templates/demo/x.mjml:3:6: error: unknown MJML element `<mj-sectio>`"
        ),
        "{out}"
    );
}

/// Makes a file of some kind at a path.
type MakeFile<'a> = dyn Fn(&Path) + 'a;

#[cfg(unix)]
#[test]
fn only_regular_files_inside_the_workflows_folder_are_read() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.html");
    std::fs::write(&secret, "<p>secret</p>").unwrap();
    let w = sending("html", "Hi");
    let cases: [(&MakeFile<'_>, &str); 3] = [
        (
            &|t: &Path| symlink(&secret, t).unwrap(),
            "templates/demo/x.html:1:1: error: a link to a file outside the workflows folder",
        ),
        (
            &|t: &Path| symlink("/dev/zero", t).unwrap(),
            "templates/demo/x.html:1:1: error: a link to a file outside the workflows folder",
        ),
        (
            &|t: &Path| {
                let ok = Command::new("mkfifo").arg(t).status().unwrap();
                assert!(ok.success());
            },
            "templates/demo/x.html:1:1: error: not a regular file",
        ),
    ];
    for (make, expected) in cases {
        let (tmp, dir) = project(&[("w.yaml", w.as_bytes())]);
        make(&dir.join("templates/demo/x.html"));
        let (code, out, err) = validate(&tmp);
        assert_eq!(code, 1, "{out}{err}");
        assert!(out.contains(&format!("workflows/{expected}")), "{out}");
        let (code, _, err) = simulate(&tmp, &created_event("A", "B"));
        assert_eq!(code, 2, "{err}");
    }
    // A link inside the folder is fine.
    let (tmp, dir) = project(&[("w.yaml", w.as_bytes())]);
    symlink("order.html", dir.join("templates/demo/x.html")).unwrap();
    let (code, out, err) = validate(&tmp);
    // (The shipment template sent on `customer.created` draws warnings about its event fields.)
    assert!(!out.contains(": error: "), "{out}");
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn files_over_the_size_limit_are_refused_after_reading_at_most_one_byte_more() {
    let big = format!("<p>{}</p>", "x".repeat(1 << 20));
    let w = sending("html", "Hi");
    let padded = format!("{w}#{}\n", " ".repeat(1 << 20));
    let (tmp, _) = project(&[
        ("w.yaml", w.as_bytes()),
        ("templates/demo/x.html", big.as_bytes()),
        ("big.yaml", padded.as_bytes()),
    ]);
    let (code, out, _) = validate(&tmp);
    assert_eq!(code, 1, "{out}");
    for file in ["templates/demo/x.html", "big.yaml"] {
        assert!(
            out.contains(&format!(
                "workflows/{file}:1:1: error: file is larger than 1048576 bytes (1 MiB), the limit"
            )),
            "{out}"
        );
    }
}

#[test]
fn a_folder_as_template_and_missing_includes_are_errors_at_their_spot() {
    let w = workflow(
        "  - id: a\n    send_email: { template: demo/folder.html, subject: \"Hi\" }\n  - id: b\n    send_email: { template: demo/x.html, subject: \"Hi\" }\n",
    );
    let body = "<p>\n  {% include 'demo/footer.html' %}{% include 'demo/order.html' %}\n  {% from \"macros.html\" import m %}{% include 'x/' ~ customer.id ignore missing %}</p>";
    let (tmp, _) = project(&[
        ("w.yaml", w.as_bytes()),
        ("templates/demo/x.html", body.as_bytes()),
        ("templates/demo/folder.html/inside.html", b"<p>x</p>"),
    ]);
    let (code, out, err) = validate(&tmp);
    assert_eq!(code, 1, "{err}");
    let expected = [
        "workflows/templates/demo/x.html:2:14: error: template `demo/footer.html` not found in templates/ (names are relative to templates/)",
        "workflows/templates/demo/x.html:3:11: error: template `macros.html` not found",
        "workflows/w.yaml:6:29: error: template `demo/folder.html` is a folder, not a file",
    ];
    for e in expected {
        assert!(out.contains(e), "{e}\n{out}");
    }
    // Validating the one workflow file loads what its templates include.
    let body = "<p>{% include 'demo/order.html' %}</p>";
    let w = sending("html", "Hi");
    let (tmp, _) = project(&[
        ("w.yaml", w.as_bytes()),
        ("templates/demo/x.html", body.as_bytes()),
    ]);
    let (code, out, err) = run(tmp.path(), &["validate", "workflows/w.yaml"]);
    // (The included shipment template draws warnings about its event fields on
    // `customer.created`: it was loaded and checked.)
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(": error: "), "{out}");
    assert!(out.contains("templates/demo/order.html:"), "{out}");
}

#[test]
fn hostile_yaml_is_reported_in_plain_words_at_its_spot() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let deep = format!("id: deep\nx: {}{}\n", "[".repeat(5_000), "]".repeat(5_000));
    let (tmp, _) = project(&[
        ("bomb.yaml", bomb.as_bytes()),
        ("deep.yaml", deep.as_bytes()),
        ("nul.yaml", b"id: nul\ncategory: transactional\x00\n"),
        (
            "latin1.yaml",
            b"id: latin1\nstore: { name: \"Kahve D\xfckkan\" }\n",
        ),
    ]);
    let (code, out, err) = validate(&tmp);
    assert_eq!(code, 1, "{out}{err}");
    let expected = [
        "workflows/bomb.yaml:6:15: error: invalid YAML: the file holds too many values once its aliases (`*name`) are expanded; write the values out instead",
        "workflows/deep.yaml:2:259: error: invalid YAML: recursion limit exceeded",
        "workflows/nul.yaml:2:24: error: invalid YAML: unexpected character",
        "workflows/latin1.yaml:2:24: error: file is not UTF-8 text: invalid byte 0xfc",
    ];
    for e in expected {
        assert!(out.contains(e), "{e}\n{out}");
    }
    assert!(!out.contains("budget breached"), "{out}");
}

#[test]
fn customer_data_is_never_run_as_a_template_or_markup() {
    let steps = "  - id: hello\n    send_email: { template: demo/x.html, subject: \"Hi {{ customer.first_name }}\" }\n";
    let body = b"<p>{{ customer.first_name }}</p>";
    let (tmp, _) = project(&[
        ("w.yaml", workflow(steps).as_bytes()),
        ("templates/demo/x.html", body),
    ]);
    std::fs::create_dir(tmp.path().join("outbox")).unwrap();
    std::fs::write(
        tmp.path().join("events.jsonl"),
        created_event("{{ 7 * 7 }}<script>{% for i in range(9) %}", "B"),
    )
    .unwrap();
    let (code, out, err) = run(
        tmp.path(),
        &[
            "simulate",
            "--workflows",
            "workflows/",
            "--events",
            "events.jsonl",
            "--format",
            "json",
            "--outbox",
            "outbox",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let sent = actions(&out, "email.sent");
    assert_eq!(
        sent[0]["subject"], "Hi {{ 7 * 7 }}<script>{% for i in range(9) %}",
        "{out}"
    );
    let eml = std::fs::read_dir(tmp.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    // The HTML part shows the name as text; the plain-text part and headers are not HTML.
    assert!(
        eml.contains("<p>{{ 7 * 7 }}&lt;script&gt;{% for i in range(9) %}</p>"),
        "{eml}"
    );
    assert!(
        !eml.contains("<p>49") && !eml.contains("<p><script>"),
        "{eml}"
    );
}

/// A webhook body is JSON whatever the customer's name holds: each string of the body is
/// rendered as plain text and put into the body as a JSON string, never spliced into JSON text.
#[test]
fn webhook_bodies_stay_valid_json_for_any_customer_value() {
    use nudge_core::engine::state::CustomerState;
    use nudge_core::engine::{ActionKind, Engine, Input};
    let steps = "  - id: hook\n    webhook: { url: \"https://hooks.example.com/x\", body: { name: \"{{ customer.first_name }}\", quoted: \"\\\"{{ customer.last_name }}\\\"\" } }\n";
    let (_tmp, dir) = project(&[("w.yaml", workflow(steps).as_bytes())]);
    let project = nudge_core::workflow::load(&dir).unwrap().project.unwrap();
    let signer = nudge_core::links::Signer::new(b"k");
    let engine = Engine::new(&project, &signer);
    let (first, last) = ("Seán \"O'Brien\" & Co\n}{", "<b>\\");
    let event = nudge_core::event::parse_event(created_event(first, last).trim()).unwrap();
    let now = event.time;
    let out = engine.handle(CustomerState::new("c-1"), Input::Event(&event), now);
    let body = out
        .actions
        .iter()
        .find_map(|a| match &a.kind {
            ActionKind::WebhookCalled(call) => Some(call.body.clone()),
            _ => None,
        })
        .expect("the webhook is called");
    let text = body.to_string();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["name"], first);
    assert_eq!(parsed["quoted"], format!("\"{last}\""));
}

#[test]
fn templates_included_by_subjects_profile_values_and_webhooks_must_exist() {
    let steps = "  - id: hello\n    send_email: { template: demo/order.html, subject: \"Hi {% include 'demo/subject.html' %}\", preheader: \"{% include 'demo/x.html' %}\" }\n  - id: p\n    update_profile: { set: { x: \"{% include 'nope.html' %}\" } }\n  - id: hook\n    webhook: { url: \"https://hooks.example.com/x\", body: { a: [\"{% import 'm.html' as m %}\"] } }\n";
    let (tmp, _) = project(&[
        ("w.yaml", workflow(steps).as_bytes()),
        ("templates/demo/x.html", b"{{ customer.first_name }}"),
    ]);
    for path in ["workflows/", "workflows/w.yaml"] {
        let (code, out, err) = run(tmp.path(), &["validate", path]);
        assert_eq!(code, 1, "{err}");
        let w = format!("{}w.yaml", path.trim_end_matches("w.yaml"));
        let expected = [
            format!("{w}:6:55: error: template `demo/subject.html` not found in templates/"),
            format!("{w}:8:33: error: template `nope.html` not found in templates/"),
            format!("{w}:9:5: error: template `m.html` not found in templates/"),
        ];
        // (The shipment template sent on `customer.created` draws warnings about its event
        // fields; this test is about the errors.)
        let errors: Vec<_> = out.lines().filter(|l| l.contains(": error: ")).collect();
        assert_eq!(errors, expected, "{out}");
    }
}
