//! What a sweep reads: the deliverable sends of a shard, by time, a page at a time.

use chrono::{DateTime, Utc};

use nudge_core::store::{Commit, DUE_SHARDS, SendPage, Settle, Store, StoreError, due_shard};

use super::helpers::{at, claim, commit_ok, new, send, sends_page, settle};

/// `pending_sends` lists, per shard, the sends of that shard's customers that are pending or
/// claimed with a `retry_at` at or before `until`, ordered by time, customer and key; a settled
/// send leaves the list, a retried one comes back at its time, a claimed one at its lease's
/// end; pages of any size with their cursors give each exactly once; a shard out of range is
/// [`StoreError::InvalidRequest`].
pub async fn pending_sends_by_shard_and_time<S: Store>(store: &S) {
    const CHECK: &str = "pending_sends_by_shard_and_time";
    // Eleven customers (several per shard for some), one or two sends each.
    let customers: Vec<String> = (0..11).map(|i| format!("c-{i}")).collect();
    for (i, c) in customers.iter().enumerate() {
        let mut sends = vec![send(&format!("k-{i}-a"), c, at(i as i64 % 4))];
        if i % 3 == 0 {
            sends.push(send(&format!("k-{i}-b"), c, at(10)));
        }
        commit_ok(
            store,
            CHECK,
            Commit {
                sends: &sends,
                ..new(c)
            },
        )
        .await;
    }
    let all = every_page(store, CHECK, at(100), 2).await;
    let mut expected: Vec<(DateTime<Utc>, String, String)> = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        expected.push((at(i as i64 % 4), c.clone(), format!("k-{i}-a")));
        if i % 3 == 0 {
            expected.push((at(10), c.clone(), format!("k-{i}-b")));
        }
    }
    expected.sort();
    ensure_eq!(
        CHECK,
        sorted(&all),
        expected,
        "every deliverable send, read 2 at a time"
    );
    for (shard, page) in &all {
        for (_, c, _) in &page.due {
            ensure_eq!(CHECK, due_shard(c), *shard, "the shard of {c}'s send");
        }
        let mut ordered = page.due.clone();
        ordered.sort();
        ensure_eq!(
            CHECK,
            &page.due,
            &ordered,
            "a page of shard {shard} in order"
        );
    }
    let until_2 = sorted(&every_page(store, CHECK, at(2), 1).await);
    let expected_2: Vec<_> = expected
        .iter()
        .filter(|(t, _, _)| *t <= at(2))
        .cloned()
        .collect();
    ensure_eq!(CHECK, until_2, expected_2, "sends due by 2 s (inclusive)");
    // Settled: gone. Claimed: back at the lease's end. Retried: back at the retry.
    settle(
        store,
        CHECK,
        ("c-0", "k-0-a"),
        Settle::Sent { message_id: None },
    )
    .await;
    claim(store, CHECK, ("c-1", "k-1-a"), at(1), at(50)).await;
    claim(store, CHECK, ("c-2", "k-2-a"), at(2), at(60)).await;
    let retry = Settle::Retry {
        at: at(40),
        reason: "busy",
        lease: at(60),
    };
    settle(store, CHECK, ("c-2", "k-2-a"), retry).await;
    let now = sorted(&every_page(store, CHECK, at(30), 3).await);
    let gone = ["k-0-a", "k-1-a", "k-2-a"];
    let expected_30: Vec<_> = expected
        .iter()
        .filter(|(t, _, k)| *t <= at(30) && !gone.contains(&k.as_str()))
        .cloned()
        .collect();
    ensure_eq!(
        CHECK,
        now,
        expected_30,
        "sends due by 30 s after a send, a claim and a retry"
    );
    let later = sorted(&every_page(store, CHECK, at(60), 3).await);
    let mut expected_60: Vec<_> = expected
        .iter()
        .filter(|(_, _, k)| k != "k-0-a" && k != "k-1-a" && k != "k-2-a")
        .cloned()
        .collect();
    expected_60.push((at(50), "c-1".into(), "k-1-a".into()));
    expected_60.push((at(40), "c-2".into(), "k-2-a".into()));
    expected_60.sort();
    ensure_eq!(
        CHECK,
        later,
        expected_60,
        "sends due by 60 s: the claim's lease and the retry"
    );
    let result = store.pending_sends(DUE_SHARDS, at(100), 10, None).await;
    ensure!(
        CHECK,
        matches!(result, Err(StoreError::InvalidRequest(_))),
        "shard {DUE_SHARDS} gave {result:?}, not InvalidRequest"
    );
}

/// Every page of every shard until `until`, `limit` at a time: `(shard, page)`, failing the
/// check when a page is over `limit` or a cursor never ends.
async fn every_page<S: Store>(
    store: &S,
    check: &str,
    until: DateTime<Utc>,
    limit: usize,
) -> Vec<(u16, SendPage)> {
    let mut pages = Vec::new();
    for shard in 0..DUE_SHARDS {
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let page = sends_page(store, check, shard, until, limit, cursor.as_deref()).await;
            ensure!(
                check,
                page.due.len() <= limit,
                "a page of {} over its limit {limit}",
                page.due.len()
            );
            let next = page.cursor.clone();
            pages.push((shard, page));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    pages
}

/// Every send of `pages`, ordered.
fn sorted(pages: &[(u16, SendPage)]) -> Vec<(DateTime<Utc>, String, String)> {
    let mut all: Vec<_> = pages
        .iter()
        .flat_map(|(_, p)| p.due.iter().cloned())
        .collect();
    all.sort();
    all
}
