//! booking's use cases. Handlers, the sweeper and the event consumers call these; each takes
//! typed inputs, answers the service's error, and changes a booking only by a transition of
//! [`Status`] inside a unit of work that also holds its events and the commands it makes owed.
//! No call to another service is made while a transaction is open.
//!
//! - [`hold`]: holding seats.
//! - [`pay`]: charging and confirming.
//! - [`end`]: cancelling, expiring, and what other services' events end.
//! - [`view`]: reading bookings, seat maps, tickets at the door.

pub mod end;
pub mod hold;
pub mod pay;
pub mod view;

use contracts::{
    booking::BookingEnded,
    event_types::{BOOKING_CANCELLED, BOOKING_EXPIRED},
};
use events::Effects;
use platform::auth::AuthUser;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::{
    AppState,
    commands::close_booking,
    domain::Status,
    error::BookingError,
    store::{self, Stored},
};

/// The booking of `user` (an admin may see any); anyone else's is a 404.
pub async fn owned(state: &AppState, user: &AuthUser, id: Uuid) -> Result<Stored, BookingError> {
    store::booking(&state.db, id)
        .await?
        .filter(|s| user.can_access(s.booking.user_id))
        .ok_or(BookingError::NotFound("booking"))
}

/// Why a booking ended, for its event and for the refund payments records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Customer,
    HoldExpired,
    ShowtimeCancelled,
    PaymentRefunded,
}

impl EndReason {
    fn event_reason(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::HoldExpired => "hold-expired",
            Self::ShowtimeCancelled => "showtime-cancelled",
            Self::PaymentRefunded => "payment-refunded",
        }
    }

    fn refund_reason(self) -> &'static str {
        match self {
            Self::Customer => "booking-cancelled",
            Self::HoldExpired => "booking-expired",
            Self::ShowtimeCancelled => "showtime-cancelled",
            Self::PaymentRefunded => "booking-refunded",
        }
    }
}

/// End `booking` (moving it from the status it was read in to `to`) inside `conn`: its seats
/// are freed, its event written, and, when it may hold money, the command that refunds all of
/// it and refuses any later charge is owed in the same transaction. False when the booking had
/// moved on (the caller lost a race and should look again).
pub async fn end_in(
    conn: &mut AnyConnection,
    effects: &Effects,
    stored: &Stored,
    to: Status,
    reason: EndReason,
    now: i64,
) -> anyhow::Result<bool> {
    let b = &stored.booking;
    if !store::transition(conn, b.id, b.status, to, now).await? {
        return Ok(false);
    }
    store::release_seats(conn, b.id).await?;
    if stored.may_hold_money() {
        effects.owe_in(conn, &close_booking(b.id, reason.refund_reason())?).await?;
    }
    let kind = if to == Status::Expired { BOOKING_EXPIRED } else { BOOKING_CANCELLED };
    let payload = BookingEnded {
        booking_id: b.id,
        user_id: b.user_id,
        showtime_id: b.showtime_id,
        movie_id: b.movie_id,
        seats: b.seats.clone(),
        refunded_cents: if b.status == Status::Confirmed { b.total_cents } else { 0 },
        currency: b.currency.clone(),
        reason: Some(reason.event_reason().to_owned()),
    };
    effects.emit_in(conn, kind, b.id.to_string(), &payload).await?;
    Ok(true)
}

/// Run a whole unit of work again when the database refused it as a transient conflict (a
/// deadlock or serialization failure on PostgreSQL, a lock timeout on SQLite).
pub async fn retrying<T, F, Fut>(work: F) -> Result<T, BookingError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BookingError>>,
{
    platform::db::retry_transient(
        work,
        |e| matches!(e, BookingError::Internal(e) if platform::db::is_transient(e)),
    )
    .await
}
