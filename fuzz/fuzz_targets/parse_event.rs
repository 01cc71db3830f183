//! `nudge_core::event::parse_event` on arbitrary text: a result or an error, never a panic;
//! an accepted event has a non-empty id, type and customer id, and its `detail.customer.id`
//! is that customer id as a string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nudge_core::event::parse_event;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_event(text) {
        Ok(event) => {
            assert!(!event.id.is_empty());
            assert!(!event.event_type.is_empty());
            assert!(!event.customer_id.is_empty());
            let id = event
                .detail
                .get("customer")
                .and_then(|c| c.get("id"))
                .and_then(|id| id.as_str());
            assert_eq!(id, Some(event.customer_id.as_str()));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
