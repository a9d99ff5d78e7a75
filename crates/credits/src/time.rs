//! Instants and UTC calendar months: the plan allocation renews each month.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};

use crate::error::CreditsError;

/// An instant, in milliseconds since the Unix epoch (UTC), as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    #[must_use]
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    #[must_use]
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 time with an offset (`2026-11-25T10:00:00Z`).
    pub fn parse_rfc3339(text: &str) -> Result<Self, CreditsError> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Self(t.timestamp_millis()))
            .map_err(|_| CreditsError::invalid(format!("{text:?} is not an RFC 3339 time")))
    }

    /// Parses an RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC).
    pub fn parse_time_or_date(text: &str) -> Result<Self, CreditsError> {
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            && text.len() == 10
        {
            return Ok(Self(
                date.and_hms_opt(0, 0, 0)
                    .expect("midnight")
                    .and_utc()
                    .timestamp_millis(),
            ));
        }
        Self::parse_rfc3339(text).map_err(|_| {
            CreditsError::invalid(format!(
                "{text:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"
            ))
        })
    }

    fn datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or_default()
    }

    /// `2026-11-25T10:00:00.000Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        self.datetime().to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// The UTC calendar month this instant falls in.
    #[must_use]
    pub fn month(self) -> Month {
        let d = self.datetime();
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    #[must_use]
    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// A UTC calendar month: the period of a plan allocation and of the recharge limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// `2026-11`: the key plan usage and recharge spending are stored under.
    #[must_use]
    pub fn key(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// The first instant of the month.
    #[must_use]
    pub fn start(self) -> Timestamp {
        Self::first_day(self.year, self.month)
    }

    /// The first instant of the next month (the period end is exclusive).
    #[must_use]
    pub fn end(self) -> Timestamp {
        if self.month == 12 {
            Self::first_day(self.year + 1, 1)
        } else {
            Self::first_day(self.year, self.month + 1)
        }
    }

    fn first_day(year: i32, month: u32) -> Timestamp {
        let date = NaiveDate::from_ymd_opt(year, month, 1).expect("valid month");
        Timestamp(
            date.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp_millis(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let t = Timestamp::parse_rfc3339("2026-11-25T10:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T09:00:00.000Z");
    }

    #[test]
    fn months_have_exclusive_ends() {
        let t = Timestamp::parse_rfc3339("2026-12-31T23:59:59.999Z").unwrap();
        let m = t.month();
        assert_eq!(m.key(), "2026-12");
        assert_eq!(m.start().to_rfc3339(), "2026-12-01T00:00:00.000Z");
        assert_eq!(m.end().to_rfc3339(), "2027-01-01T00:00:00.000Z");
        assert_eq!(t.plus_millis(1).month().key(), "2027-01");
    }

    #[test]
    fn dates_are_midnight_utc() {
        let t = Timestamp::parse_time_or_date("2026-02-28").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-02-28T00:00:00.000Z");
        assert!(Timestamp::parse_time_or_date("2026-02-30").is_err());
        assert!(Timestamp::parse_time_or_date("yesterday").is_err());
    }
}
