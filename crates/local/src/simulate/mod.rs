//! `nudge simulate`: store events through the workflows under a virtual clock.
//!
//! Events are taken in order of their `time` (ties keep file order); the clock jumps to each
//! event's time, firing every timer due on the way (each at its own due time), and after the
//! last event runs on to `until`. Bad lines never stop the run: each is reported, kept as a
//! dead letter, and counted.
//!
//! Customers run on several threads ("shards", one per core by default), each owning the
//! customers whose id hashes to it; the calling thread parses lines and merges the shards'
//! results back into the order of a single-threaded run (see [`simulate`]). The modules:
//!
//! - `index`: the events file, read twice (times and offsets to sort, then line by line);
//! - `feed`: the calling thread: lines to events, dead letters, the clock, chunks for the shards;
//! - `seen`: repeated event ids, found in line order whatever the shard;
//! - `shard` and `timers`: a shard's thread, its inputs and its timers in memory;
//! - `merge`: the rounds to the shards and the merge back into single-threaded order;
//! - `summary`: the counts reported at the end;
//! - `sweep`: what a stopped run left, settled before a run ([`resume_sends`]), and the
//!   emails waiting for a retry, tried again after it ([`retry_pending`]).
//!
//! Each shard delivers the emails of a round once the round is durable (see [`simulate`]):
//! nothing leaves before the decision that sent it is kept.

mod feed;
mod index;
mod merge;
mod seen;
mod shard;
mod summary;
mod sweep;
mod timers;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use nudge_core::engine::Action;
use nudge_core::event::{LATEST_TIME, TimeError, parse_time};
use nudge_core::mail::Mailer;
use nudge_core::runner::{DeliveryOutcome, Runner, RunnerError};
use nudge_core::store::{Store, all_due};

pub use summary::{Summary, WorkflowSummary};
pub use sweep::{Swept, resume_sends, retry_pending};

use feed::Feed;
use index::{EventsIndex, Lines};
use merge::{Rounds, emit};
use seen::SeenIds;
use shard::shard_of;
use timers::Timers;

/// Timers read per page when a `--db` store's timers are loaded.
const DUE_PAGE: usize = 10_000;

/// Where the virtual clock is kept in the store, so that a run with `--db` continues from it.
pub const CLOCK_KEY: &str = "simulate.clock";

/// Why a simulation could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The events file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The events come from a pipe (they cannot be read twice) and the temporary copy the
    /// simulation reads them back from cannot be written.
    #[error("cannot copy {} (a pipe, read twice through a temporary file) to a temporary file: {source}", path.display())]
    Spool {
        /// The events.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The runner failed (the store, most likely).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] nudge_core::store::StoreError),
    /// The stored clock is not a time, or is outside the accepted range (see
    /// [`nudge_core::event::EARLIEST_TIME`]); the store was not written by this version, or
    /// was edited.
    #[error("the store's simulation clock `{}` (metadata `{CLOCK_KEY}`) is {reason}; the store was written by another program or version: continue with another --db", .text.escape_debug())]
    Clock {
        /// The stored text.
        text: String,
        /// What is wrong with it.
        reason: TimeError,
    },
    /// A customer's timer did not move when it fired (a bug): stop rather than spin.
    #[error("the timer of customer {customer} did not advance past {at}")]
    Stuck {
        /// The customer.
        customer: String,
        /// The time it stayed at.
        at: DateTime<Utc>,
    },
}

/// A rejected input line, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line number in the events file.
    pub line: usize,
    /// The event id, when readable.
    pub event_id: Option<String>,
    /// What is wrong (names the field).
    pub reason: String,
}

/// Something to tell the operator on stderr.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// A line was rejected (and kept as a dead letter).
    Rejected(Rejection),
    /// An event older than the clock (continuing a `--db` store): the runner applies it at the
    /// later of its own time and its customer's last applied time (never after the clock).
    Late {
        /// 1-based line.
        line: usize,
        /// The event id.
        event_id: String,
        /// The event's own time.
        time: DateTime<Utc>,
        /// The clock it is older than.
        clock: DateTime<Utc>,
    },
    /// A customer's timer failed (their stored state is unreadable, or would grow too large):
    /// the customer's timer is dropped and the other customers go on.
    WakeFailed {
        /// The customer.
        customer: String,
        /// When the timer was due.
        at: DateTime<Utc>,
        /// What went wrong.
        reason: String,
    },
    /// An event id seen before was ignored.
    Duplicate {
        /// 1-based line.
        line: usize,
        /// The event id.
        event_id: String,
    },
}

