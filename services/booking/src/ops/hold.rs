//! Holding seats: one transaction ends the runs-out holds on them, inserts the booking and
//! claims every seat; the primary key on (showtime, seat) decides races.

use contracts::{booking::BookingHeld, event_types::BOOKING_HELD};
use platform::{FieldError, time::to_ms};
use time::Duration;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{Booking, Status, parse_seats},
    error::BookingError,
    ops::{EndReason, end::is_expirable, end_in, retrying},
    store,
};

pub struct HoldInput<'a> {
    pub user: Uuid,
    pub showtime_id: Uuid,
    pub seats: &'a [String],
}

/// Hold seats for `state.hold_ttl_secs`; 409 with the taken seats when any is held or sold.
pub async fn hold(state: &AppState, input: HoldInput<'_>) -> Result<Booking, BookingError> {
    let seats = parse_seats(input.seats).map_err(|e| BookingError::Invalid(vec![e]))?;
    let show = state
        .showtimes
        .get(input.showtime_id)
        .await?
        .ok_or_else(|| BookingError::Invalid(vec![FieldError::new("showtime_id", "no such showtime")]))?;
    let now = state.clock.now();
    if show.cancelled || show.starts_at <= now {
        return Err(BookingError::Invalid(vec![FieldError::new(
            "showtime_id",
            "the showtime was cancelled or has started",
        )]));
    }
    let unknown: Vec<&String> = seats.iter().filter(|s| show.kind(s).is_none()).collect();
    if !unknown.is_empty() {
        let list = unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(BookingError::Invalid(vec![FieldError::new("seats", format!("no such seat: {list}"))]));
    }
    let booking = Booking {
        id: Uuid::now_v7(),
        user_id: input.user,
        showtime_id: show.id,
        movie_id: show.movie_id,
        total_cents: seats.iter().map(|s| show.price_of(s)).sum(),
        currency: show.currency.clone(),
        seats,
        status: Status::Held,
        expires_at: now + Duration::seconds(state.hold_ttl_secs),
        created_at: now,
        payment_id: None,
        tickets: Vec::new(),
    };
    let claimed = retrying(|| async {
        let now = to_ms(now);
        let mut work = state.effects.begin(&state.db).await?;
        // The showtimes service said it is on, but its cancellation may be on its way to us.
        if store::showtime_cancelled(&state.db, work.conn(), show.id, now).await? {
            work.rollback().await?;
            return Err(BookingError::Invalid(vec![FieldError::new(
                "showtime_id",
                "the showtime was cancelled",
            )]));
        }
        // One user's holds take turns here, so the cap holds even for holds sent in parallel.
        let (here, total) = store::held_by(work.conn(), booking.user_id, show.id, now).await?;
        let wanted = booking.seats.len() as i64;
        let (per_showtime, overall) = state.hold_limits;
        if here + wanted > per_showtime || total + wanted > overall {
            work.rollback().await?;
            return Err(BookingError::HoldLimit(format!(
                "you hold {here} seats of this showtime and {total} in all; at most {per_showtime} of one \
                 showtime and {overall} in all may be held at once (pay for or cancel a hold first)"
            )));
        }
        // Holds that ran out on these seats end now, so they never block this buyer.
        for stale in store::stale_holds(work.conn(), show.id, &booking.seats, now).await? {
            if let Some(stored) = store::booking_in(work.conn(), stale).await?
                && is_expirable(&stored, now)
            {
                end_in(work.conn(), &state.effects, &stored, Status::Expired, EndReason::HoldExpired, now)
                    .await?;
            }
        }
        store::insert_booking(work.conn(), &booking, to_ms(show.starts_at)).await?;
        if !store::claim_seats(work.conn(), show.id, &booking.seats, booking.id, to_ms(booking.expires_at))
            .await?
        {
            work.rollback().await?;
            return Ok(false);
        }
        let held = BookingHeld {
            booking_id: booking.id,
            user_id: booking.user_id,
            showtime_id: show.id,
            seats: booking.seats.clone(),
            total_cents: booking.total_cents,
            currency: booking.currency.clone(),
            expires_at: booking.expires_at,
        };
        work.emit(BOOKING_HELD, booking.id.to_string(), &held).await?;
        work.commit().await?;
        Ok(true)
    })
    .await?;
    if !claimed {
        let unavailable = store::taken(&state.db, show.id, &booking.seats, to_ms(now)).await?;
        return Err(BookingError::SeatsTaken(unavailable));
    }
    Ok(booking)
}
