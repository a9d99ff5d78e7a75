//! Stripe's browser side, for a Stripe.js stand-in: the two calls Stripe.js makes
//! with the publishable key and an intent's client secret (confirming a
//! SetupIntent with the card typed into the Payment Element, and confirming a
//! PaymentIntent once the cardholder has authenticated), and the signed webhooks
//! Stripe sends about them.
//!
//! A publishable key may do nothing else, and only with the intent's own client
//! secret, as on Stripe. The secret-key API stays as strict as it was: these
//! requests never reach it, and it never answers them.

use std::collections::HashMap;
use std::io::Write as _;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    FakeStripe, Recorded, State, TestCard, error, event, missing, no_such, signature, test_card,
};

/// The publishable key the server accepts from the browser.
pub const PUBLISHABLE_KEY: &str = "pk_test_browser";

/// What the browser side keeps beside the secret-key API's state.
#[derive(Default)]
pub(crate) struct BrowserSide {
    /// SetupIntents by id, as created by `POST /v1/setup_intents`.
    pub(crate) setup_intents: HashMap<String, Value>,
    webhook: Option<Webhook>,
}

struct Webhook {
    url: String,
    secret: String,
}

impl FakeStripe {
    /// Sends events about browser confirmations to `url`, signed with `secret`,
    /// as Stripe does for a registered endpoint.
    pub fn send_webhooks_to(&self, url: &str, secret: &str) {
        self.state.lock().unwrap().browser.webhook = Some(Webhook {
            url: url.to_owned(),
            secret: secret.to_owned(),
        });
    }
}

/// Answers a request made with a publishable key; `None` for any other, which
/// the secret-key API then handles.
pub(crate) fn respond(state: &mut State, request: &Recorded) -> Option<(u16, String)> {
    let form = request
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let params: HashMap<String, String> = if form {
        form_urlencoded::parse(request.body.as_bytes())
            .into_owned()
            .collect()
    } else {
        HashMap::new()
    };
    // Stripe.js sends the key in the body (no custom header, so no CORS preflight).
    let key = match request.header("authorization") {
        Some(value) => value.strip_prefix("Bearer ").unwrap_or(value),
        None => params.get("key").map_or("", String::as_str),
    };
    if !key.starts_with("pk_") {
        return None;
    }
    if key != PUBLISHABLE_KEY {
        return Some(error(
            401,
            "invalid_request_error",
            None,
            &format!("Invalid API Key provided: {key}"),
        ));
    }
    let path = request.target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "setup_intents", id, "confirm"]) => confirm_setup(state, id, &params),
        ("POST", ["v1", "payment_intents", id, "confirm"]) => confirm_payment(state, id, &params),
        _ => error(
            401,
            "invalid_request_error",
            None,
            "This API call cannot be made with a publishable API key. Please use a secret API key.",
        ),
    })
}

/// The answer when the intent is unknown or the client secret is not its own:
/// the same, so a wrong secret reveals nothing.
fn client_secret_matches(intent: &Value, params: &HashMap<String, String>) -> bool {
    params.get("client_secret").map(String::as_str) == intent["client_secret"].as_str()
}

fn card_error(code: &str, decline_code: &str, payment_method: &str) -> Value {
    let message = if decline_code == "insufficient_funds" {
        "Your card has insufficient funds."
    } else {
        "Your card was declined."
    };
    json!({"type": "card_error", "code": code, "decline_code": decline_code,
        "message": message, "payment_method": {"id": payment_method}})
}

