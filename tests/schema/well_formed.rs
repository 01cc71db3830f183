//! The schemas themselves: valid draft 2020-12 documents, a description on every property, no
//! unknown key accepted anywhere, and valid examples and defaults.

use serde_json::{Map, Value, json};

use super::explain::problems;
use super::{
    DRAFT_2020_12, SETTINGS_SCHEMA_ID, WORKFLOW_SCHEMA_ID, compile, settings_schema,
    workflow_schema,
};

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
