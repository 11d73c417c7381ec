//! Payloads of the catalog's events.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The genres the catalog's schema seeds (docs/api.md); a slug outside this list is a 422 there.
pub const GENRES: &[&str] = &[
    "action",
    "adventure",
    "animation",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "family",
    "fantasy",
    "history",
    "horror",
    "music",
    "mystery",
    "romance",
    "science-fiction",
    "thriller",
    "war",
    "western",
];

/// `movie.created` and `movie.updated`: what other services need to know of a movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovieChanged {
    pub movie_id: Uuid,
    pub title: String,
    pub runtime_minutes: i64,
    pub genres: Vec<String>,
    pub streamable: bool,
    /// Who made it and who is in it, for content similarity (absent from events from before
    /// they were added).
    #[serde(default)]
    pub director: String,
    #[serde(default)]
    pub cast: Vec<String>,
}

/// `movie.deleted`: the movie is gone from listings (it stays for history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovieDeleted {
    pub movie_id: Uuid,
}

/// `GET /movies/{id}` as other services read it (showtimes: the title and how long it runs;
/// streaming: whether it may be watched).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovieView {
    pub id: Uuid,
    pub title: String,
    pub runtime_minutes: i64,
    #[serde(default)]
    pub streamable: bool,
}
