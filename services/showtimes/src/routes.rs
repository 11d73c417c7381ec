//! showtimes' HTTP API (API.md §Theaters and showtimes).

use axum::{Router, extract::State, http::StatusCode};
use contracts::{
    CloudEvent,
    event_types::{SHOWTIME_CANCELLED, SHOWTIME_SCHEDULED},
    showtimes::{ShowtimeCancelled, ShowtimeScheduled},
};
use platform::{
    FieldError, Problem,
    auth::AdminUser,
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState, SERVICE,
    domain::{CLEANING_MINUTES, Room, RoomInput, Showtime, ShowtimeInput, Status, Theater, TheaterInput},
    error::ShowtimesError,
    store::{self, RoomError, ShowtimeFilter},
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee showtimes", description = "Theaters, rooms and showtimes"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_theaters, create_theater))
        .routes(routes!(get_theater))
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(get_room))
        .routes(routes!(list_showtimes, create_showtime))
        .routes(routes!(get_showtime, cancel_showtime));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TheaterQuery {
    pub city: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// Theaters, by city and name.
#[utoipa::path(get, path = "/theaters", tag = "theaters", params(TheaterQuery), responses((status = 200, body = Page<Theater>)))]
pub async fn list_theaters(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TheaterQuery>,
) -> Result<ApiJson<Page<Theater>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let (items, total) = store::theaters(&state.db, q.city.as_deref(), page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
}

/// Add a theater (admin).
#[utoipa::path(post, path = "/theaters", tag = "theaters", request_body = TheaterInput, security(("bearer" = [])),
    responses((status = 201, body = Theater), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_theater(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(input): ApiJson<TheaterInput>,
) -> Result<(StatusCode, ApiJson<Theater>), Problem> {
    let input = input.parse().map_err(ShowtimesError::Invalid)?;
    Ok((StatusCode::CREATED, ApiJson(store::insert_theater(&state.db, &input).await?)))
}

#[utoipa::path(get, path = "/theaters/{id}", tag = "theaters", params(("id" = Uuid, Path)),
    responses((status = 200, body = Theater), (status = 404, body = Problem)))]
