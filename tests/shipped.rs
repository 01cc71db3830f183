//! The workflows the project ships validate clean, with no warning either.

use crate::helpers::{nudge, root};

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
            "abandoned-checkout",
            "birthday-reward",
            "review-request",
            "shipment-updates",
            "welcome-series",
            "win-back"
        ]
    );
}

/// README's main command, `nudge simulate` on the shipped workflows and the sample events,
/// recorded whole: the timeline and summary (stdout), the notices (stderr), and every email
/// written to the outbox (name and SHA-256 of its bytes). Any change of behaviour (parsing,
/// engine, rendering, MIME, simulate) shows here as a diff to review with `cargo insta
/// review`; a refactor must leave it as it is.
#[test]
fn the_sample_simulates_to_the_recorded_run() {
    use sha2::{Digest, Sha256};

    let outbox = tempfile::tempdir().unwrap();
    let outbox_arg = outbox.path().to_str().unwrap();
    let (code, out, err) = nudge(
        &root(),
        &[
            "simulate",
            "--events",
            "events/sample.jsonl",
            "--outbox",
            outbox_arg,
        ],
        // Empty: the development key, as on a fresh machine.
        &[("NUDGE_SIGNING_KEY", "")],
    );
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("sample_timeline", out);
    insta::assert_snapshot!("sample_notices", err);

    let mut emails: Vec<String> = std::fs::read_dir(outbox.path())
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let digest = Sha256::digest(std::fs::read(&path).unwrap());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            format!("{}  {name}", hex_prefix(&digest))
        })
        .collect();
    emails.sort_by(|a, b| a[18..].cmp(&b[18..]));
    assert_eq!(emails.len(), out.matches(" email.sent ").count());
    insta::assert_snapshot!("sample_outbox", emails.join("\n"));
}

/// The first 8 bytes of `digest` in hex: enough to tell two emails apart in a review.
fn hex_prefix(digest: &[u8]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}
