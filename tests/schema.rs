//! The JSON Schemas under `schema/` that editors (the YAML language server) use to complete and
//! check workflow files and `settings.yaml` as a marketer types.
//!
//! These tests keep the schemas honest in both directions: the shipped files and a set of
//! known-good documents must validate (the schema is not stricter than the language), a set of
//! known-bad documents must be rejected at the right place (the schema is not looser than the
//! language), and the schemas themselves must be valid draft 2020-12 documents that meet our
//! quality bar (a description on every property, no unknown keys accepted anywhere).
//!
//! The schemas check shape only. Rules that span fields (id == file stem, unique step ids,
//! templates that exist, names in expressions) belong to `nudge validate`.

use std::cmp::Reverse;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value, json};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const WORKFLOW_SCHEMA_ID: &str = "https://nudge.dev/schema/workflow.schema.json";
const SETTINGS_SCHEMA_ID: &str = "https://nudge.dev/schema/settings.schema.json";
/// The first line of every shipped workflow file.
const WORKFLOW_MODELINE: &str = "# yaml-language-server: $schema=../schema/workflow.schema.json";
/// The first line of `settings.yaml`.
const SETTINGS_MODELINE: &str = "# yaml-language-server: $schema=../schema/settings.schema.json";

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path(name: &str) -> PathBuf {
    repo().join("schema").join(name)
}

fn load_schema(name: &str) -> Value {
    let path = schema_path(name);
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

fn compile(name: &str, schema: &Value) -> Validator {
    jsonschema::draft202012::options()
        .build(schema)
        .unwrap_or_else(|e| panic!("schema/{name} does not compile as draft 2020-12: {e}"))
}

fn workflow_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| load_schema("workflow.schema.json"))
}

fn settings_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| load_schema("settings.schema.json"))
}

fn workflow_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| compile("workflow.schema.json", workflow_schema()))
}

fn settings_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| compile("settings.schema.json", settings_schema()))
}

fn parse_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
}

/// Which schema a file under `workflows/` is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Workflow,
    Settings,
}

impl FileKind {
    fn validator(self) -> &'static Validator {
        match self {
            FileKind::Workflow => workflow_validator(),
            FileKind::Settings => settings_validator(),
        }
    }

    fn modeline(self) -> &'static str {
        match self {
            FileKind::Workflow => WORKFLOW_MODELINE,
            FileKind::Settings => SETTINGS_MODELINE,
        }
    }
}

/// The YAML files directly in `dir` (workflow files and `settings.yaml`), sorted by name.
/// `templates/` and anything that is not `.yaml`/`.yml` is not ours to check.
fn yaml_files(dir: &Path) -> Vec<(PathBuf, FileKind)> {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<(PathBuf, FileKind)> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .map(|path| {
            let kind = if path.file_stem().and_then(|s| s.to_str()) == Some("settings") {
                FileKind::Settings
            } else {
                FileKind::Workflow
            };
            (path, kind)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Explaining failures
// ---------------------------------------------------------------------------------------------

/// One reason a document does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    /// JSON pointer into the document, e.g. `/steps/2/wait` (empty for the root).
    path: String,
    /// The schema keyword that failed, e.g. `pattern`.
    keyword: String,
    message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {} [{}]", self.message, self.keyword)
    }
}

impl Problem {
    fn of(error: &ValidationError<'_>) -> Self {
        Problem {
            path: error.instance_path().as_str().to_owned(),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        }
    }
}

fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// The problems `validator` finds in `doc`. A failed `oneOf`/`anyOf` (a step matching no step
/// kind, a trigger matching neither form) is narrowed to the branch the document most likely
/// meant, so that `wait: 3 days` is reported as a bad pattern at `/steps/0/wait`, not as "matches
/// none of eight step kinds".
fn problems(validator: &Validator, doc: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    for error in validator.iter_errors(doc) {
        explain(&error, &mut out);
    }
    out.dedup();
    out
}

fn explain(error: &ValidationError<'_>, out: &mut Vec<Problem>) {
    match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            let explained: Vec<Vec<Problem>> = context
                .iter()
                .map(|branch| {
                    let mut problems = Vec::new();
                    for error in branch {
                        explain(error, &mut problems);
                    }
                    problems
                })
                .filter(|problems| !problems.is_empty())
                .collect();
            let Some(best) = explained.iter().map(|p| branch_score(p)).max() else {
                out.push(Problem::of(error));
                return;
            };
            let tied: Vec<&Vec<Problem>> = explained
                .iter()
                .filter(|p| branch_score(p) == best)
                .collect();
            if tied.len() == 1 {
                out.extend(tied[0].iter().cloned());
                return;
            }
            // Several branches fit equally well (a step with an unknown key fails every step
            // kind the same way): keep what they all agree on, else the failure as a whole.
            let common: Vec<Problem> = tied[0]
                .iter()
                .filter(|p| tied[1..].iter().all(|other| other.contains(p)))
                .cloned()
                .collect();
            if common.is_empty() {
                out.push(Problem::of(error));
            } else {
                out.extend(common);
            }
        }
        _ => out.push(Problem::of(error)),
    }
}

