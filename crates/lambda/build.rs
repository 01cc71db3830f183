//! Builds the workflows into the functions: reads the workflows folder (`NUDGE_WORKFLOWS_DIR`,
//! by default the repository's `workflows/`), checks it exactly as `nudge validate` does and
//! fails the build on any error, printing each as `path:line:col: error: message`; then embeds
//! every file of the folder (`$OUT_DIR/workflows.rs`), so that a deployed package holds one
//! consistent, checked version of the workflows.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=NUDGE_WORKFLOWS_DIR");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = match std::env::var_os("NUDGE_WORKFLOWS_DIR") {
        Some(dir) if !dir.is_empty() => manifest.join("../..").join(dir),
        _ => manifest.join("../../workflows"),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read the workflows folder {}: {e}",
            dir.display()
        ))
    });

    let report = nudge_core::workflow::load(&dir)
        .unwrap_or_else(|e| fail(&format!("cannot read the workflows: {e}")));
    let mut errors = 0;
    for d in &report.diagnostics {
        if d.severity == nudge_core::diagnostic::Severity::Error {
            errors += 1;
            eprintln!("{d}");
        }
        println!("cargo:warning={d}");
    }
    if report.has_errors() {
        fail(&format!(
            "{errors} error(s) in the workflows under {}: `nudge validate` shows them; the functions are not built with broken workflows",
            dir.display()
        ));
    }

    let mut files = Vec::new();
    collect(&dir, &dir, &mut files);
    files.sort();
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut out = String::from(
        "/// Every file of the workflows folder, by path relative to it (`/`-separated).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a string");
    }
    out.push_str("];\n");
    let target =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("workflows.rs");
    std::fs::write(&target, out)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", target.display())));
}

/// Every regular file under `dir`, with its path relative to `root`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())));
        let path = entry.path();
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
        if kind.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(root, &path, out);
        } else if kind.is_file() {
            let rel = path.strip_prefix(root).expect("under the root");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path));
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
