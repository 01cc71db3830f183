//! `nudge graph` as a user runs it: every workflow or those named, both formats, the exit codes,
//! and the diagrams in README.md and docs/WORKFLOWS.md, which must be what the command prints
//! now (`UPDATE_DOCS=1` rewrites them: see [`docs_show_the_current_diagrams`]).

use std::process::{Command, Stdio};

use crate::helpers::{copy_dir, nudge, root};

/// The shipped workflows' ids and every step id of each, from the model.
fn shipped_steps() -> Vec<(String, Vec<String>)> {
    let report = nudge_core::workflow::load(&root().join("workflows")).unwrap();
    report
        .project
        .unwrap()
        .workflows
        .iter()
        .map(|w| {
            let ids = w.all_steps().iter().map(|s| s.id.clone()).collect();
            (w.id.clone(), ids)
        })
        .collect()
}

/// `text` split into its diagrams (each starts with `first_line`).
fn diagrams<'t>(text: &'t str, first_line: &str) -> Vec<&'t str> {
    let mut starts: Vec<usize> = text.match_indices(first_line).map(|(i, _)| i).collect();
    starts.push(text.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

#[test]
fn every_shipped_workflow_is_drawn_with_every_step_in_both_formats() {
    let shipped = shipped_steps();
    for (format, first_line) in [("mermaid", "flowchart TD\n"), ("dot", "digraph \"")] {
        let (code, out, err) = nudge(&root(), &["graph", "--format", format], &[]);
        assert_eq!((code, err.as_str()), (0, ""), "{format}");
        let drawn = diagrams(&out, first_line);
        assert_eq!(drawn.len(), shipped.len(), "{out}");
        for ((id, steps), diagram) in shipped.iter().zip(&drawn) {
            assert!(diagram.contains(id.as_str()), "{id} is not where expected");
            for step in steps {
                assert!(diagram.contains(step.as_str()), "{id}: {step} missing");
            }
        }
        if format == "dot" {
            check_with_graphviz(&out);
        }
    }
    // Mermaid is the default, and `--workflows` defaults to workflows/.
    let (_, default, _) = nudge(&root(), &["graph"], &[]);
    let (_, explicit, _) = nudge(
        &root(),
        &["graph", "--format", "mermaid", "--workflows", "workflows/"],
        &[],
    );
    assert_eq!(default, explicit);
}

/// Graphviz's `dot` reads the text without a warning; skipped (saying so) where Graphviz is not
/// installed.
fn check_with_graphviz(text: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: Graphviz's `dot` is not installed (apt-get install graphviz)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "dot: {err}");
    let svg = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        svg.matches("<svg").count(),
        text.matches("digraph ").count()
    );
}

#[test]
fn named_workflows_are_drawn_in_the_order_given_once_each() {
    let (code, out, _) = nudge(
        &root(),
        &["graph", "win-back", "birthday-reward", "win-back"],
        &[],
    );
    assert_eq!(code, 0);
    let drawn = diagrams(&out, "flowchart TD\n");
    assert_eq!(drawn.len(), 2, "{out}");
    assert!(drawn[0].contains("%% nudge graph win-back\n"));
    assert!(drawn[1].contains("%% nudge graph birthday-reward\n"));
    // Diagrams are apart by one empty line, so each is pasted whole.
    assert!(drawn[0].ends_with("\n\n"));
    assert!(!drawn[1].ends_with("\n\n"));
}

#[test]
fn an_unknown_workflow_is_a_usage_error_naming_it() {
    let (code, out, err) = nudge(&root(), &["graph", "welcome-series", "win-bak"], &[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with("nudge: no workflow `win-bak`; did you mean `win-back`? (the workflows: `abandoned-checkout`, "),
        "{err}"
    );
    let (code, _, err) = nudge(&root(), &["graph", "nothing-like-it"], &[]);
    assert_eq!(code, 2);
    assert!(!err.contains("did you mean"), "{err}");
    let (code, _, _) = nudge(&root(), &["graph", "--format", "svg"], &[]);
    assert_eq!(code, 2);
    let (code, _, err) = nudge(&root(), &["graph", "--workflows", "nowhere/"], &[]);
    assert_eq!(code, 2);
    assert!(err.starts_with("nudge: cannot read nowhere/"), "{err}");
}

#[test]
fn workflows_with_errors_are_refused_with_their_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    let cases = root().join("tests/cases/validate");
    copy_dir(&cases.join("_base"), &dir);
    std::fs::copy(
        cases.join("unknown-step-kind.yaml"),
        dir.join("unknown-step-kind.yaml"),
    )
    .unwrap();
    let (code, out, err) = nudge(tmp.path(), &["graph"], &[]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains(
            "workflows/unknown-step-kind.yaml:6:5: error: unknown step `sned_email`; did you mean `send_email`?"
        ),
        "{err}"
    );
    assert!(
        err.ends_with(
            "nudge: the workflows have errors; fix them (nudge validate) and run again\n"
        ),
        "{err}"
    );
}

