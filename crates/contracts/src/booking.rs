//! Payloads of the booking service's events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `booking.confirmed`: a booking was paid; its tickets exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingConfirmed {
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
    pub seats: Vec<String>,
    pub total_cents: i64,
    pub currency: String,
    #[serde(with = "time::serde::rfc3339")]
    pub confirmed_at: OffsetDateTime,
}

/// `booking.held`: seats are held for a while, awaiting payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingHeld {
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub seats: Vec<String>,
    pub total_cents: i64,
    pub currency: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `booking.cancelled` and `booking.expired`: the seats are free again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingEnded {
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
    pub seats: Vec<String>,
    /// What was paid back (0 for a hold that was never paid).
    pub refunded_cents: i64,
    pub currency: String,
}
