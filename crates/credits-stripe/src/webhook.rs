//! Stripe's webhooks: the signature check and the handled events as plain values.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::client::{ApiError, expandable_id};

/// How far `t` may be from the clock, either way: Stripe's libraries' default.
/// Older deliveries are refused so a captured one cannot be replayed later.
pub const TOLERANCE_SECONDS: u64 = 300;

/// Why a delivery is refused (`400 invalid_request`, changing nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no Stripe-Signature header")]
    MissingHeader,
    #[error("Stripe-Signature has no valid t=<unix seconds>")]
    MalformedHeader,
    #[error("Stripe-Signature has no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches the payload")]
    SignatureMismatch,
    #[error("the signature's timestamp is more than {TOLERANCE_SECONDS} s from now")]
    TimestampOutsideTolerance,
    /// The webhook secret is empty: nothing could be verified.
    #[error("no webhook secret is configured")]
    NoSecret,
    #[error("event: {0}")]
    MalformedEvent(String),
}

/// Checks a delivery's `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: some
/// `v1` is the HMAC-SHA256 of `"<t>.<payload>"` under `secret` (several are sent
/// while a secret is rolled), compared in constant time, and `t` is at most
/// [`TOLERANCE_SECONDS`] from `now_unix`. Other schemes (`v0`) are ignored.
pub fn verify_signature(
    payload: &[u8],
    header: &str,
    secret: &str,
    now_unix: i64,
) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::NoSecret);
    }
    if header.trim().is_empty() {
        return Err(WebhookError::MissingHeader);
    }
    let mut timestamp: Option<(&str, i64)> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name {
            // The first `t` counts; Stripe sends one.
            "t" if timestamp.is_none() => {
                let seconds = value
                    .parse::<i64>()
                    .map_err(|_| WebhookError::MalformedHeader)?;
                timestamp = Some((value, seconds));
            }
            // A `v1` that is not hex cannot match; the others may.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let (t_text, t) = timestamp.ok_or(WebhookError::MalformedHeader)?;
    if signatures.is_empty() {
        return Err(WebhookError::NoSignature);
    }
    // The signed text uses `t` exactly as the header spells it.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| WebhookError::NoSecret)?;
    mac.update(t_text.as_bytes());
    mac.update(b".");
    mac.update(payload);
    // `verify_slice` compares in constant time.
    if !signatures
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok())
    {
        return Err(WebhookError::SignatureMismatch);
    }
    if now_unix.abs_diff(t) > TOLERANCE_SECONDS {
        return Err(WebhookError::TimestampOutsideTolerance);
    }
    Ok(())
}

/// A verified event, reduced to what the app acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `evt_...`: each id takes effect once, however often it is delivered.
    pub id: String,
    /// When Stripe created it (unix seconds).
    pub created: i64,
    pub livemode: bool,
    pub kind: EventKind,
}

/// The handled event types; any other is `Other` with its type, answered and ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// `payment_intent.succeeded`: money taken, grant the purchase (once).
    PaymentIntentSucceeded(PaymentIntentEvent),
    /// `payment_intent.payment_failed`: a decline, unless `last_payment_error.code`
    /// is `authentication_required` while the purchase waits for the cardholder.
    PaymentIntentFailed(PaymentIntentEvent),
    /// `payment_intent.canceled`: a decline.
    PaymentIntentCanceled(PaymentIntentEvent),
    /// `setup_intent.succeeded`: a card saved in the dashboard.
    SetupIntentSucceeded(SetupIntentEvent),
    /// `payment_method.detached`: a card removed from its customer.
    PaymentMethodDetached(PaymentMethodEvent),
    Other(String),
}

/// A PaymentIntent in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentEvent {
    pub id: String,
    pub status: String,
    /// In cents.
    pub amount: i64,
    pub currency: String,
    pub customer: Option<String>,
    /// From `metadata`: set on every PaymentIntent this crate creates; `None` on
    /// one that is not ours.
    pub purchase_id: Option<String>,
    pub account_id: Option<String>,
    pub source: Option<String>,
    /// Why the last attempt failed, for `payment_failed`.
    pub last_payment_error: Option<PaymentError>,
}