/// How a simulation runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the clock stops; `None`: the last event + 365 days.
    pub until: Option<DateTime<Utc>>,
    /// Threads that run customers with [`Runners::Shared`] (at least 1); with
    /// [`Runners::PerShard`], a thread per runner instead. The timeline is the same for any
    /// number.
    pub shards: usize,
    /// With [`Runners::PerShard`]: inputs per shard between two rounds in which every shard
    /// commits its store's batch (see [`FLUSH_INPUTS`], the default).
    pub flush_inputs: usize,
}

impl Default for Options {
    /// No `until`; a shard per available core; [`FLUSH_INPUTS`].
    fn default() -> Self {
        Options {
            until: None,
            shards: std::thread::available_parallelism().map_or(1, usize::from),
            flush_inputs: FLUSH_INPUTS,
        }
    }
}

/// With a store per shard, the default inputs (about, per shard) between two rounds in which
/// every shard commits its store's batch. A shard that writes its batch while the others go
/// on soon holds them up (a few rounds in flight cover milliseconds, a batch takes a good part
/// of a second), so the shards write theirs at the same time, in parallel. Below the 20,000
/// of the command's stores, which then rarely reach their own limit; 10,000 rather than
/// 20,000 keeps 100,000 customers under 200 MB (see `docs/PERFORMANCE.md`). A round that
/// decided an email also commits its shard's batch, when the email is delivered (the claim
/// must be durable before the file is written); these rounds bound the batches of shards
/// whose inputs send nothing.
pub const FLUSH_INPUTS: usize = 10_000;

/// The runners of a simulation, and so its stores. The clock and the dead letters are kept in
/// the first runner's store; stores of a previous run must be given in the same way, order and
/// number.
#[derive(Debug)]
pub enum Runners<'a, R> {
    /// One runner, whose store every shard shares (`--db`): [`Options::shards`] threads.
    Shared(&'a R),
    /// One runner per shard (at least one), each with a store of its own that holds the
    /// customers of its shard: no shard then waits for another's store. The shards commit
    /// their batches together (see [`Options::flush_inputs`]).
    PerShard(&'a [R]),
}

// By hand: a derive would ask `R: Clone`, and only the reference is copied.
impl<R> Clone for Runners<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Runners<'_, R> {}

impl<'a, R> Runners<'a, R> {
    /// Every runner (the first one keeps the clock and the dead letters).
    fn all(self) -> &'a [R] {
        match self {
            Runners::Shared(runner) => std::slice::from_ref(runner),
            Runners::PerShard(runners) => runners,
        }
    }

    /// The number of shards.
    fn shards(self, options: &Options) -> usize {
        match self {
            Runners::Shared(_) => options.shards.max(1),
            Runners::PerShard(runners) => runners.len(),
        }
    }

    /// The runner of shard `i`.
    fn of_shard(self, i: usize) -> &'a R {
        match self {
            Runners::Shared(runner) => runner,
            Runners::PerShard(runners) => &runners[i],
        }
    }

    /// Inputs (all shards) between two flush rounds: only with a store per shard, whose
    /// batches the shards then commit together.
    fn flush_every(self, options: &Options) -> Option<usize> {
        match self {
            Runners::Shared(_) => None,
            Runners::PerShard(runners) => Some(options.flush_inputs.max(1) * runners.len()),
        }
    }
}

