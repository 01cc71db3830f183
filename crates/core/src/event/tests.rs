//! Parsing events: what is accepted, and what is rejected with which message.

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::{Birthday, EventError, MAX_EVENT_BYTES, customer_named, parse_event};

/// A change to a valid event's JSON.
type Edit = fn(&mut Value);

/// A valid event with `f` applied to its JSON.
fn event_with(f: impl FnOnce(&mut Value)) -> String {
    let mut v = json!({
        "version": "0", "id": "ev-1", "detail-type": "order.placed", "source": "store",
        "account": "123456789012", "time": "2026-03-01T13:00:00+03:00",
        "region": "eu-central-1", "resources": [],
        "detail": {
            "customer": {"id": "c-1001", "email": "ayse@example.com", "first_name": "Ayşe",
                         "last_name": "Yılmaz", "timezone": "Europe/Istanbul",
                         "birthday": "1991-06-14", "accepts_marketing": true,
                         "orders_count": 1, "tags": ["newsletter"], "loyalty_tier": "gold"},
            "order": {"id": "o-77", "total": 59.90, "currency": "TRY"}}
    });
    f(&mut v);
    v.to_string()
}

fn customer(v: &mut Value) -> &mut Map<String, Value> {
    v["detail"]["customer"].as_object_mut().unwrap()
}

fn err(text: &str) -> EventError {
    parse_event(text).expect_err("should be rejected")
}

/// Every message is one line and never shows the customer's address or name.
fn assert_discreet(e: &EventError) {
    let msg = e.to_string();
    assert!(!msg.contains('\n') && !msg.contains('\r'), "{msg}");
    for secret in ["ayse@example.com", "Ayşe", "Yılmaz", "1991-06-14"] {
        assert!(!msg.contains(secret), "{msg} shows {secret}");
    }
}

#[test]
fn reads_a_complete_event() {
    let e = parse_event(&event_with(|_| {})).unwrap();
    assert_eq!(e.id, "ev-1");
    assert_eq!(e.event_type, "order.placed");
    assert_eq!(e.time.to_rfc3339(), "2026-03-01T10:00:00+00:00");
    assert_eq!(e.source.as_deref(), Some("store"));
    assert_eq!(e.customer_id, "c-1001");
    assert_eq!(e.detail["order"]["id"], "o-77");
    assert_eq!(e.detail["customer"]["loyalty_tier"], "gold");
}

#[test]
fn reads_a_minimal_event_and_unknown_types() {
    let text = r#"{"id":"x","detail-type":"loyalty.points_earned","time":"2026-01-05T00:00:00Z","detail":{"customer":{"id":"c-1"}}}"#;
    let e = parse_event(text).unwrap();
    assert_eq!(e.event_type, "loyalty.points_earned");
    assert_eq!(e.source, None);
    assert_eq!(e.customer_id, "c-1");
}

#[test]
fn accepts_null_profile_fields_and_a_line_ending() {
    let text = event_with(|v| {
        for f in [
            "email",
            "first_name",
            "last_name",
            "timezone",
            "birthday",
            "accepts_marketing",
            "orders_count",
            "tags",
        ] {
            customer(v).insert(f.into(), Value::Null);
        }
    });
    let e = parse_event(&format!("{text}\r\n")).unwrap();
    assert!(e.detail["customer"]["email"].is_null());
}

#[test]
fn a_byte_order_mark_is_the_file_readers_to_skip_not_every_lines() {
    // A mark in the middle of a file is not JSON; the file's reader skips one at its start.
    let err = parse_event(&format!("\u{feff}{}", event_with(|_| {}))).unwrap_err();
    assert!(matches!(err, EventError::NotJson { .. }), "{err}");
}

#[test]
fn a_key_repeated_in_an_object_is_refused_wherever_it_is() {
    let text = event_with(|_| {});
    for (from, to) in [
        ("\"time\":", "\"time\":\"2062-03-01T00:00:00Z\",\"time\":"),
        ("\"email\":", "\"email\":\"x@example.com\",\"email\":"),
    ] {
        let twice = text.replacen(from, to, 1);
        assert_ne!(twice, text);
        let err = parse_event(&twice).unwrap_err();
        assert!(matches!(err, EventError::NotJson { .. }), "{err}");
        assert!(err.to_string().contains("appears twice"), "{err}");
        assert_eq!(err.event_id(), Some("ev-1"), "{err}");
    }
}

