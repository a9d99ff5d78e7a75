//! The adapter behind the domain's `PaymentProvider` port.
//!
//! The port's `Charge` carries the purchase id, the payment method, the amount, the
//! account and the purchase's source; a PaymentIntent also needs the account's
//! Stripe customer, which a [`Customers`] given to the constructor supplies (from
//! the app's database, creating the customer the first time).

use credits::{Charge, ChargeOutcome, CreditsError, PaymentProvider};

use crate::client::{StripeClient, StripeError};
use crate::payment_intents::{ChargeResult, StripeCharge};
use crate::transport::StripeTransport;

/// Looks up the Stripe customer (`cus_...`) a charge is for. Implemented for
/// closures.
pub trait Customers {
    /// An `Err` fails the charge with that error (nothing is sent to Stripe).
    fn customer(&self, charge: &Charge<'_>) -> Result<String, CreditsError>;
}

impl<F> Customers for F
where
    F: Fn(&Charge<'_>) -> Result<String, CreditsError>,
{
    fn customer(&self, charge: &Charge<'_>) -> Result<String, CreditsError> {
        self(charge)
    }
}

/// Stripe as the domain's payment provider.
pub struct StripePayments<T, C> {
    client: StripeClient<T>,
    customers: C,
}

impl<T, C> std::fmt::Debug for StripePayments<T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripePayments")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl<T: StripeTransport, C: Customers> StripePayments<T, C> {
    pub fn new(client: StripeClient<T>, customers: C) -> Self {
        Self { client, customers }
    }

    /// The client, for the calls beyond charging (customers, setup, search, ...).
    pub fn client(&self) -> &StripeClient<T> {
        &self.client
    }
}

impl<T: StripeTransport, C: Customers> PaymentProvider for StripePayments<T, C> {
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        let customer = self.customers.customer(charge)?;
        let stripe_charge = StripeCharge {
            purchase_id: charge.idempotency_key,
            account_id: charge.account.as_str(),
            customer: &customer,
            payment_method: charge.payment_method,
            amount: charge.amount,
            source: charge.source,
        };
        // Every failure to get an outcome (timeout, network, 5xx, an answer that
        // makes no sense, a refused request) leaves the purchase pending: the
        // repeat with the same key or the search by purchase id settles it, and
        // nothing is ever charged under a second PaymentIntent.
        match self.client.create_payment_intent(&stripe_charge) {
            Ok(result) => result.into_outcome(),
            // Stripe stores a 5xx under the key and answers it to every repeat:
            // only a search can still tell whether that request charged.
            Err(StripeError::Server { .. }) => Ok(self
                .find_charge(charge.idempotency_key)?
                .unwrap_or(ChargeOutcome::NotCharged)),
            Err(e) => Err(CreditsError::ProviderUnavailable(e.to_string())),
        }
    }

    /// Cancels the purchase's PaymentIntent unless it succeeded or is
    /// processing; Stripe refuses to cancel one that succeeded meanwhile (or was
    /// canceled already) and answers it as it is.
    fn abandon(&self, idempotency_key: &str) -> Result<ChargeOutcome, CreditsError> {
        let unavailable = |e: StripeError| CreditsError::ProviderUnavailable(e.to_string());
        let found = self
            .client
            .find_payment_intent(idempotency_key)
            .map_err(unavailable)?;
        let result = match found {
            None => {
                return Ok(ChargeOutcome::Declined {
                    message: credits::ABANDONED.to_owned(),
                });
            }
            // Waiting for the cardholder, or left to confirm again after a failed
            // check: canceled, so that its client secret can take no money later.
            Some(
                ChargeResult::AuthenticationRequired { payment_intent, .. }
                | ChargeResult::Declined {
                    payment_intent: Some(payment_intent),
                    ..
                },
            ) => self
                .client
                .cancel_payment_intent(&payment_intent)
                .map_err(unavailable)?,
            Some(other) => other,
        };
        match result.into_outcome()? {
            ChargeOutcome::Declined { .. } => Ok(ChargeOutcome::Declined {
                message: credits::ABANDONED.to_owned(),
            }),
            other => Ok(other),
        }
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        self.client
            .find_payment_intent(idempotency_key)
            .map_err(|e| CreditsError::ProviderUnavailable(e.to_string()))?
            .map(ChargeResult::into_outcome)
            .transpose()
    }
}
