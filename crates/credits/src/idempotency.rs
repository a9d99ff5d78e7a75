//! Idempotency keys and request fingerprints.
//!
//! A key is stored on the row its request writes, under a UNIQUE index per account
//! and route, so racing duplicates are settled by the database, not by a read.

use sha2::{Digest, Sha256};

use crate::error::{CreditsError, Result};
use crate::store::{DbError, Row};

/// A key a client sends so that a repeated request takes effect once: 1–255
/// printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self> {
        if (1..=255).contains(&text.len()) && text.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            Ok(Self(text.to_owned()))
        } else {
            Err(CreditsError::invalid(
                "an idempotency key must be 1-255 printable ASCII characters",
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key and the fingerprint of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: IdempotencyKey,
    pub fingerprint: String,
}

impl Idempotency {
    #[must_use]
    pub fn new(key: IdempotencyKey, body: &serde_json::Value) -> Self {
        Self {
            key,
            fingerprint: fingerprint(body),
        }
    }
}

/// What an idempotent write did: wrote its rows, or lost the race for its key.
pub(crate) enum Written<T> {
    Rows(Vec<Row>),
    /// The key's UNIQUE index refused the write: a racing twin with the same key
    /// got there first, and this is the twin's answer.
    Replayed(T),
}

/// Settles an idempotent write's result: a UNIQUE violation on a keyed write is
/// answered by `replay` (the winner's row), never reported as an error.
pub(crate) fn written_or_replayed<T>(
    result: Result<Vec<Row>, DbError>,
    idem: Option<&Idempotency>,
    replay: impl FnOnce(&Idempotency) -> Result<Option<T>>,
) -> Result<Written<T>> {
    match (result, idem) {
        (Err(e), Some(idem)) if e.is_unique_violation() => {
            replay(idem)?.map(Written::Replayed).ok_or_else(|| {
                CreditsError::Internal("the write that holds this idempotency key vanished".into())
            })
        }
        (result, _) => Ok(Written::Rows(result?)),
    }
}

/// SHA-256 of the body's canonical form: bodies equal as JSON hash equal.
///
/// `serde_json::Value` keeps object keys sorted, so re-serializing canonicalizes
/// key order and whitespace.
#[must_use]
pub fn fingerprint(body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_printable_ascii() {
        assert!(IdempotencyKey::parse("retry-1 ~!").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "tab\there", "ünï", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn equal_json_has_equal_fingerprints() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b": 1, "a": [1, 2]}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&json!({"a": [1, 2], "b": 1})));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"a": [2, 1], "b": 1})));
    }
}
