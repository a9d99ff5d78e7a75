//! One API call: the checks every route runs, in the order API.md fixes —
//! route, method, token, the token's right, body size, content type, body — and
//! the domain service the route then calls.

use credits::{
    AccountId, Clock, Credits, Idempotency, IdempotencyKey, SystemClock, Timestamp, secrets_match,
};
use http::Method;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::reply::{Reply, respond};
use crate::{Env, Request, Response};

/// The largest body accepted: 64 KiB.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request being answered, with its (possibly test) time.
pub(crate) struct Call<'a> {
    env: &'a Env<'a>,
    pub(crate) req: &'a Request,
    /// The request's time (`X-Test-Clock` when the test clock is on).
    pub(crate) now: Timestamp,
    /// A malformed `X-Test-Clock`, reported with the body checks.
    clock_error: Option<ApiError>,
}

/// Who presented which token.
enum Bearer<'t> {
    Service,
    Other(&'t str),
}

/// Answers a matched route whose method is allowed: puts the domain service
/// together for this request and runs `handler` on it.
pub(crate) fn run(
    env: &Env<'_>,
    req: &Request,
    allowed: &'static str,
    handler: impl FnOnce(&Call<'_>, &Credits<'_>) -> Result<Reply, ApiError>,
) -> Response {
    if !allowed.split(", ").any(|m| m == req.method().as_str()) {
        return respond(Err(ApiError::MethodNotAllowed(allowed)));
    }
    let (now, clock_error) = request_time(env, req);
    let call = Call {
        env,
        req,
        now,
        clock_error,
    };
    respond(credits_service::with_credits(
        env.stores,
        env.config,
        now,
        |credits| {
            let result = handler(&call, credits);
            if let Some(recharge) = credits.take_deferred_recharge() {
                match env.after {
                    Some(after) => after.recharge(recharge, now),
                    // A host that does nothing after the answer evaluates now; a
                    // failure is retried by the next evaluation.
                    None => {
                        let _ = credits.evaluate_recharge(&recharge.account, recharge.triggered_by);
                    }
                }
            }
            if credits.events_may_be_due()
                && let Some(after) = env.after
            {
                after.deliver_events(now);
            }
            result
        },
    ))
}

/// The time to handle the request at: `X-Test-Clock` when the test clock is on.
fn request_time(env: &Env<'_>, req: &Request) -> (Timestamp, Option<ApiError>) {
    let system = SystemClock.now();
    if !env.test_clock {
        return (system, None);
    }
    match req.headers().get("x-test-clock").map(|v| v.to_str()) {
        None => (system, None),
        Some(Ok(text)) => match Timestamp::parse_rfc3339(text) {
            Ok(t) => (t, None),
            Err(_) => (
                system,
                Some(ApiError::invalid("X-Test-Clock must be an RFC 3339 time")),
            ),
        },
        Some(Err(_)) => (
            system,
            Some(ApiError::invalid("X-Test-Clock must be an RFC 3339 time")),
        ),
    }
}

impl Call<'_> {
    /// How the service is configured.
    pub(crate) fn config(&self) -> &credits_service::Config {
        self.env.config
    }

    /// The platform's stores, for the provider's own work (a card, a webhook).
    pub(crate) fn stores(&self) -> credits_service::Stores<'_> {
        self.env.stores
    }

    /// Refuses a route that charges while the payment configuration cannot
    /// charge: `500 internal_error` naming the variable, never the sandbox instead.
    pub(crate) fn payments_usable(&self) -> Result<(), ApiError> {
        match self.config().payments.unusable() {
            Some(why) => Err(ApiError::Misconfigured(why.to_owned())),
            None => Ok(()),
        }
    }

    fn bearer(&self) -> Result<Bearer<'_>, ApiError> {
        let header = self.req.headers().get(http::header::AUTHORIZATION);
        let token = header
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        match self.env.service_token {
            Some(service) if !service.is_empty() && secrets_match(token, service) => {
                Ok(Bearer::Service)
            }
            _ => Ok(Bearer::Other(token)),
        }
    }

    /// Service routes: the service token only; an account key is `forbidden`.
    pub(crate) fn require_service(&self, credits: &Credits<'_>) -> Result<(), ApiError> {
        match self.bearer()? {
            Bearer::Service => Ok(()),
            Bearer::Other(token) => {
                credits.authenticate(token)?;
                Err(ApiError::Forbidden)
            }
        }
    }

    /// Account routes: an account key only; the service token is `forbidden`.
    pub(crate) fn require_account(&self, credits: &Credits<'_>) -> Result<AccountId, ApiError> {
        match self.bearer()? {
            Bearer::Service => Err(ApiError::Forbidden),
            Bearer::Other(token) => Ok(credits.authenticate(token)?),
        }
    }

    /// The catalog: either kind of token.
    pub(crate) fn require_any(&self, credits: &Credits<'_>) -> Result<(), ApiError> {
        match self.bearer()? {
            Bearer::Service => Ok(()),
            Bearer::Other(token) => Ok(credits.authenticate(token).map(drop)?),
        }
    }

    /// Size, content type and JSON syntax of the body; then the test clock.
    pub(crate) fn json_body(&self) -> Result<serde_json::Value, ApiError> {
        self.check_size()?;
        let content_type = self
            .req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body: serde_json::Value = serde_json::from_slice(self.req.body())
            .map_err(|e| ApiError::invalid(format!("malformed JSON: {e}")))?;
        if !body.is_object() {
            return Err(ApiError::invalid("the body must be a JSON object"));
        }
        self.check_clock()?;
        Ok(body)
    }

    /// For routes without a body: only its size is checked.
    pub(crate) fn no_body(&self) -> Result<(), ApiError> {
        self.check_size()?;
        self.check_clock()
    }

    pub(crate) fn check_size(&self) -> Result<(), ApiError> {
        if self.req.body().len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        Ok(())
    }

    fn check_clock(&self) -> Result<(), ApiError> {
        self.clock_error.clone().map_or(Ok(()), Err)
    }

    /// The `Idempotency-Key` header with the fingerprint of `body`.
    pub(crate) fn idempotency(
        &self,
        body: &serde_json::Value,
    ) -> Result<Option<Idempotency>, ApiError> {
        let Some(header) = self.req.headers().get("idempotency-key") else {
            return Ok(None);
        };
        let key = header
            .to_str()
            .ok()
            .and_then(|text| IdempotencyKey::parse(text).ok())
            .ok_or_else(|| {
                ApiError::invalid("Idempotency-Key must be 1-255 printable ASCII characters")
            })?;
        Ok(Some(Idempotency::new(key, body)))
    }

    /// The query string as pairs, decoded.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let query = self.req.uri().query().unwrap_or("");
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    /// The request's method.
    pub(crate) fn method(&self) -> &Method {
        self.req.method()
    }
}

/// Parses a JSON body into a request type, naming what is wrong.
pub(crate) fn parse<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|e| ApiError::invalid(format!("invalid body: {e}")))
}
