//! The merge back into the order of a run on one thread. The calling thread hands the shards
//! their work in [`Rounds`] (a few in flight, so that the shards never wait for it), then
//! sorts what each round did by [`Key`] and reports it in that order ([`emit`]).

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};

use chrono::{DateTime, Utc};

use nudge_core::engine::{Action, ActionKind};
use nudge_core::runner::{Delivery, DeliveryOutcome};

use super::shard::{Answer, Done, Work};
use super::{Notice, SimulateError, Summary};

/// Where a group of actions falls in the order of a run on one thread: before line `item`,
/// the timers fired then (`kind` 1) by due time and customer, then the line itself (`kind` 2).
/// Notices of the calling thread (`kind` 0) come first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    item: usize,
    kind: u8,
    due: DateTime<Utc>,
    customer: Arc<str>,
}

impl Key {
    /// The place of the calling thread's notices about line `item` (in time order).
    fn notice(item: usize) -> Self {
        Key {
            item,
            kind: 0,
            due: DateTime::<Utc>::MIN_UTC,
            customer: Arc::from(""),
        }
    }

    /// The place of a timer of `customer` due at `due`, fired before line `item`.
    pub(super) fn wake(item: usize, due: DateTime<Utc>, customer: Arc<str>) -> Self {
        Key {
            item,
            kind: 1,
            due,
            customer,
        }
    }

    /// The place of the event on line `item` (in time order).
    pub(super) fn line(item: usize) -> Self {
        Key {
            item,
            kind: 2,
            due: DateTime::<Utc>::MIN_UTC,
            customer: Arc::from(""),
        }
    }
}

/// What one input did, or a notice, at its place in the order.
pub(super) struct Group {
    /// Its place.
    pub(super) key: Key,
    /// What happened.
    pub(super) did: Did,
    /// What became of the emails its actions decided (see `shard::deliver`).
    pub(super) deliveries: Vec<Delivery>,
}

/// What happened at one place in the order.
pub(super) enum Did {
    /// An event was applied.
    Event(Vec<Action>),
    /// A timer fired.
    Wake(Vec<Action>),
    /// An event id was seen before (by the calling thread or a store).
    Duplicate {
        /// 1-based line.
        line: usize,
        /// The event id.
        event_id: String,
    },
    /// Something the calling thread found (a rejected or late line), or a timer that failed.
    Notice(Notice),
    /// An event its customer's state refused (counted as rejected; kept as a dead letter).
    Failed(Notice),
}

impl Group {
    /// What happened at `key`, nothing delivered yet.
    pub(super) fn new(key: Key, did: Did) -> Self {
        Group {
            key,
            did,
            deliveries: Vec::new(),
        }
    }

    /// A notice of the calling thread about line `item` (in time order).
    pub(super) fn notice(item: usize, notice: Notice) -> Self {
        Group::new(Key::notice(item), Did::Notice(notice))
    }

    /// The actions of an event or a timer (none for the rest).
    pub(super) fn actions(&self) -> &[Action] {
        match &self.did {
            Did::Event(actions) | Did::Wake(actions) => actions,
            _ => &[],
        }
    }
}

/// What became of the email `action` decided, if it is one and is among `deliveries`.
fn delivery<'a>(deliveries: &'a [Delivery], action: &Action) -> Option<&'a DeliveryOutcome> {
    let ActionKind::EmailSent(email) = &action.kind else {
        return None;
    };
    deliveries
        .iter()
        .find(|d| d.idempotency_key == email.idempotency_key)
        .map(|d| &d.outcome)
}

/// Rounds handed out before the calling thread waits for the oldest: the shards always have
/// the next chunk queued while this thread parses the one after and reports the one before.
const IN_FLIGHT: usize = 3;

/// The rounds between the calling thread and the shards: each round hands every shard its
/// work; once [`IN_FLIGHT`] are out, the oldest is merged and reported (the calling thread's
/// own groups of a round, `mine`, wait in `previous` until then).
pub(super) struct Rounds {
    to_shards: Vec<mpsc::Sender<Work>>,
    from_shards: Vec<mpsc::Receiver<Done>>,
    previous: VecDeque<Vec<Group>>,
    /// With a store per shard, inputs (all shards) between two flush rounds (see
    /// [`FLUSH_INPUTS`](super::FLUSH_INPUTS)); `None` with one shared store.
    flush_every: Option<usize>,
    /// Inputs merged so far, and at the last flush round.
    merged: usize,
    flushed: usize,
    /// The earliest timer of any shard after the last round merged (see
    /// [`Rounds::next_due`]).
    next_due: Option<DateTime<Utc>>,
}

