//! Payloads of the booking service's events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many seats in one booking (docs/api.md).
pub const MAX_SEATS: i64 = 10;

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
    /// The show's start, so a confirmation can say when without asking showtimes (absent in
    /// events from before it was added).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<OffsetDateTime>,
    /// The tickets issued, one per seat, with the codes checked at the door (notifications
    /// emails them). Empty in events from before it was added.
    #[serde(default)]
    pub tickets: Vec<TicketIssued>,
}

/// A ticket of a confirmed booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketIssued {
    pub seat: String,
    pub code: String,
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

/// `booking.cancelled` and `booking.expired`: the seats are free again. A booking whose payment
/// was refunded by someone else (it became `refunded`) is a `booking.cancelled` with reason
/// `payment-refunded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingEnded {
    pub booking_id: Uuid,
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
    pub seats: Vec<String>,
    /// What is paid back of the booking's total: all of it for a paid booking, 0 for one that
    /// was never confirmed (a stray charge is refunded too, and payments reports it in its
    /// `payment.refunded`).
    pub refunded_cents: i64,
    pub currency: String,
    /// `customer`, `showtime-cancelled`, `hold-expired` or `payment-refunded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
