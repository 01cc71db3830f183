use std::path::{Path, PathBuf};

use nudge_core::workflow::Project;
use nudge_core::workflow::model::{StepItem, StepKind, Workflow};

use super::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The project of `dir`, which must have no errors.
fn project(dir: &Path) -> Project {
    let report = nudge_core::workflow::load(dir).unwrap();
    let shown: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    report.project.unwrap_or_else(|| panic!("{shown:#?}"))
}

/// The one workflow `yaml` (named `id.yaml`) beside the validate cases' settings and
/// templates.
fn workflow(id: &str, yaml: &str) -> Workflow {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("tests/cases/validate/_base"), tmp.path());
    std::fs::write(tmp.path().join(format!("{id}.yaml")), yaml).unwrap();
    let mut p = project(tmp.path());
    p.workflows.remove(0)
}

fn shipped() -> Project {
    project(&repo().join("workflows"))
}

/// Every kind of step, nested branches, a holdout, an exit with a step after it, goals.
const EVERYTHING: &str = r#"
id: everything
category: marketing
trigger: { event: order.placed, when: "event.order.total >= 20" }
key: "event.order.id"
entry: { every: 7d }
exit_when:
  - event: order.cancelled
  - event: review.submitted
    when: "event.rating >= 4"
steps:
  - id: hello
    send_email: { template: demo/hello.mjml, subject: "Hi {{ customer.first_name | default('you', true) }}, thanks" }
  - id: pause
    wait: { until: "09:00" }
  - id: delivered
    wait_for: { event: order.delivered, timeout: 14d }
  - id: check
    if: "waited.matched"
    then:
      - id: test
        ab_split:
          - weight: 45
            steps:
              - id: variant-a
                send_email: { template: demo/hello.mjml, subject: "A" }
          - weight: 45
            steps:
              - id: inner
                if: "customer.orders_count >= 3"
                then:
                  - id: tag-vip
                    update_profile: { set: { loyalty_tier: "gold" }, add_tags: [vip], remove_tags: [new] }
                  - exit
                  - id: after-exit
                    wait: 1d
          - weight: 10
            steps: []
    else:
      - id: tell-crm
        webhook: { url: "https://crm.example.com/hooks/abc?token=SECRET", method: PUT }
  - id: last
    wait: 2w
"#;

/// The step ids of `items`, branches included, in document order.
fn ids(workflow: &Workflow) -> Vec<String> {
    workflow.all_steps().iter().map(|s| s.id.clone()).collect()
}

fn node<'d>(d: &'d Diagram, step: &str) -> &'d Node {
    d.nodes
        .iter()
        .find(|n| n.step.as_deref() == Some(step))
        .unwrap_or_else(|| panic!("no node for {step}"))
}

fn edges_from<'d>(d: &'d Diagram, key: &str) -> Vec<(&'d str, Option<&'d str>)> {
    d.edges
        .iter()
        .filter(|e| e.from == key)
        .map(|e| (e.to.as_str(), e.label.as_deref()))
        .collect()
}

#[test]
fn every_step_of_every_shipped_workflow_is_a_node_in_both_formats() {
    let project = shipped();
    assert_eq!(project.workflows.len(), 6);
    for w in &project.workflows {
        let d = Diagram::of(w);
        assert_eq!(d.step_ids().collect::<Vec<_>>(), ids(w), "{}", w.id);
        for format in [Format::Mermaid, Format::Dot] {
            let text = render(w, format);
            for id in ids(w) {
                assert!(
                    text.contains(&id),
                    "{} {format:?} lacks {id}:\n{text}",
                    w.id
                );
            }
            check_syntax(&text, format);
        }
    }
}

