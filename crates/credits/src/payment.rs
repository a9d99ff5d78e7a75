//! The payment-provider port.
//!
//! Every charge carries the purchase id as its idempotency key, the way Stripe's
//! API takes one: charging the same purchase twice returns the first outcome
//! instead of charging again. That is what makes re-driving a purchase after a
//! crash safe.

use crate::error::CreditsError;
use crate::ids::AccountId;
use crate::money::Eur;
use crate::transaction::PurchaseSource;

/// A saved payment method: `pm_` then 1–100 of `[A-Za-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodId(String);

impl PaymentMethodId {
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        let rest = text.strip_prefix("pm_").unwrap_or("");
        if (1..=100).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(CreditsError::invalid(
                "payment_method must be \"pm_\" followed by 1-100 of A-Z, a-z, 0-9 and _",
            ))
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One request to take money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge<'a> {
    /// The purchase id: the same key never charges twice.
    pub idempotency_key: &'a str,
    pub payment_method: &'a str,
    pub amount: Eur,
    /// Whose money: a provider keeps its customer per account.
    pub account: &'a AccountId,
    /// A purchase asked for (`Manual`, on-session) or an auto-recharge (off-session).
    pub source: PurchaseSource,
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded,
    Declined {
        message: String,
    },
    /// The bank wants the cardholder to confirm (3-D Secure); nothing is taken yet.
    /// `client_secret` lets the dashboard run the provider's next action
    /// on-session; the provider reports the outcome later. Off-session (an
    /// auto-recharge) nobody can confirm: it is a decline.
    AuthenticationRequired {
        message: String,
        client_secret: String,
    },
    /// The provider answered under this key without charging (a stored server
    /// error, which it repeats to every retry) and has no payment for it: once
    /// its search has had time to catch up, nothing was charged.
    NotCharged,
}

/// Why a charge the cardholder never confirmed was dropped.
pub const ABANDONED: &str = "Not confirmed by the cardholder within 24 hours; nothing was charged.";

/// A payment provider (Stripe, the sandbox, ...).
pub trait PaymentProvider {
    /// Charges, or returns the outcome of the earlier charge with the same key.
    /// An `Err` means the outcome is unknown (`ProviderUnavailable`): the purchase
    /// stays pending.
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError>;

    /// The outcome of an earlier charge with this key, charging nothing: `None`
    /// when the provider never charged under it. An `Err` means it cannot tell
    /// now. (With Stripe: the `PaymentIntent` found by `metadata['purchase_id']`.)
    fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, CreditsError>;

    /// Gives up a charge still waiting for its cardholder (a manual purchase not
    /// confirmed within a day), answering how it ended: declined once the
    /// provider has dropped it, or succeeded if the cardholder confirmed it in
    /// the meantime (money taken is granted). An `Err`: it cannot tell now.
    fn abandon(&self, idempotency_key: &str) -> Result<ChargeOutcome, CreditsError> {
        Ok(self
            .find_charge(idempotency_key)?
            .filter(|outcome| *outcome == ChargeOutcome::Succeeded)
            .unwrap_or(ChargeOutcome::Declined {
                message: ABANDONED.to_owned(),
            }))
    }

    /// Whether charges go over a network (Stripe): then the auto-recharge a
    /// deduction or hold sets off runs after its answer, never inside it. The
    /// sandbox answers at once, so its recharges count in the answer.
    fn is_remote(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_method_ids() {
        assert!(PaymentMethodId::parse("pm_card_visa").is_ok());
        assert!(PaymentMethodId::parse(&format!("pm_{}", "a".repeat(100))).is_ok());
        for bad in [
            "pm_",
            "card_visa",
            "pm_card-visa",
            "pm_ä",
            &format!("pm_{}", "a".repeat(101)),
        ] {
            assert!(PaymentMethodId::parse(bad).is_err(), "{bad}");
        }
    }
}
