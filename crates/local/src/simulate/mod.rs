//! `nudge simulate`: store events through the workflows under a virtual clock.
//!
//! Events are taken in order of their `time` (ties keep file order); the clock jumps to each
//! event's time, firing every timer due on the way (each at its own due time), and after the
//! last event runs on to `until`. Bad lines never stop the run: each is reported, kept as a
//! dead letter, and counted.
//!
//! The events file is read twice so that memory stays small however long it is: a first pass
//! keeps only each line's time and offset (to sort), the second reads lines back one at a time.
//!
//! Customers run on several threads ("shards", one per core by default), each owning the
//! customers whose id hashes to it; the calling thread parses lines and merges the shards'
//! results back into the order of a single-threaded run (see [`simulate`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use chrono::{DateTime, Utc};

use nudge_core::engine::{Action, ActionKind, EndReason, SkipReason};
use nudge_core::event::{MAX_EVENT_BYTES, StoreEvent, parse_event};
use nudge_core::mail::Mailer;
use nudge_core::runner::{Applied, Runner, RunnerError};
use nudge_core::store::{DeadLetter, Store};

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
    /// The runner failed (the store, most likely).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] nudge_core::store::StoreError),
    /// The stored clock is not a time.
    #[error("the store's simulation clock `{0}` is not a time")]
    Clock(String),
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
    /// An event older than the clock (continuing a `--db` store) was processed at the clock.
    Late {
        /// 1-based line.
        line: usize,
        /// The event id.
        event_id: String,
        /// The event's own time.
        time: DateTime<Utc>,
        /// When it was processed.
        clock: DateTime<Utc>,
    },
    /// An event id seen before was ignored.
    Duplicate {
        /// 1-based line.
        line: usize,
        /// The event id.
        event_id: String,
    },
}

/// Counts a marketer reads after a run, per workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkflowSummary {
    /// Runs started.
    pub runs_started: u64,
    /// Runs ended, by reason.
    pub runs_ended: BTreeMap<EndReason, u64>,
    /// Emails sent, by step.
    pub emails_sent: BTreeMap<String, u64>,
    /// Emails skipped, by reason.
    pub emails_skipped: BTreeMap<SkipReason, u64>,
    /// Emails deferred to a send window (each deferral counts once).
    pub emails_deferred: u64,
    /// Profile updates.
    pub profile_updates: u64,
    /// Webhooks recorded (never called by `simulate`).
    pub webhooks: u64,
}

/// What a simulation did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Event lines read.
    pub lines: usize,
    /// Events applied.
    pub events: usize,
    /// Duplicate event ids ignored.
    pub duplicates: usize,
    /// Lines rejected (kept as dead letters).
    pub rejected: usize,
    /// Timer firings.
    pub wakes: usize,
    /// Where the clock started and stopped.
    pub from: Option<DateTime<Utc>>,
    /// Where the clock stopped.
    pub until: Option<DateTime<Utc>>,
    /// Per workflow.
    pub workflows: BTreeMap<String, WorkflowSummary>,
}

impl Summary {
    fn count(&mut self, action: &Action) {
        if !self.workflows.contains_key(&action.workflow) {
            self.workflows
                .insert(action.workflow.clone(), WorkflowSummary::default());
        }
        let w = self
            .workflows
            .get_mut(&action.workflow)
            .expect("inserted above");
        match &action.kind {
            ActionKind::RunStarted => w.runs_started += 1,
            ActionKind::RunEnded { reason } => *w.runs_ended.entry(*reason).or_default() += 1,
            ActionKind::EmailSent(_) => {
                let step = action.step.as_deref().unwrap_or_default();
                match w.emails_sent.get_mut(step) {
                    Some(n) => *n += 1,
                    None => {
                        w.emails_sent.insert(step.to_owned(), 1);
                    }
                }
            }
            ActionKind::EmailSkipped { reason } => {
                *w.emails_skipped.entry(*reason).or_default() += 1
            }
            ActionKind::EmailDeferred { .. } => w.emails_deferred += 1,
            ActionKind::ProfileUpdated { .. } => w.profile_updates += 1,
            ActionKind::WebhookCalled(_) => w.webhooks += 1,
        }
    }
}