pub async fn get_theater(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<ApiJson<Theater>, Problem> {
    Ok(ApiJson(store::theater(&state.db, id).await?.ok_or(ShowtimesError::NotFound("theater"))?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// A theater's rooms with their layouts.
#[utoipa::path(get, path = "/theaters/{id}/rooms", tag = "rooms", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<Room>), (status = 404, body = Problem)))]
pub async fn list_rooms(
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<Room>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    store::theater(&state.db, id).await?.ok_or(ShowtimesError::NotFound("theater"))?;
    let (items, total) = store::rooms_of(&state.db, id, page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
}

/// Add a room to a theater (admin); its capacity comes from the layout.
#[utoipa::path(post, path = "/theaters/{id}/rooms", tag = "rooms", request_body = RoomInput, security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 201, body = Room), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_room(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(theater_id): PathId,
    ApiJson(input): ApiJson<RoomInput>,
) -> Result<(StatusCode, ApiJson<Room>), Problem> {
    let plan = input.parse().map_err(ShowtimesError::Invalid)?;
    store::theater(&state.db, theater_id).await?.ok_or(ShowtimesError::NotFound("theater"))?;
    let room = store::insert_room(&state.db, theater_id, &plan).await.map_err(|e| match e {
        RoomError::NameTaken => ShowtimesError::RoomNameTaken,
        RoomError::Other(e) => ShowtimesError::Internal(e),
    })?;
    Ok((StatusCode::CREATED, ApiJson(room)))
}

#[utoipa::path(get, path = "/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 200, body = Room), (status = 404, body = Problem)))]
pub async fn get_room(State(state): State<AppState>, PathId(id): PathId) -> Result<ApiJson<Room>, Problem> {
    Ok(ApiJson(store::room(&state.db, id).await?.ok_or(ShowtimesError::NotFound("room"))?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ShowtimeQuery {
    pub movie_id: Option<Uuid>,
    pub theater_id: Option<Uuid>,
    /// `YYYY-MM-DD`: showtimes starting that day (UTC).
    pub date: Option<String>,
    /// RFC 3339: showtimes starting at or after (default: now).
    pub from: Option<String>,
    /// RFC 3339: showtimes starting before.
    pub to: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

fn parse_time(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            errors.push(FieldError::new(field, "must be an RFC 3339 time such as 2026-12-01T19:30:00Z"))
        })
        .ok()
}

/// Scheduled showtimes, soonest first; by default those still to come.
#[utoipa::path(get, path = "/showtimes", tag = "showtimes", params(ShowtimeQuery),
    responses((status = 200, body = Page<Showtime>), (status = 422, body = Problem)))]
pub async fn list_showtimes(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ShowtimeQuery>,
) -> Result<ApiJson<Page<Showtime>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let mut errors = Vec::new();
    let mut from = q.from.as_deref().and_then(|f| parse_time("from", f, &mut errors));
    let mut to = q.to.as_deref().and_then(|t| parse_time("to", t, &mut errors));
    if let Some(date) = q.date.as_deref() {
        match time::Date::parse(date, time::macros::format_description!("[year]-[month]-[day]")) {
            Ok(day) => {
                let start = day.midnight().assume_utc();
                from = Some(from.map_or(start, |f| f.max(start)));
                let end = start + Duration::days(1);
                to = Some(to.map_or(end, |t| t.min(end)));
            }
            Err(_) => errors.push(FieldError::new("date", "must be a date such as 2026-12-01")),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let from = from.unwrap_or_else(OffsetDateTime::now_utc);
    let filter = ShowtimeFilter { movie_id: q.movie_id, theater_id: q.theater_id, from, to };
    let (items, total) = store::showtimes(&state.db, &filter, page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
}

/// Schedule a movie in a room (admin). The movie is checked with the catalog; the end is the
/// start plus the runtime plus 15 minutes of cleaning; an overlap in the room is a 409.
#[utoipa::path(post, path = "/showtimes", tag = "showtimes", request_body = ShowtimeInput, security(("bearer" = [])),
    responses((status = 201, body = Showtime), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem)))]
pub async fn create_showtime(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(input): ApiJson<ShowtimeInput>,
) -> Result<(StatusCode, ApiJson<Showtime>), Problem> {
    Ok((StatusCode::CREATED, ApiJson(schedule(&state, input).await?)))
}

/// Check and schedule one showtime (also used to seed the demo week).
pub async fn schedule(state: &AppState, input: ShowtimeInput) -> Result<Showtime, ShowtimesError> {
    let input = input.check(OffsetDateTime::now_utc()).map_err(ShowtimesError::Invalid)?;
    let movie =
        state.catalog.movie(input.movie_id).await.map_err(|_| ShowtimesError::CatalogDown)?.ok_or_else(
            || ShowtimesError::Invalid(vec![FieldError::new("movie_id", "no such movie in the catalog")]),
        )?;
    let ends_at = input.starts_at + Duration::minutes(movie.runtime_minutes + CLEANING_MINUTES);

    let mut tx = state.db.pool.begin().await?;
    let Some((theater_id, capacity)) = store::lock_room(&mut tx, input.room_id).await? else {
        return Err(ShowtimesError::Invalid(vec![FieldError::new("room_id", "no such room")]));
    };
    if let Some(other) = store::overlapping(&mut tx, input.room_id, input.starts_at, ends_at).await? {
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
    };
    store::insert_showtime(&mut tx, &showtime).await?;
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
    };
    let event = CloudEvent::new(SERVICE, SHOWTIME_SCHEDULED, showtime.id.to_string(), &payload)
        .map_err(anyhow::Error::from)?;
    state.outbox.add(&mut tx, event).await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(showtime)
}

#[utoipa::path(get, path = "/showtimes/{id}", tag = "showtimes", params(("id" = Uuid, Path)),
    responses((status = 200, body = Showtime), (status = 404, body = Problem)))]
pub async fn get_showtime(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<ApiJson<Showtime>, Problem> {
    Ok(ApiJson(store::showtime(&state.db, id).await?.ok_or(ShowtimesError::NotFound("showtime"))?))
}

/// Cancel a showtime (admin): `showtime.cancelled` makes booking cancel and refund its
/// bookings. Cancelling a cancelled showtime again changes nothing.
#[utoipa::path(delete, path = "/showtimes/{id}", tag = "showtimes", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn cancel_showtime(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<StatusCode, Problem> {
    let showtime = store::showtime(&state.db, id).await?.ok_or(ShowtimesError::NotFound("showtime"))?;
    let mut tx = state.db.pool.begin().await?;
    if store::cancel(&mut tx, id).await? {
        let payload = ShowtimeCancelled { showtime_id: id, movie_id: showtime.movie_id };
        let event = CloudEvent::new(SERVICE, SHOWTIME_CANCELLED, id.to_string(), &payload)
            .map_err(anyhow::Error::from)?;
        state.outbox.add(&mut tx, event).await?;
        tx.commit().await?;
        state.outbox.wake();
    }
    Ok(StatusCode::NO_CONTENT)
}
