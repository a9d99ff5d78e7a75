//! Service routes that provision accounts, and the events recorded about them.

use credits::{AccountId, Credits, CreditsError, EventId};

use crate::bodies::{EventsParams, NewAccount, PlanChange};
use crate::call::{Call, parse, run};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `POST /api/admin/accounts`, `PUT /api/admin/accounts/{account_id}/plan`,
/// `GET /api/admin/events`, `POST /api/admin/events/{id}/redeliver`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    let path = req.uri().path();
    if path == "/api/admin/accounts" {
        return run(env, req, "POST", create);
    }
    if path == "/api/admin/events" {
        return run(env, req, "GET", events);
    }
    if let Some(rest) = path.strip_prefix("/api/admin/events/") {
        return match rest.strip_suffix("/redeliver") {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                run(env, req, "POST", |call, credits| {
                    redeliver(call, credits, id)
                })
            }
            _ => not_found::serve(req),
        };
    }
    match path
        .strip_prefix("/api/admin/accounts/")
        .and_then(|rest| rest.strip_suffix("/plan"))
    {
        Some(id) if !id.is_empty() && !id.contains('/') => run(env, req, "PUT", |call, credits| {
            change_plan(call, credits, id)
        }),
        _ => not_found::serve(req),
    }
}

/// Creates an account and shows its key, once.
fn create(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let request = parse::<NewAccount>(&call.json_body()?)?.validate()?;
    if let Some(customer) = &request.stripe_customer {
        credits_service::check_stripe_customer_free(call.stores(), customer)?;
    }
    let created = credits.create_account(&request.account, request.plan)?;
    if let Some(customer) = &request.stripe_customer {
        credits_service::link_stripe_customer(call.stores(), &request.account, customer)?;
    }
    Ok(Reply::created(&created))
}

/// Moves an account to another plan, effective this month.
fn change_plan(call: &Call<'_>, credits: &Credits<'_>, id: &str) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let plan = parse::<PlanChange>(&call.json_body()?)?.validate()?;
    let account = AccountId::parse(id).map_err(|_| CreditsError::NotFound("account"))?;
    credits.change_plan(&account, plan)?;
    let summary = credits.summary(&account)?;
    let method = summary.payment_method.as_deref();
    Ok(Reply::ok(&crate::routes::balance::with_card(
        call, &summary, method,
    )?))
}

/// Recorded events, oldest first, with their delivery.
fn events(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    call.no_body()?;
    let query = EventsParams::from_query(&call.query())?;
    Ok(Reply::ok(&credits.events(&query)?))
}

/// Sends an event again, right after this answer.
fn redeliver(call: &Call<'_>, credits: &Credits<'_>, id: &str) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    call.no_body()?;
    Ok(Reply::accepted(&credits.redeliver(EventId::parse(id))?))
}
