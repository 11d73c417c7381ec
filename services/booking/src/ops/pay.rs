//! Paying for a hold: held → charging (one conditional UPDATE, committed), then the charge with
//! no transaction open, then charging → confirmed with the tickets, or back to held.
//!
//! What makes it safe when requests race, die or time out:
//! - only the attempt that moved the booking to `charging` may confirm it (`charge_attempt`);
//!   a request that died is taken over after [`CHARGE_STALE_MS`];
//! - a booking that may have been charged before (`charging_at` set) first asks payments what
//!   was captured, and reuses it rather than charging again;
//! - payments keeps one capture per booking: a second one (a retry with another card after a
//!   slow first charge) is refunded there at once and names the kept one, which is used;
//! - whoever ends a booking while a charge is in flight owes payments the command that closes
//!   the booking's reference: the late charge is refunded or refused.

use contracts::{
    booking::{BookingConfirmed, TicketIssued},
    event_types::BOOKING_CONFIRMED,
    payments::{Card, ChargeRequest, booking_reference},
};
use platform::{FieldError, client::CallError, time::to_ms};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{Booking, Status, Ticket},
    error::BookingError,
    ops::{EndReason, end::expire_if_due, end_in, owned, retrying},
    store,
};

/// A pay attempt that has not finished after this long is taken to be dead: a retry may take
/// over, and the sweeper ends it once the hold has run out too. Well above the payments call's
/// 3 s timeout, so a live attempt is never taken over.
pub const CHARGE_STALE_MS: i64 = 30_000;

/// While a card is being charged the seats stay claimed at least this long, whatever the hold's
/// end, so a charge that succeeds just after the hold's end still finds its seats.
pub const CHARGE_CLAIM_MS: i64 = 2 * CHARGE_STALE_MS;

pub struct PayInput<'a> {
    pub booking: Uuid,
    pub card: &'a Card,
}

/// The payment idempotency key of a booking and card: retrying with the same card replays the
/// first charge; another card after a decline is a new attempt.
fn payment_key(booking: Uuid, card: &Card) -> String {
    let digits: String = card.number.chars().filter(char::is_ascii_digit).collect();
    let material = format!("{booking}/{digits}/{}/{}", card.exp_month, card.exp_year);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, material.as_bytes());
    let fingerprint: String = digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("booking-{booking}-{fingerprint}")
}

fn ticket_code() -> String {
    // 128 random bits (UUID v4's randomness), in a form people can read out.
    let hex = Uuid::new_v4().simple().to_string().to_ascii_uppercase();
    format!("{}-{}-{}-{}", &hex[0..8], &hex[8..16], &hex[16..24], &hex[24..32])
}

/// Pay for a held booking of `user`'s.
pub async fn pay(
    state: &AppState,
    user: &platform::auth::AuthUser,
    input: PayInput<'_>,
) -> Result<Booking, BookingError> {
    let stored = owned(state, user, input.booking).await?;
    let id = stored.booking.id;
    let now = state.clock.now_ms();
    let attempt = match stored.booking.status {
        Status::Confirmed => return Ok(stored.booking), // paid already: nothing more to do
        Status::Held if to_ms(stored.booking.expires_at) <= now => {
            expire_if_due(state, id).await?;
            return Err(BookingError::HoldExpired);
        }
        Status::Held => {
            retrying(|| async {
                let mut work = state.effects.begin(&state.db).await?;
                let attempt = store::start_charging(work.conn(), id, now, now + CHARGE_CLAIM_MS).await?;
                work.commit().await?;
                Ok(attempt)
            })
            .await?
        }
        Status::Charging if stored.charging_at.is_some_and(|at| at <= now - CHARGE_STALE_MS) => {
            retrying(|| async {
                let mut work = state.effects.begin(&state.db).await?;
                let attempt = store::take_over_charging(
                    work.conn(),
                    id,
                    now - CHARGE_STALE_MS,
                    now,
                    now + CHARGE_CLAIM_MS,
                )
                .await?;
                work.commit().await?;
                Ok(attempt)
            })
            .await?
        }
        Status::Charging => return Err(BookingError::PaymentInProgress),
        Status::Expired => return Err(BookingError::HoldExpired),
        other => return Err(BookingError::Conflict("not-payable", format!("the booking is {other}"))),
    };
    let Some(attempt) = attempt else {
        // Someone else moved it between our read and our update: say what happened.
        return settled_elsewhere(state, id).await;
    };
    // From here on no transaction is open until the charge has an outcome.
    let charged = find_or_charge(state, &stored, input.card).await;
    let payment = match charged {
        Ok(payment) => payment,
        Err(e) => {
            // Declined, refused or unknown: the hold goes on (a charge that may have landed is
            // found by the next attempt, since `charging_at` stays set).
            let stopped = retrying(|| async {
                let mut work = state.effects.begin(&state.db).await?;
                let stopped = store::stop_charging(work.conn(), id, attempt, state.clock.now_ms()).await?;
                work.commit().await?;
                Ok(stopped)
            })
            .await?;
            if !stopped || matches!(e, BookingError::ReferenceClosed) {
                return settled_elsewhere(state, id).await;
            }
            return Err(e);
        }
    };
    confirm(state, &stored, attempt, payment).await
}