/// A project whose one workflow has a subject and a condition that try to end their label and
/// add nodes, and steps named as Mermaid's keywords (`end`, `graph`).
fn hostile_project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    copy_dir(&root().join("tests/cases/validate/_base"), &dir);
    std::fs::write(
        dir.join("hostile.yaml"),
        r#"id: hostile
category: marketing
trigger: { event: order.placed, when: "event.order.total > 1 and '\"]' != \"<b>\"" }
steps:
  - id: end
    send_email: { template: demo/hello.mjml, subject: "a\"] --> x[\"p\"]\n%% c <i>#quot; & `md` | p ;" }
  - id: graph
    send_email: { template: demo/hello.mjml, subject: "ünïcödé 🎉 ]] }} )) \\ \" \u202E" }
"#,
    )
    .unwrap();
    tmp
}

/// A subject and a condition that try to end their label and add nodes: the diagram has
/// exactly the workflow's nodes and edges, and Graphviz reads the DOT.
#[test]
fn hostile_subjects_do_not_break_the_diagram() {
    let tmp = hostile_project();
    let (code, mermaid, err) = nudge(tmp.path(), &["graph"], &[]);
    assert_eq!(code, 0, "{err}");
    // trigger, two steps, done; three edges.
    let node_lines = mermaid
        .lines()
        .filter(|l| l.starts_with("    ") && l.trim_end().ends_with(['"', ')', ']', '}']))
        .filter(|l| !l.contains("-->"))
        .count();
    assert_eq!(node_lines, 4, "{mermaid}");
    assert_eq!(mermaid.matches("-->").count(), 3, "{mermaid}");
    assert!(mermaid.contains("#quot;] --#gt; x[#quot;p#quot;] %% c #lt;i#gt;#35;quot;"));
    assert!(mermaid.contains("ünïcödé 🎉 ]] }} ))"));
    for line in mermaid.lines().filter(|l| l.contains("(\"")) {
        assert_eq!(line.matches('"').count(), 2, "{line}");
    }
    let (code, dot, _) = nudge(tmp.path(), &["graph", "--format", "dot"], &[]);
    assert_eq!(code, 0);
    assert_eq!(dot.matches(" -> ").count(), 3, "{dot}");
    check_with_graphviz(&dot);
}

/// Parses each diagram of stdin (one empty line apart) with mermaid.js's own parser, as
/// GitHub's renderer would; prints how many failed and exits 1 if any did.
const MERMAID_PARSE: &str = r"
import { JSDOM } from 'jsdom';
import fs from 'fs';
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
let failed = 0;
for (const diagram of fs.readFileSync(0, 'utf8').split(/\n\n(?=flowchart )/)) {
  try { await mermaid.parse(diagram); } catch (e) { failed++; console.error(e.message); }
}
console.log(`${failed} failed`);
process.exit(failed ? 1 : 0);
";

