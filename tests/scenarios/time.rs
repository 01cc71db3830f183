//! Local time: send windows (also across midnight), daylight saving, birthdays and other date
//! triggers.

use serde_json::{Value, json};

use super::{BIRTHDAY, Scenario, WELCOME, customer, ev, has};

#[test]
fn marketing_mail_outside_the_window_is_deferred_to_its_opening() {
    let s = Scenario::new(&[("welcome", WELCOME)]);
    // 23:30 local (20:30Z): deferred to 09:00 local next day (06:00Z).
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-02T20:30:00Z",
            "c1",
            customer("A"),
        )],
        "2026-03-03T12:00:00Z",
    );
    assert_eq!(
        rows[..3],
        [
            "2026-03-02T20:30:00Z c1 welcome/- run.started",
            "2026-03-02T20:30:00Z c1 welcome/hello email.deferred 2026-03-03T06:00:00Z",
            "2026-03-03T06:00:00Z c1 welcome/hello email.sent Welcome A",
        ]
    );
}

#[test]
fn a_window_that_wraps_midnight() {
    let wf = r#"
category: marketing
trigger: { event: customer.created }
send_window: { start: "22:00", end: "06:00" }
steps:
  - id: night
    send_email: { template: t.mjml, subject: "Night owl" }
"#;
    let s = Scenario::new(&[("night", wf)]);
    let rows = s.run(
        &[
            ev(
                "e1",
                "customer.created",
                "2026-03-02T09:00:00Z",
                "c1",
                customer("A"),
            ), // 12:00 local: defer to 22:00
            ev(
                "e2",
                "customer.created",
                "2026-03-02T23:30:00Z",
                "c2",
                customer("B"),
            ), // 02:30 local: inside
            ev(
                "e3",
                "customer.created",
                "2026-03-03T03:00:00Z",
                "c3",
                customer("C"),
            ), // 06:00 local: end is exclusive
        ],
        "2026-03-04T00:00:00Z",
    );
    assert!(
        has(
            &rows,
            "2026-03-02T09:00:00Z c1 night/night email.deferred 2026-03-02T19:00:00Z"
        ),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "2026-03-02T19:00:00Z c1 night/night email.sent"),
        "{rows:#?}"
    );
    assert!(
        has(&rows, "2026-03-02T23:30:00Z c2 night/night email.sent"),
        "{rows:#?}"
    );
    assert!(
        has(
            &rows,
            "2026-03-03T03:00:00Z c3 night/night email.deferred 2026-03-03T19:00:00Z"
        ),
        "{rows:#?}"
    );
}

#[test]
fn daylight_saving_days_keep_local_times() {
    let wf = r#"
category: marketing
trigger: { event: customer.created }
steps:
  - id: morning
    wait: { until: "02:30" }
  - id: hello
    send_email: { template: t.mjml, subject: "Morning" }
"#;
    let s = Scenario::new(&[("dst", wf)]);
    let mut berlin = customer("A");
    berlin["customer"]["timezone"] = json!("Europe/Berlin");
    // Saturday 28 March 2026, 12:00 in Berlin. 02:30 on the 29th does not exist (clocks jump
    // 02:00 -> 03:00): the wait ends at 03:00 CEST = 01:00Z. The window opens at 09:00 CEST.
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-03-28T11:00:00Z",
            "c1",
            berlin,
        )],
        "2026-03-30T00:00:00Z",
    );
    assert_eq!(
        rows,
        [
            "2026-03-28T11:00:00Z c1 dst/- run.started",
            "2026-03-29T01:00:00Z c1 dst/hello email.deferred 2026-03-29T07:00:00Z",
            "2026-03-29T07:00:00Z c1 dst/hello email.sent Morning",
            "2026-03-29T07:00:00Z c1 dst/- run.ended completed",
        ]
    );
}

#[test]
fn a_29_february_birthday_fires_on_28_february_and_yearly() {
    let s = Scenario::new(&[("birthday", BIRTHDAY)]);
    let mut c = customer("Leap");
    c["customer"]["birthday"] = json!("1992-02-29");
    let rows = s.run(
        &[ev(
            "e1",
            "customer.created",
            "2026-06-01T07:00:00Z",
            "c1",
            c,
        )],
        "2028-03-31T00:00:00Z",
    );
    let sent: Vec<&String> = rows.iter().filter(|r| r.contains("email.sent")).collect();
    assert_eq!(
        sent,
        [
            "2027-02-28T06:00:00Z c1 birthday/gift email.sent Happy birthday Leap",
            "2028-02-29T06:00:00Z c1 birthday/gift email.sent Happy birthday Leap",
        ]
    );
}

