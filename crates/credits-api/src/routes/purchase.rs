//! The account route that buys credit packs.

use credits::{Credits, CreditsError};

use crate::error::ApiError;

use crate::bodies::Purchase;
use crate::call::{Call, parse, run};
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `POST /api/billing/credits/purchases`, and `POST /api/webhooks/stripe`,
/// where Stripe reports how charges ended.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    match req.uri().path() {
        "/api/billing/credits/purchases" => run(env, req, "POST", purchase),
        "/api/webhooks/stripe" => run(env, req, "POST", stripe_webhook),
        _ => not_found::serve(req),
    }
}

/// Buys a pack with the saved payment method.
fn purchase(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    let account = call.require_account(credits)?;
    let body = call.json_body()?;
    let pack = parse::<Purchase>(&body)?.validate()?;
    let idem = call.idempotency(&body)?;
    call.payments_usable()?;
    match credits.purchase(&account, pack, idem.as_ref()) {
        Ok(receipt) => Ok(Reply::created(&receipt.value).replayed(receipt.replayed)),
        // The charge's outcome is unknown: the purchase waits, and its id says
        // which one the same request with the same key will answer.
        Err(CreditsError::PaymentPending(purchase)) => Ok(Reply::accepted(
            &serde_json::json!({ "purchase": purchase }),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Takes one of Stripe's signed events (no bearer token: the signature is the
/// proof). Anything verified answers `{"received": true}`, whether it took effect
/// now or was a repeat, about nothing of ours or of another type.
fn stripe_webhook(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.check_size()?;
    let signature = call
        .req
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    credits_service::stripe_webhook(
        credits,
        call.stores(),
        &call.config().payments,
        call.now,
        call.req.body(),
        signature,
    )?;
    Ok(Reply::ok(&serde_json::json!({ "received": true })))
}
