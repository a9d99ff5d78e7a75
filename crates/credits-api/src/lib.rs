//! The public HTTP contract (`API.md`) over the domain crate, on plain `http` types.
//!
//! Knows HTTP — routes, the order of checks, bodies, status codes — and nothing of
//! Spin: a component hands it a request and the platform's stores, and gets a
//! response back. That keeps every component a thin adapter and lets the whole
//! contract be tested natively.

mod bodies;
mod call;
mod error;
mod reply;
pub mod routes;

pub use credits_service::{Config, Stores};
pub use error::ApiError;

/// An incoming request, its body read whole.
pub type Request = http::Request<Vec<u8>>;
/// An outgoing response.
pub type Response = http::Response<Vec<u8>>;

/// What a request may use of its platform.
pub struct Env<'a> {
    /// The database and the cache (opened when first used).
    pub stores: Stores<'a>,
    /// How the service is put together (the payment provider).
    pub config: &'a Config,
    /// The `service_token` variable; `None` if unset (then no service route opens).
    pub service_token: Option<&'a str>,
    /// The `test_clock` variable is `"true"`: honour `X-Test-Clock`.
    pub test_clock: bool,
}

pub use reply::error_response;
