//! The watchlist: movies a user means to watch. Adding and removing are idempotent.

use uuid::Uuid;

use crate::{AppState, error::StreamingError, store};

pub use store::WatchlistEntry;

/// Add a movie the catalog has; adding it again changes nothing (it keeps its first date).
pub async fn add(state: &AppState, user: Uuid, movie: Uuid) -> Result<(), StreamingError> {
    state.clients.movie(movie).await?.ok_or(StreamingError::NotFound("movie"))?;
    store::add_to_watchlist(&state.db, user, movie, state.clock.now_ms()).await?;
    Ok(())
}

pub async fn remove(state: &AppState, user: Uuid, movie: Uuid) -> Result<(), StreamingError> {
    Ok(store::remove_from_watchlist(&state.db, user, movie).await?)
}

/// The list, most recently added first (at most 500).
pub async fn list(state: &AppState, user: Uuid) -> Result<Vec<WatchlistEntry>, StreamingError> {
    Ok(store::watchlist(&state.db, user, 500).await?)
}