#[test]
fn times_outside_the_accepted_range_are_refused_and_named() {
    for bad in [
        "9999-12-31T23:59:59Z",
        "9000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ] {
        let err = parse_event(&event_with(|v| v["time"] = json!(bad))).unwrap_err();
        assert!(
            matches!(err, EventError::TimeOutOfRange { .. }),
            "{bad}: {err}"
        );
        assert_eq!(err.field(), Some("time"));
        assert!(err.to_string().contains(bad), "{err}");
    }
    for good in ["1970-01-01T00:00:00Z", "8999-12-31T23:59:59Z"] {
        let e = parse_event(&event_with(|v| v["time"] = json!(good))).unwrap();
        assert_eq!(e.time, chrono::DateTime::parse_from_rfc3339(good).unwrap());
    }
}

#[test]
fn a_line_that_is_not_utf8_is_named_by_its_id_and_the_place_of_the_bad_byte() {
    let mut bytes = br#"{"id":"ev-9","name":"Ay"#.to_vec();
    bytes.push(0xfe);
    bytes.extend_from_slice(b"e\"}");
    let err = std::str::from_utf8(&bytes).unwrap_err();
    let err = EventError::not_utf8(&bytes, err);
    assert_eq!(err.event_id(), Some("ev-9"));
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    assert!(err.to_string().contains("23 bytes"), "{err}");
}

#[test]
fn accepts_values_checked_only_where_used() {
    // An invalid address and an invalid zone are the sending rules' and the clock's to
    // handle, not reasons to drop the event.
    let text = event_with(|v| {
        customer(v).insert("email".into(), json!("not an address"));
        customer(v).insert("timezone".into(), json!("UTC+03:00"));
        customer(v).insert("tags".into(), json!([]));
        customer(v).insert("orders_count".into(), json!(0));
    });
    parse_event(&text).unwrap();
}

#[test]
fn turns_an_integer_customer_id_into_its_string() {
    let text = event_with(|v| {
        customer(v).insert("id".into(), json!(7_418_530_234_567_u64));
    });
    let e = parse_event(&text).unwrap();
    assert_eq!(e.customer_id, "7418530234567");
    assert_eq!(e.detail["customer"]["id"], "7418530234567");
}

#[test]
fn normalises_time_to_utc() {
    let text = event_with(|v| v["time"] = json!("2026-03-29T02:30:00-04:00"));
    let e = parse_event(&text).unwrap();
    assert_eq!(e.time.to_rfc3339(), "2026-03-29T06:30:00+00:00");
}

#[test]
fn birthdays_accept_29_february_in_any_year() {
    for ok in ["1992-02-29", "1900-02-29", "1991-06-14", "0000-12-31"] {
        assert!(Birthday::parse(ok).is_some(), "{ok}");
    }
    for bad in [
        "1991-02-30",
        "1991-04-31",
        "1991-13-01",
        "1991-00-10",
        "1991-06-00",
        "91-06-14",
        "1991/06/14",
        "1991-6-14",
        "14.06.1991",
        "1991-06-14T00:00:00",
        "+991-06-14",
        "",
    ] {
        assert!(Birthday::parse(bad).is_none(), "{bad}");
    }
    let b = Birthday::parse("1992-02-29").unwrap();
    assert_eq!((b.year, b.month, b.day), (1992, 2, 29));
    assert_eq!(b.to_string(), "1992-02-29");
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
    assert_eq!(b.in_year(2026), date(2026, 2, 28));
    assert_eq!(b.in_year(2028), date(2028, 2, 29));
    let placeholder = Birthday::parse("1900-02-29").unwrap();
    assert_eq!(placeholder.in_year(2027), date(2027, 2, 28));
    assert_eq!(
        Birthday::parse("1991-06-14").unwrap().in_year(2026),
        date(2026, 6, 14)
    );
    let text = event_with(|v| {
        customer(v).insert("birthday".into(), json!("1992-02-29"));
    });
    parse_event(&text).unwrap();
}

