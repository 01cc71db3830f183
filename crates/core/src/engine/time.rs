//! Local-time rules: customer time zones, send windows, `wait: {until}` and yearly dates.
//!
//! Everything here is a pure function of its arguments (no clock): instants are UTC, and local
//! times are resolved in the customer's zone with the contract's daylight-saving rules.

use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, LocalResult, NaiveDate, NaiveDateTime,
    TimeZone, Utc,
};
use chrono_tz::Tz;

use crate::workflow::model::SendWindow;
use crate::workflow::units::{Duration, LocalTime};

/// The customer's zone: the profile's `timezone` when it is a valid IANA name, else the store's.
pub fn customer_zone(profile_tz: Option<&str>, store_tz: Tz) -> Tz {
    profile_tz
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(store_tz)
}

/// The instant a local date and time names in `tz`. An ambiguous time (the hour repeated when
/// clocks go back) is its first occurrence; a time skipped when clocks go forward resolves to
/// the moment after the jump (the contract's settled rule).
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Inside a gap: the first valid local minute after it is the jump's end. Gaps are
            // at most a few hours (usually one), so walking minutes is cheap and exact.
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += ChronoDuration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    // `probe` is the first valid minute; the jump's end is its start of minute.
                    return t.with_timezone(&Utc);
                }
            }
            // No zone has a day-long gap; fall back to reading the time as UTC.
            Utc.from_utc_datetime(&local)
        }
    }
}

/// The first instant at or after `now` when the local clock in `tz` shows `at`.
pub fn next_local_time(now: DateTime<Utc>, tz: Tz, at: LocalTime) -> DateTime<Utc> {
    let today = now.with_timezone(&tz).date_naive();
    for days in 0..3 {
        let date = today + ChronoDuration::days(days);
        let candidate = resolve_local(tz, date.and_time(at.time()));
        if candidate >= now {
            return candidate;
        }
    }
    unreachable!("a local time recurs within two days")
}

/// Whether `now` is inside the window `[start, end)` of local time in `tz`; `end` before
/// `start` wraps midnight.
pub fn in_window(now: DateTime<Utc>, tz: Tz, window: SendWindow) -> bool {
    let local = now.with_timezone(&tz).time();
    let (start, end) = (window.start.time(), window.end.time());
    if start < end {
        start <= local && local < end
    } else {
        local >= start || local < end
    }
}

/// When the window next opens at or after `now` (the next local `start`).
pub fn next_opening(now: DateTime<Utc>, tz: Tz, window: SendWindow) -> DateTime<Utc> {
    next_local_time(now, tz, window.start)
}

