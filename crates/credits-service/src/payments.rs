//! Which payment provider charges, from the operator's variables (API.md,
//! "Payments"), read here and nowhere else.

use std::fmt;

use credits::{Charge, ChargeOutcome, CreditsError, PaymentProvider};
use credits_stripe::{
    DEFAULT_API_BASE, SecretKey, StripeClient, StripeRequest, StripeResponse, StripeTransport,
    TransportError,
};

/// Which payment provider charges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PaymentConfig {
    /// Stripe's test-mode outcomes without a network (the default).
    #[default]
    Sandbox,
    /// Stripe, with what it needs.
    Stripe(StripeConfig),
    /// The configuration names a provider this build cannot charge with, or
    /// lacks what it needs: nothing is charged (never the sandbox in its place),
    /// and a route that charges answers `500 internal_error` with this message,
    /// which names the variable.
    Unusable(String),
}

/// Stripe's settings. The secrets never show in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeConfig {
    pub secret_key: SecretKey,
    /// Signs the webhooks (`whsec_...`).
    pub webhook_secret: SecretKey,
    /// Given to the dashboard's Stripe.js (`pk_...`); may be empty.
    pub publishable_key: String,
    /// `https://api.stripe.com`, or a local Stripe-compatible server in tests.
    pub api_base: String,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &self.secret_key)
            .field("webhook_secret", &self.webhook_secret)
            .field("publishable_key", &self.publishable_key)
            .field("api_base", &self.api_base)
            .finish()
    }
}

impl StripeConfig {
    /// A client of the configured Stripe over `transport`.
    pub fn client<T: StripeTransport>(&self, transport: T) -> StripeClient<T> {
        StripeClient::new(transport, self.secret_key.clone(), &self.api_base)
    }
}

impl PaymentConfig {
    /// The variables that choose and configure the provider (API.md, Payments).
    pub const VARIABLES: [&'static str; 5] = [
        "payment_provider",
        "stripe_secret_key",
        "stripe_webhook_secret",
        "stripe_publishable_key",
        "stripe_api_base",
    ];

    /// Reads `payment_provider` (`None` or empty: the sandbox) and what the
    /// provider it names needs, with `get` (a variable's value, `None` if unset).
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match set("payment_provider").as_deref() {
            None | Some("sandbox") => Self::Sandbox,
            Some("stripe") => {
                let required = |name: &str| {
                    set(name).ok_or_else(|| {
                        format!("payment_provider is \"stripe\" but the variable {name} is not set")
                    })
                };
                let (secret_key, webhook_secret) = match (
                    required("stripe_secret_key"),
                    required("stripe_webhook_secret"),
                ) {
                    (Ok(key), Ok(webhook)) => (key, webhook),
                    (Err(why), _) | (_, Err(why)) => return Self::Unusable(why),
                };
                let api_base = set("stripe_api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
                if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
                    return Self::Unusable(format!(
                        "the variable stripe_api_base is {api_base:?}, not an http(s) URL"
                    ));
                }
                Self::Stripe(StripeConfig {
                    secret_key: SecretKey::new(secret_key),
                    webhook_secret: SecretKey::new(webhook_secret),
                    publishable_key: set("stripe_publishable_key").unwrap_or_default(),
                    api_base,
                })
            }
            Some(other) => Self::Unusable(format!(
                "the variable payment_provider is {other:?}, not \"sandbox\" or \"stripe\""
            )),
        }
    }

    /// Whether `payment_provider` names Stripe, whatever else is set.
    pub fn names_stripe(get: impl Fn(&str) -> Option<String>) -> bool {
        get("payment_provider").is_some_and(|v| v.trim() == "stripe")
    }

    /// Why nothing can be charged, if so.
    #[must_use]
    pub fn unusable(&self) -> Option<&str> {
        match self {
            Self::Sandbox | Self::Stripe(_) => None,
            Self::Unusable(why) => Some(why),
        }
    }
}

/// The provider for a configuration that cannot charge: every charge is an
/// unknown outcome, so a purchase it meets stays pending (and is charged once the
/// configuration is fixed), and a search finds nothing it could trust.
pub(crate) struct Unconfigured<'a>(pub(crate) &'a str);

impl PaymentProvider for Unconfigured<'_> {
    fn charge(&self, _charge: &Charge<'_>) -> Result<ChargeOutcome, CreditsError> {
        Err(CreditsError::ProviderUnavailable(self.0.to_owned()))
    }

    fn find_charge(&self, _key: &str) -> Result<Option<ChargeOutcome>, CreditsError> {
        Err(CreditsError::ProviderUnavailable(self.0.to_owned()))
    }
}

/// A transport for hosts that may send nothing (native tools, the sandbox's
/// tests): every request fails as a network error, so a charge stays pending.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNetwork;

impl StripeTransport for NoNetwork {
    fn send(&self, _request: StripeRequest) -> Result<StripeResponse, TransportError> {
        Err(TransportError::Network(
            "this host sends no requests to Stripe".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &'static [(&'static str, &'static str)]) -> PaymentConfig {
        PaymentConfig::from_variables(move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_payment_provider_is_the_sandbox_unless_named_and_never_a_silent_fallback() {
        assert_eq!(with(&[]), PaymentConfig::Sandbox);
        assert_eq!(with(&[("payment_provider", "")]), PaymentConfig::Sandbox);
        assert_eq!(
            with(&[("payment_provider", "sandbox")]),
            PaymentConfig::Sandbox
        );
        let missing = with(&[
            ("payment_provider", "stripe"),
            ("stripe_webhook_secret", "whsec_1"),
        ]);
        assert!(
            missing.unusable().unwrap().contains("stripe_secret_key"),
            "{missing:?}"
        );
        let missing = with(&[
            ("payment_provider", "stripe"),
            ("stripe_secret_key", "sk_test_1"),
            ("stripe_webhook_secret", " "),
        ]);
        assert!(
            missing
                .unusable()
                .unwrap()
                .contains("stripe_webhook_secret"),
            "{missing:?}"
        );
        let typo = with(&[("payment_provider", "strpe")]);
        assert!(typo.unusable().unwrap().contains("\"strpe\""), "{typo:?}");
        let bad_base = with(&[
            ("payment_provider", "stripe"),
            ("stripe_secret_key", "sk_test_1"),
            ("stripe_webhook_secret", "whsec_1"),
            ("stripe_api_base", "api.stripe.com"),
        ]);
        assert!(
            bad_base.unusable().unwrap().contains("stripe_api_base"),
            "{bad_base:?}"
        );
    }

    #[test]
    fn stripe_with_its_secrets_is_stripe_and_never_shows_them() {
        let PaymentConfig::Stripe(stripe) = with(&[
            ("payment_provider", " stripe "),
            ("stripe_secret_key", "sk_test_secret1"),
            ("stripe_webhook_secret", "whsec_secret2"),
            ("stripe_publishable_key", "pk_test_1"),
        ]) else {
            panic!("stripe expected")
        };
        assert_eq!(stripe.api_base, DEFAULT_API_BASE);
        assert_eq!(stripe.publishable_key, "pk_test_1");
        let shown = format!("{stripe:?}");
        assert!(
            !shown.contains("sk_test_secret1") && !shown.contains("whsec_secret2"),
            "{shown}"
        );
    }
}
