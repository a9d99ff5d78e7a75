//! Spin component: the payment method and auto-recharge settings.
// The export glue Spin's SDK generates is unsafe code (FFI exports); ours is not.
#![allow(unsafe_code)]

use spin_sdk::http_component;

#[http_component]
fn handle(req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    credits_spin_http::serve(&req, credits_api::routes::settings::serve)
}
