//! What a store keeps outside any customer: dead letters and metadata; and `flush`.

use chrono::Duration;

use nudge_core::store::{Commit, DeadLetter, Store};

use super::helpers::{at, commit_ok, dead, load, meta, new};

/// Dead letters come back in the order recorded with the ids `record_dead_letter` returned
/// (opaque strings: non-empty, distinct, increasing in byte order for one writer) and every
/// field as recorded.
pub async fn dead_letters_round_trip<S: Store>(store: &S) {
    const CHECK: &str = "dead_letters_round_trip";
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 10).await,
        vec![],
        "dead letters of an empty store"
    );
    let mut letters = vec![
        DeadLetter {
            id: "999".into(),
            event_id: Some("e-1".into()),
            customer_id: Some("c-1".into()),
            source: "events.jsonl:12".into(),
            reason: "detail.customer.id is missing".into(),
            body: "{\"id\":\"e-1\",\"detail\":{}}".into(),
            received_at: at(1) + Duration::milliseconds(7),
        },
        DeadLetter {
            id: String::new(),
            event_id: None,
            customer_id: None,
            source: "eventbridge".into(),
            reason: "not JSON".into(),
            body: "{ not json ş".into(),
            received_at: at(2),
        },
        DeadLetter {
            id: String::new(),
            event_id: Some("e-3".into()),
            customer_id: Some("guest:ş".into()),
            source: "events.jsonl:14".into(),
            reason: String::new(),
            body: String::new(),
            received_at: at(3),
        },
    ];
    let mut last = String::new();
    for letter in &mut letters {
        let id = store.record_dead_letter(letter).await.unwrap_or_else(|e| {
            panic!("store contract `{CHECK}`: recording a dead letter failed: {e}")
        });
        ensure!(CHECK, id > last, "dead letter id `{id}` after id `{last}`");
        last.clone_from(&id);
        letter.id = id;
    }
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 10).await,
        letters,
        "dead letters read back"
    );
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 2).await,
        letters[..2].to_vec(),
        "dead letters, limit 2"
    );
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 0).await,
        vec![],
        "dead letters, limit 0"
    );
}

/// Dead letters are read a page at a time after an id (a removed one too), read one by one
/// by id, and removed by id: removing says whether the letter was there, and a removed letter
/// is no longer read in any way; an id never handed out reads as none.
pub async fn dead_letters_are_paged_read_and_removed<S: Store>(store: &S) {
    const CHECK: &str = "dead_letters_are_paged_read_and_removed";
    let after = async |after: Option<&str>, limit: usize| {
        store
            .dead_letters_after(after, limit)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: dead_letters_after failed: {e}"))
    };
    let one = async |id: &str| {
        store
            .dead_letter(id)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: dead_letter({id}) failed: {e}"))
    };
    let remove = async |id: &str| {
        store.remove_dead_letter(id).await.unwrap_or_else(|e| {
            panic!("store contract `{CHECK}`: remove_dead_letter({id}) failed: {e}")
        })
    };
    ensure_eq!(
        CHECK,
        after(None, 10).await,
        vec![],
        "an empty store's first page"
    );
    let mut letters = Vec::new();
    for i in 0..5 {
        let mut letter = DeadLetter {
            id: String::new(),
            event_id: Some(format!("e-{i}")),
            customer_id: (i % 2 == 0).then(|| format!("c-{i}")),
            source: format!("events.jsonl:{i}"),
            reason: format!("reason {i}"),
            body: format!("{{\"n\":{i}}}"),
            received_at: at(i),
        };
        letter.id = store.record_dead_letter(&letter).await.unwrap_or_else(|e| {
            panic!("store contract `{CHECK}`: recording a dead letter failed: {e}")
        });
        letters.push(letter);
    }
    let id = |i: usize| letters[i].id.as_str();
    ensure_eq!(CHECK, after(None, 2).await, letters[..2].to_vec(), "page 1");
    ensure_eq!(
        CHECK,
        after(Some(id(1)), 2).await,
        letters[2..4].to_vec(),
        "page 2"
    );
    ensure_eq!(
        CHECK,
        after(Some(id(3)), 2).await,
        letters[4..].to_vec(),
        "page 3"
    );
    ensure_eq!(CHECK, after(Some(id(4)), 2).await, vec![], "after the last");
    ensure_eq!(
        CHECK,
        after(None, 0).await,
        letters[..1].to_vec(),
        "limit 0 is read as 1"
    );
    ensure_eq!(
        CHECK,
        one(id(2)).await,
        Some(letters[2].clone()),
        "letter 2 by id"
    );
    ensure!(
        CHECK,
        remove(id(2)).await,
        "removing letter 2 said it was not there"
    );
    ensure!(
        CHECK,
        !remove(id(2)).await,
        "removing letter 2 twice said it was there"
    );
    ensure_eq!(CHECK, one(id(2)).await, None, "letter 2 by id once removed");
    ensure_eq!(
        CHECK,
        after(Some(id(1)), 10).await,
        vec![letters[3].clone(), letters[4].clone()],
        "the page after letter 1 once letter 2 is removed"
    );
    ensure_eq!(
        CHECK,
        after(Some(id(2)), 10).await,
        vec![letters[3].clone(), letters[4].clone()],
        "the page after the removed letter 2"
    );
    ensure_eq!(
        CHECK,
        dead(store, CHECK, 10).await.len(),
        4,
        "every dead letter once letter 2 is removed"
    );
    for never in ["", "999999999", "zz"] {
        ensure_eq!(CHECK, one(never).await, None, "a letter of id `{never}`");
        ensure!(
            CHECK,
            !remove(never).await,
            "removing a letter of id `{never}`"
        );
    }
}

