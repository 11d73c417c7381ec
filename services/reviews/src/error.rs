//! reviews' errors and the problems they become.

use platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum ReviewsError {
    /// 404 (also another user's review for a change).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `already-reviewed`: one review per user and movie.
    #[error("already reviewed")]
    AlreadyReviewed(Option<uuid::Uuid>),
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 503 when the catalog cannot be asked.
    #[error("{0}")]
    Unavailable(String),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ReviewsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<platform::client::Unavailable> for ReviewsError {
    fn from(e: platform::client::Unavailable) -> Self {
        Self::Unavailable(format!("the {} service is unavailable", e.service))
    }
}

impl From<ReviewsError> for Problem {
    fn from(e: ReviewsError) -> Self {
        match e {
            ReviewsError::NotFound(what) => Problem::not_found(what),
            ReviewsError::AlreadyReviewed(existing) => {
                let p = Problem::conflict("already-reviewed", "Already reviewed")
                    .detail("you have reviewed this movie; change that review (PATCH) instead");
                match existing {
                    Some(id) => p.extension("review_id", id.to_string()),
                    None => p,
                }
            }
            ReviewsError::Invalid(errors) => Problem::invalid(errors),
            ReviewsError::Unavailable(detail) => Problem::unavailable(detail),
            ReviewsError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for ReviewsError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
