//! The journal (`nudge_core::journal`): kept in commit order, bounded to the customer's last
//! `JOURNAL_COMMITS` commits, written only with an applied commit, erased with the customer,
//! and read whole, once, through `journal_page`, which keeps exactly what `journal` keeps.

use nudge_core::journal::{Happened, JOURNAL_COMMITS, JournalEntry};
use nudge_core::store::{Commit, CommitOutcome, Store, StoreError};

use super::helpers::{commit, commit_ok, new, send};

/// `secs` after 2100-01-01: journal entries are dated in the future, so that a store that
/// drops entries past their TTL (DynamoDB: 400 days after a commit's last entry) keeps every
/// entry of these checks whenever the suite runs.
fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2100, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + chrono::Duration::seconds(secs)
}

/// An entry of run `r-<n>` at `at(secs)`.
fn entry(secs: i64, n: u64) -> JournalEntry {
    JournalEntry {
        at: at(secs),
        workflow: Some("welcome-series".to_owned()),
        run: Some(format!("r-{n}")),
        step: Some("hello".to_owned()),
        zone: Some("Europe/Istanbul".to_owned()),
        what: Happened::RunStarted,
    }
}

/// The `n` of an [`entry`]'s run `r-<n>`.
fn run_number(e: &JournalEntry) -> u64 {
    e.run
        .as_deref()
        .and_then(|r| r.strip_prefix("r-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX / 2)
}

/// The journal of `customer_id`, failing `check` on an error.
async fn journal<S: Store>(store: &S, check: &str, customer_id: &str) -> Vec<JournalEntry> {
    store
        .journal(customer_id)
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: journal failed: {e}"))
}

/// Every page of `journal_page(since)`, `limit` commits a page.
async fn all_pages<S: Store>(
    store: &S,
    check: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
    limit: usize,
) -> Vec<(String, JournalEntry)> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let page = store
            .journal_page(since, cursor.as_deref(), limit)
            .await
            .unwrap_or_else(|e| panic!("store contract `{check}`: journal_page failed: {e}"));
        all.extend(page.entries);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
    panic!("store contract `{check}`: journal_page never ended");
}

/// Commits `entries` as `customer_id`'s commit on `version`.
async fn journaled<S: Store>(
    store: &S,
    check: &str,
    customer_id: &str,
    version: u64,
    entries: &[JournalEntry],
) {
    commit_ok(
        store,
        check,
        Commit {
            expected_version: version,
            journal: entries,
            ..new(customer_id)
        },
    )
    .await;
}

/// Entries come back oldest first: commits in order, each commit's entries in the order given;
/// a commit without entries adds none; a customer never written has none.
pub async fn journal_is_kept_in_commit_order<S: Store>(store: &S) {
    let check = "journal_is_kept_in_commit_order";
    ensure_eq!(
        check,
        journal(store, check, "c-1").await,
        vec![],
        "before any commit"
    );
    let first = [entry(0, 1), entry(0, 2), entry(0, 3)];
    let third = [entry(60, 4)];
    journaled(store, check, "c-1", 0, &first).await;
    journaled(store, check, "c-1", 1, &[]).await;
    journaled(store, check, "c-1", 2, &third).await;
    let expected: Vec<_> = first.iter().chain(&third).cloned().collect();
    ensure_eq!(
        check,
        journal(store, check, "c-1").await,
        expected,
        "journal of c-1"
    );
    ensure_eq!(
        check,
        journal(store, check, "c-2").await,
        vec![],
        "another customer"
    );
}

/// After more than `JOURNAL_COMMITS` commits, only the entries of the last `JOURNAL_COMMITS`
/// are kept (commits without entries count as commits).
pub async fn journal_keeps_the_last_commits<S: Store>(store: &S) {
    let check = "journal_keeps_the_last_commits";
    let total = JOURNAL_COMMITS + 5;
    for version in 0..total {
        // Every tenth commit journals nothing.
        let entries = if version % 10 == 9 {
            vec![]
        } else {
            vec![entry(version as i64, version + 1)]
        };
        journaled(store, check, "c-1", version, &entries).await;
    }
    let kept = journal(store, check, "c-1").await;
    let expected: Vec<_> = (total - JOURNAL_COMMITS..total)
        .filter(|v| v % 10 != 9)
        .map(|v| entry(v as i64, v + 1))
        .collect();
    ensure_eq!(
        check,
        kept,
        expected,
        "the last {JOURNAL_COMMITS} commits' entries"
    );
}

/// A commit that is not applied (a duplicate event, a stale version) writes no entry.
pub async fn journal_is_written_only_with_its_commit<S: Store>(store: &S) {
    let check = "journal_is_written_only_with_its_commit";
    let first = [entry(0, 1)];
    commit_ok(
        store,
        check,
        Commit {
            event_id: Some("e-1"),
            journal: &first,
            ..new("c-1")
        },
    )
    .await;
    let again = [entry(5, 2)];
    let duplicate = Commit {
        expected_version: 1,
        event_id: Some("e-1"),
        journal: &again,
        ..new("c-1")
    };
    ensure_eq!(
        check,
        commit(store, check, duplicate).await,
        CommitOutcome::AlreadyProcessed,
        "the duplicate"
    );
    let stale = Commit {
        expected_version: 0,
        event_id: Some("e-2"),
        journal: &again,
        ..new("c-1")
    };
    ensure_eq!(
        check,
        commit(store, check, stale).await,
        CommitOutcome::Conflict,
        "the stale commit"
    );
    ensure_eq!(
        check,
        journal(store, check, "c-1").await,
        first.to_vec(),
        "journal"
    );
    ensure_eq!(
        check,
        all_pages(store, check, None, 10).await,
        vec![("c-1".to_owned(), first[0].clone())],
        "every customer's journal"
    );
}

/// Erasing a customer removes their journal, and only theirs.
pub async fn journal_is_erased_with_the_customer<S: Store>(store: &S) {
    let check = "journal_is_erased_with_the_customer";
    let one = [entry(0, 1)];
    let two = [entry(0, 2)];
    journaled(store, check, "c-1", 0, &one).await;
    journaled(store, check, "c-2", 0, &two).await;
    // A commit without entries keeps no journal record.
    commit_ok(
        store,
        check,
        Commit {
            expected_version: 1,
            ..new("c-1")
        },
    )
    .await;
    let erased = store
        .erase_customer("c-1")
        .await
        .unwrap_or_else(|e| panic!("store contract `{check}`: erase failed: {e}"));
    ensure_eq!(
        check,
        erased.journal_commits,
        1,
        "journal records erased (one commit kept entries)"
    );
    ensure_eq!(check, journal(store, check, "c-1").await, vec![], "erased");
    ensure_eq!(
        check,
        journal(store, check, "c-2").await,
        two.to_vec(),
        "kept"
    );
    ensure_eq!(
        check,
        all_pages(store, check, None, 1).await,
        vec![("c-2".to_owned(), two[0].clone())],
        "every customer's journal"
    );
    // A customer erased and written again starts a new journal.
    let three = [entry(9, 3)];
    journaled(store, check, "c-1", 0, &three).await;
    ensure_eq!(
        check,
        journal(store, check, "c-1").await,
        three.to_vec(),
        "anew"
    );
}

/// Reading every page gives every kept entry at or after `since` exactly once, each commit's
/// entries together and in order; a foreign cursor is refused.
pub async fn journal_pages_give_each_entry_once<S: Store>(store: &S) {
    let check = "journal_pages_give_each_entry_once";
    let mut expected = Vec::new();
    for (c, customer) in ["c-1", "c-2", "c-3"].into_iter().enumerate() {
        for version in 0..4u64 {
            let n = c as u64 * 10 + version;
            let entries = [
                entry(version as i64 * 60, n),
                entry(version as i64 * 60, n + 100),
            ];
            journaled(store, check, customer, version, &entries).await;
            expected.extend(entries.into_iter().map(|e| (customer.to_owned(), e)));
        }
    }
    for limit in [1, 2, 5, 100] {
        let mut got = all_pages(store, check, None, limit).await;
        // Each commit's two entries are together and in order.
        for pair in got.chunks(2) {
            let runs: Vec<_> = pair.iter().map(|(c, e)| (c, run_number(e))).collect();
            ensure!(
                check,
                runs.len() == 2 && runs[0].0 == runs[1].0 && runs[0].1 + 100 == runs[1].1,
                "a page split or reordered a commit's entries: {runs:?}"
            );
        }
        got.sort_by(|a, b| (&a.0, &a.1.run).cmp(&(&b.0, &b.1.run)));
        let mut want = expected.clone();
        want.sort_by(|a, b| (&a.0, &a.1.run).cmp(&(&b.0, &b.1.run)));
        ensure_eq!(check, got, want, "every entry once, pages of {limit}");
    }
    let since = at(120);
    let got = all_pages(store, check, Some(since), 3).await;
    ensure_eq!(check, got.len(), 3 * 2 * 2, "entries at or after {since}");
    ensure!(
        check,
        got.iter().all(|(_, e)| e.at >= since),
        "an entry before {since}"
    );
    let foreign = store.journal_page(None, Some("not-a-cursor"), 10).await;
    ensure!(
        check,
        matches!(foreign, Err(StoreError::InvalidRequest(_))),
        "a foreign cursor: {foreign:?}"
    );
}

/// A commit whose entries are too large to keep whole is applied all the same: the journal
/// keeps what fits, in order, and says how many entries it left out.
pub async fn a_huge_journal_is_cut_not_refused<S: Store>(store: &S) {
    let check = "a_huge_journal_is_cut_not_refused";
    let big = serde_json::Map::from_iter([(
        "notes".to_owned(),
        serde_json::Value::String("x".repeat(300_000)),
    )]);
    let entries = [
        entry(0, 1),
        JournalEntry {
            what: Happened::ProfileUpdated { changes: big },
            ..entry(0, 1)
        },
        entry(0, 2),
    ];
    journaled(store, check, "c-1", 0, &entries).await;
    let kept = journal(store, check, "c-1").await;
    ensure_eq!(
        check,
        kept.iter().map(|e| e.what.name()).collect::<Vec<_>>(),
        vec!["run.started", "run.started", "journal.truncated"],
        "what was kept"
    );
    ensure_eq!(check, kept[1], entries[2], "the entry after the cut");
    ensure_eq!(
        check,
        kept[2].what,
        Happened::JournalTruncated { dropped: 1 },
        "the marker"
    );
}

/// `journal_page` keeps what `journal` keeps, even after a commit that journals nothing on a
/// customer's `JOURNAL_COMMITS + 1`th version and is as large as a commit may be (its
/// customer, its event and 98 sends: on DynamoDB a transaction of 100 items, with no room for
/// the delete of the journal item `JOURNAL_COMMITS` versions back, which stays until its TTL).
pub async fn journal_pages_keep_what_the_journal_keeps<S: Store>(store: &S) {
    let check = "journal_pages_keep_what_the_journal_keeps";
    for version in 0..JOURNAL_COMMITS {
        journaled(
            store,
            check,
            "c-1",
            version,
            &[entry(version as i64, version + 1)],
        )
        .await;
    }
    let sends: Vec<_> = (0..98)
        .map(|i| send(&format!("k-{i}"), "c-1", at(0)))
        .collect();
    commit_ok(
        store,
        check,
        Commit {
            expected_version: JOURNAL_COMMITS,
            event_id: Some("e-full"),
            sends: &sends,
            ..new("c-1")
        },
    )
    .await;
    let other = [entry(7, 500)];
    journaled(store, check, "c-2", 0, &other).await;
    // Version 1 is JOURNAL_COMMITS versions back from version 101.
    let expected: Vec<_> = (1..JOURNAL_COMMITS)
        .map(|v| entry(v as i64, v + 1))
        .collect();
    ensure_eq!(
        check,
        journal(store, check, "c-1").await,
        expected,
        "journal of c-1"
    );
    let mut want: Vec<_> = expected
        .iter()
        .map(|e| ("c-1".to_owned(), e.clone()))
        .chain([("c-2".to_owned(), other[0].clone())])
        .collect();
    want.sort_by(|a, b| (&a.0, run_number(&a.1)).cmp(&(&b.0, run_number(&b.1))));
    for limit in [3, 1000] {
        let mut got = all_pages(store, check, None, limit).await;
        got.sort_by(|a, b| (&a.0, run_number(&a.1)).cmp(&(&b.0, run_number(&b.1))));
        ensure_eq!(
            check,
            got,
            want,
            "every customer's journal, pages of {limit}"
        );
    }
}
