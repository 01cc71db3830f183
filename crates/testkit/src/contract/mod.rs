//! The contract every [`Store`] must pass: one suite, run against every implementation.
//!
//! Each check takes a fresh, empty store, exercises one rule through the public interface only,
//! and panics with a message naming the check and what differed. [`run_all`] runs every check,
//! each on a new store from the caller's factory:
//!
//! ```no_run
//! use nudge_core::store::Store;
//! use nudge_testkit::contract;
//!
//! /// In a store's test: every check, each on a fresh store from `open_empty_store`.
//! async fn passes_the_contract<S: Store>(open_empty_store: impl AsyncFn() -> S) {
//!     contract::run_all(open_empty_store).await;
//! }
//! ```
//!
//! `tests/store/` at the workspace root runs it on every `SqliteStore` configuration, with
//! `async || SqliteStore::in_memory().unwrap()` and the like.
//!
//! Times used here have whole milliseconds, the precision every store keeps.

use nudge_core::store::Store;

/// Fails check `$check` unless `$left == $right`.
macro_rules! ensure_eq {
    ($check:expr, $left:expr, $right:expr, $($what:tt)+) => {
        // A match, as in `assert_eq!`, keeps temporaries alive for the comparison.
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    panic!(
                        "store contract `{}` failed: {}\n       got: {:?}\n  expected: {:?}",
                        $check,
                        format_args!($($what)+),
                        left,
                        right,
                    );
                }
            }
        }
    };
}

/// Fails check `$check` unless `$cond` holds.
macro_rules! ensure {
    ($check:expr, $cond:expr, $($what:tt)+) => {{
        if !$cond {
            panic!("store contract `{}` failed: {}", $check, format_args!($($what)+));
        }
    }};
}

// The checks, by area; each is public at `contract::<check>` for callers running one alone.
mod aside;
mod commits;
mod concurrency;
mod customers;
mod helpers;
mod journal;
mod lookups;
mod send_log;
mod store_wide;
mod sweep;
mod timers;

pub use aside::{
    concurrent_feedback_is_counted_once, erasure_removes_one_customer, feedback_counts_are_ordered,
    feedback_is_counted_once, parked_inputs_wait_for_their_order,
};
pub use commits::{
    already_processed_wins_over_conflict, create_then_load, duplicate_event_already_processed,
    event_ids_are_global, missing_customer_conflicts, stale_version_conflicts,
    state_bytes_round_trip, versions_increment,
};
pub use concurrency::concurrent_writers_one_wins;
pub use customers::customers_are_read_page_by_page;
pub use helpers::new;
pub use journal::{
    a_huge_journal_is_cut_not_refused, journal_is_erased_with_the_customer,
    journal_is_kept_in_commit_order, journal_is_written_only_with_its_commit,
    journal_keeps_the_last_commits, journal_pages_give_each_entry_once,
    journal_pages_keep_what_the_journal_keeps,
};
pub use lookups::{orders_link_to_customers, suppressions_keep_the_first};
pub use send_log::{
    claims_are_exclusive_and_leased, concurrent_claims_one_wins,
    send_for_another_customer_is_refused, send_log_unique_by_key,
    settles_move_a_send_as_documented,
};
pub use store_wide::{
    dead_letter_body_truncated, dead_letters_are_paged_read_and_removed, dead_letters_round_trip,
    flush_is_repeatable, meta_get_set_overwrite,
};
pub use sweep::pending_sends_by_shard_and_time;
pub use timers::{
    due_orders_and_limits, due_pages_with_a_cursor, set_aside_takes_the_timer_out,
    timer_moves_and_clears,
};

/// Runs every check of the contract, each on a new store made by `make`, which must return an
/// empty store each time.
pub async fn run_all<S: Store>(make: impl AsyncFn() -> S) {
    // Each check is boxed: their futures hold a store and its SDK calls, and all of them in
    // one future overflowed the test thread's stack in debug builds.
    Box::pin(create_then_load(&make().await)).await;
    Box::pin(versions_increment(&make().await)).await;
    Box::pin(stale_version_conflicts(&make().await)).await;
    Box::pin(missing_customer_conflicts(&make().await)).await;
    Box::pin(duplicate_event_already_processed(&make().await)).await;
    Box::pin(already_processed_wins_over_conflict(&make().await)).await;
    Box::pin(event_ids_are_global(&make().await)).await;
    Box::pin(concurrent_writers_one_wins(&make().await)).await;
    Box::pin(due_orders_and_limits(&make().await)).await;
    Box::pin(due_pages_with_a_cursor(&make().await)).await;
    Box::pin(timer_moves_and_clears(&make().await)).await;
    Box::pin(set_aside_takes_the_timer_out(&make().await)).await;
    Box::pin(send_log_unique_by_key(&make().await)).await;
    Box::pin(send_for_another_customer_is_refused(&make().await)).await;
    Box::pin(claims_are_exclusive_and_leased(&make().await)).await;
    Box::pin(settles_move_a_send_as_documented(&make().await)).await;
    Box::pin(concurrent_claims_one_wins(&make().await)).await;
    Box::pin(pending_sends_by_shard_and_time(&make().await)).await;
    Box::pin(orders_link_to_customers(&make().await)).await;
    Box::pin(suppressions_keep_the_first(&make().await)).await;
    Box::pin(dead_letters_round_trip(&make().await)).await;
    Box::pin(dead_letter_body_truncated(&make().await)).await;
    Box::pin(dead_letters_are_paged_read_and_removed(&make().await)).await;
    Box::pin(meta_get_set_overwrite(&make().await)).await;
    Box::pin(flush_is_repeatable(&make().await)).await;
    Box::pin(state_bytes_round_trip(&make().await)).await;
    Box::pin(feedback_is_counted_once(&make().await)).await;
    Box::pin(feedback_counts_are_ordered(&make().await)).await;
    Box::pin(concurrent_feedback_is_counted_once(&make().await)).await;
    Box::pin(parked_inputs_wait_for_their_order(&make().await)).await;
    Box::pin(erasure_removes_one_customer(&make().await)).await;
    Box::pin(customers_are_read_page_by_page(&make().await)).await;
    Box::pin(journal_is_kept_in_commit_order(&make().await)).await;
    Box::pin(journal_keeps_the_last_commits(&make().await)).await;
    Box::pin(journal_is_written_only_with_its_commit(&make().await)).await;
    Box::pin(journal_is_erased_with_the_customer(&make().await)).await;
    Box::pin(journal_pages_give_each_entry_once(&make().await)).await;
    Box::pin(a_huge_journal_is_cut_not_refused(&make().await)).await;
    Box::pin(journal_pages_keep_what_the_journal_keeps(&make().await)).await;
}