/// One line of the events file, as the first pass saw it.
struct Indexed {
    time: Option<DateTime<Utc>>,
    line: usize,
    offset: u64,
    len: usize,
}

/// Reads line positions and times. Lines whose time cannot be read sort first (they are
/// rejected in the second pass, with the full reason).
fn index_events(path: &Path) -> Result<Vec<Indexed>, SimulateError> {
    #[derive(serde::Deserialize)]
    struct TimeOnly<'a> {
        #[serde(borrow)]
        time: Option<std::borrow::Cow<'a, str>>,
    }
    let read_err = |source| SimulateError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let (mut offset, mut line) = (0u64, 0usize);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        line += 1;
        let text = trim_line(&buf);
        if !text.iter().all(u8::is_ascii_whitespace) {
            let time = (text.len() <= MAX_EVENT_BYTES)
                .then(|| serde_json::from_slice::<TimeOnly>(text).ok())
                .flatten()
                .and_then(|t| t.time)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc));
            out.push(Indexed {
                time,
                line,
                offset,
                len: n,
            });
        }
        offset += n as u64;
    }
    // Stable: ties keep file order.
    out.sort_by_key(|i| i.time);
    Ok(out)
}

fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

/// How a simulation runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the clock stops; `None`: the last event + 365 days.
    pub until: Option<DateTime<Utc>>,
    /// Threads that run customers (at least 1). The timeline is the same for any number.
    pub shards: usize,
    /// With a store per shard: inputs per shard between two rounds in which every shard
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

/// Lines read and parsed per round trip to the shards.
const CHUNK: usize = 128;

