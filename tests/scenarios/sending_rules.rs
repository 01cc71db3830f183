//! The sending rules: the frequency cap, transactional mail, skips with their reasons, and
//! consent withdrawn mid-run.

use serde_json::json;

use super::{SHIPMENT, Scenario, WELCOME, customer, ev, has, order};

#[test]
fn the_frequency_cap_is_a_rolling_window_across_marketing_workflows() {
    let other = r#"
category: marketing
trigger: { event: order.placed }
steps:
  - id: promo
    send_email: { template: t.mjml, subject: "Promo" }
"#;
    let s = Scenario::new(&[("welcome", WELCOME), ("promo", other)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            // 2h later: one marketing email in the last 16h already.
            ev(
                "o1",
                "order.placed",
                "2026-03-02T09:00:00Z",
                "c1",
                customer("A"),
            ),
            // Exactly 16h after the welcome: the window (now - 16h, now] no longer holds it.
            ev(
                "o2",
                "order.placed",
                "2026-03-02T23:00:00Z",
                "c1",
                customer("A"),
            ),
        ],
        "2026-03-03T12:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-02T09:00:00Z c1 promo/promo email.skipped frequency_cap"
        ),
        "{rows:#?}"
    );
    // o2 arrives at 02:00 local: deferred to 09:00, then sent (the cap allows it by then).
    assert!(
        has(
            &rows,
            "2026-03-03T06:00:00Z c1 promo/promo email.sent Promo"
        ),
        "{rows:#?}"
    );
}

#[test]
fn transactional_mail_ignores_consent_windows_and_the_cap() {
    let s = Scenario::new(&[("welcome", WELCOME), ("shipment", SHIPMENT)]);
    let mut no_consent = order("o-1");
    no_consent["customer"]["accepts_marketing"] = json!(false);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            // 01:00 local, 12 minutes after a marketing email, no consent: still sent.
            ev(
                "s1",
                "order.shipped",
                "2026-03-02T22:00:00Z",
                "c1",
                no_consent,
            ),
        ],
        "2026-03-03T00:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-02T22:00:00Z c1 shipment/shipped email.sent Order o-1 shipped"
        ),
        "{rows:#?}"
    );
}

#[test]
fn the_sending_rules_skip_with_their_reasons() {
    let s = Scenario::new(&[("welcome", WELCOME), ("shipment", SHIPMENT)]);
    let bad_address = json!({"customer": {"email": "not-an-address", "accepts_marketing": true}});
    let no_consent = json!({"customer": {"email": "b@example.com"}});
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                bad_address,
            ),
            ev(
                "e2",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c2",
                no_consent,
            ),
            ev(
                "b3",
                "email.bounced",
                "2026-03-02T07:00:00Z",
                "c3",
                json!({"customer": {"email": "c@example.com"}, "bounce_type": "hard"}),
            ),
            ev(
                "s3",
                "order.shipped",
                "2026-03-02T08:00:00Z",
                "c3",
                order("o-3"),
            ),
        ],
        "2026-03-02T12:00:00Z",
    );
    assert!(
        has(&rows, "c1 welcome/hello email.skipped invalid_address"),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "c2 welcome/hello email.skipped no_consent"),
        "{rows:#?}"
    );
    // Suppression stops transactional mail too.
    assert!(
        has(&rows, "c3 shipment/shipped email.skipped suppressed"),
        "{rows:#?}"
    );
}

#[test]
fn consent_withdrawn_mid_run_stops_later_marketing_mail() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "u1",
                "customer.unsubscribed",
                "2026-03-03T07:00:00Z",
                "c1",
                json!(null),
            ),
        ],
        "2026-03-10T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 welcome/- run.started",
            "2026-03-02T07:00:00Z c1 welcome/hello email.sent Welcome A",
            "2026-03-04T07:00:00Z c1 welcome/story email.skipped unsubscribed",
            "2026-03-04T07:00:00Z c1 welcome/- run.ended completed",
        ]
    );
    let s = Scenario::new(&[("welcome", WELCOME)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "u1",
                "customer.updated",
                "2026-03-03T07:00:00Z",
                "c1",
                json!({"customer": {"accepts_marketing": false}}),
            ),
        ],
        "2026-03-10T00:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-04T07:00:00Z c1 welcome/story email.skipped no_consent"
        ),
        "{rows:#?}"
    );
}
