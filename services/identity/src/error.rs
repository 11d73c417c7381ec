//! identity's errors and the problems they become.

use axum::http::StatusCode;
use platform::Problem;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// 409 `email-taken`.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// 401 `invalid-credentials`: the same for an unknown email and a wrong password.
    #[error("email or password is incorrect")]
    InvalidCredentials,
    /// 401 `invalid-refresh-token`: unknown, expired, revoked or reused.
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    /// 429 `rate-limited` with `Retry-After`.
    #[error("too many failed attempts")]
    Throttled { retry_after_secs: u64 },
    /// 503 with `Retry-After`: too many password checks waiting.
    #[error("too many password checks waiting")]
    Busy,
    /// 429 `rate-limited`: too many registrations from one address.
    #[error("too many registrations")]
    TooManyRegistrations { retry_after_secs: u64 },
    /// 404.
    #[error("user not found")]
    UserNotFound,
    /// 401: a valid token for an account that no longer exists, answered as a bad token.
    #[error("the account no longer exists")]
    AccountGone,
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<platform::FieldError>),
    /// 403 `invalid-service-credentials`.
    #[error("unknown service or wrong secret")]
    InvalidServiceCredentials,
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::passwords::PasswordError> for IdentityError {
    fn from(e: crate::passwords::PasswordError) -> Self {
        match e {
            crate::passwords::PasswordError::Busy => Self::Busy,
            crate::passwords::PasswordError::Failed(e) => Self::Internal(e),
        }
    }
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::EmailTaken => Problem::conflict("email-taken", "Email already registered")
                .detail("an account with this email already exists"),
            IdentityError::InvalidCredentials => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid-credentials", "Invalid credentials")
                    .detail("email or password is incorrect")
            }
            IdentityError::InvalidRefreshToken => {
                Problem::new(StatusCode::UNAUTHORIZED, "invalid-refresh-token", "Invalid refresh token")
                    .detail("sign in again")
            }
            IdentityError::Throttled { retry_after_secs } => Problem::too_many_requests(retry_after_secs)
                .detail(format!("too many failed sign-ins; try again in {retry_after_secs} s")),
            IdentityError::Busy => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "Too busy")
                .detail("too many password checks at once; try again in a moment")
                .retry_after(1),
            IdentityError::TooManyRegistrations { retry_after_secs } => Problem::too_many_requests(
                retry_after_secs,
            )
            .detail(format!("too many registrations from this address; try again in {retry_after_secs} s")),
            IdentityError::UserNotFound => Problem::not_found("user"),
            IdentityError::AccountGone => Problem::unauthorized("the account no longer exists"),
            IdentityError::Invalid(errors) => Problem::invalid(errors),
            IdentityError::InvalidServiceCredentials => Problem::new(
                StatusCode::FORBIDDEN,
                "invalid-service-credentials",
                "Invalid service credentials",
            ),
            IdentityError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for IdentityError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