#[test]
fn rejects_a_line_over_the_limit_before_parsing() {
    // Valid JSON, but too large; the id is still read from the line, even after a large
    // `detail` (as producers that sort keys write it).
    let big = format!(
        r#"{{"detail": {{"customer": {{"id": "c-1", "email": "ayse@example.com"}}, "note": "{}"}}, "id": "ev-1", "detail-type": "order.placed", "time": "2026-03-01T10:00:00Z"}}"#,
        "x".repeat(MAX_EVENT_BYTES)
    );
    let e = err(&big);
    assert!(matches!(e, EventError::TooLarge { .. }));
    assert_eq!(e.event_id(), Some("ev-1"));
    assert_eq!(e.field(), None);
    assert_discreet(&e);
    assert!(
        e.to_string()
            .contains("over EventBridge's limit of 262144 bytes")
    );
    // Not JSON at all and too large: rejected for its size, without parsing.
    let e = err(&"[".repeat(MAX_EVENT_BYTES + 1));
    assert_eq!(
        e,
        EventError::TooLarge {
            event_id: None,
            bytes: MAX_EVENT_BYTES + 1
        }
    );
    // Exactly at the limit is fine (the padding makes the line exactly MAX_EVENT_BYTES).
    let base = event_with(|v| v["detail"]["order"]["note"] = json!(""));
    let pad = MAX_EVENT_BYTES - base.len();
    let exact = event_with(|v| v["detail"]["order"]["note"] = json!("x".repeat(pad)));
    assert_eq!(exact.len(), MAX_EVENT_BYTES);
    parse_event(&format!("{exact}\n")).unwrap();
}

#[test]
fn rejects_malformed_json_naming_the_id_when_readable() {
    let text = r#"{"version": "0", "id": "ev-1", "detail-type": "order.placed", "time": "2026-03-01T10:00:00Z", "detail": {"customer": {"id": "c-1", "email": "ayse@exa"#;
    let e = err(text);
    assert!(matches!(e, EventError::NotJson { .. }), "{e:?}");
    assert_eq!(e.event_id(), Some("ev-1"));
    assert!(
        e.to_string().starts_with("event `ev-1`: not valid JSON: "),
        "{e}"
    );
    assert_discreet(&e);

    let e = err("{\"detail\": {\"customer\": {\"id\": \"c-1\"}}, \"id\": \"late\", oops}");
    assert_eq!(e.event_id(), Some("late"));
    // A nested `id` is not the event's.
    let e = err("{\"detail\": {\"customer\": {\"id\": \"c-1\"");
    assert_eq!(e.event_id(), None);
    assert_eq!(
        e.to_string().split(':').next(),
        Some("event (id unreadable)")
    );
    let e = err("");
    assert!(matches!(e, EventError::NotJson { event_id: None, .. }));
    let e = err("{\"id\": \"a\\\"b\", ");
    assert_eq!(e.event_id(), Some("a\"b"));
}

#[test]
fn rejects_json_that_is_not_an_object() {
    for (text, found) in [
        ("[]", "an array"),
        ("\"x\"", "a string"),
        ("3", "a whole number"),
        ("null", "null"),
    ] {
        let e = err(text);
        assert_eq!(e, EventError::NotAnObject { found });
        assert_eq!(e.event_id(), None);
    }
    assert_eq!(
        err("[]").to_string(),
        "event: expected a JSON object, found an array"
    );
}

#[test]
fn rejects_missing_required_fields() {
    let cases: [(&str, Edit); 6] = [
        ("id", |v| {
            v.as_object_mut().unwrap().remove("id");
        }),
        ("detail-type", |v| {
            v.as_object_mut().unwrap().remove("detail-type");
        }),
        ("time", |v| v["time"] = Value::Null),
        ("detail", |v| {
            v.as_object_mut().unwrap().remove("detail");
        }),
        ("detail.customer", |v| {
            v["detail"].as_object_mut().unwrap().remove("customer");
        }),
        ("detail.customer.id", |v| {
            customer(v).remove("id");
        }),
    ];
    for (field, f) in cases {
        let e = err(&event_with(f));
        assert!(matches!(e, EventError::MissingField { .. }), "{e:?}");
        assert_eq!(e.field(), Some(field));
        assert_eq!(
            e.event_id(),
            if field == "id" { None } else { Some("ev-1") }
        );
        assert_discreet(&e);
    }
    assert_eq!(
        err(&event_with(|v| {
            customer(v).remove("id");
        }))
        .to_string(),
        "event `ev-1`: detail.customer.id: missing (required)"
    );
    assert_eq!(
        err(&event_with(|v| {
            v.as_object_mut().unwrap().remove("id");
        }))
        .to_string(),
        "event (id unreadable): id: missing (required)"
    );
}

/// Fails unless each edit is rejected as a wrong type of `field`, found as `found`, in a
/// discreet message.
fn assert_wrong_types(cases: &[(Edit, &str, &str)]) {
    for &(f, field, found) in cases {
        let e = err(&event_with(f));
        let EventError::WrongType { found: got, .. } = &e else {
            panic!("{field}: {e:?}");
        };
        assert_eq!((e.field(), *got), (Some(field), found), "{e}");
        assert_discreet(&e);
    }
}

