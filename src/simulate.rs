//! `nudge simulate`: store events through the workflows under a virtual clock.
//!
//! Events are taken in order of their `time` (ties keep file order); the clock jumps to each
//! event's time, firing every timer due on the way (each at its own due time), and after the
//! last event runs on to `until`. Bad lines never stop the run: each is reported, kept as a
//! dead letter, and counted.
//!
//! The events file is read twice so that memory stays small however long it is: a first pass
//! keeps only each line's time and offset (to sort), the second reads lines back one at a time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::engine::{Action, ActionKind, EndReason, SkipReason};
use crate::event::{MAX_EVENT_BYTES, parse_event};
use crate::mail::Mailer;
use crate::runner::{Applied, Runner, RunnerError};
use crate::store::{DeadLetter, Store};

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
    Store(#[from] crate::store::StoreError),
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
        let w = self.workflows.entry(action.workflow.clone()).or_default();
        match &action.kind {
            ActionKind::RunStarted => w.runs_started += 1,
            ActionKind::RunEnded { reason } => *w.runs_ended.entry(*reason).or_default() += 1,
            ActionKind::EmailSent(_) => {
                *w.emails_sent
                    .entry(action.step.clone().unwrap_or_default())
                    .or_default() += 1
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

/// Runs a simulation. `on_action` sees every action as it happens; `on_notice` every line
/// rejected, late or duplicate. `until` defaults to the last event + 365 days.
pub async fn simulate<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    events: &Path,
    until: Option<DateTime<Utc>>,
    mut on_action: impl FnMut(&Action),
    mut on_notice: impl FnMut(Notice),
    mut on_progress: impl FnMut(usize, usize),
) -> Result<Summary, SimulateError> {
    let store = runner.store();
    let mut clock = match store.get_meta(CLOCK_KEY).await? {
        Some(text) => Some(
            DateTime::parse_from_rfc3339(&text)
                .map_err(|_| SimulateError::Clock(text.clone()))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let index = index_events(events)?;
    let last_time = index.iter().filter_map(|i| i.time).max();
    let until = until.or_else(|| last_time.map(|t| t + chrono::Duration::days(365)));
    let mut timers = Timers::load(store).await?;
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
    for (n, item) in index.iter().enumerate() {
        on_progress(n, total);
        if let (Some(t), Some(u)) = (item.time, until)
            && t > u
        {
            break; // events after --until are not processed
        }
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
                store.record_dead_letter(&letter).await?;
                summary.rejected += 1;
                on_notice(Notice::Rejected(rejection));
                continue;
            }
        };
        let now = match clock {
            Some(c) if event.time < c => {
                on_notice(Notice::Late {
                    line: item.line,
                    event_id: event.id.clone(),
                    time: event.time,
                    clock: c,
                });
                c
            }
            _ => event.time,
        };
        fire_timers(runner, now, &mut timers, &mut summary, &mut on_action).await?;
        clock = Some(now);
        match runner.event(&event, now).await? {
            Applied::Done { actions, next_wake } => {
                timers.set(&event.customer_id, next_wake);
                summary.events += 1;
                for a in &actions {
                    summary.count(a);
                    on_action(a);
                }
            }
            Applied::Duplicate => {
                summary.duplicates += 1;
                on_notice(Notice::Duplicate {
                    line: item.line,
                    event_id: event.id.clone(),
                });
            }
        }
    }
    on_progress(total, total);
    if let Some(u) = until
        && clock.is_none_or(|c| c < u)
    {
        fire_timers(runner, u, &mut timers, &mut summary, &mut on_action).await?;
        clock = Some(u);
    }
    if let Some(c) = clock {
        store
            .set_meta(
                CLOCK_KEY,
                &c.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .await?;
    }
    store.flush().await?;
    summary.until = clock;
    Ok(summary)
}

/// Every customer's timer, in memory, so that the loop never asks the store "what is due?"
/// between events: timers change only through this loop's own commits, each of which reports
/// its customer's new timer. Loaded once from the store (a `--db` store may hold timers);
/// superseded heap entries are skipped when they surface.
#[derive(Debug, Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, String)>>,
    current: HashMap<String, DateTime<Utc>>,
}

impl Timers {
    async fn load<S: Store>(store: &S) -> Result<Self, SimulateError> {
        let mut timers = Self::default();
        for (at, customer) in store.due(DateTime::<Utc>::MAX_UTC, usize::MAX).await? {
            timers.set(&customer, Some(at));
        }
        Ok(timers)
    }

    fn set(&mut self, customer: &str, next: Option<DateTime<Utc>>) {
        match next {
            Some(at) => {
                if self.current.get(customer) != Some(&at) {
                    self.current.insert(customer.to_owned(), at);
                    self.heap.push(Reverse((at, customer.to_owned())));
                }
            }
            None => {
                self.current.remove(customer);
            }
        }
    }

    /// The earliest timer at or before `until`, taken out.
    fn pop_due(&mut self, until: DateTime<Utc>) -> Option<(DateTime<Utc>, String)> {
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

/// Fires every timer due at or before `until`, each at its own due time, in time order.
async fn fire_timers<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    until: DateTime<Utc>,
    timers: &mut Timers,
    summary: &mut Summary,
    on_action: &mut impl FnMut(&Action),
) -> Result<(), SimulateError> {
    while let Some((at, customer)) = timers.pop_due(until) {
        let applied = runner.wake(&customer, at).await?;
        summary.wakes += 1;
        if let Applied::Done { actions, next_wake } = applied {
            if next_wake.is_some_and(|next| next <= at) {
                // The engine always moves a fired timer forward; stop rather than spin.
                return Err(SimulateError::Stuck { customer, at });
            }
            timers.set(&customer, next_wake);
            for a in &actions {
                summary.count(a);
                on_action(a);
            }
        }
    }
    Ok(())
}