/// Every validate case that loads without errors (warnings allowed), drawn: every step id is
/// a node, and the text keeps the formats' rules.
#[test]
fn every_step_of_every_loadable_validate_case_is_a_node() {
    let cases = repo().join("tests/cases/validate");
    let mut drawn = 0;
    for entry in std::fs::read_dir(&cases).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('_') || name.ends_with(".expected") {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&cases.join("_base"), tmp.path());
        if path.is_dir() {
            copy_dir(&path, tmp.path());
        } else {
            std::fs::copy(&path, tmp.path().join(&name)).unwrap();
        }
        let Some(project) = nudge_core::workflow::load(tmp.path()).unwrap().project else {
            continue;
        };
        for w in &project.workflows {
            let d = Diagram::of(w);
            assert_eq!(d.step_ids().collect::<Vec<_>>(), ids(w), "{name}");
            for format in [Format::Mermaid, Format::Dot] {
                check_syntax(&render(w, format), format);
            }
            drawn += 1;
        }
    }
    assert!(drawn >= 5, "only {drawn} case workflows loaded");
}

#[test]
fn the_engine_order_is_drawn_branches_rejoin_after_their_step() {
    let w = workflow("everything", EVERYTHING);
    let d = Diagram::of(&w);
    assert_eq!(
        d.step_ids().collect::<Vec<_>>(),
        [
            "hello",
            "pause",
            "delivered",
            "check",
            "test",
            "variant-a",
            "inner",
            "tag-vip",
            "after-exit",
            "tell-crm",
            "last"
        ]
    );
    let key = |step| node(&d, step).key.clone();
    assert_eq!(edges_from(&d, "trigger")[0], (key("hello").as_str(), None));
    assert_eq!(
        edges_from(&d, &key("check")),
        [
            (key("test").as_str(), Some("yes")),
            (key("tell-crm").as_str(), Some("no"))
        ]
    );
    // The split: two named branches and the holdout, which goes on to the step after `check`.
    let split = edges_from(&d, &key("test"));
    assert_eq!(split[0], (key("variant-a").as_str(), Some("A · 45%")));
    assert_eq!(split[1], (key("inner").as_str(), Some("B · 45%")));
    assert_eq!(split[2].1, Some("holdout · 10%"));
    assert_eq!(edges_from(&d, split[2].0), [(key("last").as_str(), None)]);
    // The end of a branch continues after the `if` that holds it.
    assert_eq!(
        edges_from(&d, &key("variant-a")),
        [(key("last").as_str(), None)]
    );
    assert_eq!(
        edges_from(&d, &key("inner")),
        [
            (key("tag-vip").as_str(), Some("yes")),
            (key("last").as_str(), Some("no"))
        ]
    );
    assert_eq!(edges_from(&d, &key("tag-vip")), [("exit1", None)]);
    assert_eq!(
        edges_from(&d, &key("tell-crm")),
        [(key("last").as_str(), None)]
    );
    assert_eq!(edges_from(&d, &key("last")), [("done", None)]);
    // The step after the exit is drawn, leads on, and is marked as never reached.
    let after = node(&d, "after-exit");
    assert!(!after.reachable);
    assert!(after.lines.last().unwrap().contains("never reached"));
    assert_eq!(edges_from(&d, &after.key), [(key("last").as_str(), None)]);
    assert!(
        d.nodes
            .iter()
            .filter(|n| n.key != after.key)
            .all(|n| n.reachable)
    );
}

