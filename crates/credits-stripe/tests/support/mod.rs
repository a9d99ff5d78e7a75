//! The Stripe-compatible test server (`tests/fake-stripe`) and a native
//! transport over it, as the Spin components' is over Spin's outbound HTTP.

#![allow(dead_code)] // Each test binary uses a different part.

use std::time::Duration;

use credits_stripe::{
    Method, SecretKey, StripeClient, StripeRequest, StripeResponse, StripeTransport, TransportError,
};
pub use fake_stripe::{FakeStripe, Mode, SECRET};

/// Clients of the test server.
pub trait Clients {
    /// A client with the right key and a short timeout.
    fn client(&self) -> StripeClient<UreqTransport> {
        self.client_with_key(SECRET)
    }

    fn client_with_key(&self, key: &str) -> StripeClient<UreqTransport>;
}

impl Clients for FakeStripe {
    fn client_with_key(&self, key: &str) -> StripeClient<UreqTransport> {
        StripeClient::new(
            UreqTransport::new(Duration::from_millis(500)),
            SecretKey::new(key),
            &format!("{}/", self.base()),
        )
    }
}

/// A native transport over ureq.
pub struct UreqTransport {
    agent: ureq::Agent,
}

impl UreqTransport {
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self { agent }
    }
}

impl StripeTransport for UreqTransport {
    fn send(&self, request: StripeRequest) -> Result<StripeResponse, TransportError> {
        let url = request.url();
        let result = match request.method {
            Method::Get => {
                let mut call = self.agent.get(&url);
                for (name, value) in &request.headers {
                    call = call.header(name, value);
                }
                call.call()
            }
            Method::Post => {
                let mut call = self.agent.post(&url);
                for (name, value) in &request.headers {
                    call = call.header(name, value);
                }
                call.send(request.body.as_str())
            }
        };
        let mut response = result.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().map_err(transport_error)?;
        Ok(StripeResponse { status, body })
    }
}

fn transport_error(error: ureq::Error) -> TransportError {
    match error {
        ureq::Error::Timeout(_) => TransportError::Timeout,
        other => TransportError::Network(other.to_string()),
    }
}
