//! Responses: JSON bodies, and the one place errors become HTTP.

use serde::Serialize;

use crate::Response;
use crate::error::ApiError;

/// A successful answer before it becomes an `http::Response`.
pub(crate) struct Reply {
    status: u16,
    body: Vec<u8>,
    replayed: bool,
}

impl Reply {
    pub(crate) fn json(status: u16, value: &impl Serialize) -> Self {
        let body = serde_json::to_vec(value).expect("response types serialize");
        Self {
            status,
            body,
            replayed: false,
        }
    }

    pub(crate) fn ok(value: &impl Serialize) -> Self {
        Self::json(200, value)
    }

    pub(crate) fn created(value: &impl Serialize) -> Self {
        Self::json(201, value)
    }

    pub(crate) fn accepted(value: &impl Serialize) -> Self {
        Self::json(202, value)
    }

    /// Marks an answer repeated from an earlier request with the same key.
    pub(crate) fn replayed(mut self, replayed: bool) -> Self {
        self.replayed = replayed;
        self
    }
}

/// Turns a route's outcome into the response.
pub(crate) fn respond(result: Result<Reply, ApiError>) -> Response {
    match result {
        Ok(reply) => {
            let mut builder = json_builder(reply.status);
            if reply.replayed {
                builder = builder.header("idempotent-replayed", "true");
            }
            builder.body(reply.body).expect("valid response")
        }
        Err(error) => error_response(&error),
    }
}

/// `{"error": {"code": ..., "message": ...}}` with the status that goes with it.
pub fn error_response(error: &ApiError) -> Response {
    let (code, status) = error.code_and_status();
    let message = if let ApiError::Misconfigured(_) = error {
        eprintln!("internal error: {error}");
        error.to_string()
    } else if status == 500 {
        // Details are for the operator's log, never for callers.
        eprintln!("internal error: {error}");
        "something went wrong on our side; retry with the same Idempotency-Key to learn \
         whether the request took effect"
            .to_owned()
    } else {
        error.message()
    };
    let mut body = serde_json::json!({"error": {"code": code, "message": message}});
    if let ApiError::Domain(credits::CreditsError::AuthenticationRequired {
        client_secret, ..
    }) = error
    {
        body["error"]["client_secret"] = client_secret.as_str().into();
    }
    let mut builder = json_builder(status);
    if let ApiError::MethodNotAllowed(allowed) = error {
        builder = builder.header(http::header::ALLOW, *allowed);
    }
    builder
        .body(body.to_string().into_bytes())
        .expect("valid response")
}

fn json_builder(status: u16) -> http::response::Builder {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-store")
}
