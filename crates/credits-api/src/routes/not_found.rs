//! Every path no route claims.

use crate::error::ApiError;
use crate::reply::error_response;
use crate::{Request, Response};

/// `404 not_found` in the API's error shape.
pub fn serve(_req: &Request) -> Response {
    error_response(&ApiError::NoRoute)
}
