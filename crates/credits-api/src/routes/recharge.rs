//! The service route that runs the auto-recharge evaluation on demand, for
//! platforms without a cron trigger (an external scheduler calls it).

use credits::Credits;

use crate::error::ApiError;

use crate::call::{Call, run};
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
fn check(call: &Call<'_>, credits: &Credits<'_>) -> Result<Reply, ApiError> {
    call.require_service(credits)?;
    call.no_body()?;
    call.payments_usable()?;
    let report = credits_service::recharge_check_with(credits, call.stores(), call.config())?;
    Ok(Reply::ok(&report))
}
