//! The `ses-events` function's reading and writing (`nudge_lambda::ses_events`) on arbitrary
//! text: `parse` (and `parse_value`, which must agree with it), `foreign`, `redact` (a dead
//! letter's body) and `apply` on a fresh in-memory `SqliteStore`. Never a panic, and:
//! - an error names fields, never a value holding an address;
//! - `redact` leaves no string value holding an `@`;
//! - `apply` ignores mail without Nudge's tags and uncounted kinds; otherwise it counts the
//!   event once for its step (one count of 1 of its kind) and suppresses each recipient of a
//!   hard bounce or complaint (the store then reports it suppressed for that reason); applied
//!   again (a redelivery) it is a duplicate that counts nothing more.
//!
//! Input: an EventBridge event (lossy UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nudge_core::store::{Store, address_key};
use nudge_fuzz::block_on;
use nudge_lambda::ses_events::{Outcome, ParseError, foreign, parse, parse_value, redact};
use nudge_local::SqliteStore;
use serde_json::Value;

/// Whether any string value (keys left out) of `value` holds an `@`.
fn has_at(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('@'),
        Value::Array(items) => items.iter().any(has_at),
        Value::Object(map) => map.values().any(has_at),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse(&text);
    let value = serde_json::from_str::<Value>(&text);
    match &value {
        Ok(value) => assert_eq!(parse_value(value), parsed),
        Err(_) => assert!(matches!(parsed, Err(ParseError::NotJson(_))), "{parsed:?}"),
    }
    if let Ok(mut value) = value {
        redact(&mut value);
        assert!(!has_at(&value), "an address survived redaction");
    }
    let event = match parsed {
        Ok(event) => event,
        Err(e) => {
            assert!(!e.to_string().contains('@'), "{e}");
            return;
        }
    };
    assert!(!event.id.is_empty());
    assert!(foreign(None, &event).is_none());
    if let Some(set) = &event.configuration_set {
        assert!(foreign(Some(set), &event).is_none());
    }

    let store = SqliteStore::in_memory().expect("an in-memory store");
    let first = block_on(nudge_lambda::ses_events::apply(&store, &event)).expect("applied");
    let counts = block_on(store.feedback_counts()).expect("counts");
    let (Some((workflow, step)), Some(kind)) = (&event.step, event.feedback_kind()) else {
        assert!(matches!(first, Outcome::Ignored { .. }), "{first:?}");
        assert!(counts.is_empty());
        return;
    };
    let suppressed = if event.suppression().is_some() {
        event.recipients.len()
    } else {
        0
    };
    assert_eq!(
        first,
        Outcome::Counted {
            event_id: event.id.clone(),
            kind,
            suppressed,
        }
    );
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(
        (
            &counts[0].workflow,
            &counts[0].step,
            counts[0].kind,
            counts[0].count
        ),
        (workflow, step, kind, 1)
    );
    if let Some(reason) = event.suppression() {
        for address in &event.recipients {
            let found = block_on(store.suppression(&address_key(address))).expect("read");
            assert_eq!(found.map(|(r, _)| r).as_deref(), Some(reason));
        }
    }
    let again = block_on(nudge_lambda::ses_events::apply(&store, &event)).expect("applied");
    assert_eq!(
        again,
        Outcome::Duplicate {
            event_id: event.id.clone(),
            suppressed,
        }
    );
    assert_eq!(block_on(store.feedback_counts()).expect("counts"), counts);
});
