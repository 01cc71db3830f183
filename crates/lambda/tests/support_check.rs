//! The test support itself: an app on moto applies a store event end to end (DynamoDB, SES).

mod support;

use nudge_core::store::Store as _;

#[tokio::test]
async fn an_app_on_moto_applies_a_store_event_and_sends_its_email() {
    let Some(endpoint) = support::moto("an_app_on_moto_applies_a_store_event_and_sends_its_email")
    else {
        return;
    };
    let app = support::app(&endpoint, "support", None, |_| {}).await;
    let event = r#"{"version":"0","id":"e-1","detail-type":"order.shipped","source":"store","time":"2026-03-01T10:00:00Z","detail":{"customer":{"id":"c-support-1","email":"support-check@example.com","first_name":"Ayşe","accepts_marketing":true},"order":{"id":"o-1"},"shipment":{"carrier":"UPS","tracking_number":"1Z","tracking_url":"https://ups.example.com/1Z"}}}"#;
    let raw = serde_json::value::RawValue::from_string(event.to_owned()).unwrap();
    // Only this test's mail: the other tests of this binary send theirs to the same moto at
    // the same time.
    let to_us = |endpoint: &str| {
        support::raw_messages(endpoint)
            .into_iter()
            .filter(|(_, raw)| raw.contains("support-check@example.com"))
            .count()
    };
    let before = to_us(&endpoint);
    let handled = nudge_lambda::ingest::handle(&app, &raw, nudge_lambda::App::now())
        .await
        .expect("applied");
    assert!(
        matches!(&handled, nudge_lambda::ingest::Handled::Applied { deliveries, .. } if *deliveries >= 1),
        "{handled:?}"
    );
    assert!(to_us(&endpoint) > before, "SES took the shipment email");
    // The same event again is a duplicate and sends nothing more.
    let after = to_us(&endpoint);
    let again = nudge_lambda::ingest::handle(&app, &raw, nudge_lambda::App::now())
        .await
        .unwrap();
    assert!(
        matches!(again, nudge_lambda::ingest::Handled::Duplicate { .. }),
        "{again:?}"
    );
    assert_eq!(to_us(&endpoint), after);
}

/// Inside `ingest::bounded`, an input is committed and its email left pending (the budget can
/// never cut a send off between its claim and its settle); once the bounded work is done the
/// email is delivered, once.
#[tokio::test]
async fn bounded_work_commits_within_the_budget_and_delivers_after_it() {
    let Some(endpoint) =
        support::moto("bounded_work_commits_within_the_budget_and_delivers_after_it")
    else {
        return;
    };
    let app = support::app(&endpoint, "bounded", None, |_| {}).await;
    let event = nudge_core::event::parse_event(r#"{"version":"0","id":"e-b1","detail-type":"order.shipped","source":"store","time":"2026-03-01T10:00:00Z","detail":{"customer":{"id":"c-bounded-1","email":"bounded@example.com","first_name":"Ayşe"},"order":{"id":"o-1"},"shipment":{"carrier":"UPS","tracking_number":"1Z","tracking_url":"https://ups.example.com/1Z"}}}"#).unwrap();
    let to_us = |endpoint: &str| {
        support::raw_messages(endpoint)
            .into_iter()
            .filter(|(_, raw)| raw.contains("bounded@example.com"))
            .count()
    };
    let now = nudge_lambda::App::now();
    let handled =
        nudge_lambda::ingest::bounded(&app, std::time::Duration::from_secs(30), now, async {
            let handled = nudge_lambda::ingest::apply(&app, &event, now)
                .await
                .unwrap();
            let sends = app.store.sends("c-bounded-1").await.unwrap();
            assert_eq!(sends.len(), 1, "{sends:?}");
            assert_eq!(sends[0].status, nudge_core::store::SendStatus::Pending);
            assert_eq!(
                to_us(&endpoint),
                0,
                "nothing leaves inside the bounded work"
            );
            handled
        })
        .await
        .expect("within the budget");
    assert!(
        matches!(
            handled,
            nudge_lambda::ingest::Handled::Applied { deliveries: 1, .. }
        ),
        "{handled:?}"
    );
    assert_eq!(
        to_us(&endpoint),
        1,
        "delivered once the bounded work is done"
    );
    let sends = app.store.sends("c-bounded-1").await.unwrap();
    assert_eq!(sends[0].status, nudge_core::store::SendStatus::Sent);
}

/// The cold start reads both signing keys in one `GetParameters`: a missing one is `None`.
#[tokio::test]
async fn parameters_are_read_together_and_a_missing_one_is_none() {
    let Some(endpoint) = support::moto("parameters_are_read_together_and_a_missing_one_is_none")
    else {
        return;
    };
    let name = format!("/support-{}/signing-key", std::process::id());
    support::put_parameter(&endpoint, &name, "a signing key of 32 bytes or more!!");
    let clients = nudge_aws::Clients::from_env(None).await;
    let missing = format!("/support-{}/previous-signing-key", std::process::id());
    let values = clients.parameters(&[&name, &missing]).await.unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(
        values[0].as_ref().map(|v| v.expose().to_vec()),
        Some(b"a signing key of 32 bytes or more!!".to_vec())
    );
    assert!(values[1].is_none());
}