/// How well a branch of a `oneOf` fits: the deeper its problems reach into the document, the
/// more of the document it accepted; a type or constant mismatch where it fails means the
/// branch is for another kind of value; fewer problems is better.
fn branch_score(problems: &[Problem]) -> (usize, bool, Reverse<usize>) {
    let deepest = problems.iter().map(|p| depth(&p.path)).max().unwrap_or(0);
    let right_kind = !problems
        .iter()
        .any(|p| depth(&p.path) == deepest && (p.keyword == "type" || p.keyword == "const"));
    (deepest, right_kind, Reverse(problems.len()))
}

/// Every problem in every YAML file of `dir`, as `file: /path: message`, plus the files whose
/// first line is not the modeline that points editors at the schema.
fn check_dir(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut schema_failures = Vec::new();
    let mut modeline_failures = Vec::new();
    for (path, kind) in yaml_files(dir) {
        let name = file_name(&path);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                schema_failures.push(format!("{name}: cannot read: {e}"));
                continue;
            }
        };
        let first = text.lines().next().unwrap_or("");
        if first != kind.modeline() {
            modeline_failures.push(format!(
                "{name}: first line is {first:?}, expected {:?}",
                kind.modeline()
            ));
        }
        match parse_yaml(&text) {
            Err(e) => schema_failures.push(format!("{name}: not valid YAML: {e}")),
            Ok(doc) => {
                for problem in problems(kind.validator(), &doc) {
                    schema_failures.push(format!("{name}: {problem}"));
                }
            }
        }
    }
    (schema_failures, modeline_failures)
}

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

const GOOD_SETTINGS: &str = r#"# yaml-language-server: $schema=../schema/settings.schema.json
store: { name: "Kahve Dükkanı", url: "https://shop.example.com", postal_address: "Moda Cd. 1, İstanbul" }
from: "Kahve Dükkanı <hello@shop.example.com>"
reply_to: "support@shop.example.com"
timezone: Europe/Istanbul
send_window: { start: "09:00", end: "21:00" }
frequency_cap: { max: 1, per: 16h }
unsubscribe_url: "https://shop.example.com/unsubscribe"
"#;

/// The example of the contract, as a marketer would write it.
const GOOD_WIN_BACK: &str = r#"# yaml-language-server: $schema=../schema/workflow.schema.json
id: win-back
name: Win-back
category: marketing
enabled: true
trigger:
  event: order.placed
  when: "event.order.total >= 20"
key: "event.order.id"
entry: restart
exit_when:
  - event: order.placed
