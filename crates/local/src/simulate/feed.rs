//! The calling thread's part of the loop ([`Feed`]): it reads the lines in time order, keeps
//! the clock, turns bad lines into dead letters, notices late events and repeated ids, and
//! hands the rest to the shards a chunk of lines at a time; after the last line it runs the
//! clock on to `until`.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use nudge_core::event::{StoreEvent, parse_event};
use nudge_core::mail::Mailer;
use nudge_core::runner::Runner;
use nudge_core::store::{DeadLetter, Store};

use super::index::{Indexed, Lines, dead_letter_body};
use super::merge::{Did, Group, Key, Rounds};
use super::seen::{Seen, SeenIds, any_processed};
use super::shard::{ShardEvent, Work, shard_of};
use super::{Notice, Rejection, SimulateError};

/// Lines read and parsed per round trip to the shards.
const CHUNK: usize = 128;

/// The most virtual time one round fires timers over. A round's results (emails with their
/// HTML) are held until it is merged, so a round covers at most an hour of timers, however far
/// apart two events are: a mistyped year in one event once made the round before it fire a
/// lifetime of timers at once (11 GB for 20,000 customers). An hour of 100,000 customers'
/// timers is a few MB; a day was 50 MB.
const SPAN: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The calling thread's state while it feeds the shards.
pub(super) struct Feed<'a, S, M> {
    /// Every runner; the first one's store keeps the dead letters.
    pub(super) runners: &'a [Runner<'a, S, M>],
    /// For the calling thread's store calls.
    pub(super) rt: &'a tokio::runtime::Runtime,
    /// The events file, as the dead letters name it.
    pub(super) events: &'a std::path::Path,
    /// The lines, in time order.
    pub(super) lines: Lines,
    /// Where the clock stops.
    pub(super) until: Option<DateTime<Utc>>,
    /// The virtual clock: the store's at first, then the last event's time.
    pub(super) clock: Option<DateTime<Utc>>,
    /// The number of shards.
    pub(super) shards: usize,
    /// Whether stores of a previous run (they kept its clock) each may hold any event id: with
    /// a store per shard, each new id is then looked for in every store.
    pub(super) resumed: bool,
    /// The event ids handed out so far.
    pub(super) seen: SeenIds,
    /// Lines rejected so far.
    pub(super) rejected: usize,
}

/// One chunk of lines, as the calling thread splits it.
struct Chunk {
    /// The first line's place in time order.
    first: usize,
    /// Per line, when it happens (the shards fire their timers due by then); `None` for a
    /// rejected line.
    fires: Vec<Option<DateTime<Utc>>>,
    /// The calling thread's notices and duplicates, keyed like the shards' groups.
    mine: Vec<Group>,
    /// Each shard's events.
    inputs: Vec<Vec<ShardEvent>>,
}