/// `POST /v1/setup_intents/{id}/confirm` (`payment_method`, `client_secret`): a
/// working card is attached to the SetupIntent's customer; a declining one is
/// refused as Stripe's zero-amount check refuses it. A card that asks for 3-D
/// Secure succeeds: the stand-in stands for the cardholder who completed it.
fn confirm_setup(state: &mut State, id: &str, params: &HashMap<String, String>) -> (u16, String) {
    let Some(intent) = state
        .browser
        .setup_intents
        .get(id)
        .filter(|si| client_secret_matches(si, params))
        .cloned()
    else {
        return no_such(404, "setupintent", id);
    };
    if intent["status"] == "succeeded" {
        return error(
            400,
            "invalid_request_error",
            Some("setup_intent_unexpected_state"),
            "You cannot confirm this SetupIntent because it has already succeeded.",
        );
    }
    let Some(method) = params.get("payment_method") else {
        return missing("payment_method");
    };
    let Some(TestCard { failure, .. }) = test_card(method) else {
        return no_such(404, "PaymentMethod", method);
    };
    let mut intent = intent;
    if let Some((code @ "card_declined", decline_code)) = failure {
        let error = card_error(code, decline_code, method);
        intent["last_setup_error"] = error.clone();
        state
            .browser
            .setup_intents
            .insert(id.to_owned(), intent.clone());
        let mut error = error;
        error["setup_intent"] = intent;
        return (402, json!({ "error": error }).to_string());
    }
    let customer = intent["customer"].as_str().unwrap_or_default().to_owned();
    state.attached.insert(method.clone(), customer);
    intent["status"] = json!("succeeded");
    intent["payment_method"] = json!(method);
    intent["last_setup_error"] = Value::Null;
    state
        .browser
        .setup_intents
        .insert(id.to_owned(), intent.clone());
    notify(state, "setup_intent.succeeded", &intent);
    (200, intent.to_string())
}

/// `POST /v1/payment_intents/{id}/confirm` (`client_secret`, optional
/// `payment_method`): the on-session confirmation of a PaymentIntent whose
/// off-session charge needed the cardholder. Authentication counts as done; a
/// card that declines still declines. Stripe's webhook then says which.
fn confirm_payment(state: &mut State, id: &str, params: &HashMap<String, String>) -> (u16, String) {
    let Some(index) = state
        .payment_intents
        .iter()
        .position(|pi| pi["id"] == json!(id) && client_secret_matches(pi, params))
    else {
        return no_such(404, "payment_intent", id);
    };
    let mut intent = state.payment_intents[index].clone();
    if let Some(status @ ("succeeded" | "canceled")) = intent["status"].as_str() {
        let answer = json!({"error": {"type": "invalid_request_error",
            "code": "payment_intent_unexpected_state",
            "message": format!("You cannot confirm this PaymentIntent because it has a status of {status}."),
            "payment_intent": intent}});
        return (400, answer.to_string());
    }
    let method = params
        .get("payment_method")
        .cloned()
        .or_else(|| intent["payment_method"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let Some(TestCard { failure, .. }) = test_card(&method) else {
        return no_such(404, "PaymentMethod", &method);
    };
    let owner = state.attached.get(&method);
    if owner.is_some_and(|owner| Some(owner.as_str()) != intent["customer"].as_str()) {
        return error(
            400,
            "invalid_request_error",
            None,
            "The provided PaymentMethod belongs to a different Customer.",
        );
    }
    intent["payment_method"] = json!(method);
    if let Some((code @ "card_declined", decline_code)) = failure {
        let error = card_error(code, decline_code, &method);
        intent["status"] = json!("requires_payment_method");
        intent["last_payment_error"] = error.clone();
        state.payment_intents[index] = intent.clone();
        notify(state, "payment_intent.payment_failed", &intent);
        let mut error = error;
        error["payment_intent"] = intent;
        return (402, json!({ "error": error }).to_string());
    }
    intent["status"] = json!("succeeded");
    intent["last_payment_error"] = Value::Null;
    state.payment_intents[index] = intent.clone();
    notify(state, "payment_intent.succeeded", &intent);
    (200, intent.to_string())
}

/// Sends the event to the registered endpoint, if any, from its own thread: the
/// app's handler may call this server back, and the state is locked here.
fn notify(state: &mut State, kind: &str, object: &Value) {
    let Some(Webhook { url, secret }) = &state.browser.webhook else {
        return;
    };
    let (url, secret) = (url.clone(), secret.clone());
    let id = state.id("evt");
    let payload = event(&id, kind, object);
    let kind = kind.to_owned();
    thread::spawn(move || {
        let outcome = post_signed(&url, &secret, &payload);
        // The fake's log says what was delivered; the secret and signature never show.
        let _ = writeln!(std::io::stderr(), "fake-stripe: {kind} {id} → {outcome}");
    });
}

fn post_signed(url: &str, secret: &str, payload: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    match agent
        .post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "stripe-signature",
            &signature(payload, secret, crate::unix_now()),
        )
        .send(payload)
    {
        Ok(response) => response.status().as_u16().to_string(),
        Err(e) => format!("not delivered: {e}"),
    }
}
