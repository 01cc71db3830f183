//! Every customer's state, page by page ([`Store::customers`]): what `nudge plan` reads to find
//! the runs in flight.

use nudge_core::store::{Commit, CustomerRecord, SendKind, SendRecord, Store, StoreError};

use super::helpers::{at, commit_ok, new};

/// Reading every page of `customers` gives every customer with a state once, with the version
/// and state bytes `load` gives, whatever the page size; each page holds at most `limit`
/// customers, ordered by id; a store without customers gives one empty last page; items
/// beside the states (send log, processed event ids, metadata) are not customers; a cursor
/// the store did not make is refused.
pub async fn customers_are_read_page_by_page<S: Store>(store: &S) {
    const CHECK: &str = "customers_are_read_page_by_page";
    let first = store
        .customers(None, 10)
        .await
        .unwrap_or_else(|e| panic!("store contract `{CHECK}`: customers failed: {e}"));
    ensure!(
        CHECK,
        first.customers.is_empty() && first.cursor.is_none(),
        "an empty store has no customers and no next page, got {first:?}"
    );
    let ids = ["c-3", "B", "c-1", "a", "c-2", "ü-5", "c-10"];
    let mut expected = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let state = format!(r#"{{"id":"{id}","n":{n}}}"#).into_bytes();
        let send = SendRecord {
            idempotency_key: format!("r-{id}.step"),
            customer_id: (*id).to_owned(),
            workflow: "w".to_owned(),
            step: "step".to_owned(),
            kind: SendKind::Email,
            category: "marketing".to_owned(),
            tags: Vec::new(),
            at: at(5),
            payload: b"message".to_vec(),
        };
        let event = format!("e-{id}");
        commit_ok(
            store,
            CHECK,
            Commit {
                state: &state,
                next_wake: (n % 2 == 0).then(|| at(100)),
                event_id: Some(&event),
                sends: std::slice::from_ref(&send),
                ..new(id)
            },
        )
        .await;
        expected.push(((*id).to_owned(), state));
    }
    // A second commit: the page gives the latest version.
    let again = br#"{"id":"a","n":"again"}"#;
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            state: again,
            ..new("a")
        },
    )
    .await;
    store
        .set_meta("clock", "2026-03-01T00:00:00Z")
        .await
        .unwrap_or_else(|e| panic!("store contract `{CHECK}`: set_meta failed: {e}"));
    expected.sort();
    let expected: Vec<(String, CustomerRecord)> = expected
        .into_iter()
        .map(|(id, state)| {
            let record = if id == "a" {
                CustomerRecord {
                    version: 2,
                    state: again.to_vec(),
                }
            } else {
                CustomerRecord { version: 1, state }
            };
            (id, record)
        })
        .collect();
    for limit in [1, 2, 3, 100] {
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let page = store
                .customers(cursor.as_deref(), limit)
                .await
                .unwrap_or_else(|e| panic!("store contract `{CHECK}`: customers failed: {e}"));
            ensure!(
                CHECK,
                page.customers.len() <= limit,
                "a page of limit {limit} held {} customers",
                page.customers.len()
            );
            ensure!(
                CHECK,
                page.customers.windows(2).all(|w| w[0].0 < w[1].0),
                "a page is ordered by customer id"
            );
            got.extend(page.customers);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        ensure_eq!(
            CHECK,
            got,
            expected,
            "every customer once, with limit {limit}"
        );
    }
    let refused = store.customers(Some("not a cursor"), 10).await;
    ensure!(
        CHECK,
        matches!(refused, Err(StoreError::InvalidRequest(_))),
        "a foreign cursor is InvalidRequest, got {refused:?}"
    );
}