#[test]
fn a_date_trigger_is_re_armed_when_the_attribute_changes() {
    let s = Scenario::new(&[("birthday", BIRTHDAY)]);
    let mut c = customer("A");
    c["customer"]["birthday"] = json!("1990-07-01");
    let fix = json!({"customer": {"birthday": "1990-05-10"}});
    let rows = s.run(
        &[
            ev("e1", "customer.created", "2026-03-01T07:00:00Z", "c1", c),
            ev("e2", "customer.updated", "2026-04-01T07:00:00Z", "c1", fix),
        ],
        "2026-12-31T00:00:00Z",
    );
    let sent: Vec<&String> = rows.iter().filter(|r| r.contains("email.sent")).collect();
    assert_eq!(
        sent,
        ["2026-05-10T06:00:00Z c1 birthday/gift email.sent Happy birthday A"],
        "{rows:#?}"
    );
}

/// A New York customer (`customer.created` in January 2026) with `birthday`.
fn new_yorker(birthday: &str) -> Value {
    let mut c = customer("Nora");
    c["customer"]["timezone"] = json!("America/New_York");
    c["customer"]["birthday"] = json!(birthday);
    ev("e1", "customer.created", "2026-01-05T15:00:00Z", "c1", c)
}

/// The birthday emails of a timeline.
fn gifts(rows: &[String]) -> Vec<&str> {
    rows.iter()
        .filter(|r| r.contains("birthday/gift email.sent"))
        .map(|r| &r[..20])
        .collect()
}

#[test]
fn a_new_york_birthday_at_0900_comes_every_year_across_daylight_saving() {
    // 10 March is after the spring change in 2026 and 2030 (09:00 EDT = 13:00Z) and before it
    // in 2027 to 2029 (09:00 EST = 14:00Z): 2029 to 2030 is 365 days less an hour.
    let s = Scenario::new(&[("birthday", BIRTHDAY)]);
    let rows = s.run(&[new_yorker("1990-03-10")], "2031-01-01T00:00:00Z");
    assert_eq!(
        gifts(&rows),
        [
            "2026-03-10T13:00:00Z",
            "2027-03-10T14:00:00Z",
            "2028-03-10T14:00:00Z",
            "2029-03-10T14:00:00Z",
            "2030-03-10T13:00:00Z",
        ],
        "{rows:#?}"
    );
}

#[test]
fn every_with_a_date_trigger_counts_local_dates_when_the_customer_moves_east() {
    // 09:00 in New York, then, a year later, 09:00 in London: 365 days less five hours, yet a
    // year of calendar dates.
    let s = Scenario::new(&[("birthday", BIRTHDAY)]);
    let moved = json!({"customer": {"timezone": "Europe/London"}});
    let rows = s.run(
        &[
            new_yorker("1990-06-14"),
            ev(
                "e2",
                "customer.updated",
                "2026-12-01T12:00:00Z",
                "c1",
                moved,
            ),
        ],
        "2028-01-01T00:00:00Z",
    );
    assert_eq!(
        gifts(&rows),
        ["2026-06-14T13:00:00Z", "2027-06-14T08:00:00Z"],
        "{rows:#?}"
    );
}

#[test]
fn every_365d_refuses_a_second_birthday_within_the_year() {
    // The birthday is corrected after it fired: the new date comes round six days later, within
    // the 365 days, and only next year.
    let s = Scenario::new(&[("birthday", BIRTHDAY)]);
    let fix = json!({"customer": {"birthday": "1990-06-20"}});
    let rows = s.run(
        &[
            new_yorker("1990-06-14"),
            ev("e2", "customer.updated", "2026-06-15T12:00:00Z", "c1", fix),
        ],
        "2027-12-31T00:00:00Z",
    );
    assert_eq!(
        gifts(&rows),
        ["2026-06-14T13:00:00Z", "2027-06-20T13:00:00Z"],
        "{rows:#?}"
    );
}

#[test]
fn every_with_an_event_trigger_is_a_duration_whatever_the_local_clock() {
    let wf = r#"
category: transactional
trigger: { event: order.placed }
entry: { every: 7d }
steps:
  - id: thanks
    send_email: { template: b.mjml, subject: "Thanks" }
"#;
    let s = Scenario::new(&[("weekly", wf)]);
    let mut c = customer("Nora");
    c["customer"]["timezone"] = json!("America/New_York");
    let order = |id, at| ev(id, "order.placed", at, "c1", c.clone());
    // 09:00 EST, then 09:00 EDT a week later: 7 days less the hour clocks went forward.
    let rows = s.run(
        &[
            order("o1", "2026-03-05T14:00:00Z"),
            order("o2", "2026-03-12T13:00:00Z"),
            order("o3", "2026-03-12T14:00:00Z"),
        ],
        "2026-03-20T00:00:00Z",
    );
    let starts: Vec<&String> = rows.iter().filter(|r| r.contains("run.started")).collect();
    assert_eq!(
        starts,
        [
            "2026-03-05T14:00:00Z c1 weekly/- run.started",
            "2026-03-12T14:00:00Z c1 weekly/- run.started",
        ]
    );
}
