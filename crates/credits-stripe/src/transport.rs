//! The transport port: one HTTP exchange with Stripe, as plain values.
//!
//! The crate builds requests and reads answers but sends nothing itself, so it
//! compiles for `wasm32-wasip2` without an HTTP client: a Spin component
//! implements [`StripeTransport`] with `spin_sdk::http::send`, tests with a native
//! client against a local Stripe-compatible server.

use std::fmt;

/// The HTTP methods Stripe's endpoints used here take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// One request to Stripe.
///
/// `Debug` leaves out the `Authorization` header's value: it carries the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct StripeRequest {
    pub method: Method,
    /// Where Stripe is, without a trailing slash (`https://api.stripe.com`).
    pub base: String,
    /// The path and query (`/v1/payment_intents/search?query=...`).
    pub path: String,
    /// Every header to send: `Authorization`, `Stripe-Version`, and on a POST
    /// `Content-Type` and usually `Idempotency-Key`.
    pub headers: Vec<(String, String)>,
    /// The form-encoded body of a POST; empty on a GET.
    pub body: String,
}

impl StripeRequest {
    /// The full URL: base then path.
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path)
    }

    /// The value of a header (names compare case-insensitively, as in HTTP).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for StripeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if name.eq_ignore_ascii_case("authorization") {
                    "[redacted]"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("StripeRequest")
            .field("method", &self.method)
            .field("base", &self.base)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

/// Stripe's answer: any status, its body (JSON, if Stripe sent it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// No answer came: whether Stripe acted on the request is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No complete answer within the transport's time limit (10 s in production).
    #[error("Stripe did not answer in time")]
    Timeout,
    /// The connection could not be made or broke before a complete answer.
    #[error("network error reaching Stripe: {0}")]
    Network(String),
}

/// Sends one request to Stripe and returns its answer, whatever the status.
/// Only the absence of an answer is an error.
pub trait StripeTransport {
    fn send(&self, request: StripeRequest) -> Result<StripeResponse, TransportError>;
}

impl<T: StripeTransport + ?Sized> StripeTransport for &T {
    fn send(&self, request: StripeRequest) -> Result<StripeResponse, TransportError> {
        (**self).send(request)
    }
}
