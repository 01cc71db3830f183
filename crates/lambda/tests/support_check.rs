//! The test support itself: an app on moto applies a store event end to end (DynamoDB, SES).

mod support;

#[tokio::test]
async fn an_app_on_moto_applies_a_store_event_and_sends_its_email() {
    let Some(endpoint) = support::moto("an_app_on_moto_applies_a_store_event_and_sends_its_email")
    else {
        return;
    };
    let app = support::app(&endpoint, "support", None, |_| {}).await;
    let event = r#"{"version":"0","id":"e-1","detail-type":"order.shipped","source":"store","time":"2026-03-01T10:00:00Z","detail":{"customer":{"id":"c-support-1","email":"ayse@example.com","first_name":"Ayşe","accepts_marketing":true},"order":{"id":"o-1"},"shipment":{"carrier":"UPS","tracking_number":"1Z","tracking_url":"https://ups.example.com/1Z"}}}"#;
    let raw = serde_json::value::RawValue::from_string(event.to_owned()).unwrap();
    let before = support::raw_messages(&endpoint).len();
    let handled = nudge_lambda::ingest::handle(&app, &raw, nudge_lambda::App::now())
        .await
        .expect("applied");
    assert!(
        matches!(&handled, nudge_lambda::ingest::Handled::Applied { deliveries, .. } if *deliveries >= 1),
        "{handled:?}"
    );
    assert!(
        support::raw_messages(&endpoint).len() > before,
        "SES took the shipment email"
    );
    // The same event again is a duplicate and sends nothing more.
    let after = support::raw_messages(&endpoint).len();
    let again = nudge_lambda::ingest::handle(&app, &raw, nudge_lambda::App::now())
        .await
        .unwrap();
    assert!(
        matches!(again, nudge_lambda::ingest::Handled::Duplicate { .. }),
        "{again:?}"
    );
    assert_eq!(support::raw_messages(&endpoint).len(), after);
}
