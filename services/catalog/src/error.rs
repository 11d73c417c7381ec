//! catalog's errors and the problems they become.

use platform::Problem;

use crate::{import::ImportError, store::WriteError};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// 404.
    #[error("movie not found")]
    MovieNotFound,
    /// 409 `already-imported`: a movie with this IMDb id exists (deleted ones count: they stay
    /// for history).
    #[error("a movie with this IMDb id exists")]
    ImdbIdTaken,
    /// 404 from import: nobody knows the id.
    #[error("unknown IMDb id {0}")]
    UnknownImdbId(String),
    /// 503: the provider is down and the offline catalog does not have the id.
    #[error("the metadata provider is unavailable")]
    ProviderDown,
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<platform::FieldError>),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<WriteError> for CatalogError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::ImdbIdTaken => Self::ImdbIdTaken,
            WriteError::Other(e) => Self::Internal(e),
        }
    }
}

impl From<ImportError> for CatalogError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Unknown(id) => Self::UnknownImdbId(id),
            ImportError::ProviderDown => Self::ProviderDown,
        }
    }
}

impl From<CatalogError> for Problem {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::MovieNotFound => Problem::not_found("movie"),
            CatalogError::ImdbIdTaken => {
                Problem::conflict("already-imported", "Movie already in the catalog")
                    .detail("a movie with this IMDb id exists")
            }
            CatalogError::UnknownImdbId(id) => Problem::not_found(&format!("IMDb id {id}")),
            CatalogError::ProviderDown => Problem::unavailable(
                "the movie metadata provider is unavailable and the offline catalog lacks this id",
            ),
            CatalogError::Invalid(errors) => Problem::invalid(errors),
            CatalogError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for CatalogError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
