//! The shards: threads that each own the customers whose id hashes to them, with their
//! [`Timers`], and apply those customers' inputs in order through a runner. What each input
//! did goes back to the calling thread as [`Group`]s, keyed for the merge.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::Scope;

use chrono::{DateTime, Utc};

use nudge_core::engine::ActionKind;
use nudge_core::event::StoreEvent;
use nudge_core::mail::Mailer;
use nudge_core::runner::{Applied, Delivery, Runner};
use nudge_core::store::{DeadLetter, Store};

use super::merge::{Did, Group, Key};
use super::timers::Timers;
use super::{Notice, Rejection, SimulateError, fnv1a, runtime};

/// An event for a shard.
pub(super) struct ShardEvent {
    /// Its place among the lines in time order.
    pub(super) item: usize,
    /// Its line in the file.
    pub(super) line: usize,
    /// The virtual clock when it arrives (its time, or the clock if it is late); the runner
    /// applies it at the later of its time and its customer's last applied time, capped at this.
    pub(super) clock: DateTime<Utc>,
    /// The event.
    pub(super) event: StoreEvent,
}

/// What the calling thread hands a shard.
pub(super) enum Work {
    /// The lines `first..first + fires.len()`: before each line with `Some(now)`, the shard
    /// fires its timers due by `now`; then it applies its own events among them.
    Chunk {
        /// The first line's place in time order.
        first: usize,
        /// Per line, when it happens; `None` for a rejected line.
        fires: Arc<Vec<Option<DateTime<Utc>>>>,
        /// The shard's events among the lines, in order.
        inputs: Vec<ShardEvent>,
    },
    /// Fire the timers due by `until`, as if before line `item` (past the last line).
    Fire {
        /// The place the firings take in the order.
        item: usize,
        /// Fire up to this time.
        until: DateTime<Utc>,
    },
    /// Commit the shard's store's batch.
    Flush,
}

/// What a shard answers for one [`Work`], or the error that stopped it.
pub(super) type Done = Result<Answer, SimulateError>;

/// What a shard did in one [`Work`].
pub(super) struct Answer {
    /// Its groups, in order.
    pub(super) groups: Vec<Group>,
    /// Its earliest timer afterwards, so that the calling thread can skip the hours in which
    /// no timer is due.
    pub(super) next_due: Option<DateTime<Utc>>,
}

/// The shard that owns a customer (FNV-1a of the id: any fixed spread would do).
pub(super) fn shard_of(customer: &str, shards: usize) -> usize {
    (fnv1a(customer) % shards as u64) as usize
}

/// Starts a shard's thread in `scope`; returns the channels to hand it work and to hear back.
pub(super) fn spawn<'scope, S: Store + Sync, M: Mailer + Sync>(
    scope: &'scope Scope<'scope, '_>,
    runner: &'scope Runner<'scope, S, M>,
    timers: Timers,
    events: &'scope Path,
) -> (mpsc::Sender<Work>, mpsc::Receiver<Done>) {
    let (work_tx, work_rx) = mpsc::channel::<Work>();
    let (done_tx, done_rx) = mpsc::channel();
    scope.spawn(move || shard(runner, timers, events, work_rx, done_tx));
    (work_tx, done_rx)
}

/// A shard's thread: applies its customers' inputs, chunk by chunk, until told to finish or
/// the calling thread is gone. Stops at its first error, after reporting it.
fn shard<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    mut timers: Timers,
    events: &Path,
    work: mpsc::Receiver<Work>,
    done: mpsc::Sender<Done>,
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
                apply_chunk(
                    (runner, events),
                    first,
                    &fires,
                    inputs,
                    &mut timers,
                    &mut groups,
                )
                .await?;
                deliver(runner, &mut groups).await
            }),
            Work::Fire { item, until } => rt.block_on(async {
                fire_timers(runner, item, until, &mut timers, &mut groups).await?;
                deliver(runner, &mut groups).await
            }),
            Work::Flush => rt
                .block_on(runner.store().flush())
                .map_err(SimulateError::from),
        };
        let failed = result.is_err();
        let answer = result.map(|()| Answer {
            groups,
            next_due: timers.next_due(),
        });
        if done.send(answer).is_err() || failed {
            return;
        }
    }
}

