//! Euros with exactly two decimal places, over `rust_decimal`; never a float.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};

use crate::error::CreditsError;

/// An amount of euros, exact to the cent, never negative.
///
/// ```
/// use credits::Eur;
/// let price = Eur::parse("10.00").unwrap();
/// assert_eq!(price.cents(), 1000);
/// assert_eq!(price.to_string(), "10.00");
/// assert!(Eur::parse("10.5").is_err());   // exactly two places
/// assert!(Eur::parse("-1.00").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Eur(Decimal);

impl Eur {
    pub const ZERO: Eur = Eur(Decimal::ZERO);

    /// Parses `"123.45"`: digits, a dot and exactly two digits.
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        let bad = || CreditsError::invalid(format!("{text:?} is not a euro amount like \"10.00\""));
        let (whole, cents) = text.split_once('.').ok_or_else(bad)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || cents.len() != 2 || !digits(cents) || whole.len() > 12 {
            return Err(bad());
        }
        let value: Decimal = text.parse().map_err(|_| bad())?;
        Ok(Self(value))
    }

    /// From a whole number of cents.
    #[must_use]
    pub fn from_cents(cents: i64) -> Self {
        Self(Decimal::new(cents, 2))
    }

    /// The amount in cents, as stored.
    #[must_use]
    pub fn cents(self) -> i64 {
        let cents = (self.0 * Decimal::ONE_HUNDRED).round();
        i64::try_from(cents).expect("euro amounts fit i64 cents")
    }

    /// `self / divisor` rounded half-up to the cent; `None` for a zero divisor.
    #[must_use]
    pub fn per(self, divisor: Decimal) -> Option<Eur> {
        let q = self.0.checked_div(divisor)?;
        Some(Self(q.round_dp_with_strategy(
            2,
            RoundingStrategy::MidpointAwayFromZero,
        )))
    }

    #[must_use]
    pub fn checked_add(self, other: Eur) -> Option<Eur> {
        self.0.checked_add(other.0).map(Self)
    }
}

impl fmt::Display for Eur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.0;
        v.rescale(2);
        write!(f, "{v}")
    }
}

impl Serialize for Eur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_two_places() {
        assert_eq!(Eur::parse("0.00").unwrap(), Eur::ZERO);
        assert_eq!(Eur::parse("50.00").unwrap().cents(), 5000);
        for bad in [
            "10", "10.0", "10.000", ".50", "1e2", "+1.00", " 1.00", "1,00", "", "abc", "-0.01",
        ] {
            assert!(Eur::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_two_places() {
        assert_eq!(Eur::from_cents(5).to_string(), "0.05");
        assert_eq!(Eur::from_cents(2500).to_string(), "25.00");
        assert_eq!(
            serde_json::to_string(&Eur::from_cents(1000)).unwrap(),
            "\"10.00\""
        );
    }

    #[test]
    fn divides_half_up() {
        let seven = Decimal::from(7);
        assert_eq!(
            Eur::from_cents(2500).per(seven).unwrap().to_string(),
            "3.57"
        );
        assert_eq!(
            Eur::from_cents(5000)
                .per(Decimal::from(15))
                .unwrap()
                .to_string(),
            "3.33"
        );
        assert_eq!(
            Eur::from_cents(1)
                .per(Decimal::from(2))
                .unwrap()
                .to_string(),
            "0.01"
        );
        assert!(Eur::from_cents(1).per(Decimal::ZERO).is_none());
    }
}
