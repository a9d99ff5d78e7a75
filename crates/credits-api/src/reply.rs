//! Responses: JSON bodies, and the one place errors become HTTP.

use credits::CreditsError;
use serde::Serialize;

use crate::Response;

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

    /// Marks an answer repeated from an earlier request with the same key.
    pub(crate) fn replayed(mut self, replayed: bool) -> Self {
        self.replayed = replayed;
        self
    }
}

/// Turns a route's outcome into the response.
pub(crate) fn respond(result: Result<Reply, CreditsError>) -> Response {
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
pub fn error_response(error: &CreditsError) -> Response {
    let message = match error {
        // Details of internal failures are for the logs, not for callers.
        CreditsError::Internal(detail) => {
            eprintln!("internal error: {detail}");
            "something went wrong on our side; nothing was changed unless a transaction id was returned"
                .to_owned()
        }
        other => other.to_string(),
    };
    let body = serde_json::json!({"error": {"code": error.code(), "message": message}});
    let mut builder = json_builder(error.status());
    if let CreditsError::MethodNotAllowed(allowed) = error {
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
