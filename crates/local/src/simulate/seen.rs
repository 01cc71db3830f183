//! Repeated event ids ([`SeenIds`]), found by the calling thread in line order, because the
//! shards run at their own pace and, with a store per shard, no one store sees every id.

use std::collections::HashSet;

use nudge_core::mail::Mailer;
use nudge_core::runner::Runner;
use nudge_core::store::Store;

use super::{SimulateError, fnv1a};

/// The event ids given to the shards so far. An id seen before is a duplicate whatever its
/// customer, and the first line wins; but two shards run at their own pace, so an id repeated
/// for a customer of another shard could reach a store first (and with a store per shard, no
/// store would see both). So the calling thread finds repeats, in line order. Only a 64-bit
/// hash of each id is kept (8 bytes per event, not the id), plus the ids of the chunk being
/// read; a hash seen before is checked against the stores, so a collision costs a wait, never
/// a lost event.
#[derive(Debug, Default)]
pub(super) struct SeenIds {
    hashes: HashSet<u64>,
    /// The ids of the chunk being read (not in any store yet).
    chunk: HashSet<String>,
}

/// What [`SeenIds::insert`] knows of an id.
pub(super) enum Seen {
    /// Never seen.
    New,
    /// Seen earlier in this chunk: a duplicate.
    InChunk,
    /// Its hash was seen before this chunk: the stores tell.
    Maybe,
}

impl SeenIds {
    /// Records an id of the chunk being read and says what is known of it.
    pub(super) fn insert(&mut self, id: &str) -> Seen {
        if !self.chunk.insert(id.to_owned()) {
            return Seen::InChunk;
        }
        if self.hashes.insert(fnv1a(id)) {
            Seen::New
        } else {
            Seen::Maybe
        }
    }

    /// Starts a new chunk: ids of earlier chunks are known by their hash only (and then looked
    /// for in the stores).
    pub(super) fn new_chunk(&mut self) {
        self.chunk.clear();
    }
}

/// Whether any runner's store has processed `event_id`.
pub(super) fn any_processed<S: Store, M: Mailer>(
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
