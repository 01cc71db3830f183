//! A shard's timers in memory ([`Timers`]): a heap by due time, so that the loop never asks
//! the store "what is due?" between events.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Every customer's timer, in memory: timers change only through the loop's own commits,
/// each of which reports its customer's new timer. Loaded once from the store (a `--db` store
/// may hold timers); superseded heap entries are skipped when they surface. A customer's id is
/// one shared allocation, whatever the number of its entries.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(DateTime<Utc>, Arc<str>)>>,
    current: HashMap<Arc<str>, DateTime<Utc>>,
}

impl Timers {
    /// Sets (`Some`) or clears (`None`) a customer's timer.
    pub(super) fn set(&mut self, customer: Arc<str>, next: Option<DateTime<Utc>>) {
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
    pub(super) fn pop_due(&mut self, until: DateTime<Utc>) -> Option<(DateTime<Utc>, Arc<str>)> {
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

    /// The earliest timer, left in place (superseded entries on top are dropped).
    pub(super) fn next_due(&mut self) -> Option<DateTime<Utc>> {
        while let Some(Reverse((at, customer))) = self.heap.peek() {
            if self.current.get(customer) == Some(at) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }
}