/// Runs a simulation. `on_action` sees every action as it happens; `on_notice` every line
/// rejected, late or duplicate; `on_progress` the lines read so far.
///
/// Customers are independent (an input changes only its own customer), so the work is split
/// by customer: each of `options.shards` threads owns the customers whose id hashes to it,
/// with their timers, and applies their inputs in order through the runner. The calling
/// thread reads and parses the events, hands them out a chunk at a time, and merges what the
/// shards did back into the order of a run on one thread: before each event, the timers due
/// by then (by due time, then customer), then the event. So the timeline, the summary and the
/// stores' contents are the same for any number of shards.
///
/// `runners` holds either one runner, whose store every shard shares, or one runner per
/// shard (`options.shards` is then `runners.len()`), each with a store of its own that holds
/// the customers of its shard: no shard then waits for another's store. Repeated event ids
/// are found across shards and stores, by the calling thread (see `SeenIds`). The clock and
/// the dead letters are kept in the first runner's store; stores of a previous run must be
/// given in the same order and number.
///
/// Runs its own Tokio runtimes (one per thread): call it outside of one.
///
/// # Panics
///
/// If `runners` is empty.
pub fn simulate<S: Store + Sync, M: Mailer + Sync>(
    runners: &[Runner<'_, S, M>],
    events: &Path,
    options: &Options,
    mut on_action: impl FnMut(&Action),
    mut on_notice: impl FnMut(Notice),
    mut on_progress: impl FnMut(usize, usize),
) -> Result<Summary, SimulateError> {
    assert!(!runners.is_empty(), "simulate needs at least one runner");
    let rt = runtime();
    let store = runners[0].store();
    let mut clock = match rt.block_on(store.get_meta(CLOCK_KEY))? {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map_err(|_| SimulateError::Clock(text.clone()))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let index = index_events(events)?;
    let last_time = index.iter().filter_map(|i| i.time).max();
    let until = options
        .until
        .or_else(|| last_time.map(|t| t + chrono::Duration::days(365)));
    let shared = runners.len() == 1;
    let shards = if shared {
        options.shards.max(1)
    } else {
        runners.len()
    };
    let mut timers: Vec<Timers> = (0..shards).map(|_| Timers::default()).collect();
    for runner in runners {
        for (at, customer) in
            rt.block_on(runner.store().due(DateTime::<Utc>::MAX_UTC, usize::MAX))?
        {
            timers[shard_of(&customer, shards)].set(Arc::from(customer.as_str()), Some(at));
        }
    }
    let mut seen = SeenIds::default();
    // Stores of a previous run (they kept its clock) may hold any event id; with a store per
    // shard, each new one is then looked for in every store, not only its customer's.
    let resumed = !shared && clock.is_some();
    let mut rejected = 0;
    let mut summary = Summary {
        lines: index.len(),
        from: clock.or(index.iter().find_map(|i| i.time)),
        ..Summary::default()
    };

    let read_err = |source| SimulateError::Read {
        path: events.to_path_buf(),
        source,
    };
    let mut file =
        BufReader::with_capacity(1 << 16, std::fs::File::open(events).map_err(read_err)?);
    let mut pos = 0u64;
    let mut buf = Vec::new();
    let total = index.len();

    std::thread::scope(|scope| {
        let mut rounds = Rounds {
            to_shards: Vec::with_capacity(shards),
            from_shards: Vec::with_capacity(shards),
            previous: VecDeque::new(),
            flush_every: (!shared).then_some(options.flush_inputs.max(1) * shards),
            merged: 0,
            flushed: 0,
        };
        for (i, timers) in timers.drain(..).enumerate() {
            let runner = &runners[if shared { 0 } else { i }];
            let (work_tx, work_rx) = mpsc::channel::<Work>();
            let (done_tx, done_rx) = mpsc::channel();
            scope.spawn(move || shard(runner, timers, work_rx, done_tx));
            rounds.to_shards.push(work_tx);
            rounds.from_shards.push(done_rx);
        }
        let mut out = |groups| emit(groups, &mut summary, &mut on_action, &mut on_notice);
        let mut stopped = false;
        let mut n = 0;
        while !stopped && n < total {
            // The calling thread's part of this chunk: notices, keyed like the shards' groups.
            let mut mine = Vec::new();
            let mut fires = Vec::with_capacity(CHUNK);
            let mut work: Vec<Vec<Input>> = (0..shards).map(|_| Vec::new()).collect();
            seen.chunk.clear();
            let first = n;
            while n < total && fires.len() < CHUNK {
                let item = &index[n];
                on_progress(n, total);
                if let (Some(t), Some(u)) = (item.time, until)
                    && t > u
                {
                    stopped = true; // events after --until are not processed
                    break;
                }
                n += 1;
                if pos != item.offset {
                    file.seek(SeekFrom::Start(item.offset)).map_err(read_err)?;
                }
                buf.resize(item.len, 0);
                file.read_exact(&mut buf).map_err(read_err)?;
                pos = item.offset + item.len as u64;
                let text = String::from_utf8_lossy(trim_line(&buf));
                let event = match parse_event(&text) {
                    Ok(e) => e,
                    Err(e) => {
                        let rejection = Rejection {
                            line: item.line,
                            event_id: e.event_id().map(str::to_owned),
                            reason: e.to_string(),
                        };
                        let letter = DeadLetter {
                            id: 0,
                            event_id: rejection.event_id.clone(),
                            source: format!("{}:{}", events.display(), item.line),
                            reason: rejection.reason.clone(),
                            body: text.chars().take(MAX_EVENT_BYTES).collect(),
                            received_at: clock.unwrap_or_else(|| item.time.unwrap_or_default()),
                        };
                        rt.block_on(store.record_dead_letter(&letter))?;
                        rejected += 1;
                        mine.push(Group::notice(n - 1, Notice::Rejected(rejection)));
                        fires.push(None);
                        continue;
                    }
                };
                let now = match clock {
                    Some(c) if event.time < c => {
                        mine.push(Group::notice(
                            n - 1,
                            Notice::Late {
                                line: item.line,
                                event_id: event.id.clone(),
                                time: event.time,
                                clock: c,
                            },
                        ));
                        c
                    }
                    _ => event.time,
                };
                clock = Some(now);
                fires.push(Some(now));
                // An id seen before is a duplicate whatever its customer. The first one must
                // win as on one thread, whichever shard gets to its store first.
                let repeated = match seen.insert(&event.id) {
                    Seen::InChunk => true,
                    Seen::New if !resumed => false,
                    Seen::New => any_processed(runners, &event.id, &rt)?,
                    Seen::Maybe => {
                        // Every line before this chunk is in a store once the rounds in
                        // flight are done; then the stores know.
                        rounds.drain(&mut out)?;
                        any_processed(runners, &event.id, &rt)?
                    }
                };
                if repeated {
                    mine.push(Group {
                        key: Key::line(n - 1),
                        did: Did::Duplicate {
                            line: item.line,
                            event_id: event.id,
                        },
                    });
                    continue;
                }
                work[shard_of(&event.customer_id, shards)].push(Input {
                    item: n - 1,
                    line: item.line,
                    now,
                    event,
                });
            }
            let fires = Arc::new(fires);
            let work = work.into_iter().map(|inputs| Work::Chunk {
                first,
                fires: Arc::clone(&fires),
                inputs,
            });
            rounds.round(work, mine, &mut out)?;
        }
        on_progress(total, total);
        // After the last event, the clock runs on to `until` an hour at a time, each hour's
        // timers by due time and customer: what the shards hand back in a round (emails with
        // their HTML) stays small; a day at a time made the last rounds of 100,000 customers
        // cost 50 MB.
        if let Some(u) = until
            && clock.is_none_or(|c| c < u)
        {
            let mut day = clock;
            loop {
                let to = day.map_or(u, |d| (d + chrono::Duration::hours(1)).min(u));
                let work = (0..shards).map(|_| Work::Fire { item: n, until: to });
                rounds.round(work, Vec::new(), &mut out)?;
                n += 1;
                if to >= u {
                    break;
                }
                day = Some(to);
            }
            clock = Some(u);
        }
        // No more work: a shard ends when its channel closes, after its last round.
        rounds.to_shards.clear();
        rounds.drain(&mut out)
    })?;
    if let Some(c) = clock {
        rt.block_on(store.set_meta(
            CLOCK_KEY,
            &c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ))?;
    }
    for runner in runners {
        rt.block_on(runner.store().flush())?;
    }
    summary.rejected = rejected;
    summary.until = clock;
    Ok(summary)
}

/// Rounds handed out before the calling thread waits for the oldest: the shards always have
/// the next chunk queued while this thread parses the one after and reports the one before.
const IN_FLIGHT: usize = 3;

/// The rounds between the calling thread and the shards: each round hands every shard its
/// work; once [`IN_FLIGHT`] are out, the oldest is merged and reported (the calling thread's
/// own groups of a round, `mine`, wait in `previous` until then).
struct Rounds {
    to_shards: Vec<mpsc::Sender<Work>>,
    from_shards: Vec<mpsc::Receiver<Result<Vec<Group>, SimulateError>>>,
    previous: VecDeque<Vec<Group>>,
    /// With a store per shard, inputs (all shards) between two flush rounds (see
    /// [`FLUSH_INPUTS`]); `None` with one shared store.
    flush_every: Option<usize>,
    /// Inputs merged so far, and at the last flush round.
    merged: usize,
    flushed: usize,
}

impl Rounds {
    /// Hands out one round, after a flush round when one is due.
    fn round(
        &mut self,
        work: impl Iterator<Item = Work>,
        mine: Vec<Group>,
        out: &mut impl FnMut(Vec<Group>),
    ) -> Result<(), SimulateError> {
        if self
            .flush_every
            .is_some_and(|every| self.merged - self.flushed >= every)
        {
            self.flushed = self.merged;
            let flush: Vec<_> = self.to_shards.iter().map(|_| Work::Flush).collect();
            self.send(flush.into_iter(), Vec::new(), out)?;
        }
        self.send(work, mine, out)
    }

    fn send(
        &mut self,
        work: impl Iterator<Item = Work>,
        mine: Vec<Group>,
        out: &mut impl FnMut(Vec<Group>),
    ) -> Result<(), SimulateError> {
        for (tx, w) in self.to_shards.iter().zip(work) {
            // A shard that stopped on an error reports it in `collect`.
            let _ = tx.send(w);
        }
        self.previous.push_back(mine);
        if self.previous.len() >= IN_FLIGHT {
            self.merge_oldest(out)?;
        }
        Ok(())
    }

    /// Merges and reports every round still out.
    fn drain(&mut self, out: &mut impl FnMut(Vec<Group>)) -> Result<(), SimulateError> {
        while !self.previous.is_empty() {
            self.merge_oldest(out)?;
        }
        Ok(())
    }

    fn merge_oldest(&mut self, out: &mut impl FnMut(Vec<Group>)) -> Result<(), SimulateError> {
        if let Some(mine) = self.previous.pop_front() {
            let groups = collect(&self.from_shards, mine)?;
            self.merged += groups.len();
            out(groups);
        }
        Ok(())
    }
}

/// With a store per shard, the default inputs (about, per shard) between two rounds in which
/// every shard commits its store's batch. A shard that writes its batch while the others go
/// on soon holds them up (a few rounds in flight cover milliseconds, a batch takes a good part
/// of a second), so the shards write theirs at the same time, in parallel. Below the 20,000
/// of the command's stores, which then rarely reach their own limit; 10,000 rather than
/// 20,000 keeps 100,000 customers under 200 MB (see `docs/PERFORMANCE.md`).
pub const FLUSH_INPUTS: usize = 10_000;

/// A Tokio runtime for one thread's store and mailer calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// The shard that owns a customer (FNV-1a of the id: any fixed spread would do).
fn shard_of(customer: &str, shards: usize) -> usize {
    (fnv1a(customer) % shards as u64) as usize
}

/// An event for a shard.
struct Input {
    /// Its place among the lines in time order.
    item: usize,
    /// Its line in the file.
    line: usize,
    /// When it is applied (its time, or the clock if it is late).
    now: DateTime<Utc>,
    event: StoreEvent,
}

/// What the calling thread hands a shard.
enum Work {
    /// The lines `first..first + fires.len()`: before each line with `Some(now)`, the shard
    /// fires its timers due by `now`; then it applies its own events among them.
    Chunk {
        first: usize,
        fires: Arc<Vec<Option<DateTime<Utc>>>>,
        inputs: Vec<Input>,
    },
    /// Fire the timers due by `until`, as if before line `item` (past the last line).
    Fire { item: usize, until: DateTime<Utc> },
    /// Commit the shard's store's batch.
    Flush,
}

/// Where a group of actions falls in the order of a run on one thread: before line `item`,
/// the timers fired then (`kind` 1) by due time and customer, then the line itself (`kind` 2).
/// Notices of the calling thread (`kind` 0) come first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    item: usize,
    kind: u8,
    due: DateTime<Utc>,
    customer: Arc<str>,
}

impl Key {
    /// The place of the event on line `item` (in time order).
    fn line(item: usize) -> Self {
        Key {
            item,
            kind: 2,
            due: DateTime::<Utc>::MIN_UTC,
            customer: Arc::from(""),
        }
    }
}

/// The event ids given to the shards so far. An id seen before is a duplicate whatever its
/// customer, and the first line wins; but two shards run at their own pace, so an id repeated
/// for a customer of another shard could reach a store first (and with a store per shard, no
/// store would see both). So the calling thread finds repeats, in line order. Only a 64-bit
/// hash of each id is kept (8 bytes per event, not the id), plus the ids of the chunk being
/// read; a hash seen before is checked against the stores, so a collision costs a wait, never
/// a lost event.
#[derive(Debug, Default)]
struct SeenIds {
    hashes: std::collections::HashSet<u64>,
    /// The ids of the chunk being read (not in any store yet).
    chunk: std::collections::HashSet<String>,
}

/// What [`SeenIds::insert`] knows of an id.
enum Seen {
    /// Never seen.
    New,
    /// Seen earlier in this chunk: a duplicate.
    InChunk,
    /// Its hash was seen before this chunk: the stores tell.
    Maybe,
}

impl SeenIds {
    fn insert(&mut self, id: &str) -> Seen {
        if !self.chunk.insert(id.to_owned()) {
            return Seen::InChunk;
        }
        if self.hashes.insert(fnv1a(id)) {
            Seen::New
        } else {
            Seen::Maybe
        }
    }
}

/// Whether any runner's store has processed `event_id`.
fn any_processed<S: Store, M: Mailer>(
    runners: &[Runner<'_, S, M>],
    event_id: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<bool, SimulateError> {
    for runner in runners {
        if rt.block_on(runner.store().is_processed(event_id))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// FNV-1a, 64 bits: a fixed hash, the same on every platform and in every build.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What one input did, or a notice, at its place in the order.
struct Group {
    key: Key,
    did: Did,
}

enum Did {
    Event(Vec<Action>),
    Wake(Vec<Action>),
    Duplicate { line: usize, event_id: String },
    Notice(Notice),
}

impl Group {
    fn notice(item: usize, notice: Notice) -> Self {
        Group {
            key: Key {
                item,
                kind: 0,
                due: DateTime::<Utc>::MIN_UTC,
                customer: Arc::from(""),
            },
            did: Did::Notice(notice),
        }
    }
}

/// Waits for every shard's groups of one chunk and merges them with the calling thread's into
/// the order of a run on one thread. Each list is in order already and two lists never tie
/// (a tie is one customer, who belongs to one shard), so a stable sort of them merges them.
fn collect(
    from_shards: &[mpsc::Receiver<Result<Vec<Group>, SimulateError>>],
    mine: Vec<Group>,
) -> Result<Vec<Group>, SimulateError> {
    let mut all = mine;
    for rx in from_shards {
        // A shard that is gone without an answer panicked; the scope re-raises the panic.
        let groups = rx.recv().unwrap_or_else(|_| Ok(Vec::new()))?;
        all.extend(groups);
    }
    all.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(all)
}

/// Counts and reports merged groups, in order.
fn emit(
    groups: Vec<Group>,
    summary: &mut Summary,
    on_action: &mut impl FnMut(&Action),
    on_notice: &mut impl FnMut(Notice),
) {
    for group in groups {
        let actions = match group.did {
            Did::Event(actions) => {
                summary.events += 1;
                actions
            }
            Did::Wake(actions) => {
                summary.wakes += 1;
                actions
            }
            Did::Duplicate { line, event_id } => {
                summary.duplicates += 1;
                on_notice(Notice::Duplicate { line, event_id });
                continue;
            }
            Did::Notice(notice) => {
                on_notice(notice);
                continue;
            }
        };
        for a in &actions {
            summary.count(a);
            on_action(a);
        }
    }
}

/// A shard's thread: applies its customers' inputs, chunk by chunk, until told to finish or
/// the calling thread is gone. Stops at its first error, after reporting it.
fn shard<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    mut timers: Timers,
    work: mpsc::Receiver<Work>,
    done: mpsc::Sender<Result<Vec<Group>, SimulateError>>,
) {
    let rt = runtime();
    while let Ok(w) = work.recv() {
        let mut groups = Vec::new();
        let result = match w {
            Work::Chunk {
                first,
                fires,
                inputs,
            } => rt.block_on(async {
                let mut inputs = inputs.into_iter().peekable();
                for (i, fire) in fires.iter().enumerate() {
                    let Some(now) = *fire else { continue };
                    let item = first + i;
                    fire_timers(runner, item, now, &mut timers, &mut groups).await?;
                    if let Some(input) = inputs.next_if(|input| input.item == item) {
                        groups.push(apply_event(runner, input, &mut timers).await?);
                    }
                }
                Ok(())
            }),
            Work::Fire { item, until } => {
                rt.block_on(fire_timers(runner, item, until, &mut timers, &mut groups))
            }
            Work::Flush => rt
                .block_on(runner.store().flush())
                .map_err(SimulateError::from),
        };
        let failed = result.is_err();
        if done.send(result.map(|()| groups)).is_err() || failed {
            return;
        }
    }
}

/// Applies one event of the shard.
async fn apply_event<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    input: Input,
    timers: &mut Timers,
) -> Result<Group, SimulateError> {
    let key = Key::line(input.item);
    let did = match runner.event(&input.event, input.now).await? {
        Applied::Done { actions, next_wake } => {
            timers.set(Arc::from(input.event.customer_id.as_str()), next_wake);
            Did::Event(actions)
        }
        Applied::Duplicate => Did::Duplicate {
            line: input.line,
            event_id: input.event.id,
        },
    };
    Ok(Group { key, did })
}

/// Every customer's timer, in memory, so that the loop never asks the store "what is due?"
/// between events: timers change only through this loop's own commits, each of which reports
/// its customer's new timer. Loaded once from the store (a `--db` store may hold timers);
/// superseded heap entries are skipped when they surface. A customer's id is one shared
/// allocation, whatever the number of its entries.
#[derive(Debug, Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, Arc<str>)>>,
    current: HashMap<Arc<str>, DateTime<Utc>>,
}

impl Timers {
    fn set(&mut self, customer: Arc<str>, next: Option<DateTime<Utc>>) {
        match next {
            Some(at) => {
                if self.current.get(&customer) != Some(&at) {
                    self.current.insert(Arc::clone(&customer), at);
                    self.heap.push(Reverse((at, customer)));
                    self.compact();
                }
            }
            None => {
                self.current.remove(&customer);
            }
        }
    }

    /// Drops superseded entries once they outnumber the live ones, so that the heap stays
    /// within twice the number of customers with a timer.
    fn compact(&mut self) {
        if self.heap.len() > 1024 && self.heap.len() > 2 * self.current.len() {
            let current = &self.current;
            self.heap
                .retain(|Reverse((at, customer))| current.get(customer) == Some(at));
        }
    }

    /// The earliest timer at or before `until`, taken out.
    fn pop_due(&mut self, until: DateTime<Utc>) -> Option<(DateTime<Utc>, Arc<str>)> {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > until {
                return None;
            }
            let Reverse((at, customer)) = self.heap.pop().expect("peeked");
            if self.current.get(&customer) == Some(&at) {
                self.current.remove(&customer);
                return Some((at, customer));
            }
        }
        None
    }
}

/// Fires every timer of the shard due at or before `until`, each at its own due time, in
/// time order (then by customer), as if before line `item`.
async fn fire_timers<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    item: usize,
    until: DateTime<Utc>,
    timers: &mut Timers,
    groups: &mut Vec<Group>,
) -> Result<(), SimulateError> {
    while let Some((at, customer)) = timers.pop_due(until) {
        let applied = runner.wake(&customer, at).await?;
        let actions = match applied {
            Applied::Done { actions, next_wake } => {
                if next_wake.is_some_and(|next| next <= at) {
                    // The engine always moves a fired timer forward; stop rather than spin.
                    return Err(SimulateError::Stuck {
                        customer: customer.to_string(),
                        at,
                    });
                }
                timers.set(Arc::clone(&customer), next_wake);
                actions
            }
            // A wake has no event id: never a duplicate.
            Applied::Duplicate => Vec::new(),
        };
        groups.push(Group {
            key: Key {
                item,
                kind: 1,
                due: at,
                customer,
            },
            did: Did::Wake(actions),
        });
    }
    Ok(())
}
