//! The one error enum of the product; each variant is one error code of API.md.

use crate::store::DbError;

/// Everything that can go wrong, as the public API names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CreditsError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("this token may not use this route")]
    Forbidden,
    #[error("the free plan cannot {0}; upgrade to a paid plan to unlock it")]
    PlanUpgradeRequired(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed; allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("{requested} tokens requested but only {available} available")]
    InsufficientBalance { requested: u64, available: u64 },
    #[error("payment declined: {0}")]
    PaymentFailed(String),
    #[error("save a payment method first (PUT /api/billing/payment-method)")]
    PaymentMethodRequired,
    #[error("{0}")]
    Conflict(String),
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyConflict,
    #[error("{requested} tokens exceed the {refundable} tokens left to refund on this deduction")]
    RefundExceedsDeduction { requested: u64, refundable: u64 },
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// Not the caller's fault: storage or the payment provider failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CreditsError {
    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::PlanUpgradeRequired(_) => "plan_upgrade_required",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::PaymentFailed(_) => "payment_failed",
            Self::PaymentMethodRequired => "payment_method_required",
            Self::Conflict(_) => "conflict",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::RefundExceedsDeduction { .. } => "refund_exceeds_deduction",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The HTTP status that goes with [`code`](Self::code).
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) | Self::PaymentMethodRequired => 400,
            Self::Unauthorized => 401,
            Self::InsufficientBalance { .. } | Self::PaymentFailed(_) => 402,
            Self::Forbidden | Self::PlanUpgradeRequired(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::Conflict(_) | Self::IdempotencyConflict | Self::RefundExceedsDeduction { .. } => {
                409
            }
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Internal(_) => 500,
        }
    }

    /// Shorthand for a 400 with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest(message.into())
    }
}

impl From<DbError> for CreditsError {
    fn from(e: DbError) -> Self {
        Self::Internal(e.message)
    }
}

pub type Result<T, E = CreditsError> = std::result::Result<T, E>;
