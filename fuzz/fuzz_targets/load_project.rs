//! `nudge_core::workflow::load` on a small project made of the input's sections (a
//! `settings.yaml`, workflow files, templates: see `nudge_fuzz::sections`), then the engine
//! built from it when it loads. Neither may panic, hang or overflow the stack, and a project
//! comes back only without errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nudge_core::engine::Engine;
use nudge_core::links::Signer;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    nudge_fuzz::write_project(dir.path(), data);
    let report = nudge_core::workflow::load(dir.path()).expect("the folder exists");
    for d in &report.diagnostics {
        assert!(d.pos.line >= 1 && d.pos.col >= 1, "position of {d}");
        let _ = d.to_string();
    }
    if let Some(project) = &report.project {
        assert!(!report.has_errors(), "a project came back with errors");
        let signer = Signer::new(b"fuzz");
        let _ = Engine::new(project, &signer);
    }
});
