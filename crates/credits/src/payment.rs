//! The payment-provider port and the built-in sandbox provider.
//!
//! Every charge carries the purchase id as its idempotency key, the way Stripe's
//! API takes one: charging the same purchase twice returns the first outcome
//! instead of charging again. That is what makes re-driving a purchase after a
//! crash safe.

use crate::error::CreditsError;
use crate::money::Eur;
use crate::store::{Database, Value};
use crate::time::Timestamp;

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
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded,
    Declined { message: String },
}

/// A payment provider (Stripe, the sandbox, ...).
pub trait PaymentProvider {
    /// Charges, or returns the outcome of the earlier charge with the same key.
    /// An `Err` means the outcome is unknown: the purchase stays pending.
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError>;
}

/// Stripe test-mode behaviour: `pm_card_chargeDeclined` is declined, every other
/// method succeeds. Charges are recorded in the app's database so a repeated key
/// returns the first outcome, as a real provider would.
pub struct SandboxPayments<'a> {
    db: &'a dyn Database,
    now: Timestamp,
}

impl<'a> SandboxPayments<'a> {
    /// The payment method the sandbox always declines.
    pub const DECLINED_METHOD: &'static str = "pm_card_chargeDeclined";

    #[must_use]
    pub fn new(db: &'a dyn Database, now: Timestamp) -> Self {
        Self { db, now }
    }
}

impl PaymentProvider for SandboxPayments<'_> {
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        let declined = charge.payment_method == Self::DECLINED_METHOD;
        let outcome = if declined { "declined" } else { "succeeded" };
        // First writer wins; a retry reads back the first outcome.
        let rows = self.db.execute(
            "INSERT INTO sandbox_charges (idempotency_key, payment_method, amount_cents, outcome, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (idempotency_key) DO UPDATE SET idempotency_key = excluded.idempotency_key
             RETURNING outcome",
            &[
                charge.idempotency_key.into(),
                charge.payment_method.into(),
                Value::Integer(charge.amount.cents()),
                outcome.into(),
                Value::Integer(self.now.millis()),
            ],
        )?;
        let stored = rows
            .first()
            .map(|r| r.text(0).map(str::to_owned))
            .transpose()?;
        match stored.as_deref() {
            Some("succeeded") => Ok(ChargeOutcome::Succeeded),
            Some(_) => Ok(ChargeOutcome::Declined {
                message: "Your card was declined.".into(),
            }),
            None => Err(CreditsError::Internal("sandbox charge not recorded".into())),
        }
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
