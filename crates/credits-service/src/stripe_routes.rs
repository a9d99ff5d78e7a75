//! What the payment routes ask of the configured provider beyond charging:
//! saving a card (a SetupIntent, then checking the card is the account's), how a
//! saved card shows, an existing Stripe customer linked at account creation, and
//! Stripe's webhooks. The sandbox answers each without a network.

use credits::{AccountId, ChargeOutcome, Credits, CreditsError, Eur, PaymentMethodId, Timestamp};
use credits_stripe::{CardDisplay, EventKind, StoredCustomers, StripeError, StripeTables};

use crate::Stores;
use crate::payments::{PaymentConfig, StripeConfig};

/// What the dashboard needs to save a card (`POST /api/billing/payment-method/setup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentSetup {
    /// The sandbox: any `pm_...` id is saved as typed.
    Sandbox,
    /// A SetupIntent on the account's customer, for Stripe.js to confirm.
    Stripe {
        client_secret: String,
        publishable_key: String,
    },
}

fn unavailable(e: &StripeError) -> CreditsError {
    CreditsError::ProviderUnavailable(e.to_string())
}

fn customers<'a>(
    stores: Stores<'a>,
    stripe: &StripeConfig,
) -> StoredCustomers<'a, &'a dyn credits_stripe::StripeTransport> {
    StoredCustomers::new(stores.db, stripe.client(stores.stripe))
}

/// Starts saving a card for `account`.
pub fn payment_setup(
    stores: Stores<'_>,
    config: &PaymentConfig,
    account: &AccountId,
) -> Result<PaymentSetup, CreditsError> {
    let PaymentConfig::Stripe(stripe) = config else {
        return Ok(PaymentSetup::Sandbox);
    };
    let customer = customers(stores, stripe).customer_of(account)?;
    let intent = stripe
        .client(stores.stripe)
        .create_setup_intent(&customer, account.as_str())
        .map_err(|e| unavailable(&e))?;
    Ok(PaymentSetup::Stripe {
        client_secret: intent.client_secret,
        publishable_key: stripe.publishable_key.clone(),
    })
}

/// Checks that `method` may be saved as the account's and answers how it shows:
/// with Stripe, a payment method attached to the account's own customer (any
/// other is `invalid`), whose card is remembered; the sandbox takes any id and
/// shows no card.
pub fn verify_payment_method(
    stores: Stores<'_>,
    config: &PaymentConfig,
    account: &AccountId,
    method: &PaymentMethodId,
) -> Result<Option<CardDisplay>, CreditsError> {
    let PaymentConfig::Stripe(stripe) = config else {
        return Ok(None);
    };
    let customer = customers(stores, stripe).customer_of(account)?;
    let found = stripe
        .client(stores.stripe)
        .retrieve_payment_method(method.as_str())
        .map_err(|e| unavailable(&e))?;
    let Some(info) = found.filter(|info| info.is_attached_to(&customer)) else {
        return Err(CreditsError::Invalid(format!(
            "{} is not a payment method of this account's Stripe customer",
            method.as_str()
        )));
    };
    if let Some(card) = &info.card {
        StripeTables::new(stores.db).remember_card(&info.id, card)?;
    }
    Ok(info.card)
}

/// How the saved payment method shows: with Stripe, a card saved through it
/// (read from the database, so a component that only shows it needs no Stripe
/// secret); `None` in the sandbox or for a method whose card is not known.
pub fn card_of(
    stores: Stores<'_>,
    config: &crate::Config,
    method: Option<&str>,
) -> Result<Option<CardDisplay>, CreditsError> {
    match method {
        Some(method) if config.shows_cards => Ok(StripeTables::new(stores.db).card(method)?),
        _ => Ok(None),
    }
}

/// Refuses a Stripe customer (`cus_...`) that is already another account's, before
/// an account is created with it.
pub fn check_stripe_customer_free(stores: Stores<'_>, customer: &str) -> Result<(), CreditsError> {
    match StripeTables::new(stores.db).account_of_customer(customer)? {
        Some(owner) => Err(CreditsError::Invalid(format!(
            "stripe_customer_id {customer} is the Stripe customer of account {owner}"
        ))),
        None => Ok(()),
    }
}

/// Links an existing Stripe customer (`cus_...`) to a new account, whatever the
/// provider now (it is used once Stripe is).
pub fn link_stripe_customer(
    stores: Stores<'_>,
    account: &AccountId,
    customer: &str,
) -> Result<(), CreditsError> {
    let linked = match StripeTables::new(stores.db).link_customer(account, customer) {
        Err(e) if e.is_unique_violation() => {
            return Err(CreditsError::Invalid(format!(
                "stripe_customer_id {customer} is another account's Stripe customer"
            )));
        }
        other => other?,
    };
    if linked == customer {
        Ok(())
    } else {
        Err(CreditsError::AccountExists(account.as_str().to_owned()))
    }
}

