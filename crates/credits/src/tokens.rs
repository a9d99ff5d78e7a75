//! Token amounts: whole, non-negative, and never wrapping.

use crate::error::CreditsError;

/// The largest integer a JSON number carries exactly (2^53 − 1).
pub const MAX_JSON_TOKENS: u64 = (1 << 53) - 1;

/// A positive token amount as a request states it: 1 ..= 2^53 − 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenAmount(u64);

impl TokenAmount {
    /// Accepts 1 ..= 2^53 − 1.
    ///
    /// ```
    /// use credits::TokenAmount;
    /// assert!(TokenAmount::new(1).is_ok());
    /// assert!(TokenAmount::new(0).is_err());
    /// assert!(TokenAmount::new(1 << 53).is_err());
    /// ```
    pub fn new(tokens: u64) -> Result<Self, CreditsError> {
        if (1..=MAX_JSON_TOKENS).contains(&tokens) {
            Ok(Self(tokens))
        } else {
            Err(CreditsError::invalid(format!(
                "tokens must be an integer from 1 to {MAX_JSON_TOKENS}"
            )))
        }
    }

    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }

    /// As a `SQLite` integer; lossless because the value is below 2^53.
    #[must_use]
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).expect("below 2^53")
    }
}

/// Adds token counts, failing on overflow instead of wrapping.
pub fn add(a: u64, b: u64) -> Result<u64, CreditsError> {
    a.checked_add(b)
        .ok_or_else(|| CreditsError::Internal("token count overflow".into()))
}

/// A token count from the database as `i64`, failing instead of wrapping.
pub fn to_sql(tokens: u64) -> Result<i64, CreditsError> {
    i64::try_from(tokens).map_err(|_| CreditsError::Internal("token count overflow".into()))
}
