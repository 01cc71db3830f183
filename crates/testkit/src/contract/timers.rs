//! Timers: what `due` returns, and how a commit moves or clears a customer's timer.

use chrono::{DateTime, Duration, Utc};

use nudge_core::store::{Commit, DUE_SHARDS, DuePage, Store, StoreError, due_shard};

use super::helpers::{at, commit_ok, due_all, due_page, load, new};

/// `due` returns, per shard, the timers of that shard's customers ([`due_shard`]) at or before
/// `until` (inclusive, to the millisecond), ordered by time and then customer id; customers
/// without a timer never, and every customer in exactly one shard.
pub async fn due_orders_and_limits<S: Store>(store: &S) {
    const CHECK: &str = "due_orders_and_limits";
    let t20 = at(20) + Duration::milliseconds(250);
    let t30 = at(30) + Duration::milliseconds(5);
    for (id, wake) in [
        ("b", Some(t20)),
        ("a", Some(t20)),
        ("c", Some(at(10))),
        ("d", Some(t30)),
        ("e", None),
        ("B", Some(t20)),
    ] {
        commit_ok(
            store,
            CHECK,
            Commit {
                next_wake: wake,
                ..new(id)
            },
        )
        .await;
    }
    let row = |t: DateTime<Utc>, id: &str| (t, id.to_owned());
    let by_shard = async |until: DateTime<Utc>, expected: Vec<(DateTime<Utc>, String)>| {
        for shard in 0..DUE_SHARDS {
            let mine: Vec<_> = expected
                .iter()
                .filter(|(_, id)| due_shard(id) == shard)
                .cloned()
                .collect();
            let page = due_page(store, CHECK, shard, until, 10, None).await;
            ensure_eq!(
                CHECK,
                page,
                DuePage {
                    due: mine,
                    cursor: None
                },
                "shard {shard}, due until {until}"
            );
        }
    };
    by_shard(
        t20,
        vec![
            row(at(10), "c"),
            row(t20, "B"),
            row(t20, "a"),
            row(t20, "b"),
        ],
    )
    .await;
    by_shard(t20 - Duration::milliseconds(1), vec![row(at(10), "c")]).await;
    by_shard(at(9), vec![]).await;
    let all = vec![
        row(at(10), "c"),
        row(t20, "B"),
        row(t20, "a"),
        row(t20, "b"),
        row(t30, "d"),
    ];
    by_shard(t30, all.clone()).await;
    ensure_eq!(
        CHECK,
        due_all(store, CHECK, at(1000)).await,
        all,
        "every shard due until after every timer (e has none)"
    );
}

/// `due` pages through a shard: at most `limit` timers a page (0 read as 1), a cursor after
/// each full page, and every due customer of the shard once, in order, across the pages; a
/// shard out of range or a cursor the store did not make is [`StoreError::InvalidRequest`].
pub async fn due_pages_with_a_cursor<S: Store>(store: &S) {
    const CHECK: &str = "due_pages_with_a_cursor";
    let ids: Vec<String> = (0..48).map(|i| format!("p-{i:02}")).collect();
    // Four customers a second (ties by customer), and every fourth one due after `until`.
    let wake = |i: usize| at(10 + (i as i64 % 12));
    for (i, id) in ids.iter().enumerate() {
        commit_ok(
            store,
            CHECK,
            Commit {
                next_wake: Some(wake(i)),
                ..new(id)
            },
        )
        .await;
    }
    let until = at(18);
    let mut seen = 0;
    let mut busy_shards = 0;
    for shard in 0..DUE_SHARDS {
        let mut expected: Vec<(DateTime<Utc>, String)> = ids
            .iter()
            .enumerate()
            .filter(|(i, id)| due_shard(id) == shard && wake(*i) <= until)
            .map(|(i, id)| (wake(i), id.clone()))
            .collect();
        expected.sort();
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = due_page(store, CHECK, shard, until, 2, cursor.as_deref()).await;
            pages += 1;
            ensure!(
                CHECK,
                page.due.len() <= 2,
                "page {pages} of shard {shard} has {} timers, over the limit of 2",
                page.due.len()
            );
            ensure!(
                CHECK,
                page.cursor.is_some() || page.due.len() < 2 || got.len() + 2 == expected.len(),
                "page {pages} of shard {shard} is full but has no cursor, with more due"
            );
            got.extend(page.due);
            match page.cursor {
                Some(c) if pages <= ids.len() => cursor = Some(c),
                Some(_) => panic!("store contract `{CHECK}`: shard {shard} pages forever"),
                None => break,
            }
        }
        ensure_eq!(CHECK, got, expected, "shard {shard} read 2 at a time");
        seen += got.len();
        busy_shards += usize::from(!got.is_empty());
        let first = due_page(store, CHECK, shard, until, 0, None).await;
        ensure!(
            CHECK,
            first.due.len() == usize::from(!expected.is_empty()),
            "shard {shard} with limit 0 gave {:?}, not one timer",
            first.due
        );
    }
    ensure_eq!(CHECK, seen, 36, "due timers across the shards");
    ensure!(
        CHECK,
        busy_shards > 1,
        "every due customer in one shard: the shards do not follow due_shard"
    );
    for (shard, cursor) in [(DUE_SHARDS, None), (0, Some("not a cursor"))] {
        let result = store.due(shard, until, 2, cursor).await;
        ensure!(
            CHECK,
            matches!(result, Err(StoreError::InvalidRequest(_))),
            "due of shard {shard} with cursor {cursor:?} gave {result:?}, not InvalidRequest"
        );
    }
}