/// A dead letter's body is kept up to [`DeadLetter::MAX_BODY_BYTES`], cut at a character
/// boundary.
pub async fn dead_letter_body_truncated<S: Store>(store: &S) {
    const CHECK: &str = "dead_letter_body_truncated";
    // "ş" is two bytes and starts at every odd offset, so the limit (even) falls inside one.
    let body = format!("a{}", "ş".repeat(DeadLetter::MAX_BODY_BYTES / 2 + 10));
    let letter = DeadLetter {
        id: String::new(),
        event_id: None,
        customer_id: None,
        source: "events.jsonl:1".into(),
        reason: "too large".into(),
        body,
        received_at: at(1),
    };
    store.record_dead_letter(&letter).await.unwrap_or_else(|e| {
        panic!("store contract `{CHECK}`: recording a dead letter failed: {e}")
    });
    let stored = dead(store, CHECK, 1).await;
    ensure_eq!(CHECK, stored.len(), 1, "dead letters after recording one");
    let kept = &stored[0].body;
    ensure_eq!(
        CHECK,
        kept.len(),
        DeadLetter::MAX_BODY_BYTES - 1,
        "length of the body kept"
    );
    ensure!(
        CHECK,
        letter.body.starts_with(kept.as_str()),
        "the body kept is not a prefix of the body"
    );
}

/// Metadata: absent keys are `None`; `set_meta` creates and replaces; keys are independent.
pub async fn meta_get_set_overwrite<S: Store>(store: &S) {
    const CHECK: &str = "meta_get_set_overwrite";
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "clock").await,
        None,
        "clock in an empty store"
    );
    for (key, value) in [
        ("clock", "2026-03-01T10:00:00Z"),
        ("clock", "2026-03-02T10:00:00Z"),
        ("other", ""),
        ("ş", "ğ"),
    ] {
        store
            .set_meta(key, value)
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: set_meta failed: {e}"));
        ensure_eq!(
            CHECK,
            meta(store, CHECK, key).await.as_deref(),
            Some(value),
            "{key} after setting it"
        );
    }
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "clock").await.as_deref(),
        Some("2026-03-02T10:00:00Z"),
        "clock after setting other keys"
    );
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "Clock").await,
        None,
        "a key differing in case"
    );
}

/// `flush` can be called on an empty store, repeatedly, and between writes, which go on and
/// stay readable.
pub async fn flush_is_repeatable<S: Store>(store: &S) {
    const CHECK: &str = "flush_is_repeatable";
    let flush = async || {
        store
            .flush()
            .await
            .unwrap_or_else(|e| panic!("store contract `{CHECK}`: flush failed: {e}"))
    };
    flush().await;
    flush().await;
    commit_ok(store, CHECK, new("c-1")).await;
    flush().await;
    flush().await;
    commit_ok(
        store,
        CHECK,
        Commit {
            expected_version: 1,
            ..new("c-1")
        },
    )
    .await;
    store
        .set_meta("k", "v")
        .await
        .unwrap_or_else(|e| panic!("store contract `{CHECK}`: set_meta failed: {e}"));
    flush().await;
    ensure_eq!(
        CHECK,
        load(store, CHECK, "c-1").await.map(|r| r.version),
        Some(2),
        "version after flushes"
    );
    ensure_eq!(
        CHECK,
        meta(store, CHECK, "k").await.as_deref(),
        Some("v"),
        "meta after flushes"
    );
}
