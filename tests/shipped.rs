//! The workflows the project ships validate clean, with no warning either.

use crate::helpers::root;

#[test]
fn shipped_workflows_validate_clean() {
    let report = nudge_core::workflow::load(&root().join("workflows")).unwrap();
    let shown: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        shown.is_empty(),
        "shipped workflows have problems:\n{}",
        shown.join("\n")
    );
    let project = report.project.expect("a clean project loads");
    let mut ids: Vec<&str> = project.workflows.iter().map(|w| w.id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "birthday-reward",
            "review-request",
            "shipment-updates",
            "welcome-series",
            "win-back"
        ]
    );
}
