//! Account routes that read: the statement, usage, and the pack catalog.

use credits::{
    Credits, CreditsError, HistoryQuery, Pack, Timestamp, TransactionKind, UsageGrouping,
    UsageQuery,
};
use serde_json::json;

use crate::call::{Call, run};
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
fn statement(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, CreditsError> {
    let account = call.require_account(credits)?;
    call.no_body()?;
    let (mut limit, mut cursor, mut kind, mut project) = (None, None, None, None);
    for (name, value) in call.query() {
        match name.as_str() {
            "limit" => {
                limit = Some(value.parse().map_err(|_| {
                    CreditsError::invalid("limit must be an integer from 1 to 200")
                })?);
            }
            "cursor" => cursor = Some(value),
            "type" => kind = Some(TransactionKind::parse(&value)?),
            "project" => project = Some(value),
            _ => {}
        }
    }
    let query = HistoryQuery::new(limit, cursor, kind, project)?;
    Ok(Reply::ok(&credits.statement(&account, &query)?))
}

/// Net tokens per day, project or operation.
fn usage(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, CreditsError> {
    let account = call.require_account(credits)?;
    call.no_body()?;
    let mut query = UsageQuery {
        from: None,
        to: None,
        group_by: UsageGrouping::Day,
    };
    for (name, value) in call.query() {
        match name.as_str() {
            "from" => query.from = Some(Timestamp::parse_time_or_date(&value)?),
            "to" => query.to = Some(Timestamp::parse_time_or_date(&value)?),
            "group_by" => query.group_by = UsageGrouping::parse(&value)?,
            _ => {}
        }
    }
    Ok(Reply::ok(&credits.usage(&account, &query)?))
}

/// The pack catalog, for either kind of token.
fn packs(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, CreditsError> {
    call.require_any(credits)?;
    call.no_body()?;
    let packs: Vec<_> = Pack::ALL.into_iter().map(Pack::listing).collect();
    Ok(Reply::ok(&json!({ "packs": packs })))
}