#[test]
fn labels_say_what_each_step_does() {
    let w = workflow("everything", EVERYTHING);
    let d = Diagram::of(&w);
    let trigger = &d.nodes[0];
    assert_eq!(trigger.title, "order.placed");
    assert_eq!(
        trigger.lines,
        [
            "when: event.order.total >= 20",
            "key: event.order.id",
            "entry: every 7d"
        ]
    );
    assert_eq!(
        node(&d, "hello").lines,
        ["“Hi {customer.first_name}, thanks”"]
    );
    assert_eq!(node(&d, "pause").lines, ["wait until 09:00"]);
    assert_eq!(
        node(&d, "delivered").lines,
        ["wait for order.delivered", "up to 14d"]
    );
    assert_eq!(node(&d, "check").lines, ["waited.matched?"]);
    assert_eq!(node(&d, "test").lines, ["A/B/holdout split"]);
    assert_eq!(
        node(&d, "tag-vip").lines,
        ["set loyalty_tier", "add tag vip", "remove tag new"]
    );
    // The host only: the query holds a token.
    assert_eq!(node(&d, "tell-crm").lines, ["PUT crm.example.com"]);
    assert_eq!(node(&d, "last").lines, ["wait 14d"]);
    let goals: Vec<&Node> = d
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Goal)
        .collect();
    assert_eq!(goals.len(), 2);
    assert_eq!(goals[0].lines, ["order.cancelled"]);
    assert_eq!(
        goals[1].lines,
        ["review.submitted", "when: event.rating >= 4"]
    );
    for g in goals {
        let e = d.edges.iter().find(|e| e.to == g.key).unwrap();
        assert!(e.dashed && e.from == "trigger");
    }
    for format in [Format::Mermaid, Format::Dot] {
        let text = render(&w, format);
        assert!(
            !text.contains("SECRET") && !text.contains("/hooks"),
            "{text}"
        );
        check_syntax(&text, format);
    }
}

#[test]
fn date_triggers_disabled_workflows_and_shipped_shapes() {
    let w = workflow(
        "bday",
        r#"
id: bday
category: marketing
enabled: false
trigger: { date: customer.birthday, at: "10:30", offset: -3d }
entry: once
steps:
  - exit
"#,
    );
    let d = Diagram::of(&w);
    assert_eq!(d.nodes[0].title, "customer.birthday");
    assert_eq!(
        d.nodes[0].lines,
        [
            "yearly at 10:30, 3d before",
            "entry: once",
            "disabled: starts no run"
        ]
    );
    // Nothing reaches the end of the steps, so there is no `done`.
    assert_eq!(edges_from(&d, "trigger"), [("exit1", None)]);
    assert!(d.nodes.iter().all(|n| n.key != "done"));

    let project = shipped();
    let by_id = |id: &str| project.workflows.iter().find(|w| w.id == id).unwrap();
    let welcome = mermaid(&Diagram::of(by_id("welcome-series")));
    assert!(welcome.starts_with("flowchart TD\n    %% nudge graph welcome-series\n"));
    assert!(welcome.contains("    trigger([\"⚡ <b>customer.created</b><br/>entry: once\"])"));
    assert!(welcome.contains("-->|\"A · 50%\"|"), "{welcome}");
    assert!(
        welcome.contains(
            "{\"<b>not-ordered-yet</b><br/>customer.orders_count #124; default(0) == 0?\"}"
        ),
        "{welcome}"
    );
    assert!(welcome.contains("{{\"🔀 <b>first-order-subject-test</b><br/>A/B split\"}}"));
    assert!(welcome.contains("goal1>\"🎯 <b>goal</b><br/>order.placed\"]"));
    assert!(welcome.contains("trigger -.->|\"any time\"| goal1"));
    assert!(welcome.contains("done(((\"<b>done</b>\")))"));
    assert!(welcome.contains("classDef email "));
    let checkout = by_id("abandoned-checkout");
    let trigger = &Diagram::of(checkout).nodes[0];
    assert_eq!(
        trigger.lines,
        ["key: event.checkout.id", "entry: every 30d"]
    );
    let win_back = Diagram::of(by_id("win-back"));
    assert_eq!(
        win_back.nodes[0].lines,
        ["when: event.order.total >= 20", "entry: restart"]
    );
}

