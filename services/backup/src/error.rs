//! backup's errors and the problems they become.

use axum::http::StatusCode;
use platform::Problem;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `work-running`: a backup or a restore is under way.
    #[error("a backup or a restore is running")]
    Busy,
    /// 409 `not-empty`: services hold data of their own; each named with what it holds.
    #[error("not empty: {0}")]
    NotEmpty(String),
    /// 422: the backup cannot be restored here (schema versions, an unknown format).
    #[error("{code}: {detail}")]
    Unrestorable { code: &'static str, detail: String },
    /// 503: a service could not be asked.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<BackupError> for Problem {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::NotFound(what) => Problem::not_found(what),
            BackupError::Busy => Problem::conflict("work-running", "A backup or a restore is running")
                .detail("wait for it to finish (GET /backups shows it)"),
            BackupError::NotEmpty(detail) => {
                Problem::conflict("not-empty", "A restore goes only into empty services").detail(detail)
            }
            BackupError::Unrestorable { code, detail } => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, "The backup cannot be restored here")
                    .detail(detail)
            }
            BackupError::Unavailable(detail) => Problem::unavailable(detail),
            BackupError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for BackupError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
