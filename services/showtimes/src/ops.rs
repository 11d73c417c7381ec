//! showtimes' use cases: theaters, rooms, and scheduling and cancelling showtimes. The handlers
//! and the demo seeding call these; each takes typed inputs and answers [`ShowtimesError`].
//!
//! Scheduling takes the room's turn ([`store::lock_room`]), checks for an overlap and writes the
//! showtime with `showtime.scheduled` in one unit of work, so two admins racing for one slot get
//! one showtime. Cancelling writes `showtime.cancelled` with the change; booking cancels and
//! refunds the showtime's bookings from it. "Now" (a start in the past, showtimes still to come)
//! is the service's clock.

use contracts::{
    event_types::{SHOWTIME_CANCELLED, SHOWTIME_SCHEDULED},
    showtimes::{ShowtimeCancelled, ShowtimeScheduled},
};
use platform::{
    FieldError,
    pagination::{Page, PageRequest},
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{
        CLEANING_MINUTES, Room, RoomInput, Showtime, ShowtimeInput, Status, Theater, TheaterInput, YEARS,
        parse_date, parse_rfc3339,
    },
    error::ShowtimesError,
    store::{self, RoomError, ShowtimeFilter},
};

/// Theaters, by city and name; `city` matches without case.
pub async fn theaters(
    state: &AppState,
    city: Option<&str>,
    page: PageRequest,
) -> Result<Page<Theater>, ShowtimesError> {
    let (items, total) = store::theaters(&state.db, city, page).await?;
    Ok(Page::new(items, page, total))
}

pub async fn create_theater(state: &AppState, input: TheaterInput) -> Result<Theater, ShowtimesError> {
    let input = input.parse().map_err(ShowtimesError::Invalid)?;
    Ok(store::insert_theater(&state.db, &input).await?)
}

pub async fn theater(state: &AppState, id: Uuid) -> Result<Theater, ShowtimesError> {
    store::theater(&state.db, id).await?.ok_or(ShowtimesError::NotFound("theater"))
}

/// A theater's rooms with their layouts; an unknown theater is a 404, not an empty page.
pub async fn rooms(
    state: &AppState,
    theater_id: Uuid,
    page: PageRequest,
) -> Result<Page<Room>, ShowtimesError> {
    theater(state, theater_id).await?;
    let (items, total) = store::rooms_of(&state.db, theater_id, page).await?;
    Ok(Page::new(items, page, total))
}

/// Add a room to a theater; its capacity comes from the layout. The layout is checked before
/// the theater, and the unique key on (theater, name) decides a race for one name.
pub async fn create_room(
    state: &AppState,
    theater_id: Uuid,
    input: RoomInput,
) -> Result<Room, ShowtimesError> {
    let plan = input.parse().map_err(ShowtimesError::Invalid)?;
    theater(state, theater_id).await?;
    store::insert_room(&state.db, theater_id, &plan).await.map_err(|e| match e {
        RoomError::NameTaken => ShowtimesError::RoomNameTaken,
        RoomError::Other(e) => ShowtimesError::Internal(e),
    })
}

pub async fn room(state: &AppState, id: Uuid) -> Result<Room, ShowtimesError> {
    store::room(&state.db, id).await?.ok_or(ShowtimesError::NotFound("room"))
}

/// The filters of `GET /showtimes`, as sent.
pub struct ShowtimeSearch<'a> {
    pub movie_id: Option<Uuid>,
    pub theater_id: Option<Uuid>,
    /// `YYYY-MM-DD`: showtimes starting that day on their theater's clock, within `from` and
    /// `to` when given.
    pub date: Option<&'a str>,
    /// RFC 3339: starting at or after (default: now).
    pub from: Option<&'a str>,
    /// RFC 3339: starting before.
    pub to: Option<&'a str>,
}

