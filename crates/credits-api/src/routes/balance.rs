//! Account routes that read: the statement, usage, and the pack catalog.

use credits::{Credits, Pack, Plan};
use serde_json::json;

use crate::bodies::{HistoryParams, UsageParams};
use crate::call::{Call, run};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `GET /api/billing/credits`, `.../usage`, `.../packs`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    match req.uri().path() {
        "/api/billing/credits" => run(env, req, "GET", statement),
        "/api/billing/credits/usage" => run(env, req, "GET", usage),
        "/api/billing/credits/packs" => run(env, req, "GET", packs),
        _ => not_found::serve(req),
    }
}

/// Balance, plan, auto-recharge and one page of history.
fn statement(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    let account = call.require_account(credits)?;
    call.no_body()?;
    let query = HistoryParams::from_query(&call.query())?;
    let statement = credits.statement(&account, &query)?;
    let method = statement.summary.payment_method.as_deref();
    Ok(Reply::ok(&with_card(call, &statement, method)?))
}

/// A summary with `"card"` beside its `payment_method`: how the saved card shows
/// (`null` in the sandbox, or while Stripe has not said).
pub(crate) fn with_card(
    call: &Call<'_>,
    summary: &impl serde::Serialize,
    method: Option<&str>,
) -> Result<serde_json::Value, ApiError> {
    let card = credits_service::card_of(call.stores(), call.config(), method)?;
    let mut body = serde_json::to_value(summary)
        .map_err(|e| ApiError::Domain(credits::CreditsError::Internal(e.to_string())))?;
    body["card"] = json!(card);
    Ok(body)
}

/// Net tokens per day, project or operation.
fn usage(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    let account = call.require_account(credits)?;
    call.no_body()?;
    let query = UsageParams::from_query(&call.query())?;
    Ok(Reply::ok(&credits.usage(&account, &query)?))
}

/// The pack catalog, for either kind of token, and the plans with their
/// monthly allocation and price (an addition to API.md).
fn packs(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.require_any(credits)?;
    call.no_body()?;
    let prices = call
        .config()
        .plan_prices
        .prices()
        .map_err(|why| ApiError::Misconfigured(why.to_owned()))?;
    let packs: Vec<_> = Pack::ALL.into_iter().map(Pack::listing).collect();
    let plans: Vec<_> = Plan::ALL.into_iter().map(|p| p.listing(prices)).collect();
    Ok(Reply::ok(&json!({ "packs": packs, "plans": plans })))
}
