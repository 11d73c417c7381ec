//! showtimes' HTTP API (docs/api.md, Theaters and showtimes): each handler extracts, calls
//! [`crate::ops`] and answers.

use axum::{Router, extract::State, http::StatusCode};
use platform::{
    Problem,
    auth::AdminUser,
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{Room, RoomInput, Showtime, ShowtimeInput, Theater, TheaterInput},
    ops,
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee showtimes", description = "Theaters, rooms and showtimes"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = api().split_for_parts();
    (router.with_state(state), openapi)
}

fn api() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_theaters, create_theater))
        .routes(routes!(get_theater))
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(get_room))
        .routes(routes!(list_showtimes, create_showtime))
        .routes(routes!(get_showtime, cancel_showtime));
    OpenApiRouter::new().nest("/api/v1", api)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TheaterQuery {
    /// The city, without case; empty is no filter.
    pub city: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Theaters, by city and name.
#[utoipa::path(get, path = "/theaters", tag = "theaters", params(TheaterQuery), responses((status = 200, body = Page<Theater>)))]
pub async fn list_theaters(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TheaterQuery>,
) -> Result<ApiJson<Page<Theater>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(ApiJson(ops::theaters(&state, q.city.as_deref(), page).await?))
}

/// Add a theater (admin).
#[utoipa::path(post, path = "/theaters", tag = "theaters", request_body = TheaterInput, security(("bearer" = [])),
    responses((status = 201, body = Theater)))]
pub async fn create_theater(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(input): ApiJson<TheaterInput>,
) -> Result<(StatusCode, ApiJson<Theater>), Problem> {
    Ok((StatusCode::CREATED, ApiJson(ops::create_theater(&state, input).await?)))
}

#[utoipa::path(get, path = "/theaters/{id}", tag = "theaters", params(("id" = Uuid, Path)),
    responses((status = 200, body = Theater)))]
pub async fn get_theater(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<ApiJson<Theater>, Problem> {
    Ok(ApiJson(ops::theater(&state, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// A theater's rooms with their layouts.
#[utoipa::path(get, path = "/theaters/{id}/rooms", tag = "rooms", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<Room>)))]
pub async fn list_rooms(
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<Room>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(ApiJson(ops::rooms(&state, id, page).await?))
}

/// Add a room to a theater (admin); its capacity comes from the layout.
#[utoipa::path(post, path = "/theaters/{id}/rooms", tag = "rooms", request_body = RoomInput, security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 201, body = Room),
        (status = 409, description = "`room-name-taken`: the theater has a room with this name", body = Problem)))]
pub async fn create_room(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(theater_id): PathId,
    ApiJson(input): ApiJson<RoomInput>,
) -> Result<(StatusCode, ApiJson<Room>), Problem> {
    Ok((StatusCode::CREATED, ApiJson(ops::create_room(&state, theater_id, input).await?)))
}

#[utoipa::path(get, path = "/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 200, body = Room)))]
pub async fn get_room(State(state): State<AppState>, PathId(id): PathId) -> Result<ApiJson<Room>, Problem> {
    Ok(ApiJson(ops::room(&state, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowtimeQuery {
    pub movie_id: Option<Uuid>,
    pub theater_id: Option<Uuid>,
    /// `YYYY-MM-DD`, 2000 to 2100: showtimes starting that day (UTC).
    #[param(format = Date, pattern = r"^((20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|20([02468][048]|[13579][26])-02-29)$")]
    pub date: Option<String>,
    /// RFC 3339, 2000 to 2100: showtimes starting at or after (default: now).
    #[param(format = DateTime, pattern = r"^((20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|20([02468][048]|[13579][26])-02-29)T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub from: Option<String>,
    /// RFC 3339, 2000 to 2100: showtimes starting before.
    #[param(format = DateTime, pattern = r"^((20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|20([02468][048]|[13579][26])-02-29)T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub to: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Scheduled showtimes, soonest first; by default those still to come.
#[utoipa::path(get, path = "/showtimes", tag = "showtimes", params(ShowtimeQuery),
    responses((status = 200, body = Page<Showtime>)))]
pub async fn list_showtimes(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ShowtimeQuery>,
) -> Result<ApiJson<Page<Showtime>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let search = ops::ShowtimeSearch {
        movie_id: q.movie_id,
        theater_id: q.theater_id,
        date: q.date.as_deref(),
        from: q.from.as_deref(),
        to: q.to.as_deref(),
    };
    Ok(ApiJson(ops::showtimes(&state, search, page).await?))
}

/// Schedule a movie in a room (admin). The movie is checked with the catalog; the end is the
/// start plus the runtime plus 15 minutes of cleaning; an overlap in the room is a 409.
#[utoipa::path(post, path = "/showtimes", tag = "showtimes", request_body = ShowtimeInput, security(("bearer" = [])),
    responses((status = 201, body = Showtime),
        (status = 409, description = "`showtime-overlap`: the room is busy then (cleaning included); \
            `conflicting_showtime_id` names the other showtime", body = Problem),
        (status = 503, description = "The catalog could not be asked about the movie", body = Problem)))]
pub async fn create_showtime(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(input): ApiJson<ShowtimeInput>,
) -> Result<(StatusCode, ApiJson<Showtime>), Problem> {
    Ok((StatusCode::CREATED, ApiJson(ops::schedule(&state, input).await?)))
}

#[utoipa::path(get, path = "/showtimes/{id}", tag = "showtimes", params(("id" = Uuid, Path)),
    responses((status = 200, body = Showtime)))]
pub async fn get_showtime(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<ApiJson<Showtime>, Problem> {
    Ok(ApiJson(ops::showtime(&state, id).await?))
}

/// Cancel a showtime (admin): `showtime.cancelled` makes booking cancel and refund its
/// bookings. Cancelling a cancelled showtime again changes nothing.
#[utoipa::path(delete, path = "/showtimes/{id}", tag = "showtimes", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "Cancelled, now or before")))]
pub async fn cancel_showtime(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<StatusCode, Problem> {
    ops::cancel(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::domain::{MAX_PRICE_CENTS, MAX_ROWS, MAX_SEATS_PER_ROW, MIN_PRICE_CENTS};

    fn document() -> Value {
        serde_json::to_value(super::api().split_for_parts().1).expect("the document is JSON")
    }

    /// The bounds written out in the attributes are the ones the checks use.
    #[test]
    fn the_documented_bounds_are_the_checked_ones() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let price = &schemas["ShowtimeInput"]["properties"]["price_cents"];
        assert_eq!(
            (&price["minimum"], &price["maximum"]),
            (&MIN_PRICE_CENTS.into(), &MAX_PRICE_CENTS.into())
        );
        let room = &schemas["RoomInput"]["properties"];
        assert_eq!(room["rows"]["maxItems"], MAX_ROWS);
        assert_eq!(room["rows"]["uniqueItems"], true);
        assert_eq!(room["seats_per_row"]["maximum"], MAX_SEATS_PER_ROW);
    }

    #[test]
    #[ignore = "prints the document"]
    fn print_document() {
        println!("{}", serde_json::to_string_pretty(&document()).expect("json"));
    }
}
