//! loyalty's errors and the problems they become.

use platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum LoyaltyError {
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `not-enough-points`.
    #[error("not enough points")]
    NotEnoughPoints { have: i64, need: i64 },
    /// 409 `out-of-stock`.
    #[error("out of stock")]
    OutOfStock,
    /// 409 `code-used`.
    #[error("code used")]
    CodeUsed,
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for LoyaltyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<LoyaltyError> for Problem {
    fn from(e: LoyaltyError) -> Self {
        match e {
            LoyaltyError::NotFound(what) => Problem::not_found(what),
            LoyaltyError::NotEnoughPoints { have, need } => {
                Problem::conflict("not-enough-points", "Not enough points")
                    .detail(format!("this reward costs {need} points; you have {have}"))
                    .extension("points", have)
                    .extension("points_cost", need)
            }
            LoyaltyError::OutOfStock => Problem::conflict("out-of-stock", "Out of stock")
                .detail("every one of this reward has been redeemed"),
            LoyaltyError::CodeUsed => Problem::conflict("code-used", "Code already used")
                .detail("this code was taken at the counter before"),
            LoyaltyError::Invalid(errors) => Problem::invalid(errors),
            LoyaltyError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for LoyaltyError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
