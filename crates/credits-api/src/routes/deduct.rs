//! Service routes that consume, reserve and give back tokens.

use credits::{Credits, HoldId};

use crate::bodies::{Deduction, HoldOwner, NewHold, Refund, Settle};
use crate::call::{Call, parse, run};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

const HOLDS: &str = "/api/billing/credits/holds";

/// `POST /api/billing/credits/deductions`, `POST /api/billing/credits/refunds`,
/// and the token holds: `POST .../holds`, `POST .../holds/{id}/settle`,
/// `POST .../holds/{id}/void`, `GET .../holds/{id}`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    let path = req.uri().path();
    match path {
        "/api/billing/credits/deductions" => run(env, req, "POST", deduct),
        "/api/billing/credits/refunds" => run(env, req, "POST", refund),
        HOLDS => run(env, req, "POST", create_hold),
        _ => match hold_route(path) {
            Some((id, HoldAction::Read)) => run(env, req, "GET", |call, credits| {
                read_hold(call, credits, id)
            }),
            Some((id, HoldAction::Settle)) => run(env, req, "POST", |call, credits| {
                settle_hold(call, credits, id)
            }),
            Some((id, HoldAction::Void)) => run(env, req, "POST", |call, credits| {
                void_hold(call, credits, id)
            }),
            None => not_found::serve(req),
        },
    }
}

/// What a path under `.../holds/{id}` asks of the hold.
enum HoldAction {
    Read,
    Settle,
    Void,
}

/// `.../holds/{id}`, `.../holds/{id}/settle` or `.../holds/{id}/void`: the id
/// as given (an id this service never issued is a hold not found) and the action.
fn hold_route(path: &str) -> Option<(&str, HoldAction)> {
    let rest = path.strip_prefix(HOLDS)?.strip_prefix('/')?;
    let (id, action) = match rest.split_once('/') {
        None => (rest, HoldAction::Read),
        Some((id, "settle")) => (id, HoldAction::Settle),
        Some((id, "void")) => (id, HoldAction::Void),
        Some(_) => return None,
    };
    (!id.is_empty()).then_some((id, action))
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

/// Reserves tokens for a call whose size is known only at its end.
fn create_hold(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let body = call.json_body()?;
    let request = parse::<NewHold>(&body)?.validate()?;
    let idem = call.idempotency(&body)?;
    let receipt = credits.create_hold(&request, idem.as_ref())?;
    Ok(Reply::created(&receipt.value).replayed(receipt.replayed))
}

/// Deducts what the call used and releases the rest.
fn settle_hold(call: &Call<'_>, credits: &Credits<'_>, id: &str) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let body = call.json_body()?;
    let (account, tokens) = parse::<Settle>(&body)?.validate()?;
    let idem = call.idempotency(&body)?;
    let hold = HoldId::parse(id);
    let receipt = credits.settle_hold(&account, hold.as_ref(), tokens, idem.as_ref())?;
    Ok(Reply::created(&receipt.value).replayed(receipt.replayed))
}

/// Releases everything a hold reserves.
fn void_hold(call: &Call<'_>, credits: &Credits<'_>, id: &str) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let body = call.json_body()?;
    let account = parse::<HoldOwner>(&body)?.validate()?;
    let idem = call.idempotency(&body)?;
    let hold = HoldId::parse(id);
    let receipt = credits.void_hold(&account, hold.as_ref(), idem.as_ref())?;
    Ok(Reply::ok(&receipt.value).replayed(receipt.replayed))
}

/// A hold as it stands now.
fn read_hold(call: &Call<'_>, credits: &Credits<'_>, id: &str) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    call.no_body()?;
    let account = HoldOwner::from_query(&call.query())?;
    let hold = HoldId::parse(id);
    Ok(Reply::ok(&credits.hold(&account, hold.as_ref())?))
}
