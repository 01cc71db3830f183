//! Throughput of `nudge simulate` on a synthetic store: the shipped workflows, a year of
//! events for N customers (`NUDGE_BENCH_CUSTOMERS`, default 10,000), a throwaway SQLite store
//! per shard and no outbox, exactly as `nudge simulate --events FILE` runs.
//!
//! Run: `cargo bench --bench simulate`. Peak memory and the 100k-customer run:
//! `scripts/bench-simulate 100000`. Results: `docs/PERFORMANCE.md`.

use std::path::Path;

/// The allocator of the `nudge` binary, so that the numbers match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nudge_core::engine::Engine;
use nudge_core::links::Signer;
use nudge_core::runner::Runner;
use nudge_local::RecordingMailer;
use nudge_local::sqlite::{SqliteOptions, SqliteStore};
use nudge_synth::{SynthOptions, generate};

fn bench(c: &mut Criterion) {
    // `cargo test --all-targets` runs benchmarks once, unoptimised, to check they still work:
    // a small store is enough there; `cargo bench` passes `--bench` and gets the real size.
    let measuring = std::env::args().any(|a| a == "--bench");
    let customers: usize = std::env::var("NUDGE_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 10_000 } else { 200 });
    let tmp = tempfile::tempdir().unwrap();
    let events = tmp.path().join("events.jsonl");
    let opts = SynthOptions {
        customers,
        days: 365,
        start: "2026-01-01T00:00:00Z".parse().unwrap(),
        seed: 7,
    };
    let stats = generate(
        &opts,
        &mut std::io::BufWriter::new(std::fs::File::create(&events).unwrap()),
    )
    .unwrap();
    let project =
        nudge_core::workflow::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"))
            .unwrap()
            .project
            .unwrap();
    let signer = Signer::new(b"bench");
    let engine = Engine::new(&project, &signer);

    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(stats.events as u64));
    group.bench_function(
        format!("{customers} customers, 365 days, {} events", stats.events),
        |b| {
            b.iter_with_setup(
                || {
                    // As the command does: a throwaway store per shard, sharing the cache.
                    let shards = nudge_local::simulate::Options::default().shards;
                    (0..shards)
                        .map(|_| {
                            let db = tmp.path().join(format!("bench-{}.db", fastrand::u64(..)));
                            let store = SqliteStore::open_with(&db, SqliteOptions::scratch(shards))
                                .unwrap();
                            Runner::new(&engine, store, Some(RecordingMailer)).deliver_later()
                        })
                        .collect::<Vec<_>>()
                },
                |runners| {
                    let summary = nudge_local::simulate::simulate(
                        nudge_local::simulate::Runners::PerShard(&runners),
                        &events,
                        &nudge_local::simulate::Options::default(),
                        |_, _| {},
                        |_| {},
                        |_, _| {},
                    )
                    .unwrap();
                    assert_eq!(summary.rejected, 0);
                    summary
                },
            )
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