/// Delivers the emails that the inputs of `groups` decided (the runner leaves them pending:
/// [`Runner::deliver_later`]) and gives each group what became of its own. The runner claims
/// them and makes the store's batch durable before anything is sent, so no email leaves
/// before the decision that sent it is kept: a run killed at any point never sends an email
/// again when it is run again on the same store. One delivery per round (not per input) keeps
/// the batching: the claims, the flush and the settles are shared by the round's inputs.
async fn deliver<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    groups: &mut [Group],
) -> Result<(), SimulateError> {
    let mut keys = Vec::new();
    let mut clock = None;
    for group in groups.iter() {
        for action in group.actions() {
            if let ActionKind::EmailSent(email) = &action.kind {
                keys.push((email.customer_id.as_str(), email.idempotency_key.as_str()));
                clock = clock.max(Some(action.at));
            }
        }
    }
    let Some(clock) = clock else { return Ok(()) };
    let deliveries = runner.deliver(&keys, clock).await?;
    let mut by_key: std::collections::HashMap<String, Delivery> = deliveries
        .into_iter()
        .map(|d| (d.idempotency_key.clone(), d))
        .collect();
    for group in groups.iter_mut() {
        let mut mine = Vec::new();
        for action in group.actions() {
            if let ActionKind::EmailSent(email) = &action.kind
                && let Some(d) = by_key.remove(&email.idempotency_key)
            {
                mine.push(d);
            }
        }
        group.deliveries = mine;
    }
    Ok(())
}

/// The shard's part of a chunk of lines: before each event line, the timers due by then;
/// then the line's event, if it is one of the shard's.
async fn apply_chunk<S: Store, M: Mailer>(
    (runner, events): (&Runner<'_, S, M>, &Path),
    first: usize,
    fires: &[Option<DateTime<Utc>>],
    inputs: Vec<ShardEvent>,
    timers: &mut Timers,
    groups: &mut Vec<Group>,
) -> Result<(), SimulateError> {
    let mut inputs = inputs.into_iter().peekable();
    for (i, fire) in fires.iter().enumerate() {
        let Some(now) = *fire else { continue };
        let item = first + i;
        fire_timers(runner, item, now, timers, groups).await?;
        if let Some(input) = inputs.next_if(|input| input.item == item) {
            groups.push(apply_event(runner, events, input, timers).await?);
        }
    }
    Ok(())
}

/// Applies one event of the shard. An event its customer's state refuses (unreadable, or
/// grown too large) is that line's failure: a dead letter and a notice, and the run goes on.
async fn apply_event<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    events: &Path,
    input: ShardEvent,
    timers: &mut Timers,
) -> Result<Group, SimulateError> {
    let key = Key::line(input.item);
    let did = match runner.event(&input.event, input.clock).await {
        Ok(Applied::Done {
            actions, next_wake, ..
        }) => {
            timers.set(Arc::from(input.event.customer_id.as_str()), next_wake);
            Did::Event(actions)
        }
        // Delivered later (`Runner::deliver_later`): nothing was delivered now.
        Ok(Applied::Duplicate { .. }) => Did::Duplicate {
            line: input.line,
            event_id: input.event.id,
        },
        Err(e) if e.customer().is_some() => {
            Did::Failed(dead_letter(runner, events, &input, e.to_string()).await?)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Group::new(key, did))
}

/// Keeps an event that failed as a dead letter (the event as parsed, since the line is not at
/// hand); the notice that reports it.
async fn dead_letter<S: Store, M: Mailer>(
    runner: &Runner<'_, S, M>,
    events: &Path,
    input: &ShardEvent,
    reason: String,
) -> Result<Notice, SimulateError> {
    let e = &input.event;
    let body = serde_json::json!({
        "id": e.id, "detail-type": e.event_type, "source": e.source,
        "time": e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true), "detail": e.detail,
    });
    let letter = DeadLetter {
        id: String::new(),
        event_id: Some(e.id.clone()),
        customer_id: Some(e.customer_id.clone()),
        source: format!("{}:{}", events.display(), input.line),
        reason: reason.clone(),
        body: body.to_string(),
        received_at: input.clock,
    };
    runner.store().record_dead_letter(&letter).await?;
    Ok(Notice::Rejected(Rejection {
        line: input.line,
        event_id: letter.event_id,
        reason,
    }))
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
        let applied = match runner.wake(&customer, at, until).await {
            // The customer's own failure: reported, and their timer dropped (it would fail
            // again); the other customers go on.
            Err(e) if e.customer().is_some() => {
                groups.push(Group::new(
                    Key::wake(item, at, Arc::clone(&customer)),
                    Did::Notice(Notice::WakeFailed {
                        customer: customer.to_string(),
                        at,
                        reason: e.to_string(),
                    }),
                ));
                continue;
            }
            applied => applied?,
        };
        let actions = match applied {
            Applied::Done {
                actions, next_wake, ..
            } => {
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
            Applied::Duplicate { .. } => Vec::new(),
        };
        groups.push(Group::new(
            Key::wake(item, at, customer),
            Did::Wake(actions),
        ));
    }
    Ok(())
}
