//! The template and expression checks of `nudge_core::workflow::template` on arbitrary text:
//! the text as a condition and as a subject-like template ([`ScalarChecker`], with the text
//! also as its YAML file, so that positions inside it are computed), compiled as MJML
//! ([`compile_mjml`]) and added as an `.mjml` and an `.html` template file
//! ([`Templates::add`], which runs the name checks: undefined names, unknown filters, tests
//! and functions, `customer`/`event` paths). None may panic, hang or overflow the stack; every
//! position is 1-based. The scan of filters, tests, calls and paths (`template::scan`) must
//! place every name it finds at its byte offset in the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nudge_core::diagnostic::Sink;
use nudge_core::workflow::template::{
    SCOPE, ScalarChecker, ScalarKind, Templates, compile_mjml, environment, find_identifier,
    offset_to_pos, scan,
};
use nudge_core::workflow::yaml::Pos;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = environment();
    let mut diags = Vec::new();
    let path = Path::new("fuzz.yaml");
    let checker = ScalarChecker::new(&env, text);
    for kind in [ScalarKind::Expression, ScalarKind::Template] {
        let mut sink = Sink::new(path, &mut diags);
        // As a whole file's first scalar, and as a scalar that starts after a key.
        checker.check(&mut sink, text, Pos::new(1, 1), kind, SCOPE);
        checker.check(&mut sink, text, Pos::new(1, 10), kind, &["customer"]);
    }
    if let Ok(compiled) = compile_mjml(text) {
        for (pos, _) in &compiled.warnings {
            assert!(pos.line >= 1 && pos.col >= 1);
        }
    }
    let mut templates = Templates::default();
    for name in ["fuzz.mjml", "fuzz.html"] {
        let mut sink = Sink::new(Path::new(name), &mut diags);
        templates.add(name, text, &mut sink);
    }
    for d in &diags {
        assert!(d.pos.line >= 1 && d.pos.col >= 1, "position of {d}");
    }
    for call in scan::template_calls(text)
        .into_iter()
        .chain(scan::expression_calls(text))
    {
        let first = call.name.split('.').next().unwrap_or_default();
        assert!(text[call.offset..].starts_with(first), "{call:?}");
    }
    for (path, offset) in scan::template_paths(text)
        .into_iter()
        .chain(scan::expression_paths(text))
    {
        assert!(text[offset..].starts_with(&path), "{path} at {offset}");
    }
    let _ = offset_to_pos(text, text.len() / 2);
    let _ = find_identifier(text, "customer");
});