send_window: { start: "09:00", end: "20:00" }
steps:
  - wait: 90d
    id: wait-90
  - id: miss-you
    send_email:
      template: win-back/miss-you.mjml
      subject: "We miss you, {{ customer.first_name | default('friend') }}"
      preheader: "Here is 15% off your next order"
  - wait: 14d
    id: wait-14
  - id: regular
    if: "customer.orders_count >= 3"
    then:
      - id: vip-last-call
        send_email: { template: win-back/vip.mjml, subject: "A thank-you for a regular" }
    else:
      - id: last-call
        send_email: { template: win-back/last-call.mjml, subject: "Last chance" }
"#;

/// A date trigger and every other step kind.
const GOOD_BIRTHDAY: &str = r#"# yaml-language-server: $schema=../schema/workflow.schema.json
id: birthday-reward
description: A gift a few days before the birthday.
category: marketing
trigger: { date: customer.birthday, at: "09:00", offset: -3d, when: "customer.orders_count >= 1" }
entry: { every: 365d }
steps:
  - id: tag
    update_profile:
      set: { last_birthday_code: "BDAY-{{ customer.id }}", vip: true, points: 100 }
      add_tags: [birthday]
      remove_tags: [lapsed]
  - id: notify-crm
    webhook:
      url: https://crm.example.com/hooks/nudge
      method: PUT
      secret: crm/webhook_key
      body: { customer: "{{ customer.id }}", event: birthday, items: [1, 2] }
  - id: split
    ab_split:
      - weight: 45
        steps:
          - id: gift-a
            send_email:
              template: birthday-reward/a.html
              subject: "Happy birthday!"
              from: hello@shop.example.com
              reply_to: "Support <support@shop.example.com>"
              tags: [birthday, variant-a]
      - weight: 45
        steps:
          - id: gift_b
            send_email: { template: birthday-reward/b.mjml, subject: "A gift for you" }
      - weight: 10
        steps: []
  - id: morning
    wait: { until: "08:30" }
  - id: always
    if: true
    then: [exit]
  - exit
"#;

/// A transactional, keyed workflow that waits for an event.
const GOOD_SHIPMENT: &str = r#"# yaml-language-server: $schema=../schema/workflow.schema.json
id: shipment-updates
category: transactional
trigger: { event: order.shipped }
key: event.order.id
entry: once
steps:
  - id: shipped
    send_email: { template: shipment-updates/shipped.mjml, subject: "Your order is on its way" }
  - id: delivered
    wait_for: { event: order.delivered, when: "event.order.id != ''", timeout: 2w }
  - id: check
    if: waited.matched
    then:
      - exit
    else:
      - id: late
        webhook: { url: "https://chat.example.com/late?order={{ event.order.id }}" }
"#;

const GOOD_WORKFLOWS: &[(&str, &str)] = &[
    ("win-back.yaml", GOOD_WIN_BACK),
    ("birthday-reward.yaml", GOOD_BIRTHDAY),
    ("shipment-updates.yml", GOOD_SHIPMENT),
];

