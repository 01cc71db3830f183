//! [`FaultyStore`]: a store whose calls fail, time out or crash on the schedule's draw.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use nudge_core::journal::JournalEntry;
use nudge_core::store::{
    Commit, CommitOutcome, CustomerPage, CustomerRecord, DeadLetter, DuePage, Erased, Feedback,
    FeedbackCount, JournalPage, Parked, SendEntry, SendPage, SendStatus, Settle, Store, StoreError,
};

use super::invocation::{crash, yield_now};
use super::schedule::{Faults, Happened, StoreFault};

/// A way a [`FaultyStore`] can be built broken, each breaking one rule the oracle checks (a
/// test proves the harness catches each; never for anything but that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// The commit's duplicate check says "new": a commit of an event id this wrapper saw
    /// committed before is passed on without its id, so a redelivered event applies again.
    ReapplyDuplicates,
    /// Claims are not exclusive: a claim of a send another sender holds (or that waits for
    /// its retry) succeeds as if the send were pending.
    DoubleClaims,
    /// Timers of shard 0 are never due: `due` of shard 0 is always empty.
    LoseTimers,
    /// The sweep's index misses shard 0: `pending_sends` of shard 0 is always empty.
    HidePendingSends,
    /// Dead letters are acknowledged and not kept.
    LoseDeadLetters,
}

/// A [`Store`] that passes every call to `inner`, except those the schedule ([`Faults`])
/// draws a [`StoreFault`] for: unavailable or throttled (not made), timed out (made, and the
/// caller sees `Unavailable`), or a crash before or after the call (the invocation is
/// abandoned: see [`Invocation`](super::Invocation)). It yields to the executor before and
/// after every call, and logs every fault, every claim that succeeded and every settle that
/// applied, whatever the caller then saw. Cloning shares the inner store and the schedule.
///
/// Every method of [`Store`] goes through it: a new method must be added here too.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: Arc<S>,
    faults: Arc<Faults>,
    breakage: Option<Breakage>,
    committed_ids: Arc<Mutex<HashSet<String>>>,
}

impl<S> Clone for FaultyStore<S> {
    fn clone(&self) -> Self {
        FaultyStore {
            inner: Arc::clone(&self.inner),
            faults: Arc::clone(&self.faults),
            breakage: self.breakage,
            committed_ids: Arc::clone(&self.committed_ids),
        }
    }
}

impl<S: Store> FaultyStore<S> {
    /// `inner`, failing on `faults`' draws.
    pub fn new(inner: S, faults: Arc<Faults>) -> Self {
        FaultyStore {
            inner: Arc::new(inner),
            faults,
            breakage: None,
            committed_ids: Arc::default(),
        }
    }

    /// The same store, broken as `breakage` says.
    pub fn broken(mut self, breakage: Breakage) -> Self {
        self.breakage = Some(breakage);
        self
    }

    /// The store underneath, without faults: what the oracle reads.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The schedule.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    fn breaks(&self, breakage: Breakage) -> bool {
        self.breakage == Some(breakage)
    }

    /// Makes the call `f` under the schedule (see [`FaultyStore`]).
    async fn call<T, F>(
        &self,
        name: &'static str,
        write: bool,
        customer: Option<&str>,
        key: Option<&str>,
        f: impl FnOnce() -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        yield_now().await;
        let kinds: &[StoreFault] = if write {
            &StoreFault::WRITES
        } else {
            &StoreFault::READS
        };
        let fault = self.faults.draw(|r| r.store, kinds, StoreFault::is_crash);
        if let Some(fault) = fault {
            self.faults.record(Happened::StoreFault {
                call: name,
                fault,
                customer: customer.map(str::to_owned),
                key: key.map(str::to_owned),
            });
        }
        let message = |what: &str| format!("{what} (a fault the harness injected in `{name}`)");
        match fault {
            None => {
                let out = f().await;
                yield_now().await;
                out
            }
            Some(StoreFault::Unavailable) => Err(StoreError::Unavailable {
                message: message("unavailable"),
                source: None,
            }),
            Some(StoreFault::Throttled) => Err(StoreError::Throttled {
                message: message("throttled"),
                source: None,
            }),
            Some(StoreFault::TimedOut) => {
                let _applied = f().await;
                Err(StoreError::Unavailable {
                    message: message("timed out after the request was sent"),
                    source: None,
                })
            }
            Some(StoreFault::CrashBefore) => never(crash()).await,
            Some(StoreFault::CrashAfter) => {
                let _applied = f().await;
                never(crash()).await
            }
        }
    }
}

/// Awaits a future that never completes (a crash), as any type.
async fn never<T>(pending: std::future::Pending<()>) -> T {
    pending.await;
    // The crashed invocation is dropped at this poll and never polled again.
    let never: Option<Infallible> = None;
    match never {
        Some(n) => match n {},
        None => unreachable!("a crashed invocation is never polled again"),
    }
}

impl<S: Store> Store for FaultyStore<S> {
    async fn load(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        self.call("load", false, Some(customer_id), None, || {
            self.inner.load(customer_id)
        })
        .await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let mut commit = commit;
        if self.breaks(Breakage::ReapplyDuplicates)
            && let Some(id) = commit.event_id
            && self.committed_ids.lock().unwrap().contains(id)
        {
            commit.event_id = None;
        }
        self.call("commit", true, Some(commit.customer_id), None, || async {
            let outcome = self.inner.commit(commit).await;
            if let (Ok(CommitOutcome::Committed { .. }), Some(id)) = (&outcome, commit.event_id) {
                self.committed_ids.lock().unwrap().insert(id.to_owned());
            }
            outcome
        })
        .await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.call("is_processed", false, None, None, || {
            self.inner.is_processed(event_id)
        })
        .await
    }