#[test]
fn long_subjects_are_cut_and_templates_compacted() {
    assert_eq!(
        compact_template(
            "{{ customer.first_name | default('Hi', true) }}, your {% if x %}cart{% endif %}{# note #}"
        ),
        "{customer.first_name}, your …cart…"
    );
    assert_eq!(
        compact_template("50% {off} {{ unclosed"),
        "50% {off} {{ unclosed"
    );
    assert_eq!(compact_template("{{x}}}"), "{x}}");
    let long = "x".repeat(100);
    let cut = short(&long);
    assert_eq!(cut.chars().count(), LABEL_CHARS);
    assert!(cut.ends_with('…'));
    assert_eq!(short("a\r\nb\u{202E}c\u{2028}d\t e"), "a b c d e");
    // Multi-byte characters are cut on character boundaries.
    let turkish = "ş".repeat(60);
    assert_eq!(short(&turkish).chars().count(), LABEL_CHARS);
}

#[test]
fn lengths_are_written_in_days_hours_or_minutes() {
    for (text, shown) in [
        ("2w", "14d"),
        ("90d", "90d"),
        ("36h", "36h"),
        ("90m", "90m"),
        ("60m", "1h"),
    ] {
        assert_eq!(length(Duration::parse(text).unwrap()), shown);
    }
    assert_eq!(length(Duration::from_minutes(0)), "0m");
}

#[test]
fn splits_name_their_branches_with_steps_by_letter_and_holdouts_as_such() {
    let w = workflow(
        "splits",
        r#"
id: splits
category: marketing
trigger: { event: customer.created }
steps:
  - id: first-holdout
    ab_split:
      - { weight: 1, steps: [] }
      - { weight: 1, steps: [ { id: only, wait: 1d } ] }
  - id: wide
    ab_split:
      - { weight: 1, steps: [ { id: w1, wait: 1d } ] }
      - { weight: 1, steps: [ { id: w2, wait: 1d } ] }
      - { weight: 1, steps: [ { id: w3, wait: 1d } ] }
      - { weight: 1, steps: [ { id: w4, wait: 1d } ] }
      - { weight: 1, steps: [] }
"#,
    );
    let d = Diagram::of(&w);
    let first = node(&d, "first-holdout");
    assert_eq!(first.lines, ["A/holdout split"]);
    let labels: Vec<Option<&str>> = edges_from(&d, &first.key).iter().map(|e| e.1).collect();
    assert_eq!(
        labels,
        [Some("holdout · 50% (weight 1)"), Some("A · 50% (weight 1)")]
    );
    let wide = node(&d, "wide");
    assert_eq!(wide.lines, ["split 5 ways"]);
    let labels: Vec<Option<&str>> = edges_from(&d, &wide.key).iter().map(|e| e.1).collect();
    assert_eq!(labels[3], Some("D · 20% (weight 1)"));
    assert_eq!(labels[4], Some("holdout · 20% (weight 1)"));
}

#[test]
fn shares_and_branch_names() {
    assert_eq!(share(50, 100), "50%");
    assert_eq!(share(1, 3), "33.3% (weight 1)");
    assert_eq!(share(2, 3), "66.7% (weight 2)");
    assert_eq!(share(10000, 10001), "100% (weight 10000)");
    assert_eq!(share(1, 0), "0% (weight 1)");
    assert_eq!(branch_letter(0), "A");
    assert_eq!(branch_letter(25), "Z");
    assert_eq!(branch_letter(26), "27");
}

