//! The client: Stripe's conventions (form bodies, bearer secret key, idempotency
//! keys, error objects) over the transport port.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::transport::{Method, StripeRequest, StripeResponse, StripeTransport, TransportError};

/// Stripe's API, unless `stripe_api_base` says otherwise.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The API version every request pins, so the shapes read here do not change when
/// the account's default version is upgraded in Stripe's dashboard. (Webhook
/// payloads follow the version set on the webhook endpoint instead: register it
/// with this one.)
pub const STRIPE_VERSION: &str = "2024-06-20";

/// A Stripe secret key (`sk_...` or a restricted `rk_...`). Never shown: `Debug`
/// prints `SecretKey([redacted])` and no error of this crate contains it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the `Authorization` header only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// The error object of a non-2xx answer (`{"error": {...}}`), as Stripe describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ApiError {
    /// `card_error`, `invalid_request_error`, `idempotency_error`, `api_error`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `card_declined`, `authentication_required`, `resource_missing`, ...
    #[serde(default)]
    pub code: Option<String>,
    /// The issuer's reason for a decline (`insufficient_funds`, ...).
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

/// A request whose outcome this crate could not turn into a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// No answer (timeout, network): Stripe may or may not have acted.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Stripe answered 5xx: it may or may not have acted (and stores the answer
    /// under the idempotency key, so the same key answers it again).
    #[error("Stripe answered {status}")]
    Server { status: u16 },
    /// Stripe refused the request with an error object (bad parameters, bad key,
    /// an idempotency key reused with other parameters, ...).
    #[error("Stripe answered {status} {}: {}", error.kind, error.message.as_deref().unwrap_or("no message"))]
    Api { status: u16, error: ApiError },
    /// An answer that makes no sense here (not JSON, an unknown status, ...).
    #[error("unexpected answer from Stripe: {0}")]
    Unexpected(String),
    /// A value that cannot be sent (an id with characters no Stripe id has).
    #[error("{0}")]
    Invalid(String),
}

/// The answer's body when it parsed as an error object.
#[derive(Deserialize)]
struct ErrorBody<T> {
    error: T,
}

/// A Stripe API client over a transport.
pub struct StripeClient<T> {
    transport: T,
    secret_key: SecretKey,
    base: String,
}

impl<T> fmt::Debug for StripeClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .field("secret_key", &self.secret_key)
            .finish_non_exhaustive()
    }
}

impl<T: StripeTransport> StripeClient<T> {
    /// A client of the Stripe at `api_base` (`https://api.stripe.com`, or a local
    /// test server), authenticated with `secret_key`.
    pub fn new(transport: T, secret_key: SecretKey, api_base: &str) -> Self {
        Self {
            transport,
            secret_key,
            base: api_base.trim_end_matches('/').to_owned(),
        }
    }

    /// The transport, e.g. for a test to inspect what was sent.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// POSTs `form` (form-encoded by `serde_urlencoded`) under an idempotency key.
    pub(crate) fn post<F: serde::Serialize>(
        &self,
        path: &str,
        form: &F,
        idempotency_key: Option<&str>,
    ) -> Result<StripeResponse, StripeError> {
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| StripeError::Invalid(format!("form encoding: {e}")))?;
        let mut headers = self.common_headers();
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        if let Some(key) = idempotency_key {
            headers.push(("Idempotency-Key".into(), key.into()));
        }
        self.send(Method::Post, path.to_owned(), headers, body)
    }

    /// GETs `path` with `query` (form-encoded) appended.
    pub(crate) fn get<Q: serde::Serialize>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<StripeResponse, StripeError> {
        let query = serde_urlencoded::to_string(query)
            .map_err(|e| StripeError::Invalid(format!("query encoding: {e}")))?;
        let path = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        self.send(Method::Get, path, self.common_headers(), String::new())
    }

    fn common_headers(&self) -> Vec<(String, String)> {
        vec![
            (
                "Authorization".into(),
                format!("Bearer {}", self.secret_key.expose()),
            ),
            ("Stripe-Version".into(), STRIPE_VERSION.into()),
        ]
    }

    fn send(
        &self,
        method: Method,
        path: String,
        headers: Vec<(String, String)>,
        body: String,
    ) -> Result<StripeResponse, StripeError> {
        let response = self.transport.send(StripeRequest {
            method,
            base: self.base.clone(),
            path,
            headers,
            body,
        })?;
        if response.status >= 500 {
            return Err(StripeError::Server {
                status: response.status,
            });
        }
        Ok(response)
    }

    /// The error of a non-2xx answer, with the secret key scrubbed from Stripe's
    /// message in case an answer ever echoes it.
    pub(crate) fn api_error(&self, response: &StripeResponse) -> StripeError {
        match serde_json::from_slice::<ErrorBody<ApiError>>(&response.body) {
            Ok(ErrorBody { mut error }) => {
                error.message = error.message.map(|m| self.scrub(&m));
                StripeError::Api {
                    status: response.status,
                    error,
                }
            }
            Err(_) => StripeError::Unexpected(format!(
                "status {} without a Stripe error object",
                response.status
            )),
        }
    }

    /// Reads a 2xx answer as `R`, any other as the error it describes.
    pub(crate) fn read<R: DeserializeOwned>(
        &self,
        response: &StripeResponse,
    ) -> Result<R, StripeError> {
        if !(200..300).contains(&response.status) {
            return Err(self.api_error(response));
        }
        parse(&response.body)
    }

    fn scrub(&self, text: &str) -> String {
        let key = self.secret_key.expose();
        if key.is_empty() {
            text.to_owned()
        } else {
            text.replace(key, "[redacted]")
        }
    }
}

/// Parses a JSON body; a body that does not fit is an unexpected answer.
pub(crate) fn parse<R: DeserializeOwned>(body: &[u8]) -> Result<R, StripeError> {
    serde_json::from_slice(body).map_err(|e| StripeError::Unexpected(e.to_string()))
}

/// Ids go into paths: only the characters Stripe's ids have (`pm_1Nx...`), so a
/// user-supplied id can never change the path.
pub(crate) fn path_segment<'a>(what: &str, id: &'a str) -> Result<&'a str, StripeError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(StripeError::Invalid(format!(
            "{what} must be letters, digits and _"
        )))
    }
}

/// An id field that Stripe sends either as the id or, when expanded, as the object.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

/// Deserializes an optional expandable field to its id.
pub(crate) fn expandable_id<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(
        Option::<Expandable>::deserialize(deserializer)?.map(|e| match e {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }),
    )
}
