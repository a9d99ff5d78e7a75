//! Customers, SetupIntents and saved payment methods: what saving a card needs.

use serde::{Deserialize, Serialize};

use crate::client::{StripeClient, StripeError, expandable_id, path_segment};
use crate::transport::StripeTransport;

/// A SetupIntent for the dashboard to confirm with Stripe.js.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupIntent {
    pub id: String,
    /// `seti_..._secret_...`: lets Stripe.js confirm this one SetupIntent, nothing else.
    pub client_secret: String,
}

/// What the dashboard shows of a saved card, as API.md's `"card"` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardDisplay {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
}

/// A payment method as Stripe reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentMethodInfo {
    pub id: String,
    /// The customer it is attached to, if any.
    #[serde(default, deserialize_with = "expandable_id")]
    pub customer: Option<String>,
    /// The card's display, for a card.
    #[serde(default)]
    pub card: Option<CardDisplay>,
}

impl PaymentMethodInfo {
    /// Whether it may be saved as the account's: only a method attached to the
    /// account's own customer can be charged off-session for it.
    #[must_use]
    pub fn is_attached_to(&self, customer: &str) -> bool {
        self.customer.as_deref() == Some(customer)
    }
}

/// A GET without parameters.
const NO_QUERY: [(&str, &str); 0] = [];

#[derive(Serialize)]
struct CustomerForm<'a> {
    #[serde(rename = "metadata[account_id]")]
    account_id: &'a str,
}

#[derive(Serialize)]
struct SetupIntentForm<'a> {
    customer: &'a str,
    usage: &'static str,
    // The Payment Element confirms it on-session in the dashboard, so redirects
    // are possible there; the account id lets `setup_intent.succeeded` be placed
    // even before the customer is known to be the account's.
    #[serde(rename = "metadata[account_id]")]
    account_id: &'a str,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct SetupIntentObject {
    id: String,
    client_secret: Option<String>,
}

impl<T: StripeTransport> StripeClient<T> {
    /// The idempotency key of an account's customer: however often (or
    /// concurrently) it is created, Stripe makes one customer per account.
    #[must_use]
    pub fn customer_idempotency_key(account_id: &str) -> String {
        format!("customer-{account_id}")
    }

    /// Creates the account's Stripe customer (`metadata[account_id]`), or answers
    /// the one created before under the same key. Returns its id (`cus_...`),
    /// which the caller keeps: Stripe remembers the key for 24 hours only.
    pub fn create_customer(&self, account_id: &str) -> Result<String, StripeError> {
        let key = Self::customer_idempotency_key(account_id);
        let response = self.post("/v1/customers", &CustomerForm { account_id }, Some(&key))?;
        let Created { id } = self.read(&response)?;
        Ok(id)
    }

    /// A SetupIntent (`usage=off_session`) on the customer, for the dashboard to
    /// save a card that later charges need no cardholder for.
    pub fn create_setup_intent(
        &self,
        customer: &str,
        account_id: &str,
    ) -> Result<SetupIntent, StripeError> {
        let form = SetupIntentForm {
            customer,
            usage: "off_session",
            account_id,
        };
        let response = self.post("/v1/setup_intents", &form, None)?;
        let SetupIntentObject { id, client_secret } = self.read(&response)?;
        let client_secret = client_secret
            .ok_or_else(|| StripeError::Unexpected(format!("{id} has no client secret")))?;
        Ok(SetupIntent { id, client_secret })
    }

    /// The payment method `id`, or `None` if Stripe has none by that id
    /// (`404 resource_missing`).
    pub fn retrieve_payment_method(
        &self,
        id: &str,
    ) -> Result<Option<PaymentMethodInfo>, StripeError> {
        let path = format!(
            "/v1/payment_methods/{}",
            path_segment("a payment method id", id)?
        );
        let response = self.get(&path, &NO_QUERY)?;
        match self.read(&response) {
            Ok(method) => Ok(Some(method)),
            // Only Stripe's "no such object": a 404 for a wrong `stripe_api_base`
            // must not read as "the customer has no such card".
            Err(StripeError::Api { status: 404, error })
                if error.code.as_deref() == Some("resource_missing") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
