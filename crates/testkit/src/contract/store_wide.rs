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
            source: "events.jsonl:12".into(),
            reason: "detail.customer.id is missing".into(),
            body: "{\"id\":\"e-1\",\"detail\":{}}".into(),
            received_at: at(1) + Duration::milliseconds(7),
        },
        DeadLetter {
            id: String::new(),
            event_id: None,
            source: "eventbridge".into(),
            reason: "not JSON".into(),
            body: "{ not json ş".into(),
            received_at: at(2),
        },
        DeadLetter {
            id: String::new(),
            event_id: Some("e-3".into()),
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

/// A dead letter's body is kept up to [`DeadLetter::MAX_BODY_BYTES`], cut at a character
/// boundary.
pub async fn dead_letter_body_truncated<S: Store>(store: &S) {
    const CHECK: &str = "dead_letter_body_truncated";
    // "ş" is two bytes and starts at every odd offset, so the limit (even) falls inside one.
    let body = format!("a{}", "ş".repeat(DeadLetter::MAX_BODY_BYTES / 2 + 10));
    let letter = DeadLetter {
        id: String::new(),
        event_id: None,
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
