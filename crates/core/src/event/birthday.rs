//! Birthdays, `YYYY-MM-DD` with 29 February allowed in any year.

use std::fmt;

use chrono::NaiveDate;

/// A birthday as profiles carry it, `YYYY-MM-DD`.
///
/// The month and day must make a date in a leap year, so 29 February is accepted whatever the
/// year: date triggers ignore the year (and fire on 28 February in years without a 29th), and
/// stores that ask only for a month and a day often store a placeholder year such as 1900,
/// which is not a leap year. Rejecting such a profile would send the whole event (an order, say)
/// to the dead letter for the sake of one optional field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Birthday {
    /// The year as written (`0000` to `9999`); not used by date triggers.
    pub year: u16,
    /// 1 to 12.
    pub month: u8,
    /// 1 to the length of the month in a leap year.
    pub day: u8,
}

impl Birthday {
    /// Reads exactly `YYYY-MM-DD` (four, two and two ASCII digits); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        // 2000 is a leap year, so this accepts 29 February and rejects 30 February or 31 April.
        NaiveDate::from_ymd_opt(2000, month, day)?;
        Some(Birthday {
            year: u16::try_from(year).ok()?,
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
        })
    }

    /// The birthday's date in `year`: 29 February falls on 28 February in years without one,
    /// as the contract's date triggers say. `None` only for years chrono cannot represent.
    pub fn in_year(self, year: i32) -> Option<NaiveDate> {
        let (month, day) = (u32::from(self.month), u32::from(self.day));
        NaiveDate::from_ymd_opt(year, month, day)
            .or_else(|| NaiveDate::from_ymd_opt(year, month, day - 1))
    }
}

impl fmt::Display for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
