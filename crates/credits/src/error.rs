//! The domain's one error enum: what went wrong, in the product's terms. The HTTP
//! crate maps each variant to an API error code and status, in one place.

use crate::purchase::PendingPurchaseView;
use crate::store::DbError;

/// Everything a rule of the product can refuse, and the failures beneath it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CreditsError {
    /// A value the rules do not take (an id, a label, an amount, a range).
    #[error("{0}")]
    Invalid(String),
    /// No account has this key.
    #[error("no account has this key")]
    UnknownAccountKey,
    /// The free plan may not do this (buy credits, use auto-recharge).
    #[error("the free plan cannot {0}; upgrade to a paid plan to unlock it")]
    FreePlan(&'static str),
    /// The named thing does not exist, or belongs to another account.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{requested} tokens requested but only {available} available")]
    InsufficientBalance { requested: u64, available: u64 },
    /// The payment provider declined the charge; nothing was granted.
    #[error("payment declined: {0}")]
    PaymentDeclined(String),
    /// The cardholder must confirm the charge (3-D Secure) with `client_secret`;
    /// the purchase stays pending until the provider reports the outcome.
    #[error("{message}")]
    AuthenticationRequired {
        message: String,
        client_secret: String,
    },
    #[error("the account has no saved payment method")]
    PaymentMethodRequired,
    #[error("account {0} exists already")]
    AccountExists(String),
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("{requested} tokens exceed the {refundable} tokens left to refund on this deduction")]
    RefundExceedsDeduction { requested: u64, refundable: u64 },
    /// The hold was settled, voided or expired already.
    #[error("this hold is {0}, no longer held")]
    HoldNotHeld(&'static str),
    #[error("{requested} tokens exceed the {held} tokens this hold holds")]
    HoldExceeded { requested: u64, held: u64 },
    /// Storage failed; the statement that failed changed nothing.
    #[error("storage: {0}")]
    Storage(#[from] DbError),
    /// A manual purchase whose charge has no outcome yet: pending, settled later
    /// (the answer is `202`, not a failure).
    #[error("the payment's outcome is not known yet")]
    PaymentPending(PendingPurchaseView),
    /// The payment provider did not give an outcome (timeout, outage): the purchase
    /// stays pending and is settled later.
    #[error("payment provider: {0}")]
    ProviderUnavailable(String),
    /// An invariant the code relies on did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CreditsError {
    /// Shorthand for a value the rules do not take.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

pub type Result<T, E = CreditsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::CreditsError;

    /// The domain's messages name no header, route or token: the HTTP crate
    /// words those for the API's callers.
    #[test]
    fn messages_speak_the_products_terms() {
        let errors = [
            CreditsError::UnknownAccountKey,
            CreditsError::FreePlan("buy credits"),
            CreditsError::NotFound("account"),
            CreditsError::PaymentMethodRequired,
            CreditsError::AccountExists("acme".into()),
            CreditsError::IdempotencyKeyReused,
            CreditsError::HoldNotHeld("settled"),
            CreditsError::PaymentDeclined("card declined".into()),
            CreditsError::InsufficientBalance {
                requested: 2,
                available: 1,
            },
            CreditsError::RefundExceedsDeduction {
                requested: 2,
                refundable: 1,
            },
            CreditsError::HoldExceeded {
                requested: 2,
                held: 1,
            },
            crate::IdempotencyKey::parse("").unwrap_err(),
        ];
        for error in errors {
            let message = error.to_string();
            for http_word in [
                "/api/",
                "Idempotency-Key",
                "bearer",
                "HTTP",
                "PUT ",
                "POST ",
            ] {
                assert!(!message.contains(http_word), "{error:?} says {message:?}");
            }
        }
    }
}
