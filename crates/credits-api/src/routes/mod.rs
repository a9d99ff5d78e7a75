//! The route groups; each Spin component serves one of them.

pub mod accounts;
pub mod balance;
pub mod deduct;
pub mod not_found;
pub mod openapi;
pub mod purchase;
pub mod recharge;
pub mod settings;

use crate::{Env, Request, Response, RouteGroup};

/// Dispatches any API path to its group, as `spin.toml` routes them. For native
/// tests and single-binary hosts; on Spin each group is its own component.
pub fn serve(env: &Env<'_>, req: &Request) -> Response {
    let path = req.uri().path();
    let group: RouteGroup = match path {
        "/api/admin/accounts" => accounts::serve,
        p if p.starts_with("/api/admin/accounts/") => accounts::serve,
        "/api/admin/events" => accounts::serve,
        p if p.starts_with("/api/admin/events/") => accounts::serve,
        "/api/billing/credits" | "/api/billing/credits/usage" | "/api/billing/credits/packs" => {
            balance::serve
        }
        "/api/billing/credits/purchases" | "/api/webhooks/stripe" => purchase::serve,
        "/api/billing/credits/deductions"
        | "/api/billing/credits/refunds"
        | "/api/billing/credits/holds" => deduct::serve,
        p if p.starts_with("/api/billing/credits/holds/") => deduct::serve,
        "/api/billing/payment-method"
        | "/api/billing/payment-method/setup"
        | "/api/billing/credits/auto-recharge" => settings::serve,
        "/api/internal/recharge-check" => recharge::serve,
        openapi::PATH => return openapi::serve(req),
        _ => return not_found::serve(req),
    };
    group(env, req)
}
