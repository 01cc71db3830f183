//! The docs stand alone and say what the code does: every link in README.md and docs/ leads to
//! a file in the repository, and docs/EVENTS.md lists exactly what the event catalog (which
//! `nudge validate` checks templates against) holds, with examples Nudge accepts.

use std::path::{Path, PathBuf};

use nudge_core::event::catalog::{
    COUNTED_ATTRIBUTES, CUSTOMER_ATTRIBUTES, EVENT_TYPES, FieldCheck, check_field,
};
use nudge_core::event::parse_event;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn events_md() -> String {
    std::fs::read_to_string(root().join("docs/EVENTS.md")).unwrap()
}

/// The markdown files users read.
fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "md") {
            files.push(p);
        }
    }
    files
}

/// The targets of `[text](target)` links in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_docs_leads_to_a_file_in_the_repository() {
    let mut broken = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap();
            if path.is_empty() {
                continue;
            }
            let resolved = file.parent().unwrap().join(path);
            let inside = resolved
                .canonicalize()
                .is_ok_and(|p| p.starts_with(root().canonicalize().unwrap()));
            if !inside {
                broken.push(format!("{}: {target}", file.display()));
            }
        }
        assert!(
            !text.contains("shared/spec"),
            "{} points at the contract folder",
            file.display()
        );
    }
    assert!(
        broken.is_empty(),
        "links that lead nowhere in the repository:\n{}",
        broken.join("\n")
    );
}

#[test]
fn events_md_has_a_section_for_every_event_type_naming_each_field() {
    let doc = events_md();
    for ty in EVENT_TYPES {
        let heading = format!("\n### {}\n", ty.name);
        let start = doc
            .find(&heading)
            .unwrap_or_else(|| panic!("no section for {}", ty.name));
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n### ").unwrap_or(section.len())];
        for field in ty.fields {
            // A parent (`order`) is named by its children; a leaf is named itself.
            let has_children = ty
                .fields
                .iter()
                .any(|f| f.starts_with(&format!("{field}.")));
            let shared_with = |other: &str| section.contains(&format!("Same fields as `{other}`"));
            let named = section.contains(&format!("`{field}`"))
                || has_children
                || EVENT_TYPES
                    .iter()
                    .any(|o| shared_with(o.name) && o.fields.contains(field));
            assert!(named, "docs/EVENTS.md: {} does not name `{field}`", ty.name);
        }
    }
}

#[test]
fn events_md_examples_are_accepted_and_carry_only_documented_fields() {
    let doc = events_md();
    let examples: Vec<&str> = doc
        .split("```json\n")
        .skip(1)
        .map(|b| b[..b.find("\n```").unwrap()].trim())
        .collect();
    assert!(
        examples.len() > EVENT_TYPES.len(),
        "{} examples",
        examples.len()
    );
    let mut seen = std::collections::BTreeSet::new();
    for text in examples {
        let event = parse_event(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        seen.insert(event.event_type.clone());
        let mut paths = Vec::new();
        leaf_paths(
            &Value::Object((*event.detail).clone()),
            &mut Vec::new(),
            &mut paths,
        );
        for path in paths {
            let parts: Vec<&str> = path.iter().map(String::as_str).collect();
            assert_eq!(
                check_field(&event.event_type, &parts),
                FieldCheck::Known,
                "{}: {}",
                event.event_type,
                path.join(".")
            );
        }
    }
    for ty in EVENT_TYPES {
        assert!(seen.contains(ty.name), "no example of {}", ty.name);
    }
}

/// The paths to every value under `v` (not into lists).
fn leaf_paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                at.push(k.clone());
                leaf_paths(child, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

#[test]
fn events_md_lists_every_customer_attribute() {
    let doc = events_md();
    for name in CUSTOMER_ATTRIBUTES.iter().chain(COUNTED_ATTRIBUTES) {
        assert!(
            doc.contains(&format!("| `{name}`")) || doc.contains(&format!(", `{name}`")),
            "customer attribute `{name}` is not in docs/EVENTS.md"
        );
    }
}

/// README's sample of `nudge simulate` on the shipped sample is what the command prints: each
/// row is a line of the recorded run (`tests/shipped.rs` keeps that record equal to the real
/// output), a line cut with `, ...` begins one, and the per-workflow block after the blank line
/// stands whole in it.
#[test]
fn readme_sample_output_is_the_real_output() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let snap = std::fs::read_to_string(
        root().join("tests/snapshots/tests__shipped__sample_timeline.snap"),
    )
    .unwrap();
    let recorded: Vec<&str> = snap.lines().collect();
    let start = readme
        .find("```\n2026-01-05T")
        .expect("README shows the sample run");
    let block = &readme[start + 4..];
    let block = &block[..block.find("```").unwrap()];
    for line in block.lines().filter(|l| !l.is_empty() && *l != "...") {
        let found = match line.strip_suffix(", ...") {
            Some(head) => recorded.iter().any(|r| r.starts_with(head)),
            None => recorded.contains(&line),
        };
        assert!(
            found,
            "README shows a line the sample run does not print:\n{line}"
        );
    }
    let (_, summary) = block.split_once("\n\n").expect("a per-workflow block");
    assert!(
        snap.contains(summary),
        "README's per-workflow block is not as the run prints it:\n{summary}"
    );
}