/// Runs a simulation. `on_action` sees every action as it happens, and for an email what
/// became of it (`None` if this run did not deliver it); `on_notice` every line rejected, late
/// or duplicate; `on_progress` the lines read so far.
///
/// The runners must leave the emails they decide pending ([`Runner::deliver_later`]): each
/// shard delivers the emails of a round once the round's decisions are durable (the runner's
/// delivery flushes the store before it sends), so that mail never leaves before the decision
/// that sent it is kept, and a run killed at any point and run again on the same store never
/// sends an email twice. What a stopped run left is settled by [`resume_sends`] before, and
/// what waits for a retry by [`retry_pending`] after.
///
/// Customers are independent (an input changes only its own customer), so the work is split
/// by customer: each shard (a thread) owns the customers whose id hashes to it, with their
/// timers, and applies their inputs in order through its runner (see [`Runners`]). The
/// calling thread reads and parses the events, hands them out a chunk at a time, and merges
/// what the shards did back into the order of a run on one thread: before each event, the
/// timers due by then (by due time, then customer), then the event. So the timeline, the
/// summary and the stores' contents are the same for any number of shards. Repeated event ids
/// are found across shards and stores, by the calling thread (see `SeenIds`).
///
/// Runs its own Tokio runtimes (one per thread): call it outside of one.
///
/// # Panics
///
/// If `runners` is [`Runners::PerShard`] with no runner.
pub fn simulate<S: Store + Sync, M: Mailer + Sync>(
    runners: Runners<'_, Runner<'_, S, M>>,
    events: &Path,
    options: &Options,
    mut on_action: impl FnMut(&Action, Option<&DeliveryOutcome>),
    mut on_notice: impl FnMut(Notice),
    mut on_progress: impl FnMut(usize, usize),
) -> Result<Summary, SimulateError> {
    assert!(
        !runners.all().is_empty(),
        "simulate needs at least one runner"
    );
    let rt = runtime();
    let clock = stored_clock(runners.all()[0].store(), &rt)?;
    let (index, events_file) = EventsIndex::read(events)?;
    // A year past the last event, but never past the accepted times: the clock is kept in the
    // store, and a later run refuses a clock it would refuse in an event.
    let until = options.until.or_else(|| {
        let last_second = LATEST_TIME - chrono::TimeDelta::seconds(1);
        index
            .last_time()
            .map(|t| (t + chrono::TimeDelta::days(365)).min(last_second))
    });
    let shards = runners.shards(options);
    let mut timers = load_timers(runners.all(), shards, clock, &rt)?;
    let next_due = timers.iter_mut().filter_map(Timers::next_due).min();
    let mut summary = Summary {
        lines: index.len(),
        from: clock.or(index.first_time()),
        ..Summary::default()
    };
    let mut feed = Feed {
        runners: runners.all(),
        rt: &rt,
        events,
        lines: Lines::open(index, events_file, events),
        until,
        clock,
        shards,
        resumed: matches!(runners, Runners::PerShard(_)) && clock.is_some(),
        seen: SeenIds::default(),
        rejected: 0,
    };
    std::thread::scope(|scope| {
        let mut rounds = Rounds::new(shards, runners.flush_every(options), next_due);
        for (i, timers) in timers.into_iter().enumerate() {
            rounds.add(shard::spawn(scope, runners.of_shard(i), timers, events));
        }
        let mut out = |groups| emit(groups, &mut summary, &mut on_action, &mut on_notice);
        let after_lines = feed.lines(&mut rounds, &mut out, &mut on_progress)?;
        feed.run_on(after_lines, &mut rounds, &mut out)?;
        rounds.finish(&mut out)
    })?;
    save_and_flush(runners.all(), feed.clock, &rt)?;
    summary.rejected += feed.rejected;
    summary.until = feed.clock;
    Ok(summary)
}

/// The clock a previous run left in `store`, if any.
fn stored_clock<S: Store>(
    store: &S,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<DateTime<Utc>>, SimulateError> {
    let Some(text) = rt.block_on(store.get_meta(CLOCK_KEY))? else {
        return Ok(None);
    };
    parse_time(&text)
        .map(Some)
        .map_err(|reason| SimulateError::Clock { text, reason })
}

/// Every shard's timers, from the stores (a `--db` store may hold timers): each customer's
/// goes to its shard.
///
/// A stored timer was set under the workflows of the run that stored it; it is read again
/// under today's ([`Runner::next_wake`]): a wait edited shorter is due sooner, and at the
/// `clock` (at once) if its new end has passed.
fn load_timers<S: Store, M: Mailer>(
    runners: &[Runner<'_, S, M>],
    shards: usize,
    clock: Option<DateTime<Utc>>,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<Timers>, SimulateError> {
    let mut timers: Vec<Timers> = (0..shards).map(|_| Timers::default()).collect();
    for runner in runners {
        let due = rt.block_on(all_due(runner.store(), DateTime::<Utc>::MAX_UTC, DUE_PAGE))?;
        for (at, customer) in due {
            let at = match rt.block_on(runner.next_wake(&customer)) {
                Ok(Some(next)) if next != at => clock.map_or(next, |c| next.max(c)),
                // An unreadable state fails, as before, when its timer fires.
                Ok(_) => at,
                Err(e) if e.customer().is_some() => at,
                Err(e) => return Err(e.into()),
            };
            timers[shard_of(&customer, shards)].set(Arc::from(customer.as_str()), Some(at));
        }
    }
    Ok(timers)
}

/// Keeps the clock in the first runner's store, for a later run, and commits every store's
/// last batch.
fn save_and_flush<S: Store, M: Mailer>(
    runners: &[Runner<'_, S, M>],
    clock: Option<DateTime<Utc>>,
    rt: &tokio::runtime::Runtime,
) -> Result<(), SimulateError> {
    if let Some(c) = clock {
        rt.block_on(runners[0].store().set_meta(
            CLOCK_KEY,
            &c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ))?;
    }
    for runner in runners {
        rt.block_on(runner.store().flush())?;
    }
    Ok(())
}

/// A Tokio runtime for one thread's store and mailer calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// FNV-1a, 64 bits: a fixed hash, the same on every platform and in every build (it places
/// customers in shards and keeps event ids in `SeenIds`).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
