//! The service route that runs the auto-recharge evaluation on demand, for
//! platforms without a cron trigger (an external scheduler calls it).

use credits::{Clock, Credits, CreditsError, RechargeReport, SystemClock};

use crate::call::{Call, run, with_credits};
use crate::reply::Reply;
use crate::routes::not_found;
use crate::{Env, Request, Response};

/// `POST /api/internal/recharge-check`.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    match req.uri().path() {
        "/api/internal/recharge-check" => run(env, req, "POST", check),
        _ => not_found::serve(req),
    }
}

/// The same work as the scheduled component.
fn check(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, CreditsError> {
    call.require_service(credits)?;
    call.no_body()?;
    Ok(Reply::ok(&credits.recharge_check()?))
}

/// The scheduled evaluation (the cron component), on the same code as the route.
// The method path does not fit the closure's higher-ranked lifetime (clippy's hint).
#[allow(clippy::redundant_closure_for_method_calls)]
pub fn scheduled(env: &Env<'_>) -> Result<RechargeReport, CreditsError> {
    with_credits(env, SystemClock.now(), |credits| credits.recharge_check())
}