impl<S: Store, M: Mailer> Feed<'_, S, M> {
    /// Feeds every line up to `until` to the shards, a chunk at a time, reporting what is
    /// merged through `out` and the lines read through `on_progress`. Returns the place in the
    /// order after the last line fed.
    pub(super) fn lines(
        &mut self,
        rounds: &mut Rounds,
        out: &mut impl FnMut(Vec<Group>),
        on_progress: &mut impl FnMut(usize, usize),
    ) -> Result<usize, SimulateError> {
        let total = self.lines.len();
        let mut next = 0;
        let mut stopped = false;
        while !stopped && next < total {
            // Timers up to here are fired (or are in the rounds out).
            let mut from = self.clock;
            let mut chunk = Chunk {
                first: next,
                fires: Vec::with_capacity(CHUNK),
                mine: Vec::new(),
                inputs: (0..self.shards).map(|_| Vec::new()).collect(),
            };
            self.seen.new_chunk();
            while next < total && chunk.fires.len() < CHUNK {
                on_progress(next, total);
                let entry = self.lines.entry(next);
                if let (Some(t), Some(u)) = (entry.time, self.until)
                    && t > u
                {
                    stopped = true; // events after --until are not processed
                    break;
                }
                // The first line of all starts the first chunk's span.
                from = from.or(entry.time);
                if let (Some(t), Some(f)) = (entry.time, from)
                    && t > f + SPAN
                {
                    if !chunk.fires.is_empty() {
                        break; // this chunk fires no more than SPAN; the line starts the next
                    }
                    self.fire_to(next, t, rounds, out)?;
                    from = Some(t);
                }
                next += 1;
                self.line(next - 1, &entry, &mut chunk, rounds, out)?;
            }
            let Chunk {
                first,
                fires,
                mine,
                inputs,
            } = chunk;
            let fires = Arc::new(fires);
            let work = inputs.into_iter().map(|inputs| Work::Chunk {
                first,
                fires: Arc::clone(&fires),
                inputs,
            });
            rounds.round(work, mine, out)?;
        }
        on_progress(total, total);
        Ok(next)
    }

    /// Reads line `item` (in time order) into `chunk`: a notice if it is rejected, else an
    /// event for its shard, or a duplicate.
    fn line(
        &mut self,
        item: usize,
        entry: &Indexed,
        chunk: &mut Chunk,
        rounds: &mut Rounds,
        out: &mut impl FnMut(Vec<Group>),
    ) -> Result<(), SimulateError> {
        let parsed = match self.lines.read(entry)? {
            Ok(text) => parse_event(text).map_err(|e| (e, dead_letter_body(text.as_bytes()))),
            Err(unreadable) => Err(unreadable),
        }
        .map_err(|(e, body)| {
            let rejection = Rejection {
                line: entry.line,
                event_id: e.event_id().map(str::to_owned),
                reason: e.to_string(),
            };
            (rejection, body)
        });
        let event = match parsed {
            Ok(event) => event,
            Err((rejection, body)) => {
                self.reject(entry, &rejection, body)?;
                chunk
                    .mine
                    .push(Group::notice(item, Notice::Rejected(rejection)));
                chunk.fires.push(None);
                return Ok(());
            }
        };
        let clock = self.advance_clock(item, entry, &event, chunk);
        chunk.fires.push(Some(clock));
        // An id seen before is a duplicate whatever its customer. The first one must win as on
        // one thread, whichever shard gets to its store first.
        if self.repeated(&event.id, rounds, out)? {
            chunk.mine.push(Group::new(
                Key::line(item),
                Did::Duplicate {
                    line: entry.line,
                    event_id: event.id,
                },
            ));
            return Ok(());
        }
        chunk.inputs[shard_of(&event.customer_id, self.shards)].push(ShardEvent {
            item,
            line: entry.line,
            clock,
            event,
        });
        Ok(())
    }

    /// Keeps a rejected line (`body`, cut to an event's size) as a dead letter.
    fn reject(
        &mut self,
        entry: &Indexed,
        rejection: &Rejection,
        body: String,
    ) -> Result<(), SimulateError> {
        let letter = DeadLetter {
            id: String::new(),
            event_id: rejection.event_id.clone(),
            customer_id: nudge_core::event::customer_named(&body),
            source: format!("{}:{}", self.events.display(), entry.line),
            reason: rejection.reason.clone(),
            body,
            received_at: self.clock.unwrap_or_else(|| entry.time.unwrap_or_default()),
        };
        self.rt
            .block_on(self.runners[0].store().record_dead_letter(&letter))?;
        self.rejected += 1;
        Ok(())
    }

    /// Moves the clock to `event`'s time, if that is later, and returns the clock. An older
    /// event (continuing a `--db` store) gets a notice; the runner applies it at the later of
    /// its time and its customer's last applied time (`nudge_core::runner::applied_at`).
    fn advance_clock(
        &mut self,
        item: usize,
        entry: &Indexed,
        event: &StoreEvent,
        chunk: &mut Chunk,
    ) -> DateTime<Utc> {
        let now = match self.clock {
            Some(c) if event.time < c => {
                chunk.mine.push(Group::notice(
                    item,
                    Notice::Late {
                        line: entry.line,
                        event_id: event.id.clone(),
                        time: event.time,
                        clock: c,
                    },
                ));
                c
            }
            _ => event.time,
        };
        self.clock = Some(now);
        now
    }

    /// Whether `event_id` was seen before, in this run or (with stores of a previous run) in
    /// any store. May wait for the rounds in flight: see [`SeenIds`].
    fn repeated(
        &mut self,
        event_id: &str,
        rounds: &mut Rounds,
        out: &mut impl FnMut(Vec<Group>),
    ) -> Result<bool, SimulateError> {
        Ok(match self.seen.insert(event_id) {
            Seen::InChunk => true,
            Seen::New if !self.resumed => false,
            Seen::New => any_processed(self.runners, event_id, self.rt)?,
            Seen::Maybe => {
                // Every line before this chunk is in a store once the rounds in flight are
                // done; then the stores know.
                rounds.drain(out)?;
                any_processed(self.runners, event_id, self.rt)?
            }
        })
    }

    /// After the last line: runs the clock on to `until`, if it is not there yet (see
    /// [`Feed::fire_to`]). `item` is the place of the firings in the order (past the lines).
    pub(super) fn run_on(
        &mut self,
        item: usize,
        rounds: &mut Rounds,
        out: &mut impl FnMut(Vec<Group>),
    ) -> Result<(), SimulateError> {
        let Some(u) = self.until else { return Ok(()) };
        if self.clock.is_some_and(|c| c >= u) {
            return Ok(());
        }
        self.fire_to(item, u, rounds, out)?;
        self.clock = Some(u);
        Ok(())
    }

    /// Fires every timer due by `to`, as if before line `item`, in rounds of at most [`SPAN`]
    /// of virtual time each, so that memory stays bounded however far `to` is; hours in which
    /// no timer is due are skipped, so that a gap of centuries costs no more than its timers.
    ///
    /// The shards report their earliest timer with each round (see [`Rounds::next_due`]).
    /// After the rounds out are drained (they may hold events, which set timers), only firing
    /// rounds are out, and a firing round never sets a timer at or before the end of its
    /// window: so if the earliest timer as of the last round merged is past the end of the
    /// last window handed out, the rounds since fired nothing and it is still the earliest.
    fn fire_to(
        &mut self,
        item: usize,
        to: DateTime<Utc>,
        rounds: &mut Rounds,
        out: &mut impl FnMut(Vec<Group>),
    ) -> Result<(), SimulateError> {
        rounds.drain(out)?;
        // Every timer at or before `fired` has fired or is in a round out.
        let mut fired = self.clock;
        while let Some(next) = rounds.next_due() {
            if next > to || fired.is_some_and(|f| f >= to) {
                break;
            }
            let start = match fired {
                Some(f) if next <= f => f, // the rounds out may have set timers just after `f`
                _ => next,
            };
            let until = (start + SPAN).min(to);
            let work = (0..self.shards).map(|_| Work::Fire { item, until });
            rounds.round(work, Vec::new(), out)?;
            fired = Some(until);
        }
        Ok(())
    }
}