/// mermaid.js parses every diagram `nudge graph` prints, the shipped workflows' and a hostile
/// one's. It needs Node.js and a folder where `npm install mermaid jsdom` was run, named by
/// `NUDGE_MERMAID_JS`; without it the test says so and checks nothing more (the unit tests of
/// `nudge_review::graph` check the Mermaid rules line by line), unless
/// `NUDGE_REQUIRE_DIAGRAM_TOOLS` is set (scripts/test), when it fails.
#[test]
fn mermaid_js_parses_every_diagram() {
    let Some(modules) = std::env::var_os("NUDGE_MERMAID_JS") else {
        // scripts/test installs mermaid.js (scripts/diagram-tools) and asks for it.
        assert!(
            std::env::var_os("NUDGE_REQUIRE_DIAGRAM_TOOLS").is_none(),
            "NUDGE_REQUIRE_DIAGRAM_TOOLS is set but NUDGE_MERMAID_JS is not"
        );
        eprintln!(
            "skipped: set NUDGE_MERMAID_JS to a folder with `npm install mermaid jsdom` done \
             to parse the diagrams with mermaid.js"
        );
        return;
    };
    let hostile = hostile_project();
    for cwd in [root(), hostile.path().to_path_buf()] {
        let (code, diagrams, err) = nudge(&cwd, &["graph"], &[]);
        assert_eq!(code, 0, "{err}");
        let mut node = Command::new("node")
            .args(["--input-type=module", "-e", MERMAID_PARSE])
            .current_dir(&modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs");
        std::io::Write::write_all(&mut node.stdin.take().unwrap(), diagrams.as_bytes()).unwrap();
        let out = node.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mermaid.js: {}{}\n{diagrams}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0 failed\n");
    }
}

/// The marker before a diagram in the docs; the workflow id follows it.
const BEGIN: &str = "<!-- nudge graph ";
/// The marker after it.
const END: &str = "<!-- end nudge graph -->";

/// `text` with every marked diagram as `nudge graph ID` prints it now, and the ids found.
fn refreshed(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let (before, marked) = rest.split_at(start);
        out.push_str(before);
        let header_end = marked.find(" -->").expect("a marker ends with -->") + " -->".len();
        let id = marked[BEGIN.len()..header_end - " -->".len()]
            .trim()
            .to_owned();
        let end = marked.find(END).unwrap_or_else(|| panic!("{id}: no {END}"));
        let (code, diagram, err) = nudge(&root(), &["graph", &id], &[]);
        assert_eq!(code, 0, "nudge graph {id}: {err}");
        out.push_str(&marked[..header_end]);
        out.push_str("\n```mermaid\n");
        out.push_str(&diagram);
        out.push_str("```\n");
        out.push_str(END);
        rest = &marked[end + END.len()..];
        ids.push(id);
    }
    out.push_str(rest);
    (out, ids)
}

/// README.md and docs/WORKFLOWS.md show the shipped workflows' diagrams as `nudge graph`
/// draws them now: WORKFLOWS.md every one, README at least one and a link to the rest. With
/// `UPDATE_DOCS=1` the stale ones are rewritten (`scripts/update-diagrams`).
#[test]
fn docs_show_the_current_diagrams() {
    let update = std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    let mut shown = Vec::new();
    for doc in ["README.md", "docs/WORKFLOWS.md"] {
        let path = root().join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let (fresh, ids) = refreshed(&text);
        if fresh != text {
            if update {
                std::fs::write(&path, &fresh).unwrap();
            } else {
                stale.push(doc);
            }
        }
        shown.push((doc, ids));
    }
    assert!(
        stale.is_empty(),
        "the workflow diagrams in {} are not what `nudge graph` draws now; refresh them with \
         `scripts/update-diagrams` (or `UPDATE_DOCS=1 cargo test -p nudge --test tests \
         graph_cli::docs_show_the_current_diagrams`)",
        stale.join(" and ")
    );
    let shipped: Vec<String> = shipped_steps().into_iter().map(|(id, _)| id).collect();
    let (_, in_workflows_md) = &shown[1];
    let mut sorted = in_workflows_md.clone();
    sorted.sort();
    assert_eq!(
        sorted, shipped,
        "docs/WORKFLOWS.md draws each shipped workflow once"
    );
    let (_, in_readme) = &shown[0];
    assert!(
        (1..=2).contains(&in_readme.len()),
        "README shows one or two diagrams"
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("(docs/WORKFLOWS.md#the-shipped-workflows-drawn)"));
}

#[test]
fn the_update_script_runs_this_test() {
    let script = std::fs::read_to_string(root().join("scripts/update-diagrams")).unwrap();
    assert!(
        script.contains("UPDATE_DOCS=1 cargo test -p nudge --test tests graph_cli::docs_show_the_current_diagrams"),
        "{script}"
    );
    let mode = std::fs::metadata(root().join("scripts/update-diagrams"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .unwrap();
    assert!(mode & 0o111 != 0, "scripts/update-diagrams is executable");
}
