//! How long `nudge validate` takes on a large project: 240 workflows with their MJML
//! templates (40 copies of each of the six shipped workflows, each copy with its own
//! templates), read, parsed, checked and compiled from disk.
//!
//! Run: `cargo bench --bench validate`. Results: `docs/PERFORMANCE.md`.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

/// Writes a workflows folder with `copies` copies of every shipped workflow.
fn make_project(dir: &Path, copies: usize) -> usize {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::copy(shipped.join("settings.yaml"), dir.join("settings.yaml")).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") || stem == "settings" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for i in 0..copies {
            let id = format!("{stem}-{i}");
            // The copy's id and its template folder both take the new name.
            let copy = text
                .replace(&format!("id: {stem}"), &format!("id: {id}"))
                .replace(&format!("{stem}/"), &format!("{id}/"));
            std::fs::write(dir.join(format!("{id}.yaml")), copy).unwrap();
            let tdir = dir.join("templates").join(&id);
            std::fs::create_dir_all(&tdir).unwrap();
            for t in std::fs::read_dir(shipped.join("templates").join(&stem)).unwrap() {
                let t = t.unwrap().path();
                std::fs::copy(&t, tdir.join(t.file_name().unwrap())).unwrap();
            }
            count += 1;
        }
    }
    count
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("workflows");
    let n = make_project(&dir, 40);
    assert_eq!(n, 240);
    // The project must be clean, or the benchmark would measure error paths.
    let report = nudge_core::workflow::load(&dir).unwrap();
    assert!(
        report.diagnostics.is_empty(),
        "{:?}",
        &report.diagnostics[..report.diagnostics.len().min(3)]
    );
    assert_eq!(report.project.unwrap().workflows.len(), 240);

    let mut group = c.benchmark_group("validate");
    group.sample_size(10);
    group.bench_function("240 workflows with templates", |b| {
        b.iter(|| nudge_core::workflow::load(&dir).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