/// Why a payment attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentError {
    /// `card_declined`, `authentication_required`, ...
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
}

/// A SetupIntent in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupIntentEvent {
    pub id: String,
    pub customer: Option<String>,
    /// The payment method it saved (`pm_...`).
    pub payment_method: Option<String>,
    /// From `metadata`, set by `create_setup_intent`.
    pub account_id: Option<String>,
}

/// A payment method in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethodEvent {
    pub id: String,
    /// The customer it was attached to before it was detached, from
    /// `data.previous_attributes.customer` (the object's own is `null` by then).
    pub previous_customer: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    livemode: bool,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: serde_json::Value,
    #[serde(default)]
    previous_attributes: Option<PreviousAttributes>,
}

#[derive(Deserialize)]
struct PreviousAttributes {
    #[serde(default, deserialize_with = "expandable_id")]
    customer: Option<String>,
}

#[derive(Deserialize)]
struct RawPaymentIntent {
    id: String,
    status: String,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    currency: String,
    #[serde(default, deserialize_with = "expandable_id")]
    customer: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    last_payment_error: Option<ApiError>,
}

#[derive(Deserialize)]
struct RawSetupIntent {
    id: String,
    #[serde(default, deserialize_with = "expandable_id")]
    customer: Option<String>,
    #[serde(default, deserialize_with = "expandable_id")]
    payment_method: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Deserialize)]
struct RawObjectId {
    id: String,
}

/// Reads a (verified) event's payload. Only the handled types' objects are read;
/// any other type's is not looked at.
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let raw: RawEvent = from_json(payload)?;
    let object = raw.data.object;
    let kind = match raw.kind.as_str() {
        "payment_intent.succeeded" => EventKind::PaymentIntentSucceeded(payment_intent(object)?),
        "payment_intent.payment_failed" => EventKind::PaymentIntentFailed(payment_intent(object)?),
        "payment_intent.canceled" => EventKind::PaymentIntentCanceled(payment_intent(object)?),
        "setup_intent.succeeded" => {
            let mut si: RawSetupIntent = from_value(object)?;
            EventKind::SetupIntentSucceeded(SetupIntentEvent {
                id: si.id,
                customer: si.customer,
                payment_method: si.payment_method,
                account_id: si.metadata.remove("account_id"),
            })
        }
        "payment_method.detached" => {
            let RawObjectId { id } = from_value(object)?;
            EventKind::PaymentMethodDetached(PaymentMethodEvent {
                id,
                previous_customer: raw.data.previous_attributes.and_then(|p| p.customer),
            })
        }
        _ => EventKind::Other(raw.kind),
    };
    Ok(WebhookEvent {
        id: raw.id,
        created: raw.created,
        livemode: raw.livemode,
        kind,
    })
}

/// Verifies the signature, then reads the event.
pub fn verify_and_parse(
    payload: &[u8],
    header: &str,
    secret: &str,
    now_unix: i64,
) -> Result<WebhookEvent, WebhookError> {
    verify_signature(payload, header, secret, now_unix)?;
    parse_event(payload)
}

fn payment_intent(object: serde_json::Value) -> Result<PaymentIntentEvent, WebhookError> {
    let mut pi: RawPaymentIntent = from_value(object)?;
    Ok(PaymentIntentEvent {
        id: pi.id,
        status: pi.status,
        amount: pi.amount,
        currency: pi.currency,
        customer: pi.customer,
        purchase_id: pi.metadata.remove("purchase_id"),
        account_id: pi.metadata.remove("account_id"),
        source: pi.metadata.remove("source"),
        last_payment_error: pi.last_payment_error.map(|e| PaymentError {
            code: e.code,
            decline_code: e.decline_code,
            message: e.message,
        }),
    })
}

fn from_json<R: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<R, WebhookError> {
    serde_json::from_slice(payload).map_err(|e| WebhookError::MalformedEvent(e.to_string()))
}

fn from_value<R: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<R, WebhookError> {
    serde_json::from_value(value).map_err(|e| WebhookError::MalformedEvent(e.to_string()))
}
