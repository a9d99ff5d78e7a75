//! Account routes that manage the payment method and auto-recharge.

use credits::Credits;

use crate::error::ApiError;

use crate::bodies::{AutoRecharge, PaymentMethod};
use crate::call::{Call, parse, run};
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `PUT /api/billing/payment-method` (and `GET`, an extension),
/// `GET`/`PUT /api/billing/credits/auto-recharge`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    match req.uri().path() {
        "/api/billing/payment-method" => run(env, req, "GET, PUT", payment_method),
        "/api/billing/credits/auto-recharge" => run(env, req, "GET, PUT", auto_recharge),
        _ => not_found::serve(req),
    }
}

/// Shows or saves the payment method for purchases and auto-recharge.
fn payment_method(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    let account = call.require_account(credits)?;
    if call.method() == http::Method::GET {
        call.no_body()?;
        return Ok(Reply::ok(&credits.payment_method(&account)?));
    }
    let method = parse::<PaymentMethod>(&call.json_body()?)?.validate()?;
    Ok(Reply::ok(&credits.save_payment_method(&account, &method)?))
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
