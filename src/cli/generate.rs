//! `nudge generate-events`: a synthetic store's events, for benchmarks and trials.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::exit;
use nudge_synth::{SynthOptions, generate};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How many customers.
    #[arg(long, default_value_t = 1_000)]
    customers: usize,
    /// How many days of activity.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// The first day (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    start: DateTime<Utc>,
    /// Seed: the same seed gives the same events, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub(crate) fn run(args: &Args) -> u8 {
    let opts = SynthOptions {
        customers: args.customers,
        days: args.days,
        start: args.start,
        seed: args.seed,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match generate(&opts, &mut out).and_then(|stats| out.flush().map(|()| stats)) {
        Ok(stats) => {
            let _ = writeln!(
                anstream::stderr(),
                "{} events for {} customers",
                stats.events,
                stats.customers
            );
            exit::OK
        }
        Err(e) => {
            let _ = writeln!(anstream::stderr(), "nudge: cannot write events: {e}");
            exit::USAGE
        }
    }
}
