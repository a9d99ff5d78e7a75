//! Spin component: provisioning accounts and changing plans (service token).
// The export glue Spin's SDK generates is unsafe code (FFI exports); ours is not.
#![allow(unsafe_code)]

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

/// Answers, then delivers the events the request may have recorded.
#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    credits_spin_http::serve_then_deliver(req, out, credits_api::routes::accounts::serve).await;
}