fn parse_time(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<OffsetDateTime> {
    match parse_rfc3339(raw) {
        Some(t) if YEARS.contains(&t.year()) => Some(t),
        Some(_) => {
            errors.push(FieldError::new(field, "must be a time between the years 2000 and 2100"));
            None
        }
        None => {
            errors.push(FieldError::new(field, "must be an RFC 3339 time such as 2026-12-01T19:30:00Z"));
            None
        }
    }
}

/// Scheduled showtimes, soonest first; by default those still to come.
pub async fn showtimes(
    state: &AppState,
    search: ShowtimeSearch<'_>,
    page: PageRequest,
) -> Result<Page<Showtime>, ShowtimesError> {
    let mut errors = Vec::new();
    let mut from = search.from.and_then(|f| parse_time("from", f, &mut errors));
    let mut to = search.to.and_then(|t| parse_time("to", t, &mut errors));
    let mut local_date = None;
    if let Some(date) = search.date {
        match parse_date(date) {
            Some(day) if !YEARS.contains(&day.year()) => {
                errors.push(FieldError::new("date", "must be a date between the years 2000 and 2100"));
            }
            Some(day) => {
                // The day on any theater's clock lies within 14 hours either side of UTC's day:
                // bounds for the index; the local date itself decides.
                let start = day.midnight().assume_utc() - Duration::hours(14);
                from = Some(from.map_or(start, |f| f.max(start)));
                let end = day.midnight().assume_utc() + Duration::hours(24 + 14);
                to = Some(to.map_or(end, |t| t.min(end)));
                local_date = Some(day.to_string());
            }
            None => errors.push(FieldError::new("date", "must be a date such as 2026-12-01")),
        }
    }
    if !errors.is_empty() {
        return Err(ShowtimesError::Invalid(errors));
    }
    let from = from.unwrap_or_else(|| state.clock.now());
    let filter =
        ShowtimeFilter { movie_id: search.movie_id, theater_id: search.theater_id, from, to, local_date };
    let (items, total) = store::showtimes(&state.db, &filter, page).await?;
    Ok(Page::new(items, page, total))
}

/// Check and schedule one showtime: the movie is asked of the catalog (before the transaction,
/// so no lock waits on another service); the end is the start plus the runtime plus cleaning;
/// an overlap in the room is a 409 naming the other showtime.
pub async fn schedule(state: &AppState, input: ShowtimeInput) -> Result<Showtime, ShowtimesError> {
    let input = input.check(state.clock.now()).map_err(ShowtimesError::Invalid)?;
    let movie =
        state.catalog.movie(input.movie_id).await.map_err(|_| ShowtimesError::CatalogDown)?.ok_or_else(
            || ShowtimesError::Invalid(vec![FieldError::new("movie_id", "no such movie in the catalog")]),
        )?;
    let ends_at = input.starts_at + Duration::minutes(movie.runtime_minutes + CLEANING_MINUTES);

    let mut work = state.effects.begin(&state.db).await?;
    // Holding the room's turn until commit, no other schedule in this room reads the same
    // free slot in between.
    let Some(store::LockedRoom { theater_id, capacity, timezone }) =
        store::lock_room(work.conn(), input.room_id).await?
    else {
        return Err(ShowtimesError::Invalid(vec![FieldError::new("room_id", "no such room")]));
    };
    if let Some(other) = store::overlapping(work.conn(), input.room_id, input.starts_at, ends_at).await? {
        return Err(ShowtimesError::Overlap(other));
    }
    let showtime = Showtime {
        id: Uuid::now_v7(),
        movie_id: input.movie_id,
        movie_title: movie.title,
        room_id: input.room_id,
        theater_id,
        starts_at: input.starts_at,
        ends_at,
        price_cents: input.price_cents,
        currency: input.currency,
        status: Status::Scheduled,
        local_starts_at: crate::domain::local_time(input.starts_at, &timezone),
        timezone,
    };
    store::insert_showtime(work.conn(), &showtime).await?;
    let payload = ShowtimeScheduled {
        showtime_id: showtime.id,
        movie_id: showtime.movie_id,
        room_id: showtime.room_id,
        theater_id,
        starts_at: showtime.starts_at,
        ends_at: showtime.ends_at,
        price_cents: showtime.price_cents,
        currency: showtime.currency.clone(),
        capacity,
        timezone: Some(showtime.timezone.clone()),
    };
    work.emit(SHOWTIME_SCHEDULED, showtime.id.to_string(), &payload).await?;
    work.commit().await?;
    Ok(showtime)
}

pub async fn showtime(state: &AppState, id: Uuid) -> Result<Showtime, ShowtimesError> {
    store::showtime(&state.db, id).await?.ok_or(ShowtimesError::NotFound("showtime"))
}

/// Cancel a showtime. Only the change from scheduled emits `showtime.cancelled`, so cancelling
/// again (or two admins at once) changes nothing more and tells booking once.
pub async fn cancel(state: &AppState, id: Uuid) -> Result<(), ShowtimesError> {
    let showtime = showtime(state, id).await?;
    let mut work = state.effects.begin(&state.db).await?;
    if !store::cancel(work.conn(), id).await? {
        work.rollback().await?;
        return Ok(());
    }
    let payload = ShowtimeCancelled { showtime_id: id, movie_id: showtime.movie_id };
    work.emit(SHOWTIME_CANCELLED, id.to_string(), &payload).await?;
    work.commit().await?;
    Ok(())
}
