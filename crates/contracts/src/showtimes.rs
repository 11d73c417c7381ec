//! Payloads of the showtimes service's events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `showtime.scheduled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowtimeScheduled {
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
    pub room_id: Uuid,
    pub theater_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub price_cents: i64,
    pub currency: String,
    pub capacity: i64,
}

/// `showtime.cancelled`: booking cancels and refunds every booking of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowtimeCancelled {
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
}
