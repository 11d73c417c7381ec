//! Reading: bookings, seat maps with live claims, and tickets checked at the door.

use std::collections::HashMap;

use platform::pagination::{Page, PageRequest};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{Booking, Status, Ticket},
    error::BookingError,
    store,
};

pub async fn bookings(
    state: &AppState,
    whose: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<Booking>, BookingError> {
    let (items, total) = store::bookings(&state.db, whose, page).await?;
    Ok(Page::new(items, page, total))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MapSeat {
    pub seat: String,
    pub kind: String,
    /// `available`, `held` or `booked`.
    pub status: &'static str,
    pub price_cents: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MapRow {
    pub row: String,
    pub seats: Vec<MapSeat>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatMap {
    pub showtime_id: Uuid,
    pub available: usize,
    pub rows: Vec<MapRow>,
}

/// Every seat of a showtime with its status and price.
pub async fn seat_map(state: &AppState, id: Uuid) -> Result<SeatMap, BookingError> {
    let show = state.showtimes.get(id).await?.ok_or(BookingError::NotFound("showtime"))?;
    let claims: HashMap<String, &'static str> =
        store::claims(&state.db, id, state.clock.now_ms()).await?.into_iter().collect();
    let rows: Vec<MapRow> = show
        .rows
        .iter()
        .map(|r| MapRow {
            row: r.row.clone(),
            seats: r
                .seats
                .iter()
                .map(|s| MapSeat {
                    seat: s.seat.clone(),
                    kind: s.kind.clone(),
                    status: claims.get(&s.seat).copied().unwrap_or("available"),
                    price_cents: show.price_of(&s.seat),
                })
                .collect(),
        })
        .collect();
    let available = rows.iter().flat_map(|r| &r.seats).filter(|s| s.status == "available").count();
    Ok(SeatMap { showtime_id: id, available, rows })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShowtimeSummary {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: OffsetDateTime,
    pub cancelled: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketCheck {
    pub ticket: Ticket,
    pub booking: Booking,
    pub showtime: ShowtimeSummary,
    /// Lets its holder in: the booking is paid and the showtime neither cancelled nor over.
    pub valid: bool,
}

/// A ticket by its code, and whether it lets its holder in.
pub async fn check_ticket(state: &AppState, code: &str) -> Result<TicketCheck, BookingError> {
    let code = code.trim().to_ascii_uppercase();
    let (ticket, booking_id) =
        store::ticket_by_code(&state.db, &code).await?.ok_or(BookingError::NotFound("ticket"))?;
    let booking =
        store::booking(&state.db, booking_id).await?.ok_or(BookingError::NotFound("booking"))?.booking;
    let show = state.showtimes.fresh(booking.showtime_id).await?.ok_or(BookingError::NotFound("showtime"))?;
    // Doors stay open for latecomers until three hours after the start.
    let over = show.starts_at + Duration::hours(3) < state.clock.now();
    let valid = booking.status == Status::Confirmed && !show.cancelled && !over;
    let showtime = ShowtimeSummary { id: show.id, starts_at: show.starts_at, cancelled: show.cancelled };
    Ok(TicketCheck { ticket, booking, showtime, valid })
}
