//! Durations (`30m`, `6h`, `3d`, `2w`) and local times of day (`09:00`).

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveTime, TimeDelta, Timelike};

/// A length of time as workflows write it: a whole number and a unit, `m`, `h`, `d` (24 hours)
/// or `w`. Trigger offsets may be negative (`-3d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    minutes: i64,
}

/// Why a text is not a [`Duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration; write a number and a unit: 30m, 6h, 3d or 2w")]
    Empty,
    /// A number without a unit, such as `3`.
    #[error("`{0}` has no unit; write a number and a unit: 30m, 6h, 3d or 2w")]
    MissingUnit(String),
    /// Anything else that does not read as a number and a unit.
    #[error("`{0}` is not a duration; write a number and a unit: 30m, 6h, 3d or 2w")]
    Malformed(String),
    /// A minus sign where only positive lengths make sense.
    #[error("`{0}` is negative; only trigger offsets may be negative")]
    Negative(String),
    /// More than 100 years, which is surely a typo.
    #[error("`{0}` is longer than 100 years")]
    TooLong(String),
}

const MINUTES_PER: [(char, i64); 4] = [('w', 7 * 24 * 60), ('d', 24 * 60), ('h', 60), ('m', 1)];
const MAX_MINUTES: i64 = 100 * 366 * 24 * 60;

impl Duration {
    /// `n` minutes.
    pub const fn from_minutes(n: i64) -> Self {
        Self { minutes: n }
    }

    /// `n` days of 24 hours.
    pub const fn from_days(n: i64) -> Self {
        Self {
            minutes: n * 24 * 60,
        }
    }

    /// Parses a duration that may carry a leading `-` (trigger offsets).
    pub fn parse_signed(text: &str) -> Result<Self, DurationError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(DurationError::Empty);
        }
        let (sign, body) = match t.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, t.strip_prefix('+').unwrap_or(t)),
        };
        let malformed = || DurationError::Malformed(t.to_owned());
        let digits_end = body
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(body.len());
        let (number, unit) = body.split_at(digits_end);
        if number.is_empty() {
            return Err(malformed());
        }
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(t.to_owned()));
        }
        let mut unit_chars = unit.chars();
        let (Some(u), None) = (unit_chars.next(), unit_chars.next()) else {
            return Err(malformed());
        };
        let per = MINUTES_PER
            .iter()
            .find(|(c, _)| *c == u)
            .ok_or_else(malformed)?
            .1;
        let n: i64 = number
            .parse()
            .map_err(|_| DurationError::TooLong(t.to_owned()))?;
        let minutes = n.checked_mul(per).filter(|m| *m <= MAX_MINUTES);
        let minutes = minutes.ok_or_else(|| DurationError::TooLong(t.to_owned()))?;
        Ok(Self {
            minutes: sign * minutes,
        })
    }

    /// Parses a duration that must not be negative (waits, timeouts, periods).
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let d = Self::parse_signed(text)?;
        if d.minutes < 0 {
            return Err(DurationError::Negative(text.trim().to_owned()));
        }
        Ok(d)
    }

    /// Whole minutes (negative for negative offsets).
    pub const fn minutes(self) -> i64 {
        self.minutes
    }

    /// As a chrono delta, for arithmetic on instants.
    pub fn to_delta(self) -> TimeDelta {
        TimeDelta::minutes(self.minutes)
    }

    /// True for a zero length.
    pub const fn is_zero(self) -> bool {
        self.minutes == 0
    }
}

impl fmt::Display for Duration {
    /// The largest unit that divides the duration evenly: `2w`, `90d`, `36h`, `45m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, per) = MINUTES_PER
            .iter()
            .copied()
            .find(|(_, per)| self.minutes % per == 0)
            .unwrap_or(('m', 1));
        write!(f, "{}{}", self.minutes / per, c)
    }
}

impl FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A local time of day, `HH:MM` on a 24-hour clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(NaiveTime);

/// Why a text is not a [`LocalTime`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a time of day; write HH:MM on a 24-hour clock, e.g. \"09:00\" or \"21:30\"")]
pub struct TimeError(pub String);

impl LocalTime {
    /// `hour:minute`; `None` when out of range.
    pub fn from_hm(hour: u32, minute: u32) -> Option<Self> {
        NaiveTime::from_hms_opt(hour, minute, 0).map(Self)
    }

