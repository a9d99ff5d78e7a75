//! Spin's HTTP glue: serves one of the API's route groups (`credits-api`) on
//! the stores and configuration of `credits-spin`, sends the answer, then does
//! the work the request left for after it. Every HTTP component is this call
//! and a route group.

use credits_api::{AfterAnswer, Env, Request, Response, RouteGroup};
use credits_spin::Invocation;
use spin_sdk::http::conversions::TryFromIncomingRequest;
use spin_sdk::http::{IncomingRequest, IntoResponse, OutgoingResponse, ResponseOutparam};
use spin_sdk::variables;

fn serve_on(
    invocation: &Invocation,
    req: &Request,
    group: RouteGroup,
    after: Option<&AfterAnswer>,
) -> Response {
    let service_token = variables::get("service_token").ok();
    let env = Env {
        stores: invocation.stores(),
        config: invocation.config(),
        service_token: service_token.as_deref(),
        test_clock: variables::get("test_clock").is_ok_and(|v| v == "true"),
        after,
    };
    group(&env, req)
}

/// Serves one request with a route group of the API, on this invocation's stores.
pub fn serve(req: &Request, group: RouteGroup) -> Response {
    serve_on(&Invocation::new(), req, group, None)
}

/// Serves one request, sends the answer, then does what the request left for
/// after it: the auto-recharge a deduction set off with a remote provider, then
/// delivering the events it may have recorded. Spin keeps running a
/// handler after its response is complete, so no client waits for a receiver.
pub async fn serve_then_deliver(req: IncomingRequest, out: ResponseOutparam, group: RouteGroup) {
    let invocation = Invocation::new();
    let after = AfterAnswer::default();
    let response = match Request::try_from_incoming_request(req).await {
        Ok(req) => serve_on(&invocation, &req, group, Some(&after)),
        Err(e) => credits_api::error_response(&credits_api::ApiError::invalid(format!(
            "unreadable request: {e:?}"
        ))),
    };
    let mut response = response.into_response();
    let body = std::mem::take(response.body_mut());
    match OutgoingResponse::try_from(response) {
        Ok(outgoing) => {
            if let Err(e) = out.set_with_body(outgoing, body).await {
                eprintln!("cannot send the response: {e}");
            }
        }
        Err(e) => eprintln!("cannot convert the response: {e}"),
    }
    let mut deliver_at = after.deliver_events_at();
    if let Some((recharge, now)) = after.take_recharge() {
        match credits_service::evaluate_deferred_recharge(
            invocation.stores(),
            invocation.config(),
            now,
            &recharge,
        ) {
            Ok(true) => deliver_at = Some(deliver_at.map_or(now, |at| at.max(now))),
            Ok(false) => {}
            // The next evaluation (a deduction, a check, the cron) tries again.
            Err(e) => eprintln!("auto-recharge after the answer: {e}"),
        }
    }
    if let Some(now) = deliver_at {
        invocation.deliver_events(now);
    }
}