/// How many calendar days the local clock in `tz` turns from `from` to `to` (0 on the same
/// local date): daylight-saving changes, which make a local day 23 or 25 hours long, do not
/// count.
pub fn local_days_between(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> i64 {
    let day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    (day(to) - day(from)).num_days()
}

/// Reads a profile date (`YYYY-MM-DD`, or the date part of an RFC 3339 time) for a yearly
/// trigger. Only month and day matter, so the date comes back in 2000 (a leap year): a
/// 29 February with a placeholder year such as 1900 still fires every year.
pub fn parse_profile_date(text: &str) -> Option<NaiveDate> {
    crate::event::Birthday::parse(text.get(..10)?)?.in_year(2000)
}

/// The occurrence of a yearly date (month and day of `date`; the year is ignored) in `year`, at
/// local `at` in `tz`, shifted by `offset`. 29 February falls on 28 February in other years.
pub fn yearly_occurrence(
    date: NaiveDate,
    year: i32,
    at: LocalTime,
    tz: Tz,
    offset: Duration,
) -> DateTime<Utc> {
    let day = NaiveDate::from_ymd_opt(year, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .expect("28 February exists every year");
    resolve_local(tz, day.and_time(at.time())) + offset.to_delta()
}

/// The first occurrence of a yearly date strictly after `after`.
pub fn next_yearly(
    date: NaiveDate,
    after: DateTime<Utc>,
    at: LocalTime,
    tz: Tz,
    offset: Duration,
) -> DateTime<Utc> {
    let year = after.with_timezone(&tz).year();
    // An offset of up to a year can move an occurrence into the neighbouring year.
    (year - 1..=year + 2)
        .map(|y| yearly_occurrence(date, y, at, tz, offset))
        .find(|t| *t > after)
        .expect("one of four consecutive years is after `after`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn t(s: &str) -> LocalTime {
        LocalTime::parse(s).unwrap()
    }
    fn window(a: &str, b: &str) -> SendWindow {
        SendWindow {
            start: t(a),
            end: t(b),
        }
    }
    const BERLIN: Tz = chrono_tz::Europe::Berlin;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    #[test]
    fn profile_zone_or_store_zone() {
        let store = chrono_tz::Europe::Istanbul;
        assert_eq!(customer_zone(Some("Europe/Berlin"), store), BERLIN);
        assert_eq!(customer_zone(Some("Mars/Olympus"), store), store);
        assert_eq!(customer_zone(None, store), store);
    }

    #[test]
    fn wait_until_a_skipped_time_resolves_after_the_jump() {
        // Berlin springs forward on 2026-03-29: 02:00 -> 03:00, so 02:30 does not exist.
        let now = utc("2026-03-28T23:00:00Z"); // 00:00 local
        let at = next_local_time(now, BERLIN, t("02:30"));
        assert_eq!(at, utc("2026-03-29T01:00:00Z")); // 03:00 CEST, the moment after the jump
    }

    #[test]
    fn wait_until_a_repeated_time_takes_its_first_occurrence() {
        // Berlin falls back on 2026-10-25: 03:00 CEST -> 02:00 CET, so 02:30 happens twice.
        let now = utc("2026-10-24T22:00:00Z");
        assert_eq!(
            next_local_time(now, BERLIN, t("02:30")),
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn wait_until_is_at_or_after_now() {
        let now = utc("2026-06-01T07:00:00Z"); // 09:00 in Berlin (CEST)
        assert_eq!(next_local_time(now, BERLIN, t("09:00")), now);
        assert_eq!(
            next_local_time(now, BERLIN, t("08:59")),
            utc("2026-06-02T06:59:00Z")
        );
    }

    #[test]
    fn windows_are_half_open_and_may_wrap_midnight() {
        let day = window("09:00", "21:00");
        assert!(in_window(utc("2026-06-01T07:00:00Z"), BERLIN, day)); // 09:00
        assert!(!in_window(utc("2026-06-01T19:00:00Z"), BERLIN, day)); // 21:00
        assert!(!in_window(utc("2026-06-01T06:59:00Z"), BERLIN, day));
        let night = window("22:00", "06:00");
        assert!(in_window(utc("2026-06-01T20:00:00Z"), BERLIN, night)); // 22:00
        assert!(in_window(utc("2026-06-01T03:59:00Z"), BERLIN, night)); // 05:59
        assert!(!in_window(utc("2026-06-01T04:00:00Z"), BERLIN, night)); // 06:00
        assert!(!in_window(utc("2026-06-01T10:00:00Z"), BERLIN, night)); // 12:00
        // A deferral at 07:00 local opens at 22:00 the same day.
        assert_eq!(
            next_opening(utc("2026-06-01T05:00:00Z"), BERLIN, night),
            utc("2026-06-01T20:00:00Z")
        );
    }

    #[test]
    fn windows_are_local_across_daylight_saving_days() {
        let day = window("09:00", "21:00");
        // New York springs forward on 2026-03-08. 09:00 EST before, 09:00 EDT after.
        assert_eq!(
            next_opening(utc("2026-03-07T15:00:00Z"), NEW_YORK, day),
            utc("2026-03-08T13:00:00Z")
        );
        assert!(in_window(utc("2026-03-08T13:00:00Z"), NEW_YORK, day));
        assert!(!in_window(utc("2026-03-08T12:59:00Z"), NEW_YORK, day));
    }

    #[test]
    fn yearly_dates_fire_each_year_with_29_february_on_28_february() {
        let leap = NaiveDate::from_ymd_opt(1992, 2, 29).unwrap();
        let ist = chrono_tz::Europe::Istanbul; // UTC+3 all year
        let zero = Duration::from_minutes(0);
        assert_eq!(
            yearly_occurrence(leap, 2027, t("09:00"), ist, zero),
            utc("2027-02-28T06:00:00Z")
        );
        assert_eq!(
            yearly_occurrence(leap, 2028, t("09:00"), ist, zero),
            utc("2028-02-29T06:00:00Z")
        );
        let after = utc("2027-03-01T00:00:00Z");
        assert_eq!(
            next_yearly(leap, after, t("09:00"), ist, zero),
            utc("2028-02-29T06:00:00Z")
        );
    }

    #[test]
    fn yearly_dates_are_strictly_after_and_shifted_by_the_offset() {
        let birthday = NaiveDate::from_ymd_opt(1991, 6, 14).unwrap();
        let ist = chrono_tz::Europe::Istanbul;
        let minus3 = Duration::from_days(-3);
        // Armed on the occurrence itself: the next one is a year later.
        let occ = yearly_occurrence(birthday, 2026, t("09:00"), ist, minus3);
        assert_eq!(occ, utc("2026-06-11T06:00:00Z"));
        assert_eq!(
            next_yearly(birthday, occ, t("09:00"), ist, minus3),
            utc("2027-06-11T06:00:00Z")
        );
        // A new-year birthday with a negative offset lands in the previous year.
        let jan1 = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap();
        assert_eq!(
            next_yearly(jan1, utc("2026-12-01T00:00:00Z"), t("09:00"), ist, minus3),
            utc("2026-12-29T06:00:00Z")
        );
    }

    #[test]
    fn profile_dates() {
        assert_eq!(
            parse_profile_date("1991-06-14"),
            NaiveDate::from_ymd_opt(2000, 6, 14)
        );
        assert_eq!(
            parse_profile_date("1991-06-14T00:00:00Z"),
            NaiveDate::from_ymd_opt(2000, 6, 14)
        );
        // A placeholder year that has no 29 February still keeps the day.
        assert_eq!(
            parse_profile_date("1900-02-29"),
            NaiveDate::from_ymd_opt(2000, 2, 29)
        );
        assert_eq!(parse_profile_date("14/06/1991"), None);
        assert_eq!(parse_profile_date("1991-02-30"), None);
    }

    #[test]
    fn local_days_count_calendar_dates_in_the_zone() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 09:00 EST to 09:00 EDT: a year less an hour, 365 local days.
        let (a, b) = (utc("2029-03-10T14:00:00Z"), utc("2030-03-10T13:00:00Z"));
        assert_eq!(local_days_between(a, b, ny), 365);
        // 23:30 to 00:30 local is the next day; 00:30 to 23:30 is the same one.
        let (c, d) = (utc("2026-06-15T03:30:00Z"), utc("2026-06-15T04:30:00Z"));
        assert_eq!(local_days_between(c, d, ny), 1);
        assert_eq!(local_days_between(d, utc("2026-06-16T03:30:00Z"), ny), 0);
        assert_eq!(local_days_between(d, c, ny), -1);
    }
}