/// A commit replaces the customer's timer: a later time moves it, `None` clears it.
pub async fn timer_moves_and_clears<S: Store>(store: &S) {
    const CHECK: &str = "timer_moves_and_clears";
    commit_ok(
        store,
        CHECK,
        Commit {
            next_wake: Some(at(10)),
            ..new("a")
        },
    )
    .await;
    commit_ok(
        store,
        CHECK,
        Commit {
            next_wake: Some(at(20)),
            ..new("b")
        },
    )
    .await;
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            next_wake: Some(at(30)),
            ..new("a")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        due_all(store, CHECK, at(100)).await,
        vec![(at(20), "b".to_owned()), (at(30), "a".to_owned())],
        "due after moving a's timer from 10s to 30s"
    );
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            ..new("b")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        due_all(store, CHECK, at(100)).await,
        vec![(at(30), "a".to_owned())],
        "due after clearing b's timer"
    );
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 2,
            ..new("a")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        due_all(store, CHECK, at(100)).await,
        vec![],
        "due after clearing both"
    );
}

/// `set_aside` takes a customer's timer out of the due index only while it is still at the
/// time named, leaving the state and version as they are; the customer's next commit sets a
/// timer again.
pub async fn set_aside_takes_the_timer_out<S: Store>(store: &S) {
    const CHECK: &str = "set_aside_takes_the_timer_out";
    for id in ["c-1", "c-2"] {
        let next_wake = Some(at(10));
        commit_ok(
            store,
            CHECK,
            Commit {
                next_wake,
                ..new(id)
            },
        )
        .await;
    }
    let aside = async |id: &str, due| {
        store
            .set_aside(id, due)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: set_aside failed: {e}"))
    };
    ensure_eq!(
        CHECK,
        aside("c-1", at(11)).await,
        false,
        "set aside at another time"
    );
    ensure_eq!(
        CHECK,
        aside("c-3", at(10)).await,
        false,
        "set aside a customer never written"
    );
    let before = load(store, CHECK, "c-1").await;
    ensure_eq!(
        CHECK,
        aside("c-1", at(10)).await,
        true,
        "set aside at the timer's time"
    );
    ensure_eq!(
        CHECK,
        due_all(store, CHECK, at(100)).await,
        vec![(at(10), "c-2".to_owned())],
        "due after c-1 was set aside"
    );
    ensure_eq!(
        CHECK,
        load(store, CHECK, "c-1").await,
        before,
        "c-1's state and version"
    );
    ensure_eq!(CHECK, aside("c-1", at(10)).await, false, "set aside again");
    let next_wake = Some(at(20));
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            next_wake,
            ..new("c-1")
        },
    )
    .await;
    ensure_eq!(
        CHECK,
        due_all(store, CHECK, at(100)).await,
        vec![(at(10), "c-2".to_owned()), (at(20), "c-1".to_owned())],
        "due after c-1's next commit"
    );
}