/// Known-bad documents: what is wrong, the document, and where (JSON pointer) and by which
/// keyword the schema must reject it.
const BAD_WORKFLOWS: &[(&str, &str, &str, &str)] = &[
    (
        "misspelled step kind",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    sned_email: { template: x/hi.mjml, subject: Hi }\n",
        "/steps/0",
        "additionalProperties",
    ),
    (
        "duration in words",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: pause\n    wait: 3 days\n",
        "/steps/0/wait",
        "pattern",
    ),
    (
        "time with am/pm",
        "id: x\ncategory: marketing\ntrigger: { date: customer.birthday, at: 9am }\nsteps:\n  - exit\n",
        "/trigger/at",
        "pattern",
    ),
    (
        "unknown category",
        "id: x\ncategory: promo\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "/category",
        "enum",
    ),
    (
        "plain-http webhook",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: crm\n    webhook: { url: \"http://crm.example.com/hook\" }\n",
        "/steps/0/webhook/url",
        "pattern",
    ),
    (
        "webhook GET",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: crm\n    webhook: { url: \"https://crm.example.com/hook\", method: GET }\n",
        "/steps/0/webhook/method",
        "enum",
    ),
    (
        "zero wait",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: pause\n    wait: 0d\n",
        "/steps/0/wait",
        "pattern",
    ),
    (
        "bad duration inside a branch",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: check\n    if: customer.vip\n    then:\n      - id: pause\n        wait: 2 weeks\n",
        "/steps/0/then/0/wait",
        "pattern",
    ),
    (
        "24:00 is not a time",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsend_window: { start: \"09:00\", end: \"24:00\" }\nsteps:\n  - exit\n",
        "/send_window/end",
        "pattern",
    ),
    (
        "offset in words",
        "id: x\ncategory: marketing\ntrigger: { date: customer.birthday, offset: -3 days }\nsteps:\n  - exit\n",
        "/trigger/offset",
        "pattern",
    ),
    (
        "unknown entry policy",
        "id: x\ncategory: marketing\nentry: always\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "/entry",
        "enum",
    ),
    (
        "both trigger forms",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created, date: customer.birthday }\nsteps:\n  - exit\n",
        "/trigger",
        "oneOf",
    ),
    (
        "missing category",
        "id: x\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "",
        "required",
    ),
    (
        "id is not a slug",
        "id: Win_Back\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - exit\n",
        "/id",
        "pattern",
    ),
    (
        "no steps",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps: []\n",
        "/steps",
        "minItems",
    ),
    (
        "step without id",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - wait: 3d\n",
        "/steps/0",
        "required",
    ),
    (
        "step with two kinds",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: both\n    wait: 3d\n    send_email: { template: x/hi.mjml, subject: Hi }\n",
        "/steps/0",
        "oneOf",
    ),
    (
        "exit written as a mapping",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - exit: true\n",
        "/steps/0",
        "additionalProperties",
    ),
    (
        "then on a step that is not an if",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: x/hi.mjml, subject: Hi }\n    then: [exit]\n",
        "/steps/0",
        "additionalProperties",
    ),
    (
        "wait_for without timeout",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: w\n    wait_for: { event: order.placed }\n",
        "/steps/0/wait_for",
        "required",
    ),
    (
        "template that is not mjml or html",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: x/hi.txt, subject: Hi }\n",
        "/steps/0/send_email/template",
        "pattern",
    ),
    (
        "ab_split with one branch",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: s\n    ab_split:\n      - { weight: 1, steps: [exit] }\n",
        "/steps/0/ab_split",
        "minItems",
    ),
    (
        "ab_split weight 0",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: s\n    ab_split:\n      - { weight: 0, steps: [] }\n      - { weight: 1, steps: [] }\n",
        "/steps/0/ab_split/0/weight",
        "minimum",
    ),
    (
        "update_profile sets the email",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: { set: { email: a@b.c } }\n",
        "/steps/0/update_profile/set",
        "propertyNames",
    ),
    (
        "update_profile sets tags",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: { set: { tags: [vip] } }\n",
        "/steps/0/update_profile/set",
        "propertyNames",
    ),
    (
        "attribute name with capitals",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: { set: { VIP: true } }\n",
        "/steps/0/update_profile/set",
        "propertyNames",
    ),
    (
        "update_profile that changes nothing",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: u\n    update_profile: {}\n",
        "/steps/0/update_profile",
        "minProperties",
    ),
    (
        "date trigger on an attribute that is not a date",
        "id: x\ncategory: marketing\ntrigger: { date: customer.email }\nsteps:\n  - exit\n",
        "/trigger/date",
        "not",
    ),
    (
        "date trigger on something that is not a customer attribute",
        "id: x\ncategory: marketing\ntrigger: { date: birthday }\nsteps:\n  - exit\n",
        "/trigger/date",
        "pattern",
    ),
    (
        "template outside templates/",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: ../secrets/hi.html, subject: Hi }\n",
        "/steps/0/send_email/template",
        "pattern",
    ),
    (
        "blank subject",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: hi\n    send_email: { template: x/hi.html, subject: \"  \" }\n",
        "/steps/0/send_email/subject",
        "pattern",
    ),
    (
        "step id starting with a hyphen",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: -pause\n    wait: 1d\n",
        "/steps/0/id",
        "pattern",
    ),
    (
        "step id with a space",
        "id: x\ncategory: marketing\ntrigger: { event: customer.created }\nsteps:\n  - id: say hi\n    wait: 1d\n",
        "/steps/0/id",
        "pattern",
    ),
];