/// What a verified webhook delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Its event took effect now.
    Applied,
    /// A repeated delivery, an event about nothing of ours or an unhandled type.
    Ignored,
}

/// Verifies and applies a Stripe webhook delivery at `now`. A refused one
/// (`Invalid`: no, a bad or an old signature, a payload that is no event)
/// changes nothing; each event id takes effect once.
pub fn stripe_webhook(
    credits: &Credits<'_>,
    stores: Stores<'_>,
    config: &PaymentConfig,
    now: Timestamp,
    payload: &[u8],
    signature: Option<&str>,
) -> Result<WebhookOutcome, CreditsError> {
    let PaymentConfig::Stripe(stripe) = config else {
        return Err(CreditsError::Invalid(
            "Stripe webhooks are taken only when payment_provider is \"stripe\"".into(),
        ));
    };
    let event = credits_stripe::verify_and_parse(
        payload,
        signature.unwrap_or(""),
        stripe.webhook_secret.expose(),
        now.millis().div_euclid(1000),
    )
    .map_err(|e| CreditsError::Invalid(format!("Stripe-Signature: {e}")))?;
    let tables = StripeTables::new(stores.db);
    if tables.event_done(&event.id)? {
        return Ok(WebhookOutcome::Ignored);
    }
    let fresh = event.created >= now.millis().div_euclid(1000) - FRESH_EVENT_SECONDS;
    let applied = apply(credits, stores, stripe, &tables, event.kind, fresh)?;
    tables.event_done_at(&event.id, now.millis())?;
    Ok(if applied {
        WebhookOutcome::Applied
    } else {
        WebhookOutcome::Ignored
    })
}

/// How old a `setup_intent.succeeded` may be and still replace a saved card:
/// Stripe's first delivery comes at once, its retries over three days, and a
/// late retry must not bring back a card replaced or removed since.
const FRESH_EVENT_SECONDS: i64 = 600;

/// The event's effect; false if it is about nothing of ours.
fn apply(
    credits: &Credits<'_>,
    stores: Stores<'_>,
    stripe: &StripeConfig,
    tables: &StripeTables<'_>,
    kind: EventKind,
    fresh: bool,
) -> Result<bool, CreditsError> {
    let (intent, outcome) = match kind {
        EventKind::PaymentIntentSucceeded(pi) => (pi, ChargeOutcome::Succeeded),
        EventKind::PaymentIntentFailed(pi) => {
            let error = pi
                .last_payment_error
                .clone()
                .unwrap_or(credits_stripe::PaymentError {
                    code: None,
                    decline_code: None,
                    message: None,
                });
            let message = error
                .message
                .unwrap_or_else(|| "Your card was declined.".to_owned());
            let outcome = if error.code.as_deref() == Some("authentication_required") {
                // The cardholder may still confirm: nothing changes while it waits.
                ChargeOutcome::AuthenticationRequired {
                    message,
                    client_secret: String::new(),
                }
            } else {
                ChargeOutcome::Declined { message }
            };
            (pi, outcome)
        }
        EventKind::PaymentIntentCanceled(pi) => (
            pi,
            ChargeOutcome::Declined {
                message: "The payment was canceled.".to_owned(),
            },
        ),
        EventKind::SetupIntentSucceeded(si) => {
            // The dashboard saves the card itself once Stripe.js confirms it;
            // this is the backstop for a tab closed in between.
            let (Some(customer), Some(method)) = (si.customer, si.payment_method) else {
                return Ok(false);
            };
            let Some(account) = tables.account_of_customer(&customer)? else {
                return Ok(false);
            };
            let (Ok(account), Ok(method)) =
                (AccountId::parse(&account), PaymentMethodId::parse(&method))
            else {
                return Ok(false);
            };
            let saved = credits.payment_method(&account)?.payment_method;
            if saved.as_deref() == Some(method.as_str()) || (saved.is_some() && !fresh) {
                return Ok(false);
            }
            let config = PaymentConfig::Stripe(stripe.clone());
            match verify_payment_method(stores, &config, &account, &method) {
                Ok(_) => {}
                // Not attached to the account's customer (any more): not saved.
                Err(CreditsError::Invalid(_)) => return Ok(false),
                Err(e) => return Err(e),
            }
            credits.save_payment_method(&account, &method)?;
            return Ok(true);
        }
        EventKind::PaymentMethodDetached(pm) => {
            let Some(customer) = pm.previous_customer else {
                return Ok(false);
            };
            let Some(account) = tables
                .account_of_customer(&customer)?
                .and_then(|a| AccountId::parse(&a).ok())
            else {
                return Ok(false);
            };
            return credits.forget_payment_method(&account, &pm.id);
        }
        EventKind::Other(_) => return Ok(false),
    };
    let Some(purchase) = intent.purchase_id.as_deref() else {
        return Ok(false);
    };
    if !intent.currency.eq_ignore_ascii_case("eur") {
        return Ok(false);
    }
    credits.provider_reported(purchase, Eur::from_cents(intent.amount), outcome)
}
