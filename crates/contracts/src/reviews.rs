//! Payloads of the reviews service's events (catalog keeps ratings from them).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `review.posted` and `review.updated`: a user's rating of a movie, 1 to 10.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRated {
    pub review_id: Uuid,
    pub movie_id: Uuid,
    pub user_id: Uuid,
    pub rating: i64,
    /// The review's version: 1 when posted, one more on each change. A consumer applies an event
    /// only over an older version, so one that arrives late never undoes a newer one.
    #[serde(default)]
    pub version: i64,
}

/// `review.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDeleted {
    pub review_id: Uuid,
    pub movie_id: Uuid,
    pub user_id: Uuid,
    /// The version the delete gave the review (after every change of it).
    #[serde(default)]
    pub version: i64,
}
