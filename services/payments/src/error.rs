//! payments' errors and the problems they become.

use axum::http::StatusCode;
use platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 402 `payment-declined`, with the processor's `failure_code`.
    #[error("the card was declined: {0}")]
    Declined(String),
    /// 409 `refund-exceeds-payment`.
    #[error("more than is left to refund")]
    RefundExceeds { left: i64 },
    /// 409 `not-refundable`: a failed payment captured nothing.
    #[error("the payment captured nothing")]
    NotRefundable,
    /// 409 `reference-closed`: what the charge was for has ended (its booking was cancelled or
    /// expired); nothing was charged.
    #[error("the reference is closed")]
    ReferenceClosed,
    /// 409 `partial-refund-not-allowed`: a booking's payment is refunded in full or not at all.
    #[error("a booking's payment is refunded in full")]
    PartialBookingRefund { left: i64 },
    /// 409 `already-subscribed`.
    #[error("a subscription is already active")]
    AlreadySubscribed,
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for PaymentsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<PaymentsError> for Problem {
    fn from(e: PaymentsError) -> Self {
        match e {
            PaymentsError::NotFound(what) => Problem::not_found(what),
            PaymentsError::Declined(code) => {
                Problem::new(StatusCode::PAYMENT_REQUIRED, "payment-declined", "The card was declined")
                    .detail(format!("the card processor said {code}"))
                    .extension("failure_code", code)
            }
            PaymentsError::RefundExceeds { left } => {
                Problem::conflict("refund-exceeds-payment", "Refund larger than what is left")
                    .detail(format!("{left} cents are left to refund"))
                    .extension("refundable_cents", left)
            }
            PaymentsError::NotRefundable => {
                Problem::conflict("not-refundable", "Nothing to refund").detail("the payment did not succeed")
            }
            PaymentsError::ReferenceClosed => Problem::conflict("reference-closed", "Nothing more can be paid for this")
                .detail("what this payment was for has ended; the card was not charged"),
            PaymentsError::PartialBookingRefund { left } => {
                Problem::conflict("partial-refund-not-allowed", "A booking is refunded in full")
                    .detail(format!(
                        "a booking's payment is refunded whole ({left} cents) or not at all; cancel the booking instead"
                    ))
                    .extension("refundable_cents", left)
            }
            PaymentsError::AlreadySubscribed => Problem::conflict("already-subscribed", "Already subscribed")
                .detail("cancel the current subscription or wait for it to end"),
            PaymentsError::Invalid(errors) => Problem::invalid(errors),
            PaymentsError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for PaymentsError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
