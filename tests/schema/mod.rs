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

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

use crate::helpers::root;

mod documents;
mod explain;
mod shipped;
mod well_formed;

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

/// The shipped schema file `name`.
fn schema_path(name: &str) -> PathBuf {
    root().join("schema").join(name)
}

/// The schema `name` as JSON; panics naming the file if it cannot be read or parsed.
fn load_schema(name: &str) -> Value {
    let path = schema_path(name);
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// A draft 2020-12 validator for `schema`; panics naming the file if it does not compile.
fn compile(name: &str, schema: &Value) -> Validator {
    jsonschema::draft202012::options()
        .build(schema)
        .unwrap_or_else(|e| panic!("schema/{name} does not compile as draft 2020-12: {e}"))
}

/// `schema/workflow.schema.json`, read once.
fn workflow_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| load_schema("workflow.schema.json"))
}

/// `schema/settings.schema.json`, read once.
fn settings_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| load_schema("settings.schema.json"))
}

/// The workflow schema, compiled once.
fn workflow_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| compile("workflow.schema.json", workflow_schema()))
}

/// The settings schema, compiled once.
fn settings_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| compile("settings.schema.json", settings_schema()))
}

/// `text` as a JSON value, as the YAML language server sees a file.
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
    /// The validator of this kind of file.
    fn validator(self) -> &'static Validator {
        match self {
            FileKind::Workflow => workflow_validator(),
            FileKind::Settings => settings_validator(),
        }
    }

    /// The first line every file of this kind must have.
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

/// The file name of `path`, for messages.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
