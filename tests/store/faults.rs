//! The contract can fail: a store broken against each rule fails the check for that rule,
//! and the failure names the check.

use chrono::{DateTime, Duration, Utc};
use nudge_core::store::{
    Commit, CommitOutcome, CustomerRecord, DUE_SHARDS, DeadLetter, DuePage, Erased, Feedback,
    FeedbackCount, Parked, SendEntry, SendPage, SendRecord, Settle, Store, StoreError, all_due,
};
use nudge_local::SqliteStore;
use nudge_testkit::contract;

use super::at;

/// A way to break a store, each against one rule of the contract.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Commits whatever the version.
    IgnoreVersion,
    /// Never marks events processed.
    ForgetEvents,
    /// Checks the version before the event id.
    ConflictBeforeDuplicate,
    /// Loads one version too low.
    LoadStaleVersion,
    /// Keeps only the first 32 KiB of a state.
    TruncateState,
    /// Returns due timers newest first.
    DueReversed,
    /// Treats `until` as exclusive.
    DueExclusive,
    /// Ignores the limit of `due`.
    DueUnlimited,
    /// Answers for the next shard.
    DueWrongShard,
    /// Ignores the cursor (each page starts over).
    DueCursorIgnored,
    /// Hands out no cursor (a page looks like the last).
    DueNoCursor,
    /// Keeps the old timer when a commit clears it.
    KeepTimer,
    /// Lists every send twice.
    SendsTwice,
    /// Drops sends for other customers instead of refusing the commit.
    DropForeignSends,
    /// Claims whatever the lease says (a held claim is taken again).
    ClaimIgnoresLease,
    /// Answers `None` for an unknown key instead of an error.
    ClaimUnknownOk,
    /// Says a settle applied, and changes nothing.
    SettleIgnored,
    /// Settles a key of another customer (as a store keyed by key alone would).
    SettleAnyCustomer,
    /// Answers for the next shard.
    PendingWrongShard,
    /// Treats `until` as a day later.
    PendingTooLate,
    /// Keeps an order's first link.
    OrderKeepsFirstLink,
    /// Forgets suppressions.
    SuppressionForgotten,
    /// Takes a timer out whatever its time.
    SetAsideAnyTime,
    /// Returns every dead letter id as the same string.
    DeadLetterIdSame,
    /// Lists dead letters newest first.
    DeadLettersReversed,
    /// Keeps less of a dead letter's body than allowed.
    BodyCutShort,
    /// Never overwrites metadata.
    MetaNotOverwritten,
    /// Flush fails.
    FlushFails,
    /// Counts a feedback event at every record (forgets the event ids).
    FeedbackCountedAgain,
    /// Lists feedback counts in reverse order.
    FeedbackCountsReversed,
    /// A second park of an (order, event id) replaces the first.
    ParkKeepsLast,
    /// Lists expired parked inputs too.
    ParkedIncludesExpired,
    /// Erases, and reports nothing erased.
    ErasureReportsNothing,
    /// Erases customer `c-2` too.
    ErasureTakesAnother,
    /// Keeps no dead letter's customer (so erasing a customer leaves their dead letters).
    DeadLetterCustomerForgotten,
    /// Says a dead letter was removed, and keeps it.
    RemoveKeepsLetter,
    /// Pages of dead letters start at `after` itself.
    DeadLettersAfterInclusive,
}

/// Makes every feedback event id of [`Fault::FeedbackCountedAgain`] new.
static FEEDBACK_RECORDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `SqliteStore` with one fault.
struct Faulty {
    inner: SqliteStore,
    fault: Fault,
}

impl Store for Faulty {
    async fn load(&self, customer_id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        let record = self.inner.load(customer_id).await?;
        Ok(match self.fault {
            Fault::LoadStaleVersion => record.map(|r| CustomerRecord {
                version: r.version - 1,
                ..r
            }),
            _ => record,
        })
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let current = self
            .inner
            .load(commit.customer_id)
            .await?
            .map(|r| r.version);
        let foreign_dropped: Vec<SendRecord>;
        let mut commit = commit;
        match self.fault {
            Fault::IgnoreVersion => commit.expected_version = current.unwrap_or(0),
            Fault::ForgetEvents => commit.event_id = None,
            Fault::ConflictBeforeDuplicate if current.unwrap_or(0) != commit.expected_version => {
                return Ok(CommitOutcome::Conflict);
            }
            Fault::TruncateState => {
                commit.state = &commit.state[..commit.state.len().min(32 * 1024)];
            }
            Fault::KeepTimer if commit.next_wake.is_none() => {
                let far = at(100_000_000);
                commit.next_wake = all_due(&self.inner, far, 10_000)
                    .await?
                    .into_iter()
                    .find(|(_, id)| id == commit.customer_id)
                    .map(|(t, _)| t);
            }
            Fault::DropForeignSends => {
                foreign_dropped = commit
                    .sends
                    .iter()
                    .filter(|s| s.customer_id == commit.customer_id)
                    .cloned()
                    .collect();
                commit.sends = &foreign_dropped;
            }
            _ => {}
        }
        self.inner.commit(commit).await
    }

