//! Service routes that provision accounts.

use credits::{AccountId, Credits, CreditsError};

use crate::bodies::{NewAccount, PlanChange};
use crate::call::{Call, parse, run};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `POST /api/admin/accounts`, `PUT /api/admin/accounts/{account_id}/plan`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    let path = req.uri().path();
    if path == "/api/admin/accounts" {
        return run(env, req, "POST", create);
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
    let (account, plan) = parse::<NewAccount>(&call.json_body()?)?.validate()?;
    Ok(Reply::created(&credits.create_account(&account, plan)?))
}

/// Moves an account to another plan, effective this month.
fn change_plan(call: &Call<'_>, credits: &Credits<'_>, id: &str) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    let plan = parse::<PlanChange>(&call.json_body()?)?.validate()?;
    let account = AccountId::parse(id).map_err(|_| CreditsError::NotFound("account"))?;
    credits.change_plan(&account, plan)?;
    Ok(Reply::ok(&credits.summary(&account)?))
}
