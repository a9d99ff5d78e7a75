//! Identifiers: account ids chosen by the platform, transaction ids and cursors
//! that sort by the order of writing.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::CreditsError;

/// An account id: 1–64 of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        if Self::is_valid(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(CreditsError::invalid(
                "account_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
            ))
        }
    }

    /// Whether `text` could name an account (a path segment that can't is simply unknown).
    #[must_use]
    pub fn is_valid(text: &str) -> bool {
        (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A transaction id: the ledger's write sequence, zero-padded so ids sort as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransactionId(i64);

impl TransactionId {
    const PREFIX: &'static str = "tx_";

    #[must_use]
    pub fn from_seq(seq: i64) -> Self {
        Self(seq)
    }

    #[must_use]
    pub fn seq(self) -> i64 {
        self.0
    }

    /// Reads an id this service issued; anything else is `None`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix(Self::PREFIX)?;
        let seq: i64 = digits.parse().ok()?;
        let id = Self(seq);
        (seq > 0 && id.to_string() == text).then_some(id)
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:012}", Self::PREFIX, self.0)
    }
}

impl Serialize for TransactionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// 128 random bits as hex, from the platform's CSPRNG (WASI `random` in a component).
pub fn random_hex(bytes: usize) -> Result<String, CreditsError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| CreditsError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(AccountId::parse("acme_co-1").is_ok());
        assert!(AccountId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "é", "a/b", &"a".repeat(65)] {
            assert!(
                matches!(AccountId::parse(bad), Err(CreditsError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn transaction_ids_round_trip_and_sort() {
        let a = TransactionId::from_seq(9);
        let b = TransactionId::from_seq(10);
        assert_eq!(a.to_string(), "tx_000000000009");
        assert!(a.to_string() < b.to_string());
        assert_eq!(TransactionId::parse(&b.to_string()), Some(b));
        for bad in [
            "tx_9",
            "9",
            "tx_-00000000001",
            "tx_000000000000",
            "tx_00000000000x",
            "ty_000000000009",
        ] {
            assert_eq!(TransactionId::parse(bad), None, "{bad}");
        }
    }
}