#[test]
fn rejects_wrong_types_in_the_envelope_with_the_full_field_path() {
    assert_wrong_types(&[
        (|v| v["id"] = json!(17), "id", "a whole number"),
        (|v| v["id"] = json!(""), "id", "an empty string"),
        (
            |v| v["detail-type"] = json!(["order.placed"]),
            "detail-type",
            "an array",
        ),
        (
            |v| v["detail-type"] = json!("  "),
            "detail-type",
            "a blank string",
        ),
        (
            |v| v["time"] = json!(1_772_359_200),
            "time",
            "a whole number",
        ),
        (|v| v["source"] = json!(true), "source", "a boolean"),
        (|v| v["detail"] = json!("{}"), "detail", "a string"),
        (
            |v| v["detail"]["customer"] = json!("c-1"),
            "detail.customer",
            "a string",
        ),
    ]);
}

#[test]
fn rejects_wrong_types_in_the_customer_with_the_full_field_path() {
    assert_wrong_types(&[
        (
            |v| v["detail"]["customer"]["id"] = json!(""),
            "detail.customer.id",
            "an empty string",
        ),
        (
            |v| v["detail"]["customer"]["id"] = json!(-4),
            "detail.customer.id",
            "a negative number",
        ),
        (
            |v| v["detail"]["customer"]["id"] = json!(4.5),
            "detail.customer.id",
            "a fractional or very large number",
        ),
        (
            |v| v["detail"]["customer"]["email"] = json!(["ayse@example.com"]),
            "detail.customer.email",
            "an array",
        ),
        (
            |v| v["detail"]["customer"]["first_name"] = json!({"tr": "Ayşe"}),
            "detail.customer.first_name",
            "an object",
        ),
        (
            |v| v["detail"]["customer"]["timezone"] = json!(3),
            "detail.customer.timezone",
            "a whole number",
        ),
        (
            |v| v["detail"]["customer"]["accepts_marketing"] = json!("yes"),
            "detail.customer.accepts_marketing",
            "a string",
        ),
        (
            |v| v["detail"]["customer"]["orders_count"] = json!(-1),
            "detail.customer.orders_count",
            "a negative number",
        ),
        (
            |v| v["detail"]["customer"]["orders_count"] = json!("3"),
            "detail.customer.orders_count",
            "a string",
        ),
        (
            |v| v["detail"]["customer"]["tags"] = json!("vip"),
            "detail.customer.tags",
            "a string",
        ),
        (
            |v| v["detail"]["customer"]["tags"] = json!(["vip", 2]),
            "detail.customer.tags[1]",
            "a whole number",
        ),
    ]);
    assert_eq!(
        err(&event_with(|v| {
            customer(v).insert("accepts_marketing".into(), json!("true"));
        }))
        .to_string(),
        "event `ev-1`: detail.customer.accepts_marketing: expected true/false (or null), found a string"
    );
    // Birthdays of the wrong type are wrong types; strings that are no date are bad dates.
    let e = err(&event_with(|v| {
        customer(v).insert("birthday".into(), json!(19910614));
    }));
    assert_eq!(e.field(), Some("detail.customer.birthday"));
    assert!(matches!(e, EventError::WrongType { .. }));
}

/// Errors are logged and kept as dead letters' reasons: a value they quote (an event id, a
/// time) shows no address that was in it.
#[test]
fn errors_quote_input_values_without_their_addresses() {
    let e = err(&event_with(|v| {
        v["id"] = json!("ayse.yilmaz@example.com");
        v["time"] = json!("to “ayse.yilmaz@example.com”");
    }));
    assert!(matches!(e, EventError::BadTime { .. }), "{e:?}");
    let text = e.to_string();
    assert_eq!(
        text,
        "event `[address]`: time: `to “[address]”` is not an RFC 3339 time with an offset, such as 2026-03-01T10:00:00Z"
    );
}

