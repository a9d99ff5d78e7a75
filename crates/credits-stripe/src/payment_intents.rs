//! PaymentIntents: one per purchase, created and confirmed off-session in one
//! request under the purchase id as idempotency key; found again by the purchase
//! id in their metadata; canceled when a purchase is given up.

use std::collections::HashMap;

use credits::{ChargeOutcome, CreditsError, Eur, PurchaseSource};
use serde::{Deserialize, Serialize};

use crate::client::{ApiError, StripeClient, StripeError, parse, path_segment};
use crate::transport::StripeTransport;

/// Everything one off-session charge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeCharge<'a> {
    /// The purchase id: the idempotency key and `metadata[purchase_id]`.
    pub purchase_id: &'a str,
    /// The account: `metadata[account_id]`.
    pub account_id: &'a str,
    /// The account's Stripe customer (`cus_...`), to which the method is attached.
    pub customer: &'a str,
    /// The saved payment method (`pm_...`).
    pub payment_method: &'a str,
    pub amount: Eur,
    /// `metadata[source]`: `manual` or `auto_recharge`.
    pub source: PurchaseSource,
}

/// What a charge came to, with everything Stripe said that the caller may need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeResult {
    /// The money is taken: grant the pack.
    Succeeded { payment_intent: String },
    /// The card was declined (HTTP 402 `card_error`, or a PaymentIntent found failed
    /// or canceled): nothing was taken. `message` is Stripe's, for the cardholder.
    Declined {
        payment_intent: Option<String>,
        /// Stripe's error code (`card_declined`, `expired_card`, ...), if any.
        code: Option<String>,
        /// The issuer's reason (`insufficient_funds`, ...), if any.
        decline_code: Option<String>,
        message: String,
    },
    /// The bank wants the cardholder to authenticate (3-D Secure): nothing is taken
    /// yet. A manual purchase hands `client_secret` to Stripe.js on-session and
    /// waits for the webhook; an auto-recharge counts it as a decline whose code is
    /// `authentication_required`.
    AuthenticationRequired {
        payment_intent: String,
        client_secret: String,
        message: String,
    },
    /// Stripe is still processing: the outcome comes later (webhook or a check).
    Processing { payment_intent: String },
}

impl ChargeResult {
    /// The result for the domain's payment port. Unknown outcomes (`processing`)
    /// are `ProviderUnavailable`: the purchase stays pending.
    pub fn into_outcome(self) -> Result<ChargeOutcome, CreditsError> {
        match self {
            Self::Succeeded { .. } => Ok(ChargeOutcome::Succeeded),
            Self::Declined { message, .. } => Ok(ChargeOutcome::Declined { message }),
            Self::AuthenticationRequired {
                message,
                client_secret,
                ..
            } => Ok(ChargeOutcome::AuthenticationRequired {
                message,
                client_secret,
            }),
            Self::Processing { payment_intent } => Err(CreditsError::ProviderUnavailable(format!(
                "Stripe is processing {payment_intent}"
            ))),
        }
    }
}

/// What `POST /v1/payment_intents` takes. Field names are Stripe's form keys:
/// `serde_urlencoded` encodes them (brackets included) and their values.
#[derive(Serialize)]
struct CreateForm<'a> {
    amount: i64,
    currency: &'static str,
    customer: &'a str,
    payment_method: &'a str,
    off_session: bool,
    confirm: bool,
    // Off-session card charges never redirect; without these two, Stripe's default
    // automatic payment methods demand a `return_url` on a confirming create.
    #[serde(rename = "automatic_payment_methods[enabled]")]
    automatic_enabled: bool,
    #[serde(rename = "automatic_payment_methods[allow_redirects]")]
    allow_redirects: &'static str,
    #[serde(rename = "metadata[account_id]")]
    account_id: &'a str,
    #[serde(rename = "metadata[purchase_id]")]
    purchase_id: &'a str,
    #[serde(rename = "metadata[source]")]
    source: &'static str,
}

/// The fields of a PaymentIntent read here.
#[derive(Debug, Deserialize)]
pub(crate) struct PaymentIntentObject {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<ApiError>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A card error's object: the error and the PaymentIntent it left.
#[derive(Deserialize)]
struct CardError {
    #[serde(flatten)]
    error: ApiError,
    #[serde(default)]
    payment_intent: Option<PaymentIntentObject>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: CardError,
}

#[derive(Deserialize)]
struct SearchResult {
    data: Vec<PaymentIntentObject>,
}

const AUTHENTICATION_REQUIRED: &str = "authentication_required";

impl<T: StripeTransport> StripeClient<T> {
    /// Creates and confirms the purchase's PaymentIntent, or (same key, same
    /// parameters) answers the first request's outcome again: Stripe keeps an
    /// idempotency key's answer for at least 24 hours, which is what makes
    /// repeating this for a pending purchase safe. An `Err` means the outcome is
    /// unknown.
    pub fn create_payment_intent(
        &self,
        charge: &StripeCharge<'_>,
    ) -> Result<ChargeResult, StripeError> {
        let form = CreateForm {
            amount: charge.amount.cents(),
            currency: "eur",
            customer: charge.customer,
            payment_method: charge.payment_method,
            off_session: true,
            confirm: true,
            automatic_enabled: true,
            allow_redirects: "never",
            account_id: charge.account_id,
            purchase_id: charge.purchase_id,
            source: charge.source.as_str(),
        };
        let response = self.post("/v1/payment_intents", &form, Some(charge.purchase_id))?;
        match response.status {
            200..=299 => result_of(&parse(&response.body)?),
            402 => {
                let ErrorBody { error } = parse(&response.body)?;
                card_error(error)
                    .unwrap_or_else(|error| Err(StripeError::Api { status: 402, error }))
            }
            _ => Err(self.api_error(&response)),
        }
    }

