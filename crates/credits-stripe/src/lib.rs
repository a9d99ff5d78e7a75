//! The Stripe payment provider, one crate per backend as Spin keeps them.
//!
//! It turns charges into Stripe requests and Stripe's answers into outcomes, as
//! plain values, and sends nothing itself: every request goes through a
//! [`StripeTransport`] (Spin's outbound HTTP in components, a native client in
//! tests). Bodies are form-encoded by `serde_urlencoded`, as Stripe takes them.
//!
//! - [`StripeClient`]: customers, SetupIntents, payment methods, PaymentIntents
//!   (create with the purchase id as idempotency key, search by purchase id, cancel).
//! - [`StripePayments`]: the domain's `PaymentProvider` port over a client.
//! - [`StripeTables`]: what it keeps in the app's database (customers, cards,
//!   handled webhook events), in tables it owns; [`StoredCustomers`] creates an
//!   account's customer the first time a charge needs it.
//! - [`verify_signature`] and [`parse_event`]: webhooks.
//!
//! The secret key never shows: not in `Debug`, not in an error.

mod client;
mod customers;
mod payment_intents;
mod provider;
mod tables;
mod transport;
mod webhook;

pub use client::{
    ApiError, DEFAULT_API_BASE, STRIPE_VERSION, SecretKey, StripeClient, StripeError,
};
pub use customers::{CardDisplay, PaymentMethodInfo, SetupIntent};
pub use payment_intents::{ChargeResult, StripeCharge};
pub use provider::{Customers, StripePayments};
pub use tables::{StoredCustomers, StripeTables};
pub use transport::{Method, StripeRequest, StripeResponse, StripeTransport, TransportError};
pub use webhook::{
    EventKind, PaymentError, PaymentIntentEvent, PaymentMethodEvent, SetupIntentEvent,
    TOLERANCE_SECONDS, WebhookError, WebhookEvent, parse_event, verify_and_parse, verify_signature,
};