#[test]
fn rejects_bad_times_and_dates() {
    for bad in [
        "2026-03-01",
        "2026-03-01T10:00:00",
        "yesterday",
        "2026-02-30T10:00:00Z",
    ] {
        let e = err(&event_with(|v| v["time"] = json!(bad)));
        assert!(matches!(e, EventError::BadTime { .. }), "{bad}");
        assert_eq!(e.field(), Some("time"));
        assert_eq!(e.event_id(), Some("ev-1"));
    }
    assert_eq!(
        err(&event_with(|v| v["time"] = json!("2026-03-01"))).to_string(),
        "event `ev-1`: time: `2026-03-01` is not an RFC 3339 time with an offset, such as 2026-03-01T10:00:00Z"
    );
    let e = err(&event_with(|v| {
        customer(v).insert("birthday".into(), json!("1991-02-30"));
    }));
    assert_eq!(
        e,
        EventError::BadDate {
            event_id: Some("ev-1".into()),
            field: "detail.customer.birthday"
        }
    );
    assert_eq!(
        e.to_string(),
        "event `ev-1`: detail.customer.birthday: expected a date \"YYYY-MM-DD\" (or null), found a string that is not one"
    );
    assert_discreet(&e);
}

#[test]
fn messages_stay_on_one_line_and_short() {
    let e = err(&event_with(|v| {
        v["id"] = json!(format!("evil\nid\u{7}{}", "x".repeat(500)));
        v["time"] = json!("not\na time");
    }));
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.starts_with("event `evil\\nid\\u{7}xxx"), "{msg}");
    assert!(msg.len() < 300, "{msg}");
    // The id itself is kept whole for the dead letter.
    assert_eq!(e.event_id().map(str::len), Some(4 + 1 + 2 + 1 + 500));
}

#[test]
fn every_line_of_the_sample_is_a_valid_event() {
    let sample = include_str!("../../../../events/sample.jsonl");
    let mut count = 0;
    for (n, line) in sample.lines().enumerate() {
        let e = parse_event(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let v: Value = serde_json::from_str(line).unwrap();
        for field in [
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
            "resources",
            "detail",
        ] {
            assert!(v.get(field).is_some(), "line {}: no {field}", n + 1);
        }
        assert_eq!(e.source.as_deref(), Some("store"), "line {}", n + 1);
        if let Some(email) = e.detail["customer"].get("email").and_then(Value::as_str) {
            assert!(
                [
                    ".example.com",
                    "@example.com",
                    "@example.org",
                    "@example.net"
                ]
                .iter()
                .any(|d| email.ends_with(d)),
                "line {}: {email}",
                n + 1
            );
        }
        count += 1;
    }
    assert!(count > 200, "{count} events");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
            Just(json!("1992-02-29")),
            Just(json!("2026-03-01T10:00:00Z")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_.-]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_event(&text).map_err(|e| (e.to_string(), e.event_id().map(str::len)));
        }

        #[test]
        fn arbitrary_field_values_never_panic(
            field in prop_oneof![
                Just("id"), Just("detail-type"), Just("time"), Just("source"), Just("detail"),
                Just("customer"), Just("customer.id"), Just("email"), Just("birthday"),
                Just("accepts_marketing"), Just("orders_count"), Just("tags"), Just("custom"),
            ],
            value in json_value(),
            cut in any::<prop::sample::Index>(),
        ) {
            let text = event_with(|v| match field {
                "customer" => v["detail"]["customer"] = value,
                "customer.id" => v["detail"]["customer"]["id"] = value,
                "email" | "birthday" | "accepts_marketing" | "orders_count" | "tags" | "custom" => {
                    v["detail"]["customer"][field] = value;
                }
                top => v[top] = value,
            });
            match parse_event(&text) {
                Ok(e) => prop_assert!(!e.customer_id.is_empty()),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(!msg.contains('\n'));
                    prop_assert!(!msg.contains("ayse@example.com"));
                }
            }
            // Any prefix of the line (a truncated write) is rejected, never a panic.
            let mut at = cut.index(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let _ = parse_event(&text[..at]).map(|e| e.id);
        }
    }
}

#[test]
fn the_customer_a_rejected_input_names_is_read_leniently() {
    // A bad time, but the customer is named: the dead letter names them.
    let bad_time = event_with(|v| v["time"] = json!("yesterday"));
    assert!(parse_event(&bad_time).is_err());
    assert_eq!(customer_named(&bad_time).as_deref(), Some("c-1001"));
    let numeric = event_with(|v| v["detail"]["customer"]["id"] = json!(42));
    assert_eq!(customer_named(&numeric).as_deref(), Some("42"));
    for text in [
        "not json".to_owned(),
        "[]".to_owned(),
        event_with(|v| v["detail"]["customer"]["id"] = json!("")),
        event_with(|v| v["detail"]["customer"]["id"] = json!(-1)),
        event_with(|v| v["detail"]["customer"] = json!("c-1001")),
        event_with(|v| v["detail"] = json!(null)),
    ] {
        assert_eq!(customer_named(&text), None, "{text}");
    }
}
