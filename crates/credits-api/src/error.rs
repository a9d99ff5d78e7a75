//! The API's errors: the domain's, and those only HTTP has (route, method, token,
//! body). The one place any of them becomes a code and a status of API.md.

use credits::CreditsError;

/// Everything a request can be refused for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// A rule of the product refused it, or something beneath failed.
    #[error(transparent)]
    Domain(#[from] CreditsError),
    #[error("route not found")]
    NoRoute,
    #[error("method not allowed; allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("this token may not use this route")]
    Forbidden,
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// Malformed JSON, a wrong type, a bad header or query parameter.
    #[error("{0}")]
    InvalidRequest(String),
    /// The operator's configuration is wrong (a variable's value): the message
    /// names the variable, and is shown, as it holds no internals.
    #[error("the service is misconfigured: {0}")]
    Misconfigured(String),
}

impl ApiError {
    /// Shorthand for a malformed request.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest(message.into())
    }

    /// The API's error code and HTTP status.
    pub fn code_and_status(&self) -> (&'static str, u16) {
        match self {
            Self::NoRoute => ("not_found", 404),
            Self::MethodNotAllowed(_) => ("method_not_allowed", 405),
            Self::Unauthorized => ("unauthorized", 401),
            Self::Forbidden => ("forbidden", 403),
            Self::PayloadTooLarge => ("payload_too_large", 413),
            Self::UnsupportedMediaType => ("unsupported_media_type", 415),
            Self::InvalidRequest(_) => ("invalid_request", 400),
            Self::Misconfigured(_) => ("internal_error", 500),
            Self::Domain(e) => match e {
                CreditsError::Invalid(_) => ("invalid_request", 400),
                CreditsError::UnknownAccountKey => ("unauthorized", 401),
                CreditsError::FreePlan(_) => ("plan_upgrade_required", 403),
                CreditsError::NotFound(_) => ("not_found", 404),
                CreditsError::InsufficientBalance { .. } => ("insufficient_balance", 402),
                CreditsError::PaymentDeclined(_) => ("payment_failed", 402),
                CreditsError::AuthenticationRequired { .. } => ("authentication_required", 402),
                CreditsError::PaymentMethodRequired => ("payment_method_required", 400),
                CreditsError::AccountExists(_) | CreditsError::HoldNotHeld(_) => ("conflict", 409),
                CreditsError::IdempotencyKeyReused => ("idempotency_conflict", 409),
                CreditsError::RefundExceedsDeduction { .. } => ("refund_exceeds_deduction", 409),
                CreditsError::HoldExceeded { .. } => ("hold_exceeded", 409),
                // A route that can answer a pending purchase answers it as 202.
                CreditsError::Storage(_)
                | CreditsError::PaymentPending(_)
                | CreditsError::ProviderUnavailable(_)
                | CreditsError::Internal(_) => ("internal_error", 500),
            },
        }
    }

    /// What the caller reads: the domain's words, or, where the way out is an
    /// HTTP one (a header, a route), the API's.
    pub fn message(&self) -> String {
        match self {
            Self::Domain(CreditsError::UnknownAccountKey) => Self::Unauthorized.to_string(),
            Self::Domain(CreditsError::PaymentMethodRequired) => {
                "save a payment method first (PUT /api/billing/payment-method)".to_owned()
            }
            Self::Domain(CreditsError::IdempotencyKeyReused) => {
                "this Idempotency-Key was used with a different request body".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The API's error code.
    pub fn code(&self) -> &'static str {
        self.code_and_status().0
    }

    /// The HTTP status that goes with [`code`](Self::code).
    pub fn status(&self) -> u16 {
        self.code_and_status().1
    }
}

#[cfg(test)]
mod tests {
    use credits::CreditsError;

    use super::ApiError;

    /// Where the way out is an HTTP one, the caller reads the header or route.
    #[test]
    fn messages_name_the_http_way_out() {
        let message = |e: CreditsError| ApiError::from(e).message();
        assert_eq!(
            message(CreditsError::UnknownAccountKey),
            "missing or unknown bearer token"
        );
        assert!(
            message(CreditsError::PaymentMethodRequired)
                .contains("PUT /api/billing/payment-method")
        );
        assert!(message(CreditsError::IdempotencyKeyReused).contains("Idempotency-Key"));
        assert_eq!(
            message(CreditsError::NotFound("account")),
            "account not found"
        );
    }
}
