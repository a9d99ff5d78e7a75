//! The adapter behind the domain's `PaymentProvider` port.
//!
//! The port's `Charge` carries the purchase id, the payment method and the amount;
//! a PaymentIntent also needs the account, its Stripe customer and the purchase's
//! source. Until `Charge` carries the account and the source, a [`ChargeParties`]
//! given to the constructor supplies all three (by purchase id, from the app's
//! database); after that, only the customer.

use credits::{Charge, ChargeOutcome, CreditsError, PaymentProvider, PurchaseSource};

use crate::client::StripeClient;
use crate::payment_intents::{ChargeResult, StripeCharge};
use crate::transport::StripeTransport;

/// Who a charge is for, beyond what the port's `Charge` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeParty {
    pub account_id: String,
    /// The account's Stripe customer (`cus_...`), created first if it had none.
    pub customer: String,
    pub source: PurchaseSource,
}

/// Looks up who a charge is for. Implemented for closures.
pub trait ChargeParties {
    /// An `Err` fails the charge with that error (nothing is sent to Stripe).
    fn party(&self, charge: &Charge<'_>) -> Result<ChargeParty, CreditsError>;
}

impl<F> ChargeParties for F
where
    F: Fn(&Charge<'_>) -> Result<ChargeParty, CreditsError>,
{
    fn party(&self, charge: &Charge<'_>) -> Result<ChargeParty, CreditsError> {
        self(charge)
    }
}

/// Stripe as the domain's payment provider.
pub struct StripePayments<T, P> {
    client: StripeClient<T>,
    parties: P,
}

impl<T, P> std::fmt::Debug for StripePayments<T, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripePayments")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl<T: StripeTransport, P: ChargeParties> StripePayments<T, P> {
    pub fn new(client: StripeClient<T>, parties: P) -> Self {
        Self { client, parties }
    }

    /// The client, for the calls beyond charging (customers, setup, search, ...).
    pub fn client(&self) -> &StripeClient<T> {
        &self.client
    }
}

impl<T: StripeTransport, P: ChargeParties> PaymentProvider for StripePayments<T, P> {
    fn charge(&self, charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        let party = self.parties.party(charge)?;
        let stripe_charge = StripeCharge {
            purchase_id: charge.idempotency_key,
            account_id: &party.account_id,
            customer: &party.customer,
            payment_method: charge.payment_method,
            amount: charge.amount,
            source: party.source,
        };
        // Every failure to get an outcome (timeout, network, 5xx, an answer that
        // makes no sense, a refused request) leaves the purchase pending: the
        // repeat with the same key or the search by purchase id settles it, and
        // nothing is ever charged under a second PaymentIntent.
        self.client
            .create_payment_intent(&stripe_charge)
            .map_err(|e| CreditsError::ProviderUnavailable(e.to_string()))?
            .into_outcome()
    }

    fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        self.client
            .find_payment_intent(idempotency_key)
            .map_err(|e| CreditsError::ProviderUnavailable(e.to_string()))?
            .map(ChargeResult::into_outcome)
            .transpose()
    }
}
