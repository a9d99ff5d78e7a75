//! `GET /api/openapi.json`: the `OpenAPI` 3.1 document of the whole API.
//!
//! Written by hand (the answer types live in the domain crate, which knows no
//! HTTP); `tests/openapi.rs` keeps it true by validating every answer the routes
//! give against it, and schemathesis (`scripts/schemathesis.sh`) fuzzes the served
//! app with it.

use crate::error::ApiError;
use crate::reply::error_response;
use crate::{Request, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

/// Its path.
pub const PATH: &str = "/api/openapi.json";

/// Answers the document to anyone: it holds nothing secret, and clients fetch it
/// before they have a token.
pub fn serve(req: &Request) -> Response {
    if req.method() != http::Method::GET {
        return error_response(&ApiError::MethodNotAllowed("GET"));
    }
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        // Like every API answer: a new deployment is seen at once.
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(DOCUMENT.as_bytes().to_vec())
        .expect("valid response")
}
