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
}

/// `review.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDeleted {
    pub review_id: Uuid,
    pub movie_id: Uuid,
    pub user_id: Uuid,
}