    /// The PaymentIntent of a purchase, found by `metadata['purchase_id']` with
    /// Stripe's search (for a pending purchase whose idempotent repeat answered no
    /// outcome, or whose key Stripe has forgotten). `None`: no PaymentIntent yet —
    /// Stripe's search index can lag by about a minute, so "none" only means
    /// "nothing charged" some time after the purchase began. If several were found
    /// (never by this crate), money taken wins.
    pub fn find_payment_intent(
        &self,
        purchase_id: &str,
    ) -> Result<Option<ChargeResult>, StripeError> {
        let query = format!("metadata['purchase_id']:'{}'", search_literal(purchase_id));
        let response = self.get("/v1/payment_intents/search", &[("query", query)])?;
        let SearchResult { data } = self.read(&response)?;
        let mut best: Option<Result<ChargeResult, StripeError>> = None;
        // The query matched the metadata; checked again so that a search that
        // matched loosely can never settle another purchase.
        for intent in data
            .iter()
            .filter(|i| i.metadata.get("purchase_id").map(String::as_str) == Some(purchase_id))
        {
            let result = result_of(intent);
            if rank(&result) > best.as_ref().map_or(-1, rank) {
                best = Some(result);
            }
        }
        best.transpose()
    }

    /// Cancels a PaymentIntent that waits for authentication (a purchase given up
    /// after 24 hours), answering the outcome it ended with: `Declined` once
    /// canceled, or `Succeeded` if the cardholder completed it meanwhile (Stripe
    /// then refuses the cancel with the PaymentIntent, and the money must be granted).
    pub fn cancel_payment_intent(&self, id: &str) -> Result<ChargeResult, StripeError> {
        let path = format!(
            "/v1/payment_intents/{}/cancel",
            path_segment("a PaymentIntent id", id)?
        );
        let response = self.post(&path, &[("cancellation_reason", "abandoned")], None)?;
        if (200..300).contains(&response.status) {
            return result_of(&parse(&response.body)?);
        }
        // `payment_intent_unexpected_state` carries the PaymentIntent as it is.
        match serde_json::from_slice::<ErrorBody>(&response.body) {
            Ok(ErrorBody {
                error:
                    CardError {
                        payment_intent: Some(intent),
                        ..
                    },
            }) => result_of(&intent),
            _ => Err(self.api_error(&response)),
        }
    }
}

/// The result a card error stands for, or the error back if it is no card error.
fn card_error(error: CardError) -> Result<Result<ChargeResult, StripeError>, ApiError> {
    if error.error.kind != "card_error" {
        return Err(error.error);
    }
    let message = error
        .error
        .message
        .unwrap_or_else(|| "Your card was declined.".into());
    let intent = error.payment_intent;
    if error.error.code.as_deref() == Some(AUTHENTICATION_REQUIRED) {
        // Without the client secret the cardholder cannot authenticate: an answer
        // that makes no sense leaves the purchase pending.
        return Ok(match intent {
            Some(PaymentIntentObject {
                id,
                client_secret: Some(client_secret),
                ..
            }) => Ok(ChargeResult::AuthenticationRequired {
                payment_intent: id,
                client_secret,
                message,
            }),
            _ => Err(StripeError::Unexpected(
                "authentication_required without a PaymentIntent client secret".into(),
            )),
        });
    }
    Ok(Ok(ChargeResult::Declined {
        payment_intent: intent.map(|i| i.id),
        code: error.error.code,
        decline_code: error.error.decline_code,
        message,
    }))
}

/// The result a PaymentIntent's status stands for.
pub(crate) fn result_of(intent: &PaymentIntentObject) -> Result<ChargeResult, StripeError> {
    let id = intent.id.clone();
    let error = intent.last_payment_error.as_ref();
    match intent.status.as_str() {
        "succeeded" => Ok(ChargeResult::Succeeded { payment_intent: id }),
        "processing" => Ok(ChargeResult::Processing { payment_intent: id }),
        "requires_action" => authentication_required(intent),
        "requires_payment_method"
            if error.and_then(|e| e.code.as_deref()) == Some(AUTHENTICATION_REQUIRED) =>
        {
            authentication_required(intent)
        }
        // Failed and back to waiting for a method: a decline, if it says why.
        "requires_payment_method" if error.is_some() => {
            let error = error.cloned().unwrap_or_default();
            Ok(ChargeResult::Declined {
                payment_intent: Some(id),
                message: error
                    .message
                    .unwrap_or_else(|| "Your card was declined.".into()),
                code: error.code,
                decline_code: error.decline_code,
            })
        }
        "canceled" => Ok(ChargeResult::Declined {
            payment_intent: Some(id),
            code: None,
            decline_code: None,
            message: match &intent.cancellation_reason {
                Some(reason) => format!("The payment was canceled ({reason})."),
                None => "The payment was canceled.".into(),
            },
        }),
        // Never confirmed, or a capture we never ask for: not an outcome.
        other => Err(StripeError::Unexpected(format!(
            "PaymentIntent {id} is {other}"
        ))),
    }
}

/// A PaymentIntent waiting for the cardholder to authenticate (3-D Secure).
fn authentication_required(intent: &PaymentIntentObject) -> Result<ChargeResult, StripeError> {
    let id = intent.id.clone();
    let client_secret = intent.client_secret.clone().ok_or_else(|| {
        StripeError::Unexpected(format!(
            "{id} needs authentication but has no client secret"
        ))
    })?;
    Ok(ChargeResult::AuthenticationRequired {
        payment_intent: id,
        client_secret,
        message: intent
            .last_payment_error
            .as_ref()
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| "This payment requires authentication.".into()),
    })
}

