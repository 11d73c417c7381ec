//! analytics' errors and the problems they become.

use platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `rebuild-running`.
    #[error("a rebuild is running")]
    RebuildRunning(uuid::Uuid),
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AnalyticsError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<AnalyticsError> for Problem {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::NotFound(what) => Problem::not_found(what),
            AnalyticsError::RebuildRunning(id) => {
                Problem::conflict("rebuild-running", "A rebuild is running")
                    .detail(format!("follow it at /api/v1/analytics/rebuilds/{id}"))
                    .extension("rebuild_id", id.to_string())
            }
            AnalyticsError::Invalid(errors) => Problem::invalid(errors),
            AnalyticsError::Internal(e) => e.into(),
        }
    }
}
