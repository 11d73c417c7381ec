//! booking's errors and the problems they become.

use axum::http::StatusCode;
use platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// 404 (also another user's booking).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `seats-unavailable` with `unavailable: [seat]`.
    #[error("seats are taken")]
    SeatsTaken(Vec<String>),
    /// 409 `hold-expired`.
    #[error("the hold expired")]
    HoldExpired,
    /// 409 `hold-limit`: the user holds as many seats as one may at once.
    #[error("{0}")]
    HoldLimit(String),
    /// 409 `payment-in-progress` (with Retry-After): another pay request is charging the card.
    #[error("a payment is in progress")]
    PaymentInProgress,
    /// The booking's payment reference was closed (it ended while the card was charged).
    #[error("the booking ended while it was being paid")]
    ReferenceClosed,
    /// 409 `not-payable` / `not-cancellable`.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 402 `payment-declined`.
    #[error("the card was declined: {0}")]
    Declined(String),
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 503 when showtimes or payments cannot be asked.
    #[error("{0}")]
    Unavailable(String),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for BookingError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<platform::client::Unavailable> for BookingError {
    fn from(e: platform::client::Unavailable) -> Self {
        Self::Unavailable(format!("the {} service is unavailable", e.service))
    }
}

impl From<BookingError> for Problem {
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::NotFound(what) => Problem::not_found(what),
            BookingError::SeatsTaken(seats) => Problem::conflict("seats-unavailable", "Seats unavailable")
                .detail(format!("already held or sold: {}", seats.join(", ")))
                .extension("unavailable", seats),
            BookingError::HoldExpired => Problem::conflict("hold-expired", "The hold expired")
                .detail("the seats were released; book them again if they are still free"),
            BookingError::HoldLimit(detail) => {
                Problem::conflict("hold-limit", "Too many seats held").detail(detail)
            }
            BookingError::PaymentInProgress => {
                Problem::conflict("payment-in-progress", "A payment is in progress")
                    .detail("another request is paying for this booking; look again in a moment")
                    .retry_after(1)
            }
            BookingError::ReferenceClosed => Problem::conflict("not-payable", "Not possible now")
                .detail("the booking ended while it was being paid; anything charged is refunded"),
            BookingError::Conflict(code, detail) => {
                Problem::conflict(code, "Not possible now").detail(detail)
            }
            BookingError::Declined(code) => {
                Problem::new(StatusCode::PAYMENT_REQUIRED, "payment-declined", "The card was declined")
                    .detail(format!(
                        "the card processor said {code}; the seats stay held until the hold ends"
                    ))
                    .extension("failure_code", code)
            }
            BookingError::Invalid(errors) => Problem::invalid(errors),
            BookingError::Unavailable(detail) => Problem::unavailable(detail),
            BookingError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for BookingError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
