//! Account routes that manage the payment method and auto-recharge.

use credits::{AccountId, Credits, SavedPaymentMethod};
use credits_service::PaymentSetup;
use serde_json::json;

use crate::error::ApiError;

use crate::bodies::{AutoRecharge, PaymentMethod};
use crate::call::{Call, parse, run};
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `PUT /api/billing/payment-method` (and `GET`, an extension),
/// `POST /api/billing/payment-method/setup`,
/// `GET`/`PUT /api/billing/credits/auto-recharge`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    match req.uri().path() {
        "/api/billing/payment-method" => run(env, req, "GET, PUT", payment_method),
        "/api/billing/payment-method/setup" => run(env, req, "POST", setup),
        "/api/billing/credits/auto-recharge" => run(env, req, "GET, PUT", auto_recharge),
        _ => not_found::serve(req),
    }
}

/// Shows or saves the payment method for purchases and auto-recharge.
fn payment_method(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    let account = call.require_account(credits)?;
    if call.method() == http::Method::GET {
        call.no_body()?;
        let saved = credits.payment_method(&account)?;
        let card = credits_service::card_of(
            call.stores(),
            call.config(),
            saved.payment_method.as_deref(),
        )?;
        return Ok(Reply::ok(&with_card(&saved, card.as_ref())));
    }
    let method = parse::<PaymentMethod>(&call.json_body()?)?.validate()?;
    call.payments_usable()?;
    // With Stripe, only a card of the account's own customer (checked there).
    let card = credits_service::verify_payment_method(
        call.stores(),
        &call.config().payments,
        &account,
        &method,
    )?;
    let saved = credits.save_payment_method(&account, &method)?;
    Ok(Reply::ok(&with_card(&saved, card.as_ref())))
}

/// The saved payment method and how its card shows (`null` in the sandbox).
fn with_card(
    saved: &SavedPaymentMethod,
    card: Option<&credits_service::CardDisplay>,
) -> serde_json::Value {
    json!({ "payment_method": saved.payment_method, "card": card })
}

/// Starts saving a card: a SetupIntent for the dashboard's Stripe.js, or word
/// that the sandbox takes a typed id.
fn setup(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    let account: AccountId = call.require_account(credits)?;
    call.no_body()?;
    call.payments_usable()?;
    Ok(Reply::created(&match credits_service::payment_setup(
        call.stores(),
        &call.config().payments,
        &account,
    )? {
        PaymentSetup::Sandbox => json!({ "provider": "sandbox" }),
        PaymentSetup::Stripe {
            client_secret,
            publishable_key,
        } => json!({
            "provider": "stripe",
            "client_secret": client_secret,
            "publishable_key": publishable_key,
        }),
    }))
}

/// Shows or replaces the auto-recharge settings.
fn auto_recharge(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    let account = call.require_account(credits)?;
    if call.method() == http::Method::GET {
        call.no_body()?;
        return Ok(Reply::ok(&credits.recharge_settings(&account)?));
    }
    let settings = parse::<AutoRecharge>(&call.json_body()?)?.validate()?;
    Ok(Reply::ok(
        &credits.save_recharge_settings(&account, &settings)?,
    ))
}
