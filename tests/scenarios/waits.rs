//! Waits: a goal during a wait, and `wait_for` matched or timed out.

use super::{SHIPMENT, Scenario, WIN_BACK, customer, ev, has, order};

#[test]
fn a_goal_during_a_wait_ends_the_run_and_the_same_event_starts_a_new_one() {
    let s = Scenario::new(&[("win-back", WIN_BACK)]);
    let rows = s.run(
        &[
            ev(
                "o1",
                "order.placed",
                "2026-01-01T07:00:00Z",
                "c1",
                customer("A"),
            ),
            ev(
                "o2",
                "order.placed",
                "2026-02-01T07:00:00Z",
                "c1",
                customer("A"),
            ),
        ],
        "2026-06-01T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-01-01T07:00:00Z c1 win-back/- run.started",
            "2026-02-01T07:00:00Z c1 win-back/- run.ended goal",
            "2026-02-01T07:00:00Z c1 win-back/- run.started",
            "2026-05-02T07:00:00Z c1 win-back/miss-you email.sent We miss you",
            "2026-05-02T07:00:00Z c1 win-back/- run.ended completed",
        ]
    );
}

#[test]
fn wait_for_matched_and_timed_out_with_keys_per_order() {
    let s = Scenario::new(&[("shipment", SHIPMENT)]);
    let rows = s.run(
        &[
            ev(
                "s1",
                "order.shipped",
                "2026-03-02T07:00:00Z",
                "c1",
                order("o-1"),
            ),
            ev(
                "s2",
                "order.shipped",
                "2026-03-02T08:00:00Z",
                "c1",
                order("o-2"),
            ),
            // Delivery of o-2 only: the o-1 run keeps waiting.
            ev(
                "d2",
                "order.delivered",
                "2026-03-04T10:00:00Z",
                "c1",
                order("o-2"),
            ),
        ],
        "2026-04-01T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-02T07:00:00Z c1 shipment/- run.started",
            "2026-03-02T07:00:00Z c1 shipment/shipped email.sent Order o-1 shipped",
            "2026-03-02T08:00:00Z c1 shipment/- run.started",
            "2026-03-02T08:00:00Z c1 shipment/shipped email.sent Order o-2 shipped",
            "2026-03-04T10:00:00Z c1 shipment/delivered email.sent Order o-2 delivered",
            "2026-03-04T10:00:00Z c1 shipment/- run.ended completed",
            "2026-03-16T07:00:00Z c1 shipment/late email.sent Order o-1 still on its way?",
            "2026-03-16T07:00:00Z c1 shipment/- run.ended completed",
        ]
    );
}

#[test]
fn a_wait_for_whose_timeout_equals_the_event_time_has_timed_out() {
    let s = Scenario::new(&[("shipment", SHIPMENT)]);
    let rows = s.run(
        &[
            ev(
                "s1",
                "order.shipped",
                "2026-03-02T07:00:00Z",
                "c1",
                order("o-1"),
            ),
            ev(
                "d1",
                "order.delivered",
                "2026-03-16T07:00:00Z",
                "c1",
                order("o-1"),
            ),
        ],
        "2026-04-01T00:00:00Z",
    );
    assert!(
        has(&rows, "2026-03-16T07:00:00Z c1 shipment/late email.sent"),
        "{rows:#?}"
    );
    assert!(!has(&rows, "shipment/delivered"), "{rows:#?}");
}