    async fn due(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DuePage, StoreError> {
        if self.breaks(Breakage::LoseTimers) && shard == 0 {
            return self
                .call("due", false, None, None, || async {
                    Ok(DuePage::default())
                })
                .await;
        }
        self.call("due", false, None, None, || {
            self.inner.due(shard, until, limit, cursor)
        })
        .await
    }

    async fn set_aside(&self, customer_id: &str, due: DateTime<Utc>) -> Result<bool, StoreError> {
        self.call("set_aside", true, Some(customer_id), None, || {
            self.inner.set_aside(customer_id, due)
        })
        .await
    }

    async fn sends(&self, customer_id: &str) -> Result<Vec<SendEntry>, StoreError> {
        self.call("sends", false, Some(customer_id), None, || {
            self.inner.sends(customer_id)
        })
        .await
    }

    async fn claim_send(
        &self,
        customer_id: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        self.call("claim_send", true, Some(customer_id), Some(key), || async {
            let mut claimed = self
                .inner
                .claim_send(customer_id, key, now, lease_until)
                .await;
            if self.breaks(Breakage::DoubleClaims) && matches!(claimed, Ok(None)) {
                let entries = self.inner.sends(customer_id).await?;
                claimed = Ok(entries
                    .into_iter()
                    .find(|e| e.record.idempotency_key == key && !e.status.is_final())
                    .map(|mut e| {
                        e.status = SendStatus::Pending;
                        e
                    }));
            }
            if let Ok(Some(_)) = &claimed {
                self.faults.record(Happened::Claimed {
                    customer: customer_id.to_owned(),
                    key: key.to_owned(),
                });
            }
            claimed
        })
        .await
    }

    async fn settle_send(
        &self,
        customer_id: &str,
        key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        self.call(
            "settle_send",
            true,
            Some(customer_id),
            Some(key),
            || async {
                let applied = self.inner.settle_send(customer_id, key, settle).await;
                if let Ok(true) = applied {
                    self.faults.record(Happened::Settled {
                        customer: customer_id.to_owned(),
                        key: key.to_owned(),
                        status: settle.status(),
                    });
                }
                applied
            },
        )
        .await
    }

    async fn pending_sends(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SendPage, StoreError> {
        if self.breaks(Breakage::HidePendingSends) && shard == 0 {
            return self
                .call("pending_sends", false, None, None, || async {
                    Ok(SendPage::default())
                })
                .await;
        }
        self.call("pending_sends", false, None, None, || {
            self.inner.pending_sends(shard, until, limit, cursor)
        })
        .await
    }

    async fn link_order(&self, order_id: &str, customer_id: &str) -> Result<(), StoreError> {
        self.call("link_order", true, Some(customer_id), None, || {
            self.inner.link_order(order_id, customer_id)
        })
        .await
    }

    async fn order_customer(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        self.call("order_customer", false, None, None, || {
            self.inner.order_customer(order_id)
        })
        .await
    }

    async fn suppress(
        &self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call("suppress", true, None, None, || {
            self.inner.suppress(address_key, reason, at)
        })
        .await
    }

    async fn suppression(
        &self,
        address_key: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        self.call("suppression", false, None, None, || {
            self.inner.suppression(address_key)
        })
        .await
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<String, StoreError> {
        if self.breaks(Breakage::LoseDeadLetters) {
            return self
                .call("record_dead_letter", true, None, None, || async {
                    Ok("lost".to_owned())
                })
                .await;
        }
        self.call("record_dead_letter", true, None, None, || {
            self.inner.record_dead_letter(letter)
        })
        .await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        self.call("dead_letters", false, None, None, || {
            self.inner.dead_letters(limit)
        })
        .await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.call("get_meta", false, None, None, || self.inner.get_meta(key))
            .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.call("set_meta", true, None, None, || {
            self.inner.set_meta(key, value)
        })
        .await
    }

    async fn record_feedback(&self, feedback: &Feedback<'_>) -> Result<bool, StoreError> {
        self.call("record_feedback", true, None, None, || {
            self.inner.record_feedback(feedback)
        })
        .await
    }

    async fn feedback_counts(&self) -> Result<Vec<FeedbackCount>, StoreError> {
        self.call("feedback_counts", false, None, None, || {
            self.inner.feedback_counts()
        })
        .await
    }

    async fn park(&self, parked: &Parked) -> Result<(), StoreError> {
        self.call("park", true, None, None, || self.inner.park(parked))
            .await
    }

    async fn parked(&self, order_id: &str, now: DateTime<Utc>) -> Result<Vec<Parked>, StoreError> {
        self.call("parked", false, None, None, || {
            self.inner.parked(order_id, now)
        })
        .await
    }

    async fn unpark(&self, order_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.call("unpark", true, None, None, || {
            self.inner.unpark(order_id, event_id)
        })
        .await
    }

    async fn erase_customer(&self, customer_id: &str) -> Result<Erased, StoreError> {
        self.call("erase_customer", true, Some(customer_id), None, || {
            self.inner.erase_customer(customer_id)
        })
        .await
    }

    async fn customers(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<CustomerPage, StoreError> {
        self.call("customers", false, None, None, || {
            self.inner.customers(cursor, limit)
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.call("flush", true, None, None, || self.inner.flush())
            .await
    }

    async fn journal(&self, customer_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.call("journal", false, Some(customer_id), None, || {
            self.inner.journal(customer_id)
        })
        .await
    }

    async fn journal_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<JournalPage, StoreError> {
        self.call("journal_page", false, None, None, || {
            self.inner.journal_page(since, cursor, limit)
        })
        .await
    }
}
