//! Spin component: the API's JSON 404 for every path no other route claims, and
//! the static OpenAPI document (it needs no store, so it shares this component).
// The export glue Spin's SDK generates is unsafe code (FFI exports); ours is not.
#![allow(unsafe_code)]

use spin_sdk::http_component;

#[http_component]
fn handle(req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    if req.uri().path() == credits_api::routes::openapi::PATH {
        return credits_api::routes::openapi::serve(&req);
    }
    credits_api::routes::not_found::serve(&req)
}