impl Rounds {
    /// No shard yet (see [`Rounds::add`]); flush rounds every `flush_every` inputs, if any;
    /// `next_due`, the earliest timer of the shards to be added.
    pub(super) fn new(
        shards: usize,
        flush_every: Option<usize>,
        next_due: Option<DateTime<Utc>>,
    ) -> Self {
        Rounds {
            to_shards: Vec::with_capacity(shards),
            from_shards: Vec::with_capacity(shards),
            previous: VecDeque::new(),
            flush_every,
            merged: 0,
            flushed: 0,
            next_due,
        }
    }

    /// Adds a shard, by its channels (see [`spawn`](super::shard::spawn)).
    pub(super) fn add(&mut self, (to, from): (mpsc::Sender<Work>, mpsc::Receiver<Done>)) {
        self.to_shards.push(to);
        self.from_shards.push(from);
    }

    /// Hands out one round, after a flush round when one is due.
    pub(super) fn round(
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
    pub(super) fn drain(&mut self, out: &mut impl FnMut(Vec<Group>)) -> Result<(), SimulateError> {
        while !self.previous.is_empty() {
            self.merge_oldest(out)?;
        }
        Ok(())
    }

    /// No more work: closes the shards' channels (a shard ends after its last round), then
    /// merges and reports the rounds still out.
    pub(super) fn finish(mut self, out: &mut impl FnMut(Vec<Group>)) -> Result<(), SimulateError> {
        self.to_shards.clear();
        self.drain(out)
    }

    /// The earliest timer of any shard once the last round merged was done: exact when no
    /// round is out (after [`Rounds::drain`]); otherwise as of some rounds ago.
    pub(super) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.next_due
    }

    fn merge_oldest(&mut self, out: &mut impl FnMut(Vec<Group>)) -> Result<(), SimulateError> {
        if let Some(mine) = self.previous.pop_front() {
            let (groups, next_due) = collect(&self.from_shards, mine)?;
            self.next_due = next_due;
            self.merged += groups.len();
            out(groups);
        }
        Ok(())
    }
}

/// Waits for every shard's groups of one chunk and merges them with the calling thread's into
/// the order of a run on one thread. Each list is in order already and two lists never tie
/// (a tie is one customer, who belongs to one shard), so a stable sort of them merges them.
/// Also returns the earliest timer of any shard afterwards.
fn collect(
    from_shards: &[mpsc::Receiver<Done>],
    mine: Vec<Group>,
) -> Result<(Vec<Group>, Option<DateTime<Utc>>), SimulateError> {
    let mut all = mine;
    let mut next_due: Option<DateTime<Utc>> = None;
    for rx in from_shards {
        // A shard that is gone without an answer panicked; the scope re-raises the panic.
        let answer = rx.recv().unwrap_or_else(|_| {
            Ok(Answer {
                groups: Vec::new(),
                next_due: None,
            })
        })?;
        all.extend(answer.groups);
        next_due = next_due.into_iter().chain(answer.next_due).min();
    }
    all.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((all, next_due))
}

/// Counts and reports merged groups, in order; each email with what became of it.
pub(super) fn emit(
    groups: Vec<Group>,
    summary: &mut Summary,
    on_action: &mut impl FnMut(&Action, Option<&DeliveryOutcome>),
    on_notice: &mut impl FnMut(Notice),
) {
    summary.largest_round = summary.largest_round.max(groups.len());
    for group in groups {
        let deliveries = group.deliveries;
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
            Did::Failed(notice) => {
                summary.rejected += 1;
                on_notice(notice);
                continue;
            }
        };
        for a in &actions {
            let delivery = delivery(&deliveries, a);
            summary.count(a, delivery);
            on_action(a, delivery);
        }
    }
}
