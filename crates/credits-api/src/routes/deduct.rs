//! Service routes that consume and give back tokens.

use credits::Credits;

use crate::error::ApiError;

use crate::bodies::{Deduction, Refund};
use crate::call::{Call, parse, run};
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `POST /api/billing/credits/deductions`, `POST /api/billing/credits/refunds`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    match req.uri().path() {
        "/api/billing/credits/deductions" => run(env, req, "POST", deduct),
        "/api/billing/credits/refunds" => run(env, req, "POST", refund),
        _ => not_found::serve(req),
    }
}

/// Deducts tokens: plan allocation first, then credits; all or nothing.
fn deduct(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let body = call.json_body()?;
    let request = parse::<Deduction>(&body)?.validate()?;
    let idem = call.idempotency(&body)?;
    let receipt = credits.deduct(&request, idem.as_ref())?;
    Ok(Reply::created(&receipt.value).replayed(receipt.replayed))
}

/// Refunds (part of) a deduction.
fn refund(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let body = call.json_body()?;
    let request = parse::<Refund>(&body)?.validate()?;
    let idem = call.idempotency(&body)?;
    let receipt = credits.refund(&request, idem.as_ref())?;
    Ok(Reply::created(&receipt.value).replayed(receipt.replayed))
}