/// Subjects, conditions and ids that try to break out of a label, in both formats.
#[test]
fn hostile_text_stays_inside_its_label() {
    let mut w = workflow(
        "hostile",
        r##"
id: hostile
category: marketing
trigger: { event: "order.placed" }
steps:
  - id: first
    send_email: { template: demo/hello.mjml, subject: "a\"] --> x[\"pwned\"]\n%% c <script>#quot; & `md` | pipe \\ back \\n end" }
  - id: second
    if: "customer.tags | length > 0 and '\"]' != \"<b>\""
    then:
      - id: third
        send_email: { template: demo/hello.mjml, subject: "style:#35; ünïcödé 🎉 ✓ 你好 ]] }} )) \u202Eevil" }
"##,
    );
    // Ids are validated slugs when read from a file; a program may build any.
    if let Some(StepItem::Step(step)) = w.steps.get_mut(0) {
        step.id = "id\"] --> s9((\"x\")) <br/> # \\ \n end".to_owned();
    }
    if let Some(StepItem::Step(step)) = w.steps.get_mut(1)
        && let StepKind::If(b) = &mut step.kind
        && let Some(StepItem::Step(inner)) = b.then.get_mut(0)
    {
        inner.id = "ünï-ÇÖDÉ_🎉".to_owned();
    }
    w.id = "evil\" { } --> \n%%{init: {}}%%".to_owned();
    let d = Diagram::of(&w);
    assert_eq!(d.nodes.len(), 5);
    assert_eq!(d.edges.len(), 5);
    for format in [Format::Mermaid, Format::Dot] {
        let text = match format {
            Format::Mermaid => mermaid(&d),
            Format::Dot => dot(&d),
        };
        // Exactly the diagram's nodes and edges: no text added one.
        assert_eq!(check_syntax(&text, format), (5, 5), "{text}");
        assert!(text.contains("ünï-ÇÖDÉ_🎉"), "{text}");
        assert!(!text.contains('\u{202E}'), "{text}");
    }
    let m = mermaid(&d);
    assert!(
        m.contains("“a#quot;] --#gt; x[#quot;pwned#quot;] %% c #lt;script#gt;"),
        "{m}"
    );
    assert_eq!(
        m.lines().nth(1),
        Some("    %% nudge graph evil______--______init_______")
    );
    let dot_text = dot(&d);
    assert!(
        dot_text.contains("“a\\\"] --> x[\\\"pwned\\\"] %% c <script>"),
        "{dot_text}"
    );
    assert!(
        dot_text.starts_with("digraph \"evil\\\" { } -->  %%{init: {}}%%\" {\n"),
        "{dot_text}"
    );
}

#[test]
fn escapes_write_every_dangerous_character_out() {
    let hostile = "a\"b]c<d>e#f&g`h|i\\j\nk\rl\u{2028}m\u{202E}n\tö🎉";
    assert_eq!(
        mermaid::escape(hostile),
        r"a#quot;b]c#lt;d#gt;e#35;f#amp;g#96;h#124;i\j k l m n ö🎉"
    );
    assert_eq!(dot::escape(hostile), r#"a\"b]c<d>e#f&g`h|i\\j k l m n ö🎉"#);
}

/// The rules of each format that a label or name could break, checked line by line; returns
/// how many node and edge statements the text has.
fn check_syntax(text: &str, format: Format) -> (usize, usize) {
    match format {
        Format::Mermaid => check_mermaid(text),
        Format::Dot => check_dot(text),
    }
}

/// Mermaid shapes: opening and closing brackets around a label.
const SHAPES: [(&str, &str); 7] = [
    ("(((", ")))"),
    ("([", "])"),
    ("{{", "}}"),
    ("[/", "/]"),
    ("(", ")"),
    ("{", "}"),
    (">", "]"),
];

/// Every line is one statement of a known form (a node in a shape with one quoted label, an
/// edge with an optional quoted label, a class); every label holds no quote or line break, no
/// raw `<` but the writer's `<b>`, `</b>` and `<br/>`, no `#` that does not start an entity
/// code, and no backtick or `|`.
fn check_mermaid(text: &str) -> (usize, usize) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart TD"));
    let comment = lines.next().unwrap();
    let name = comment.strip_prefix("    %% nudge graph ").unwrap();
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "{comment}"
    );
    let (mut nodes, mut edges) = (0, 0);
    for line in lines {
        let body = line
            .strip_prefix("    ")
            .unwrap_or_else(|| panic!("indent: {line:?}"));
        if body.starts_with("classDef ") || body.starts_with("class ") {
            assert!(!body.contains(['"', ';']), "{body}");
            continue;
        }
        let key_end = body.find(|c: char| !c.is_ascii_alphanumeric()).unwrap();
        let (key, rest) = body.split_at(key_end);
        assert!(is_key(key), "{body}");
        let arrow = rest.strip_prefix(" --> ").or(rest.strip_prefix(" -.-> "));
        let arrow_labelled = rest
            .strip_prefix(" -->|\"")
            .or(rest.strip_prefix(" -.->|\""));
        if let Some(target) = arrow {
            assert!(is_key(target), "{body}");
            edges += 1;
        } else if let Some(quoted) = arrow_labelled {
            let (label, tail) = quoted.split_once('"').unwrap();
            assert!(is_key(tail.strip_prefix("| ").unwrap()), "{body}");
            check_mermaid_label(label);
            edges += 1;
        } else {
            let (open, close) = SHAPES
                .into_iter()
                .find(|(open, _)| rest.starts_with(&format!("{open}\"")))
                .unwrap_or_else(|| panic!("shape: {body}"));
            let (label, tail) = rest[open.len() + 1..].split_once('"').unwrap();
            assert_eq!(tail, close, "{body}");
            check_mermaid_label(label);
            nodes += 1;
        }
    }
    (nodes, edges)
}

