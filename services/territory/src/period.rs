//! The periods figures and registers cover: a year, a quarter, a month or a range of days,
//! bounded by midnight in Paris (the region's figures follow the French calendar; a register
//! follows its holder's, see `registers`).

use jiff::civil::Date;
use jiff::tz::TimeZone;

/// Longest period a call covers, in days: ten years.
pub const PERIOD_DAYS_MAX: i64 = 3_660;

/// A half-open range of instants `[from_ms, to_ms)` with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub first_day: Date,
    /// The last day included.
    pub last_day: Date,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Whether it is a calendar year, quarter or month (not a range of days).
    pub calendar: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PeriodError(pub String);

impl Period {
    /// `2026` (a year), `2026-Q3` (a quarter), `2026-11` (a month) or `2026-01-15..2026-02-14`
    /// (days, both included), with days bounded by midnight in `zone` (an IANA name).
    pub fn parse_in(text: &str, zone: &str) -> Result<Period, PeriodError> {
        let text = text.trim();
        let allowed =
            |character: char| character.is_ascii_digit() || matches!(character, '-' | '.' | 'Q' | 'q');
        let bad = || {
            PeriodError(format!(
                "{text:?} is not a period: expected a year (2026), a quarter (2026-Q3), a month (2026-11) or days (2026-01-15..2026-02-14)"
            ))
        };
        if text.is_empty() || !text.chars().all(allowed) {
            return Err(bad());
        }
        let calendar = !text.contains("..");
        let (first, last) = if let Some((from, to)) = text.split_once("..") {
            let first: Date = from.trim().parse().map_err(|_| bad())?;
            let last: Date = to.trim().parse().map_err(|_| bad())?;
            (first, last)
        } else if let Some((year, quarter)) = text.split_once("-Q").or_else(|| text.split_once("-q")) {
            let year = four_digit_year(year).ok_or_else(bad)?;
            let quarter: i8 = quarter.parse().map_err(|_| bad())?;
            if !(1..=4).contains(&quarter) {
                return Err(bad());
            }
            let first = Date::new(year, (quarter - 1) * 3 + 1, 1).map_err(|_| bad())?;
            let last = first
                .checked_add(jiff::Span::new().months(3))
                .map_err(|_| bad())?
                .yesterday()
                .map_err(|_| bad())?;
            (first, last)
        } else if let Some((year, month)) = text.split_once('-') {
            let year = four_digit_year(year).ok_or_else(bad)?;
            let month: i8 = month.parse().map_err(|_| bad())?;
            let first = Date::new(year, month, 1).map_err(|_| bad())?;
            (first, first.last_of_month())
        } else {
            let year = four_digit_year(text).ok_or_else(bad)?;
            (Date::new(year, 1, 1).map_err(|_| bad())?, Date::new(year, 12, 31).map_err(|_| bad())?)
        };
        if last < first {
            return Err(PeriodError(format!("{text:?}: the period ends before it starts")));
        }
        let days = (last - first).get_days() as i64 + 1;
        if days > PERIOD_DAYS_MAX {
            return Err(PeriodError(format!("{text:?}: a period covers at most {PERIOD_DAYS_MAX} days")));
        }
        let zone = TimeZone::get(zone).map_err(|error| PeriodError(format!("time zone {zone}: {error}")))?;
        let midnight = |date: Date| -> Result<i64, PeriodError> {
            let instant = zone
                .to_ambiguous_timestamp(date.at(0, 0, 0, 0))
                .compatible()
                .map_err(|error| PeriodError(error.to_string()))?;
            Ok(instant.as_millisecond())
        };
        let after = last.tomorrow().map_err(|_| bad())?;
        Ok(Period {
            label: text.to_owned(),
            first_day: first,
            last_day: last,
            from_ms: midnight(first)?,
            to_ms: midnight(after)?,
            calendar,
        })
    }

    /// As [`Period::parse_in`], in Paris.
    pub fn parse(text: &str) -> Result<Period, PeriodError> {
        Period::parse_in(text, "Europe/Paris")
    }

    /// Whether the two periods share an instant.
    pub fn overlaps(&self, other: &Period) -> bool {
        self.from_ms < other.to_ms && other.from_ms < self.to_ms
    }

    /// A name for files: `2026-11`, or `2026-01-15_2026-02-14` for days.
    pub fn file_label(&self) -> String {
        if self.calendar { self.label.clone() } else { format!("{}_{}", self.first_day, self.last_day) }
    }

    pub fn contains(&self, at_ms: i64) -> bool {
        self.from_ms <= at_ms && at_ms < self.to_ms
    }
}

/// A year written with four digits.
fn four_digit_year(text: &str) -> Option<i16> {
    (text.len() == 4 && text.bytes().all(|byte| byte.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_bounded_by_midnight_in_paris() {
        let year = Period::parse("2026").unwrap();
        // 2026-01-01T00:00+01:00 and 2027-01-01T00:00+01:00.
        assert_eq!(year.from_ms, 1_767_222_000_000);
        assert_eq!(year.to_ms, 1_798_758_000_000);
        let july = Period::parse("2026-07").unwrap();
        // Summer time: midnight in Paris is 22:00 UTC the day before.
        assert_eq!(july.from_ms, 1_782_856_800_000);
        assert_eq!(july.last_day.to_string(), "2026-07-31");
        let quarter = Period::parse("2026-Q1").unwrap();
        assert_eq!(quarter.last_day.to_string(), "2026-03-31");
        let days = Period::parse("2026-02-10..2026-02-10").unwrap();
        assert_eq!(days.to_ms - days.from_ms, 86_400_000);
        assert!(!days.calendar && quarter.calendar && year.calendar);
        assert_eq!(days.file_label(), "2026-02-10_2026-02-10");
        assert!(year.overlaps(&july) && !july.overlaps(&quarter));
    }

    #[test]
    fn a_bad_period_says_what_is_expected() {
        for text in [
            "",
            "26",
            "2026-13",
            "2026-Q5",
            "2026-02-10..2026-02-01",
            "2000..2026-01-01",
            "1990-01-01..2026-01-01",
        ] {
            assert!(Period::parse(text).is_err(), "{text}");
        }
    }
}
