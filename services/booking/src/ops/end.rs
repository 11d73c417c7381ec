//! How bookings end: cancelled by their customer, expired by the clock (the sweeper, or a buyer
//! who wants the seats), cancelled with their showtime, refunded by someone else. Each is one
//! transition in one unit of work that frees the seats, emits the event and, when the booking may
//! hold money, owes payments the command that refunds all of it (see [`crate::commands`]).

use contracts::payments::PaymentRefunded;
use events::Effects;
use platform::{auth::AuthUser, time::to_ms};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{Booking, Status},
    error::BookingError,
    ops::{EndReason, end_in, owned, pay::CHARGE_STALE_MS, retrying},
    store::{self, Stored},
};

/// A paid booking can be cancelled (and refunded) until this long before its show.
pub const CANCEL_BEFORE_MS: i64 = 3_600_000;

/// Cancel a booking (its owner or an admin): a hold just ends; a paid booking is refunded in
/// full until an hour before the show, else it is a 409. A cancel that races a pay looks again
/// at what the pay did and answers for that.
pub async fn cancel(state: &AppState, user: &AuthUser, id: Uuid) -> Result<Booking, BookingError> {
    for _ in 0..3 {
        let stored = owned(state, user, id).await?;
        let now = state.clock.now_ms();
        match stored.booking.status {
            Status::Held => {}
            Status::Charging => return Err(BookingError::PaymentInProgress),
            Status::Confirmed if stored.starts_at - now < CANCEL_BEFORE_MS => {
                return Err(BookingError::Conflict(
                    "too-late-to-cancel",
                    "a paid booking can be cancelled until an hour before the show".into(),
                ));
            }
            Status::Confirmed => {}
            other => {
                return Err(BookingError::Conflict("not-cancellable", format!("the booking is {other}")));
            }
        }
        let ended = retrying(|| async {
            let mut work = state.effects.begin(&state.db).await?;
            let ended =
                end_in(work.conn(), &state.effects, &stored, Status::Cancelled, EndReason::Customer, now)
                    .await?;
            work.commit().await?;
            Ok(ended)
        })
        .await?;
        if ended {
            return Ok(owned(state, user, id).await?.booking);
        }
        // It moved on between our read and our update: look again.
    }
    Err(BookingError::Conflict("busy", "the booking is changing; try again".into()))
}

/// Whether the clock has ended this booking: a hold past its end, or a charge whose request
/// died ([`CHARGE_STALE_MS`]) on a hold past its end.
pub fn is_expirable(stored: &Stored, now: i64) -> bool {
    let ran_out = to_ms(stored.booking.expires_at) <= now;
    match stored.booking.status {
        Status::Held => ran_out,
        Status::Charging => ran_out && stored.charging_at.is_some_and(|at| at <= now - CHARGE_STALE_MS),
        _ => false,
    }
}

/// Expire the booking if the clock says so; whether it did.
pub async fn expire_if_due(state: &AppState, id: Uuid) -> Result<bool, BookingError> {
    retrying(|| async {
        let now = state.clock.now_ms();
        let mut work = state.effects.begin(&state.db).await?;
        let Some(stored) = store::booking_in(work.conn(), id).await? else { return Ok(false) };
        if !is_expirable(&stored, now) {
            return Ok(false);
        }
        let ended =
            end_in(work.conn(), &state.effects, &stored, Status::Expired, EndReason::HoldExpired, now)
                .await?;
        work.commit().await?;
        Ok(ended)
    })
    .await
}

/// One sweep: expire every hold that ran out and every charge left by a request that died.
/// A booking that fails is logged and left for the next pass; the others go on.
pub async fn expire_due(state: &AppState) -> anyhow::Result<usize> {
    let now = state.clock.now_ms();
    let mut due = store::expired_holds(&state.db, now, 100).await?;
    due.extend(store::abandoned_charges(&state.db, now - CHARGE_STALE_MS, now, 100).await?);
    let mut n = 0;
    for id in due {
        match expire_if_due(state, id).await {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(booking_id = %id, error = %e, "expiring a booking failed; the next pass tries again")
            }
        }
    }
    Ok(n)
}

/// `showtime.cancelled`, inside the consumer's inbox transaction: every live booking of the
/// showtime is cancelled, and each that may hold money owes its refund (whatever the hour: the
/// cinema cancelled, not the customer). No call to payments is made here; the command relay
/// refunds after the commit, retrying for as long as payments is away.
pub async fn showtime_cancelled(
    conn: &mut AnyConnection,
    effects: &Effects,
    showtime: Uuid,
    now: i64,
) -> anyhow::Result<usize> {
    // First the mark, under an exclusive lock: holds and pays that read the showtime before
    // have committed when it is taken (their bookings are found below), later ones see it.
    store::mark_showtime_cancelled(conn, showtime, now).await?;
    let mut n = 0;
    for id in store::live_bookings_of(conn, showtime).await? {
        // A booking may move on between our read and our update (a pay starts charging): read
        // it again and end it from where it is now.
        for _ in 0..5 {
            let Some(stored) = store::booking_in(conn, id).await? else { break };
            if !stored.booking.status.claims_seats() {
                break;
            }
            if end_in(conn, effects, &stored, Status::Cancelled, EndReason::ShowtimeCancelled, now).await? {
                n += 1;
                break;
            }
        }
    }
    Ok(n)
}

/// `payment.refunded`, inside the consumer's inbox transaction: a confirmed booking whose
/// payment was refunded in full by someone else (an admin) becomes `refunded`: its tickets are
/// void and its seats free. Refunds booking itself caused find the booking ended already.
pub async fn payment_refunded(
    conn: &mut AnyConnection,
    effects: &Effects,
    refund: &PaymentRefunded,
    now: i64,
) -> anyhow::Result<bool> {
    let Some(id) = contracts::payments::booking_of_reference(&refund.reference) else {
        return Ok(false);
    };
    let Some(stored) = store::booking_in(conn, id).await? else { return Ok(false) };
    let whole = refund.payment_amount_cents > 0 && refund.refunded_cents >= refund.payment_amount_cents;
    if stored.booking.status != Status::Confirmed
        || stored.booking.payment_id != Some(refund.payment_id)
        || !whole
    {
        return Ok(false);
    }
    end_in(conn, effects, &stored, Status::Refunded, EndReason::PaymentRefunded, now).await
}
