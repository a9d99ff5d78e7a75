//! Spin component: the balance and history statement, usage, and the pack catalog.

use spin_sdk::http_component;

#[http_component]
fn handle(req: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    credits_spin::serve(&req, credits_api::routes::balance::serve)
}