const BAD_SETTINGS: &[(&str, &str, &str, &str)] = &[
    (
        "misspelled key",
        "store: { name: S, url: \"https://s.example\" }\nform: a@s.example\nfrom: a@s.example\ntimezone: UTC\n",
        "",
        "additionalProperties",
    ),
    (
        "missing timezone",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\n",
        "",
        "required",
    ),
    (
        "plain-http unsubscribe page",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nunsubscribe_url: \"http://s.example/unsubscribe\"\n",
        "/unsubscribe_url",
        "pattern",
    ),
    (
        "frequency cap of zero",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nfrequency_cap: { max: 0, per: 16h }\n",
        "/frequency_cap/max",
        "minimum",
    ),
    (
        "frequency cap over 1000",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nfrequency_cap: { max: 5000, per: 1d }\n",
        "/frequency_cap/max",
        "maximum",
    ),
    (
        "send window with am/pm",
        "store: { name: S, url: \"https://s.example\" }\nfrom: a@s.example\ntimezone: UTC\nsend_window: { start: 9am, end: \"21:00\" }\n",
        "/send_window/start",
        "pattern",
    ),
    (
        "from without an address",
        "store: { name: S, url: \"https://s.example\" }\nfrom: Kahve Dükkanı\ntimezone: UTC\n",
        "/from",
        "pattern",
    ),
];

// ---------------------------------------------------------------------------------------------
// (1) and (2): the shipped files
// ---------------------------------------------------------------------------------------------

