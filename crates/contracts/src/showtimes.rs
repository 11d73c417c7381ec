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
    /// The theater's IANA time zone, so consumers can tell its local day (absent from events
    /// from before it was added: read as UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// `showtime.cancelled`: booking cancels and refunds every booking of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowtimeCancelled {
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
}

/// `GET /showtimes/{id}` as other services read it (booking: the price, the start, the status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowtimeView {
    pub id: Uuid,
    pub movie_id: Uuid,
    pub room_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    pub price_cents: i64,
    pub currency: String,
    /// `scheduled` or `cancelled`.
    pub status: String,
    /// What notifications tells a customer: the movie, the theater and its clock (absent from
    /// older answers).
    #[serde(default)]
    pub movie_title: String,
    #[serde(default)]
    pub theater_id: Option<Uuid>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// `starts_at` on the theater's clock: `2026-12-04T19:30:00-08:00`.
    #[serde(default)]
    pub local_starts_at: Option<String>,
}

/// `GET /theaters/{id}` as other services read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TheaterView {
    pub id: Uuid,
    pub name: String,
    pub city: String,
    pub address: String,
    pub timezone: String,
}

/// One seat of a room's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatView {
    pub seat: String,
    /// `standard`, `premium` or `accessible`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowView {
    pub row: String,
    pub seats: Vec<SeatView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutView {
    pub rows: Vec<RowView>,
}

/// `GET /rooms/{id}` as other services read it (booking: the seats and their kinds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomView {
    pub layout: LayoutView,
}
