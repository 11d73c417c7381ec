//! notifications' errors and the problems they become.

use platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum NotificationsError {
    /// 404 (also another user's notification).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `not-failed`: only a failed delivery is sent again by hand.
    #[error("the delivery is {0}")]
    NotFailed(String),
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for NotificationsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<NotificationsError> for Problem {
    fn from(e: NotificationsError) -> Self {
        match e {
            NotificationsError::NotFound(what) => Problem::not_found(what),
            NotificationsError::NotFailed(status) => Problem::conflict("not-failed", "Not a failed delivery")
                .detail(format!("the delivery is {status}; only a failed one is sent again by hand")),
            NotificationsError::Invalid(errors) => Problem::invalid(errors),
            NotificationsError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for NotificationsError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