/// The payment that pays for the booking: one an earlier attempt captured, or a new charge.
async fn find_or_charge(state: &AppState, stored: &store::Stored, card: &Card) -> Result<Uuid, BookingError> {
    let b = &stored.booking;
    if stored.charging_at.is_some() {
        let captured = state.payments.captured_for(b.id).await.map_err(payments_error)?;
        if let Some(p) = captured.iter().find(|p| p.amount_cents - p.refunded_cents == b.total_cents) {
            return Ok(p.id);
        }
    }
    let request = ChargeRequest {
        amount_cents: b.total_cents,
        currency: b.currency.clone(),
        reference: booking_reference(b.id),
        user_id: b.user_id,
        payment_method: card.clone(),
    };
    let payment = state.payments.charge(&request, &payment_key(b.id, card)).await.map_err(payments_error)?;
    if payment.status != "succeeded" {
        return Err(BookingError::Declined(payment.failure_code.unwrap_or_else(|| "declined".into())));
    }
    // A second capture for this booking was refunded at once by payments; the first is kept.
    Ok(payment.duplicate_of.unwrap_or(payment.id))
}

fn payments_error(e: CallError) -> BookingError {
    match (e.status(), e.problem_code()) {
        (Some(422), _) => {
            let errors = match &e {
                CallError::Refused { problem, .. } => {
                    serde_json::from_value::<Vec<FieldError>>(problem["errors"].clone()).unwrap_or_default()
                }
                CallError::Unavailable(_) => Vec::new(),
            };
            BookingError::Invalid(errors)
        }
        (Some(409), Some("reference-closed")) => BookingError::ReferenceClosed,
        (Some(status), _) => BookingError::Unavailable(format!("payments refused the charge ({status})")),
        (None, _) => BookingError::Unavailable(e.to_string()),
    }
}

/// charging → confirmed with `payment`: seats sold, tickets issued, `booking.confirmed`.
async fn confirm(
    state: &AppState,
    stored: &store::Stored,
    attempt: i64,
    payment: Uuid,
) -> Result<Booking, BookingError> {
    let b = &stored.booking;
    let confirmed = retrying(|| async {
        let now = state.clock.now_ms();
        let mut work = state.effects.begin(&state.db).await?;
        if store::showtime_cancelled(&state.db, work.conn(), b.showtime_id, now).await? {
            // Cancelled while the card was charged: the booking ends with the showtime, and the
            // charge is refunded by the command that owes it.
            if let Some(now_stored) = store::booking_in(work.conn(), b.id).await?
                && now_stored.booking.status == Status::Charging
                && now_stored.charge_attempt == attempt
            {
                end_in(
                    work.conn(),
                    &state.effects,
                    &now_stored,
                    Status::Cancelled,
                    EndReason::ShowtimeCancelled,
                    now,
                )
                .await?;
            }
            work.commit().await?;
            return Ok(None);
        }
        if !store::confirm(work.conn(), b.id, attempt, b.seats.len(), payment, now).await? {
            work.rollback().await?;
            return Ok(None);
        }
        let tickets: Vec<Ticket> = b
            .seats
            .iter()
            .map(|seat| Ticket { id: Uuid::now_v7(), seat: seat.clone(), code: ticket_code() })
            .collect();
        for ticket in &tickets {
            store::insert_ticket(work.conn(), b.id, ticket, now).await?;
        }
        let event = BookingConfirmed {
            booking_id: b.id,
            user_id: b.user_id,
            showtime_id: b.showtime_id,
            movie_id: b.movie_id,
            seats: b.seats.clone(),
            total_cents: b.total_cents,
            currency: b.currency.clone(),
            confirmed_at: platform::time::from_ms(now),
            starts_at: Some(platform::time::from_ms(stored.starts_at)),
            tickets: tickets
                .iter()
                .map(|t| TicketIssued { seat: t.seat.clone(), code: t.code.clone() })
                .collect(),
        };
        work.emit(BOOKING_CONFIRMED, b.id.to_string(), &event).await?;
        work.commit().await?;
        Ok(Some(tickets))
    })
    .await?;
    match confirmed {
        Some(tickets) => {
            Ok(Booking { status: Status::Confirmed, payment_id: Some(payment), tickets, ..b.clone() })
        }
        None => settled_elsewhere(state, b.id).await,
    }
}

/// Our attempt lost a race: the answer is what happened to the booking instead. Confirmed
/// meanwhile (by a concurrent retry) is success; an ended booking's charge, if any, is refunded
/// by the command whoever ended it owed.
async fn settled_elsewhere(state: &AppState, id: Uuid) -> Result<Booking, BookingError> {
    let now = store::booking(&state.db, id).await?.ok_or(BookingError::NotFound("booking"))?;
    Err(match now.booking.status {
        Status::Confirmed => return Ok(now.booking),
        Status::Held | Status::Charging => BookingError::PaymentInProgress,
        Status::Expired => BookingError::HoldExpired,
        other => BookingError::Conflict(
            "not-payable",
            format!("the booking is {other}; anything charged for it is refunded"),
        ),
    })
}
