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

pub use credits_service::{Config, PlanPricing, Stores};
pub use error::ApiError;

/// An incoming request, its body read whole.
pub type Request = http::Request<Vec<u8>>;
/// An outgoing response.
pub type Response = http::Response<Vec<u8>>;
/// One group of routes, as `routes` exports them: a component serves one.
pub type RouteGroup = fn(&Env<'_>, &Request) -> Response;

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
    /// Where a route leaves work for after its answer; `None`: nothing is done after.
    pub after: Option<&'a AfterAnswer>,
}

/// Work a request leaves for after its answer is sent (a Spin component may go on
/// once its response is complete): the auto-recharge a deduction set off with a
/// remote provider, and delivering the events it may have recorded.
#[derive(Debug, Default)]
pub struct AfterAnswer {
    deliver_events_at: std::cell::Cell<Option<credits::Timestamp>>,
    recharge: std::cell::RefCell<Option<(credits::DeferredRecharge, credits::Timestamp)>>,
}

impl AfterAnswer {
    /// The request's time, if events may be due: delivery then runs on the
    /// request's clock (the test clock included).
    #[must_use]
    pub fn deliver_events_at(&self) -> Option<credits::Timestamp> {
        self.deliver_events_at.get()
    }

    /// The auto-recharge evaluation to run, at the request's time.
    #[must_use]
    pub fn take_recharge(&self) -> Option<(credits::DeferredRecharge, credits::Timestamp)> {
        self.recharge.borrow_mut().take()
    }

    pub(crate) fn deliver_events(&self, now: credits::Timestamp) {
        self.deliver_events_at.set(Some(now));
    }

    pub(crate) fn recharge(&self, recharge: credits::DeferredRecharge, now: credits::Timestamp) {
        *self.recharge.borrow_mut() = Some((recharge, now));
    }
}

pub use reply::error_response;