fn check_mermaid_label(label: &str) {
    assert!(!label.contains(['`', '|', '"', '\n', '\r']), "{label}");
    let without_tags = label
        .replace("<b>", "")
        .replace("</b>", "")
        .replace("<br/>", "");
    assert!(!without_tags.contains(['<', '>', '&']), "{label}");
    let mut rest = without_tags.as_str();
    while let Some(at) = rest.find('#') {
        let entity = &rest[at + 1..];
        let end = entity
            .find(';')
            .unwrap_or_else(|| panic!("stray # in {label}"));
        let name = &entity[..end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{label}"
        );
        rest = &entity[end + 1..];
    }
}

fn is_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric()) && key != "end"
}

/// Every quoted string ends on its line at an unescaped quote and escapes only `\`, `"` and
/// the writer's `\n`; outside the strings, only the writer's statements. With Graphviz
/// installed, `dot` reads it too.
fn check_dot(text: &str) -> (usize, usize) {
    assert!(text.starts_with("digraph \""), "{text}");
    assert!(text.ends_with("}\n"));
    let (mut nodes, mut edges) = (0, 0);
    for line in text.lines() {
        let outside = outside_strings(line);
        assert!(
            outside
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " []=,->{}.".contains(c)),
            "{outside}"
        );
        let statement = outside.trim_start();
        if statement.contains("->") {
            edges += 1;
        } else if statement.starts_with(|c: char| c.is_ascii_lowercase())
            && !["graph ", "node ", "edge ", "digraph "]
                .iter()
                .any(|k| statement.starts_with(k))
        {
            nodes += 1;
        }
    }
    run_dot(text);
    (nodes, edges)
}

/// `line` without its quoted strings, whose escapes are checked.
fn outside_strings(line: &str) -> String {
    let mut in_string = false;
    let mut chars = line.chars();
    let mut outside = String::new();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                let escaped = chars.next().unwrap_or_else(|| panic!("{line}"));
                assert!(matches!(escaped, '\\' | '"' | 'n'), "{line}");
            }
            (_, '"') => in_string = !in_string,
            (true, c) => assert!(!super::is_hidden(c), "{line}"),
            (false, c) => outside.push(c),
        }
    }
    assert!(!in_string, "unclosed string: {line}");
    outside
}

fn run_dot(text: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    else {
        // scripts/test installs Graphviz (scripts/diagram-tools) and asks for it.
        assert!(
            std::env::var_os("NUDGE_REQUIRE_DIAGRAM_TOOLS").is_none(),
            "NUDGE_REQUIRE_DIAGRAM_TOOLS is set but Graphviz's `dot` cannot be run"
        );
        eprintln!("Graphviz's `dot` is not installed: DOT checked by its quoting rules only");
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
    assert!(out.status.success() && err.is_empty(), "dot: {err}\n{text}");
}