    /// Parses `HH:MM`, two digits each.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let err = || TimeError(text.to_owned());
        let b = text.as_bytes();
        if b.len() != 5
            || b[2] != b':'
            || !b
                .iter()
                .enumerate()
                .all(|(i, c)| i == 2 || c.is_ascii_digit())
        {
            return Err(err());
        }
        let hour = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
        let minute = u32::from(b[3] - b'0') * 10 + u32::from(b[4] - b'0');
        if hour > 23 || minute > 59 {
            return Err(err());
        }
        Self::from_hm(hour, minute).ok_or_else(err)
    }

    /// As a chrono time.
    pub fn time(self) -> NaiveTime {
        self.0
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0.hour(), self.0.minute())
    }
}

impl FromStr for LocalTime {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_every_unit() {
        assert_eq!(Duration::parse("30m").unwrap().minutes(), 30);
        assert_eq!(Duration::parse("6h").unwrap().minutes(), 360);
        assert_eq!(Duration::parse("3d").unwrap().minutes(), 3 * 1440);
        assert_eq!(Duration::parse("2w").unwrap().minutes(), 14 * 1440);
        assert_eq!(Duration::parse_signed("-3d").unwrap().minutes(), -3 * 1440);
        assert_eq!(Duration::parse("0d").unwrap().minutes(), 0);
    }

    #[test]
    fn rejects_what_a_marketer_might_write() {
        assert_eq!(Duration::parse(""), Err(DurationError::Empty));
        assert_eq!(
            Duration::parse("3"),
            Err(DurationError::MissingUnit("3".into()))
        );
        assert_eq!(
            Duration::parse("3 days"),
            Err(DurationError::Malformed("3 days".into()))
        );
        assert_eq!(
            Duration::parse("3days"),
            Err(DurationError::Malformed("3days".into()))
        );
        assert_eq!(
            Duration::parse("1d12h"),
            Err(DurationError::Malformed("1d12h".into()))
        );
        assert_eq!(
            Duration::parse("3D"),
            Err(DurationError::Malformed("3D".into()))
        );
        assert_eq!(
            Duration::parse("d"),
            Err(DurationError::Malformed("d".into()))
        );
        assert_eq!(
            Duration::parse("1.5d"),
            Err(DurationError::Malformed("1.5d".into()))
        );
        assert_eq!(
            Duration::parse("-3d"),
            Err(DurationError::Negative("-3d".into()))
        );
        assert_eq!(
            Duration::parse("99999w"),
            Err(DurationError::TooLong("99999w".into()))
        );
        assert!(matches!(
            Duration::parse("99999999999999999999d"),
            Err(DurationError::TooLong(_))
        ));
        assert_eq!(
            Duration::parse("3 days").unwrap_err().to_string(),
            "`3 days` is not a duration; write a number and a unit: 30m, 6h, 3d or 2w"
        );
    }

    #[test]
    fn prints_the_largest_even_unit() {
        for (text, shown) in [
            ("14d", "2w"),
            ("90d", "90d"),
            ("36h", "36h"),
            ("120m", "2h"),
            ("-3d", "-3d"),
        ] {
            assert_eq!(Duration::parse_signed(text).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn reads_times_of_day() {
        assert_eq!(
            LocalTime::parse("09:00").unwrap(),
            LocalTime::from_hm(9, 0).unwrap()
        );
        assert_eq!(LocalTime::parse("23:59").unwrap().to_string(), "23:59");
        for bad in [
            "9:00",
            "24:00",
            "12:60",
            "09:00:00",
            "9am",
            "",
            "0900",
            "ab:cd",
            "٠٩:٠٠",
        ] {
            assert!(LocalTime::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn any_number_and_unit_parses_to_its_length(n in 0i64..50_000, u in 0usize..4) {
            let (c, per) = MINUTES_PER[u];
            let text = format!("{n}{c}");
            match Duration::parse(&text) {
                Ok(d) => prop_assert_eq!(d.minutes(), n * per),
                Err(DurationError::TooLong(_)) => prop_assert!(n * per > MAX_MINUTES),
                Err(e) => prop_assert!(false, "{} failed: {}", text, e),
            }
        }

        #[test]
        fn display_round_trips(minutes in -MAX_MINUTES..MAX_MINUTES) {
            let d = Duration::from_minutes(minutes);
            prop_assert_eq!(Duration::parse_signed(&d.to_string()).unwrap(), d);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,12}") {
            let _ = Duration::parse_signed(&text);
            let _ = LocalTime::parse(&text);
        }

        #[test]
        fn every_valid_time_round_trips(h in 0u32..24, m in 0u32..60) {
            let t = LocalTime::from_hm(h, m).unwrap();
            prop_assert_eq!(LocalTime::parse(&t.to_string()).unwrap(), t);
        }
    }
}
