//! `nudge_local::simulate::simulate` on the input written as an events file, with a tiny fixed
//! project (a one-step email workflow on every `order.placed` and a one-step birthday
//! workflow) on an in-memory `SqliteStore` shared by two shards: the events-file reader, the
//! line parser, the runner and the timers, through public API only. It may not panic, hang or
//! fail: every bad line is a notice, never an error of the run.
//!
//! `until` is a day after the latest event time: small, so that a run costs milliseconds
//! (simulate runs the clock on an hour at a time after the last event).
#![no_main]

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use libfuzzer_sys::fuzz_target;
use nudge_core::engine::Engine;
use nudge_core::event::parse_event;
use nudge_core::links::Signer;
use nudge_core::runner::Runner;
use nudge_local::OutboxMailer;
use nudge_local::SqliteStore;
use nudge_local::simulate::{Options, Runners, simulate};

/// The project: settings, an `order.placed` email and a birthday tag.
const PROJECT: &[u8] = br#"==> settings.yaml <==
store: { name: "Fuzz & Co", url: "https://shop.example.com", postal_address: "1 Fuzz Street" }
from: "Fuzz <hello@shop.example.com>"
timezone: Europe/Istanbul
send_window: { start: "09:00", end: "21:00" }
frequency_cap: { max: 1, per: 16h }
unsubscribe_url: "https://shop.example.com/unsubscribe"
==> thanks.yaml <==
id: thanks
category: transactional
trigger: { event: order.placed, when: "event.order.total | default(0) > 0" }
key: event.order.id
steps:
  - id: thanks
    send_email: { template: t/thanks.mjml, subject: "Thanks {{ customer.first_name }}, order {{ event.order.id }}" }
==> birthday.yaml <==
id: birthday
category: transactional
trigger: { date: customer.birthday, at: "10:00" }
steps:
  - id: tag
    update_profile: { add_tags: [birthday], set: { last_birthday: "{{ run.started_at }}" } }
==> templates/t/thanks.mjml <==
<mjml><mj-body><mj-section><mj-column>
<mj-text>Hi {{ customer.first_name | default('there') }}, {{ event.order.total }} {{ event.order.currency }}</mj-text>
<mj-text>{{ store.postal_address }}</mj-text>
</mj-column></mj-section></mj-body></mjml>
"#;

/// The engine of [`PROJECT`], built once per process (the project and key live as long).
fn engine() -> &'static Engine<'static> {
    static ENGINE: OnceLock<Engine<'static>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        nudge_fuzz::write_project(dir.path(), PROJECT);
        let report = nudge_core::workflow::load(dir.path()).expect("the folder exists");
        let project = report.project.unwrap_or_else(|| {
            let diags: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
            panic!("the fixed project does not load: {diags:#?}")
        });
        let project = Box::leak(Box::new(project));
        let signer = Box::leak(Box::new(Signer::new(b"fuzz")));
        Engine::new(project, signer)
    })
}

/// A day after the latest time of a line that parses, read as `simulate` may read it (bytes
/// that are not UTF-8 replaced), or [`FALLBACK_UNTIL`] for a file with none. Always given,
/// so that simulate's default end (a year after the latest time of any line, rejected or not)
/// never makes one input cost minutes of clock run an hour at a time: that is a finding of its
/// own, not one to meet at every run.
fn until(data: &[u8]) -> DateTime<Utc> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| parse_event(&String::from_utf8_lossy(line)).ok())
        .map(|e| e.time)
        .max()
        .and_then(|t| t.checked_add_signed(Duration::days(1)))
        .unwrap_or_else(|| FALLBACK_UNTIL.parse().expect("a time"))
}

/// `until` for a file without a valid event.
const FALLBACK_UNTIL: &str = "2026-01-01T00:00:00Z";

fuzz_target!(|data: &[u8]| {
    let engine = engine();
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::io::Write::write_all(&mut file, data).is_err() {
        return;
    }
    let store = SqliteStore::in_memory().expect("an in-memory store");
    let runner: Runner<'_, SqliteStore, &OutboxMailer> = Runner::new(engine, store, None);
    let options = Options {
        until: Some(until(data)),
        shards: 2,
        ..Options::default()
    };
    let result = simulate(
        Runners::Shared(&runner),
        file.path(),
        &options,
        |_, _| {},
        |_| {},
        |_, _| {},
    );
    if let Err(e) = result {
        panic!("simulate failed: {e}");
    }
});