    async fn is_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.inner.is_processed(event_id).await
    }

    async fn due(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<DuePage, StoreError> {
        let inner = &self.inner;
        match self.fault {
            Fault::DueReversed => {
                let mut page = inner.due(shard, until, limit, cursor).await?;
                page.due.reverse();
                Ok(page)
            }
            Fault::DueExclusive => {
                let until = until - Duration::milliseconds(1);
                inner.due(shard, until, limit, cursor).await
            }
            Fault::DueUnlimited => inner.due(shard, until, usize::MAX, cursor).await,
            Fault::DueWrongShard if shard < DUE_SHARDS => {
                let next = (shard + 1) % DUE_SHARDS;
                inner.due(next, until, limit, cursor).await
            }
            Fault::DueCursorIgnored => inner.due(shard, until, limit, None).await,
            Fault::DueNoCursor => {
                let page = inner.due(shard, until, limit, cursor).await?;
                Ok(DuePage {
                    cursor: None,
                    ..page
                })
            }
            _ => inner.due(shard, until, limit, cursor).await,
        }
    }

    async fn set_aside(&self, customer_id: &str, due: DateTime<Utc>) -> Result<bool, StoreError> {
        if let Fault::SetAsideAnyTime = self.fault {
            let far = at(100_000_000);
            let timer = all_due(&self.inner, far, 10_000)
                .await?
                .into_iter()
                .find(|(_, id)| id == customer_id);
            if let Some((t, _)) = timer {
                return self.inner.set_aside(customer_id, t).await;
            }
        }
        self.inner.set_aside(customer_id, due).await
    }

    async fn sends(&self, customer_id: &str) -> Result<Vec<SendEntry>, StoreError> {
        let sends = self.inner.sends(customer_id).await?;
        Ok(match self.fault {
            Fault::SendsTwice => sends.iter().flat_map(|s| [s.clone(), s.clone()]).collect(),
            _ => sends,
        })
    }

    async fn claim_send(
        &self,
        customer_id: &str,
        key: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SendEntry>, StoreError> {
        let now = match self.fault {
            Fault::ClaimIgnoresLease => now.max(lease_until).max(at(100_000_000)),
            _ => now,
        };
        match (
            self.fault,
            self.inner
                .claim_send(customer_id, key, now, lease_until)
                .await,
        ) {
            (Fault::ClaimUnknownOk, Err(StoreError::UnknownSend(_))) => Ok(None),
            (_, claimed) => claimed,
        }
    }

    async fn settle_send(
        &self,
        customer_id: &str,
        key: &str,
        settle: Settle<'_>,
    ) -> Result<bool, StoreError> {
        if let Fault::SettleIgnored = self.fault {
            return match self
                .inner
                .sends(customer_id)
                .await?
                .iter()
                .any(|e| e.record.idempotency_key == key)
            {
                true => Ok(true),
                false => Err(StoreError::UnknownSend(key.to_owned())),
            };
        }
        match (
            self.fault,
            self.inner.settle_send(customer_id, key, settle).await,
        ) {
            (Fault::SettleAnyCustomer, Err(StoreError::UnknownSend(_))) => {
                // The first customer of the check that holds the key.
                for owner in ["c-1", "c-2", "c-3"] {
                    if let Ok(applied) = self.inner.settle_send(owner, key, settle).await {
                        return Ok(applied);
                    }
                }
                Err(StoreError::UnknownSend(key.to_owned()))
            }
            (_, settled) => settled,
        }
    }

    async fn pending_sends(
        &self,
        shard: u16,
        until: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SendPage, StoreError> {
        let inner = &self.inner;
        match self.fault {
            Fault::PendingWrongShard if shard < DUE_SHARDS => {
                let next = (shard + 1) % DUE_SHARDS;
                inner.pending_sends(next, until, limit, cursor).await
            }
            Fault::PendingTooLate => {
                let until = until + Duration::days(1);
                inner.pending_sends(shard, until, limit, cursor).await
            }
            _ => inner.pending_sends(shard, until, limit, cursor).await,
        }
    }

    async fn link_order(&self, order_id: &str, customer_id: &str) -> Result<(), StoreError> {
        match self.fault {
            Fault::OrderKeepsFirstLink if self.inner.order_customer(order_id).await?.is_some() => {
                Ok(())
            }
            _ => self.inner.link_order(order_id, customer_id).await,
        }
    }

    async fn order_customer(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.order_customer(order_id).await
    }

    async fn suppress(
        &self,
        address_key: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.suppress(address_key, reason, at).await
    }

    async fn suppression(
        &self,
        address_key: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        match self.fault {
            Fault::SuppressionForgotten => Ok(None),
            _ => self.inner.suppression(address_key).await,
        }
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<String, StoreError> {
        match self.fault {
            Fault::DeadLetterCustomerForgotten => {
                self.inner
                    .record_dead_letter(&DeadLetter {
                        customer_id: None,
                        ..letter.clone()
                    })
                    .await
            }
            Fault::DeadLetterIdSame => self
                .inner
                .record_dead_letter(letter)
                .await
                .map(|_| "1".to_owned()),
            Fault::BodyCutShort => {
                let body: String = letter.body.chars().take(1000).collect();
                self.inner
                    .record_dead_letter(&DeadLetter {
                        body,
                        ..letter.clone()
                    })
                    .await
            }
            _ => self.inner.record_dead_letter(letter).await,
        }
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        match self.fault {
            Fault::DeadLettersReversed => {
                let mut all = self.inner.dead_letters(usize::MAX).await?;
                all.reverse();
                all.truncate(limit);
                Ok(all)
            }
            _ => self.inner.dead_letters(limit).await,
        }
    }

    async fn dead_letters_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        match (self.fault, after) {
            (Fault::DeadLettersAfterInclusive, Some(id)) => {
                let mut page: Vec<_> = self.inner.dead_letter(id).await?.into_iter().collect();
                page.extend(self.inner.dead_letters_after(Some(id), limit).await?);
                page.truncate(limit.max(1));
                Ok(page)
            }
            _ => self.inner.dead_letters_after(after, limit).await,
        }
    }

    async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.inner.dead_letter(id).await
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<bool, StoreError> {
        match self.fault {
            Fault::RemoveKeepsLetter => Ok(self.inner.dead_letter(id).await?.is_some()),
            _ => self.inner.remove_dead_letter(id).await,
        }
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_meta(key).await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        match self.fault {
            Fault::MetaNotOverwritten if self.inner.get_meta(key).await?.is_some() => Ok(()),
            _ => self.inner.set_meta(key, value).await,
        }
    }

    async fn record_feedback(&self, feedback: &Feedback<'_>) -> Result<bool, StoreError> {
        match self.fault {
            Fault::FeedbackCountedAgain => {
                let n = FEEDBACK_RECORDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let event_id = format!("{}#{n}", feedback.event_id);
                let again = Feedback {
                    event_id: &event_id,
                    ..*feedback
                };
                self.inner.record_feedback(&again).await
            }
            _ => self.inner.record_feedback(feedback).await,
        }
    }

    async fn feedback_counts(&self) -> Result<Vec<FeedbackCount>, StoreError> {
        let mut counts = self.inner.feedback_counts().await?;
        if let Fault::FeedbackCountsReversed = self.fault {
            counts.reverse();
        }
        Ok(counts)
    }

    async fn park(&self, parked: &Parked) -> Result<(), StoreError> {
        if let Fault::ParkKeepsLast = self.fault {
            self.inner
                .unpark(&parked.order_id, &parked.event_id)
                .await?;
        }
        self.inner.park(parked).await
    }

    async fn parked(&self, order_id: &str, now: DateTime<Utc>) -> Result<Vec<Parked>, StoreError> {
        match self.fault {
            Fault::ParkedIncludesExpired => {
                self.inner.parked(order_id, DateTime::<Utc>::MIN_UTC).await
            }
            _ => self.inner.parked(order_id, now).await,
        }
    }

    async fn unpark(&self, order_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.inner.unpark(order_id, event_id).await
    }

    async fn erase_customer(&self, customer_id: &str) -> Result<Erased, StoreError> {
        match self.fault {
            Fault::ErasureReportsNothing => {
                self.inner.erase_customer(customer_id).await?;
                Ok(Erased::default())
            }
            Fault::ErasureTakesAnother => {
                self.inner.erase_customer("c-2").await?;
                self.inner.erase_customer(customer_id).await
            }
            _ => self.inner.erase_customer(customer_id).await,
        }
    }

    async fn journal(
        &self,
        customer_id: &str,
    ) -> Result<Vec<nudge_core::journal::JournalEntry>, StoreError> {
        self.inner.journal(customer_id).await
    }

    async fn journal_page(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<nudge_core::store::JournalPage, StoreError> {
        self.inner.journal_page(since, cursor, limit).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        match self.fault {
            Fault::FlushFails => Err(StoreError::Corrupt("flush broken on purpose".into())),
            _ => self.inner.flush().await,
        }
    }

    async fn customers(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<nudge_core::store::CustomerPage, StoreError> {
        self.inner.customers(cursor, limit).await
    }
}

/// Runs the contract check `check` against a store with `fault`; returns its panic message, or
/// `None` if it passed.
fn failure_of(check: &str, fault: Fault) -> Option<String> {
    let store = Faulty {
        inner: SqliteStore::in_memory().unwrap(),
        fault,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let run = std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            match check {
                "create_then_load" => contract::create_then_load(&store).await,
                "versions_increment" => contract::versions_increment(&store).await,
                "stale_version_conflicts" => contract::stale_version_conflicts(&store).await,
                "missing_customer_conflicts" => contract::missing_customer_conflicts(&store).await,
                "duplicate_event_already_processed" => {
                    contract::duplicate_event_already_processed(&store).await
                }
                "already_processed_wins_over_conflict" => {
                    contract::already_processed_wins_over_conflict(&store).await
                }
                "event_ids_are_global" => contract::event_ids_are_global(&store).await,
                "concurrent_writers_one_wins" => {
                    contract::concurrent_writers_one_wins(&store).await
                }
                "due_orders_and_limits" => contract::due_orders_and_limits(&store).await,
                "due_pages_with_a_cursor" => contract::due_pages_with_a_cursor(&store).await,
                "timer_moves_and_clears" => contract::timer_moves_and_clears(&store).await,
                "send_log_unique_by_key" => contract::send_log_unique_by_key(&store).await,
                "send_for_another_customer_is_refused" => {
                    contract::send_for_another_customer_is_refused(&store).await
                }
                "set_aside_takes_the_timer_out" => {
                    contract::set_aside_takes_the_timer_out(&store).await
                }
                "claims_are_exclusive_and_leased" => {
                    contract::claims_are_exclusive_and_leased(&store).await
                }
                "settles_move_a_send_as_documented" => {
                    contract::settles_move_a_send_as_documented(&store).await
                }
                "concurrent_claims_one_wins" => contract::concurrent_claims_one_wins(&store).await,
                "pending_sends_by_shard_and_time" => {
                    contract::pending_sends_by_shard_and_time(&store).await
                }
                "orders_link_to_customers" => contract::orders_link_to_customers(&store).await,
                "suppressions_keep_the_first" => {
                    contract::suppressions_keep_the_first(&store).await
                }
                "dead_letters_round_trip" => contract::dead_letters_round_trip(&store).await,
                "dead_letter_body_truncated" => contract::dead_letter_body_truncated(&store).await,
                "dead_letters_are_paged_read_and_removed" => {
                    contract::dead_letters_are_paged_read_and_removed(&store).await
                }
                "meta_get_set_overwrite" => contract::meta_get_set_overwrite(&store).await,
                "flush_is_repeatable" => contract::flush_is_repeatable(&store).await,
                "state_bytes_round_trip" => contract::state_bytes_round_trip(&store).await,
                "feedback_is_counted_once" => contract::feedback_is_counted_once(&store).await,
                "feedback_counts_are_ordered" => {
                    contract::feedback_counts_are_ordered(&store).await
                }
                "concurrent_feedback_is_counted_once" => {
                    contract::concurrent_feedback_is_counted_once(&store).await
                }
                "parked_inputs_wait_for_their_order" => {
                    contract::parked_inputs_wait_for_their_order(&store).await
                }
                "erasure_removes_one_customer" => {
                    contract::erasure_removes_one_customer(&store).await
                }
                other => panic!("no contract check named {other}"),
            }
        })
    });
    std::panic::catch_unwind(run).err().map(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Keeps the expected panics of `contract_checks_catch_broken_stores` out of the test output.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = std::thread::current()
                .name()
                .is_some_and(|n| n.contains("contract_checks_catch_broken_stores"));
            if !expected {
                default(info);
            }
        }));
    });
}

