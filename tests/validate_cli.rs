//! `nudge validate` as a user runs it: output format, paths as given, exit codes, colour.

use std::path::Path;

use crate::helpers::{copy_dir, nudge, root};

/// A temporary project whose `workflows/` is the cases' base plus the named broken cases.
fn project_with(cases: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let cases_dir = root().join("tests/cases/validate");
    let dir = tmp.path().join("workflows");
    copy_dir(&cases_dir.join("_base"), &dir);
    for case in cases {
        let path = cases_dir.join(case);
        if path.is_dir() {
            copy_dir(&path, &dir);
        } else {
            std::fs::copy(&path, dir.join(case)).unwrap();
        }
    }
    tmp
}

#[test]
fn shipped_workflows_have_no_problems_and_exit_0() {
    let (code, out, err) = nudge(&root(), &["validate", "workflows/"], &[]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "", "checked 6 workflows, 14 templates: no problems\n")
    );
    // `workflows/` is the default path.
    let (code, out, _) = nudge(&root(), &["validate"], &[]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn problems_print_one_line_each_and_exit_1() {
    let tmp = project_with(&[
        "unknown-step-kind.yaml",
        "undefined-in-template",
        "warnings.yaml",
    ]);
    let (code, out, err) = nudge(tmp.path(), &["validate", "workflows/"], &[]);
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!("validate_text", out);
    // The base's three templates and the case's one; three workflow files.
    assert_eq!(
        err,
        "checked 3 workflows, 4 templates: 6 errors, 5 warnings\n"
    );
}

#[test]
fn paths_are_printed_as_given() {
    let tmp = project_with(&["unknown-step-kind.yaml"]);
    let (_, out, _) = nudge(tmp.path(), &["validate", "workflows"], &[]);
    assert!(
        out.lines()
            .all(|l| l.starts_with("workflows/unknown-step-kind.yaml:")),
        "{out}"
    );
    let (_, out, _) = nudge(&tmp.path().join("workflows"), &["validate", "."], &[]);
    assert!(
        out.lines()
            .all(|l| l.starts_with("./unknown-step-kind.yaml:")),
        "{out}"
    );
}

#[test]
fn a_single_file_reports_only_that_file() {
    let tmp = project_with(&["unknown-step-kind.yaml", "bad-durations.yaml"]);
    let (code, out, _) = nudge(
        tmp.path(),
        &["validate", "workflows/bad-durations.yaml"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(!out.is_empty());
    assert!(
        out.lines()
            .all(|l| l.starts_with("workflows/bad-durations.yaml:")),
        "{out}"
    );
}

#[test]
fn warnings_alone_leave_the_exit_code_at_0() {
    let tmp = project_with(&["marketing-without-unsubscribe.yaml"]);
    let (code, out, err) = nudge(tmp.path(), &["validate", "workflows/"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);
    assert!(
        out.contains(
            ": warning: marketing template `demo/no-unsubscribe.mjml` has no unsubscribe link"
        ),
        "{out}"
    );
    assert_eq!(
        err,
        "checked 1 workflow, 3 templates: 0 errors, 1 warning\n"
    );
}

#[test]
fn an_attribute_another_workflow_writes_is_known_when_validating_one_file() {
    let tmp = project_with(&["attr-customer-paths"]);
    // `attr-second-sender` reads `customer.favourite_bean`, which `attr-customer-paths` writes.
    for path in ["workflows/", "workflows/attr-second-sender.yaml"] {
        let (code, out, err) = nudge(tmp.path(), &["validate", path], &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("`customer.frist_name`"), "{out}");
        assert!(
            !out.contains("attribute `customer.favourite_bean`"),
            "{out}"
        );
    }
    let (_, _, err) = nudge(
        tmp.path(),
        &["validate", "workflows/attr-second-sender.yaml"],
        &[],
    );
    assert_eq!(
        err,
        "checked 1 workflow, 1 template: 0 errors, 2 warnings\n"
    );
}

#[test]
fn json_format_gives_one_object_per_problem() {
    let tmp = project_with(&["unknown-step-kind.yaml", "warnings.yaml"]);
    let (code, text, _) = nudge(tmp.path(), &["validate", "workflows/"], &[]);
    let (json_code, json, err) = nudge(
        tmp.path(),
        &["validate", "--format", "json", "workflows/"],
        &[],
    );
    assert_eq!((code, json_code), (1, 1));
    assert_eq!(err, "", "json mode keeps stderr for real failures");
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), text.lines().count());
    assert_eq!(
        rows[0],
        serde_json::json!({"path": "workflows/unknown-step-kind.yaml", "line": 6, "column": 5,
            "severity": "error", "message": "unknown step `sned_email`; did you mean `send_email`?"})
    );
    for (row, line) in rows.iter().zip(text.lines()) {
        let rebuilt = format!(
            "{}:{}:{}: {}: {}",
            row["path"].as_str().unwrap(),
            row["line"],
            row["column"],
            row["severity"].as_str().unwrap(),
            row["message"].as_str().unwrap()
        );
        assert_eq!(rebuilt, line);
    }
}

#[test]
fn an_unreadable_path_exits_2_and_still_checks_the_others() {
    let tmp = project_with(&["unknown-step-kind.yaml"]);
    let (code, out, err) = nudge(tmp.path(), &["validate", "nowhere/", "workflows/"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("nudge: cannot read nowhere/"), "{err}");
    assert!(
        out.contains("workflows/unknown-step-kind.yaml:6:5: error:"),
        "{out}"
    );
    let (code, _, err) = nudge(
        tmp.path(),
        &["validate", "workflows/templates/demo/hello.mjml"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = nudge(tmp.path(), &["validate", "--format", "xml"], &[]);
    assert_eq!(code, 2, "a usage error");
}

#[test]
fn colour_only_when_asked_and_never_with_no_color() {
    let tmp = project_with(&["unknown-step-kind.yaml"]);
    let esc = '\u{1b}';
    // Piped output (as here) is plain.
    let (_, out, _) = nudge(tmp.path(), &["validate"], &[]);
    assert!(!out.contains(esc));
    // CLICOLOR_FORCE stands in for a terminal...
    let (_, out, _) = nudge(tmp.path(), &["validate"], &[("CLICOLOR_FORCE", "1")]);
    assert!(
        out.contains(&format!("{esc}[1m{esc}[31merror:")) || out.contains(esc),
        "{out:?}"
    );
    // ...and NO_COLOR wins even then.
    let (_, out, _) = nudge(
        tmp.path(),
        &["validate"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(!out.contains(esc), "{out:?}");
}

#[test]
fn every_shipped_file_starts_with_its_schema_comment() {
    let dir = root().join("workflows");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let schema = if path.file_name().unwrap() == "settings.yaml" {
            "settings"
        } else {
            "workflow"
        };
        let first = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            first,
            format!("# yaml-language-server: $schema=../schema/{schema}.schema.json"),
            "{}",
            Path::new(&path).display()
        );
    }
}

#[test]
fn github_format_gives_one_workflow_command_per_problem() {
    let tmp = project_with(&[
        "unknown-step-kind.yaml",
        "undefined-in-template",
        "warnings.yaml",
    ]);
    let (code, text, _) = nudge(tmp.path(), &["validate", "workflows/"], &[]);
    let (github_code, out, err) = nudge(
        tmp.path(),
        &["validate", "--format", "github", "./workflows/"],
        &[],
    );
    assert_eq!((code, github_code), (1, 1));
    insta::assert_snapshot!("validate_github", out);
    assert_eq!(out.lines().count(), text.lines().count());
    // The summary stays on stderr, where the Actions log shows it.
    assert_eq!(
        err,
        "checked 3 workflows, 4 templates: 6 errors, 5 warnings\n"
    );
    // Each command says the same as the text line, in GitHub's words.
    for (command, line) in out.lines().zip(text.lines()) {
        let (props, message) = command
            .strip_prefix("::")
            .and_then(|c| c.split_once("::"))
            .unwrap();
        let (severity, props) = props.split_once(' ').unwrap();
        let mut fields = props.split(',').map(|p| p.split_once('=').unwrap().1);
        let (file, line_no, col) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        assert_eq!(
            format!("{file}:{line_no}:{col}: {severity}: {message}"),
            line
        );
    }
}

#[test]
fn github_format_escapes_paths_and_gives_file_level_problems_no_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    copy_dir(&root().join("tests/cases/validate/_base"), &dir);
    std::fs::remove_file(dir.join("settings.yaml")).unwrap();
    std::fs::write(
        dir.join("sale,50%:off.yaml"),
        "id: sale\ncategory: marketing\ntrigger: { event: order.placed }\nsteps:\n  - id: w\n    wait: 1d\n",
    )
    .unwrap();
    let (code, out, _) = nudge(tmp.path(), &["validate", "--format", "github"], &[]);
    assert_eq!(code, 1, "{out}");
    // In the file property `,`, `%` and `:` are escaped; in the message only `%`. The missing
    // settings.yaml is the file's problem, with no line.
    assert_eq!(
        out,
        "::error file=workflows/sale%2C50%25%3Aoff.yaml,line=1,col=5::id `sale` must equal the file name `sale,50%25:off`\n\
         ::error file=workflows/settings.yaml::settings.yaml is missing: every workflows folder needs the store's settings\n"
    );
}

#[test]
fn github_format_reports_an_unreadable_path_as_a_command_too() {
    let tmp = project_with(&[]);
    let (code, out, err) = nudge(
        tmp.path(),
        &["validate", "--format", "github", "nowhere/"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("nudge: cannot read nowhere/"), "{err}");
    assert!(
        out.starts_with("::error::nudge: cannot read nowhere/"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
}
