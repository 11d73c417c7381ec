//! showtimes' errors and the problems they become.

use platform::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum ShowtimesError {
    /// 404.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409 `room-name-taken`.
    #[error("the theater has a room with this name")]
    RoomNameTaken,
    /// 409 `showtime-overlap`.
    #[error("overlaps showtime {0} in the room")]
    Overlap(uuid::Uuid),
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 503: the catalog could not be asked.
    #[error("the catalog is unavailable")]
    CatalogDown,
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ShowtimesError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<ShowtimesError> for Problem {
    fn from(e: ShowtimesError) -> Self {
        match e {
            ShowtimesError::NotFound(what) => Problem::not_found(what),
            ShowtimesError::RoomNameTaken => Problem::conflict("room-name-taken", "Room name taken")
                .detail("the theater has a room with this name"),
            ShowtimesError::Overlap(other) => Problem::conflict("showtime-overlap", "Overlapping showtime")
                .detail(format!("the room is busy with showtime {other} (including 15 minutes of cleaning)"))
                .extension("conflicting_showtime_id", other.to_string()),
            ShowtimesError::Invalid(errors) => Problem::invalid(errors),
            ShowtimesError::CatalogDown => {
                Problem::unavailable("the catalog is unavailable; the movie cannot be checked")
            }
            ShowtimesError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for ShowtimesError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