/// Which of several PaymentIntents for one purchase tells its outcome: money
/// taken first, then money that may still come, then the rest.
fn rank(result: &Result<ChargeResult, StripeError>) -> i8 {
    match result {
        Ok(ChargeResult::Succeeded { .. }) => 4,
        Ok(ChargeResult::Processing { .. }) => 3,
        Ok(ChargeResult::AuthenticationRequired { .. }) => 2,
        Ok(ChargeResult::Declined { .. }) => 1,
        Err(_) => 0,
    }
}

/// A value inside single quotes of Stripe's search language: `\` and `'` escaped.
fn search_literal(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(json: &str) -> PaymentIntentObject {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn statuses_map_to_results() {
        let ok = intent(r#"{"id":"pi_1","status":"succeeded"}"#);
        assert!(matches!(result_of(&ok), Ok(ChargeResult::Succeeded { .. })));
        let processing = intent(r#"{"id":"pi_1","status":"processing"}"#);
        assert!(matches!(
            result_of(&processing),
            Ok(ChargeResult::Processing { .. })
        ));
        let needs_auth = intent(
            r#"{"id":"pi_1","status":"requires_payment_method","client_secret":"pi_1_secret_x",
                "last_payment_error":{"type":"card_error","code":"authentication_required","message":"auth"}}"#,
        );
        assert_eq!(
            result_of(&needs_auth).unwrap(),
            ChargeResult::AuthenticationRequired {
                payment_intent: "pi_1".into(),
                client_secret: "pi_1_secret_x".into(),
                message: "auth".into()
            }
        );
        let failed = intent(
            r#"{"id":"pi_1","status":"requires_payment_method",
                "last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"no funds"}}"#,
        );
        assert!(matches!(
            result_of(&failed),
            Ok(ChargeResult::Declined { decline_code: Some(d), .. }) if d == "insufficient_funds"
        ));
        let canceled =
            intent(r#"{"id":"pi_1","status":"canceled","cancellation_reason":"abandoned"}"#);
        assert!(matches!(
            result_of(&canceled),
            Ok(ChargeResult::Declined { .. })
        ));
        for status in [
            "requires_confirmation",
            "requires_capture",
            "requires_payment_method",
            "weird",
        ] {
            let unknown = intent(&format!(r#"{{"id":"pi_1","status":"{status}"}}"#));
            assert!(
                matches!(result_of(&unknown), Err(StripeError::Unexpected(_))),
                "{status}"
            );
        }
    }

    #[test]
    fn search_literals_are_escaped() {
        assert_eq!(search_literal("pur_1"), "pur_1");
        assert_eq!(search_literal(r"a'b\c"), r"a\'b\\c");
    }

    #[test]
    fn authentication_required_keeps_its_client_secret() {
        let outcome = ChargeResult::AuthenticationRequired {
            payment_intent: "pi_1".into(),
            client_secret: "pi_1_secret".into(),
            message: "This transaction requires authentication.".into(),
        }
        .into_outcome()
        .unwrap();
        assert_eq!(
            outcome,
            ChargeOutcome::AuthenticationRequired {
                message: "This transaction requires authentication.".into(),
                client_secret: "pi_1_secret".into(),
            }
        );
    }
}