#[test]
fn shipped_workflows_and_settings_match_their_schemas() {
    let dir = repo().join("workflows");
    let files = yaml_files(&dir);
    assert!(
        files.iter().any(|(_, kind)| *kind == FileKind::Settings),
        "no settings.yaml in {}",
        dir.display()
    );
    assert!(
        files.iter().any(|(_, kind)| *kind == FileKind::Workflow),
        "no workflow files in {}",
        dir.display()
    );
    let (failures, _) = check_dir(&dir);
    assert!(
        failures.is_empty(),
        "{} problem(s) in workflows/:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn shipped_files_point_editors_at_their_schema() {
    let dir = repo().join("workflows");
    for (_, kind) in yaml_files(&dir) {
        // The modeline is relative to the file; it must lead to the schema we test.
        let target = kind.modeline().rsplit('=').next().unwrap();
        assert!(
            dir.join(target).is_file(),
            "{target} (from {:?}) does not exist",
            kind.modeline()
        );
    }
    let (_, failures) = check_dir(&dir);
    assert!(
        failures.is_empty(),
        "files without the schema modeline:\n  {}",
        failures.join("\n  ")
    );
}

/// The same checks on a directory of our own: good files pass, and every problem of every bad
/// file is reported with its file name and instance path.
#[test]
fn directory_check_reports_every_problem_with_file_and_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("settings.yaml"), GOOD_SETTINGS).unwrap();
    for (name, text) in GOOD_WORKFLOWS {
        fs::write(dir.path().join(name), text).unwrap();
    }
    fs::create_dir(dir.path().join("templates")).unwrap();
    fs::write(
        dir.path().join("templates").join("ignored.yaml"),
        "not: [a workflow",
    )
    .unwrap();
    fs::write(dir.path().join("README.md"), "not yaml").unwrap();

    let (failures, modelines) = check_dir(dir.path());
    assert!(
        failures.is_empty(),
        "good fixtures rejected:\n  {}",
        failures.join("\n  ")
    );
    assert!(
        modelines.is_empty(),
        "good fixtures without modeline:\n  {}",
        modelines.join("\n  ")
    );

    let broken = GOOD_WIN_BACK
        .replace("# yaml-language-server", "#yaml-language-server")
        .replace("category: marketing", "category: promo")
        .replace("wait: 14d", "wait: 14 days");
    fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    fs::write(dir.path().join("unparsable.yaml"), "id: [x\n").unwrap();

    let (failures, modelines) = check_dir(dir.path());
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("broken.yaml: /category: ")),
        "{failures:#?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("broken.yaml: /steps/2/wait: ")),
        "{failures:#?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("unparsable.yaml: not valid YAML")),
        "{failures:#?}"
    );
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert_eq!(modelines.len(), 2, "{modelines:#?}");
    assert!(
        modelines
            .iter()
            .any(|m| m.starts_with("broken.yaml: first line is ")),
        "{modelines:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// (3): known-good and known-bad documents
// ---------------------------------------------------------------------------------------------

#[test]
fn known_good_documents_are_accepted() {
    let mut failures = Vec::new();
    for (name, text) in GOOD_WORKFLOWS
        .iter()
        .chain([&("settings.yaml", GOOD_SETTINGS)])
    {
        let doc = parse_yaml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let validator = if *name == "settings.yaml" {
            settings_validator()
        } else {
            workflow_validator()
        };
        for problem in problems(validator, &doc) {
            failures.push(format!("{name}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "good documents rejected:\n  {}",
        failures.join("\n  ")
    );
}

fn assert_rejected(validator: &Validator, cases: &[(&str, &str, &str, &str)]) {
    let mut failures = Vec::new();
    for (what, text, path, keyword) in cases {
        let doc = parse_yaml(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
        let found = problems(validator, &doc);
        if found.is_empty() {
            failures.push(format!("{what}: accepted"));
        } else if !found
            .iter()
            .any(|p| p.path == *path && p.keyword == *keyword)
        {
            let found: Vec<String> = found.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{what}: expected `{keyword}` at {path:?}, got:\n      {}",
                found.join("\n      ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "known-bad documents:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn known_bad_workflows_are_rejected_where_the_mistake_is() {
    assert_rejected(workflow_validator(), BAD_WORKFLOWS);
}

#[test]
fn known_bad_settings_are_rejected_where_the_mistake_is() {
    assert_rejected(settings_validator(), BAD_SETTINGS);
}

// ---------------------------------------------------------------------------------------------
// (4): the schemas themselves
// ---------------------------------------------------------------------------------------------

#[test]
fn schemas_are_valid_draft_2020_12() {
    for (name, schema, id) in [
        (
            "workflow.schema.json",
            workflow_schema(),
            WORKFLOW_SCHEMA_ID,
        ),
        (
            "settings.schema.json",
            settings_schema(),
            SETTINGS_SCHEMA_ID,
        ),
    ] {
        assert_eq!(schema["$schema"], DRAFT_2020_12, "{name}: $schema");
        assert_eq!(schema["$id"], id, "{name}: $id");
        let meta = jsonschema::draft202012::meta::validator();
        let errors: Vec<String> = meta
            .iter_errors(schema)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{name} is not a valid 2020-12 schema:\n  {}",
            errors.join("\n  ")
        );
        // Compiling also resolves every `$ref` and compiles every `pattern`.
        compile(name, schema);
    }
}

/// Calls `visit(pointer, schema)` for `schema` and every subschema in it.
fn walk<'a>(schema: &'a Value, pointer: &str, visit: &mut dyn FnMut(&str, &'a Map<String, Value>)) {
    let Some(object) = schema.as_object() else {
        return;
    };
    visit(pointer, object);
    let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
    for keyword in [
        "properties",
        "$defs",
        "patternProperties",
        "dependentSchemas",
    ] {
        if let Some(map) = object.get(keyword).and_then(Value::as_object) {
            for (name, sub) in map {
                walk(sub, &format!("{pointer}/{keyword}/{}", escape(name)), visit);
            }
        }
    }
    for keyword in ["oneOf", "anyOf", "allOf", "prefixItems"] {
        if let Some(list) = object.get(keyword).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                walk(sub, &format!("{pointer}/{keyword}/{i}"), visit);
            }
        }
    }
    for keyword in [
        "items",
        "additionalProperties",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "unevaluatedProperties",
        "unevaluatedItems",
    ] {
        if let Some(sub) = object.get(keyword) {
            walk(sub, &format!("{pointer}/{keyword}"), visit);
        }
    }
}

/// Editors show `description` on hover and flag unknown keys only under
/// `additionalProperties: false`, so both are required everywhere.
#[test]
fn schemas_describe_every_property_and_reject_unknown_keys() {
    for (name, schema) in [
        ("workflow.schema.json", workflow_schema()),
        ("settings.schema.json", settings_schema()),
    ] {
        let mut failures = Vec::new();
        let has_description = |s: &Value| {
            s.get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty())
        };
        if !has_description(schema) {
            failures.push("/: no description".to_owned());
        }
        walk(schema, "", &mut |pointer, object| {
            if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                if object.get("additionalProperties") != Some(&Value::Bool(false)) {
                    failures.push(format!(
                        "{pointer}: properties without additionalProperties: false"
                    ));
                }
                for (property, sub) in properties {
                    if !has_description(sub) {
                        failures.push(format!("{pointer}/properties/{property}: no description"));
                    }
                }
            }
            if let Some(defs) = object.get("$defs").and_then(Value::as_object) {
                for (def, sub) in defs {
                    if !has_description(sub) {
                        failures.push(format!("{pointer}/$defs/{def}: no description"));
                    }
                }
            }
            if let Some(pattern) = object.get("pattern").and_then(Value::as_str)
                && !pattern.starts_with('^')
            {
                failures.push(format!("{pointer}: pattern {pattern:?} is not anchored"));
            }
        });
        assert!(failures.is_empty(), "{name}:\n  {}", failures.join("\n  "));
    }
}

/// Editors offer `examples` and `default` values as completions: each must be valid where it is
/// offered.
#[test]
fn schema_examples_and_defaults_are_valid() {
    for (name, schema, id) in [
        (
            "workflow.schema.json",
            workflow_schema(),
            WORKFLOW_SCHEMA_ID,
        ),
        (
            "settings.schema.json",
            settings_schema(),
            SETTINGS_SCHEMA_ID,
        ),
    ] {
        let mut samples: Vec<(String, Value)> = Vec::new();
        walk(schema, "", &mut |pointer, object| {
            for example in object
                .get("examples")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                samples.push((pointer.to_owned(), example.clone()));
            }
            if let Some(default) = object.get("default") {
                samples.push((pointer.to_owned(), default.clone()));
            }
        });
        assert!(!samples.is_empty(), "{name}: no examples");
        let mut failures = Vec::new();
        for (pointer, sample) in samples {
            // The subschema at `pointer`, resolved inside the whole schema (for its `$ref`s).
            let probe = json!({
                "$schema": DRAFT_2020_12,
                "$ref": format!("{id}#{pointer}"),
                "$defs": { "embedded": schema },
            });
            let validator = jsonschema::draft202012::options()
                .build(&probe)
                .unwrap_or_else(|e| panic!("{name}#{pointer}: {e}"));
            for problem in problems(&validator, &sample) {
                failures.push(format!("{name}#{pointer}: example {sample}: {problem}"));
            }
        }
        assert!(
            failures.is_empty(),
            "invalid examples:\n  {}",
            failures.join("\n  ")
        );
    }
}