#[test]
fn contract_checks_catch_broken_stores() {
    quiet_expected_panics();
    let cases = [
        ("stale_version_conflicts", Fault::IgnoreVersion),
        ("missing_customer_conflicts", Fault::IgnoreVersion),
        ("concurrent_writers_one_wins", Fault::IgnoreVersion),
        ("duplicate_event_already_processed", Fault::ForgetEvents),
        ("event_ids_are_global", Fault::ForgetEvents),
        (
            "already_processed_wins_over_conflict",
            Fault::ConflictBeforeDuplicate,
        ),
        ("create_then_load", Fault::LoadStaleVersion),
        ("versions_increment", Fault::LoadStaleVersion),
        ("state_bytes_round_trip", Fault::TruncateState),
        ("due_orders_and_limits", Fault::DueReversed),
        ("due_orders_and_limits", Fault::DueExclusive),
        ("due_pages_with_a_cursor", Fault::DueUnlimited),
        ("due_orders_and_limits", Fault::DueWrongShard),
        ("due_pages_with_a_cursor", Fault::DueCursorIgnored),
        ("due_pages_with_a_cursor", Fault::DueNoCursor),
        ("timer_moves_and_clears", Fault::KeepTimer),
        ("send_log_unique_by_key", Fault::SendsTwice),
        (
            "send_for_another_customer_is_refused",
            Fault::DropForeignSends,
        ),
        ("claims_are_exclusive_and_leased", Fault::ClaimIgnoresLease),
        ("concurrent_claims_one_wins", Fault::ClaimIgnoresLease),
        ("claims_are_exclusive_and_leased", Fault::ClaimUnknownOk),
        ("settles_move_a_send_as_documented", Fault::SettleIgnored),
        (
            "settles_move_a_send_as_documented",
            Fault::SettleAnyCustomer,
        ),
        ("pending_sends_by_shard_and_time", Fault::PendingWrongShard),
        ("pending_sends_by_shard_and_time", Fault::PendingTooLate),
        ("orders_link_to_customers", Fault::OrderKeepsFirstLink),
        ("suppressions_keep_the_first", Fault::SuppressionForgotten),
        ("set_aside_takes_the_timer_out", Fault::SetAsideAnyTime),
        ("dead_letters_round_trip", Fault::DeadLetterIdSame),
        ("dead_letters_round_trip", Fault::DeadLettersReversed),
        ("dead_letter_body_truncated", Fault::BodyCutShort),
        ("meta_get_set_overwrite", Fault::MetaNotOverwritten),
        ("flush_is_repeatable", Fault::FlushFails),
        ("feedback_is_counted_once", Fault::FeedbackCountedAgain),
        (
            "concurrent_feedback_is_counted_once",
            Fault::FeedbackCountedAgain,
        ),
        ("feedback_counts_are_ordered", Fault::FeedbackCountsReversed),
        ("parked_inputs_wait_for_their_order", Fault::ParkKeepsLast),
        (
            "parked_inputs_wait_for_their_order",
            Fault::ParkedIncludesExpired,
        ),
        ("erasure_removes_one_customer", Fault::ErasureReportsNothing),
        ("erasure_removes_one_customer", Fault::ErasureTakesAnother),
        (
            "erasure_removes_one_customer",
            Fault::DeadLetterCustomerForgotten,
        ),
        (
            "dead_letters_round_trip",
            Fault::DeadLetterCustomerForgotten,
        ),
        (
            "dead_letters_are_paged_read_and_removed",
            Fault::RemoveKeepsLetter,
        ),
        (
            "dead_letters_are_paged_read_and_removed",
            Fault::DeadLettersAfterInclusive,
        ),
    ];
    let mut missed = Vec::new();
    for (check, fault) in cases {
        match failure_of(check, fault) {
            Some(message) => assert!(
                message.contains(&format!("store contract `{check}`")),
                "{check} with {fault:?} failed without naming itself: {message}"
            ),
            None => missed.push(format!("{check} passed a store with {fault:?}")),
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}
