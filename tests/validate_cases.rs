//! Data-driven validation tests: every `tests/cases/validate/<case>.yaml` (a workflow file) or
//! `<case>/` (a folder laid over the base) sits beside `<case>.expected`, the diagnostics
//! `nudge validate` must print for it, one `path:line:col: severity: message` per line, paths
//! relative to the workflows folder. The base (`_base/`: valid settings and templates) is
//! copied first, so a case holds only what it breaks. A new case is a new file.
//!
//! `UPDATE_EXPECTED=1 cargo test validate_cases` writes the `.expected` files from the current
//! output: review the diff before committing it.

use std::path::Path;

use crate::helpers::{copy_dir, root};

fn cases_dir() -> std::path::PathBuf {
    root().join("tests/cases/validate")
}

/// Lays the case over a copy of the base and validates it.
fn run_case(case: &Path) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    copy_dir(&cases_dir().join("_base"), &dir);
    if case.is_dir() {
        copy_dir(case, &dir);
    } else {
        let name = case.file_name().unwrap();
        std::fs::copy(case, dir.join(name)).unwrap();
    }
    let report = nudge_core::workflow::load(&dir).expect("case folder is readable");
    let prefix = format!("{}/", dir.display());
    report
        .diagnostics
        .iter()
        .map(|d| {
            d.to_string()
                .strip_prefix(&prefix)
                .map(str::to_owned)
                .unwrap_or_else(|| d.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_broken_case_reports_exactly_its_expected_diagnostics() {
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('_') && (p.is_dir() || name.ends_with(".yaml"))
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "expected the full suite of cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let expected_path = case.with_extension("expected");
        let actual = run_case(case);
        if update {
            std::fs::write(&expected_path, format!("{actual}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file beside it", case.display()));
        if expected.trim_end() != actual {
            failures.push(format!(
                "case {}\n--- expected\n{}\n--- actual\n{}\n",
                case.file_name().unwrap().to_string_lossy(),
                expected.trim_end(),
                actual
            ));
        }
        assert!(
            !actual.is_empty(),
            "case {} reports nothing: a broken case must fail",
            case.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_base_of_the_cases_is_itself_clean() {
    let report = nudge_core::workflow::load(&cases_dir().join("_base")).unwrap();
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
}
