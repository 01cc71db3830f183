//! The shipped files match their schemas and point editors at them; and the same checks on a
//! folder of our own.

use std::fs;

use crate::helpers::root;

use super::documents::{GOOD_SETTINGS, GOOD_WIN_BACK, GOOD_WORKFLOWS};
use super::explain::check_dir;
use super::{FileKind, yaml_files};

#[test]
fn shipped_workflows_and_settings_match_their_schemas() {
    let dir = root().join("workflows");
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
    let dir = root().join("workflows");
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
