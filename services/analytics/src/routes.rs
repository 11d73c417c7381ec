//! analytics' HTTP API (docs/api.md, Analytics), for admins: extract, call [`crate::ops`],
//! answer JSON, or CSV when the request's `Accept` asks for `text/csv`.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use platform::{
    Problem,
    auth::AdminUser,
    extract::{ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{
        CsvRow, Dashboard, Interval, MovieMetrics, Occupancy, PlaysPoint, PopularMovie, Rebuild,
        RevenuePoint, Segment, SegmentMember, Segments, SubscriptionPoint, UserBehavior, to_csv,
    },
    ops::{self, SeriesQuery},
};

#[derive(OpenApi)]
#[openapi(info(
    title = "Marquee analytics",
    description = "Read models built from events: revenue, occupancy, plays, subscriptions, segments"
))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(dashboard))
        .routes(routes!(revenue))
        .routes(routes!(plays))
        .routes(routes!(subscriptions))
        .routes(routes!(popular_movies))
        .routes(routes!(occupancy))
        .routes(routes!(movie))
        .routes(routes!(segments))
        .routes(routes!(members))
        .routes(routes!(behavior))
        .routes(routes!(rebuild))
        .routes(routes!(rebuild_status));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

/// True when the client asks for CSV (`Accept: text/csv`).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv")))
}

/// Rows as JSON (`json`, the whole answer) or as CSV (the rows), named `name.csv` for a download.
fn answer<T: Serialize, R: CsvRow>(headers: &HeaderMap, json: T, rows: &[R], name: &str) -> Response {
    if !wants_csv(headers) {
        return Json(json).into_response();
    }
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (header::CONTENT_DISPOSITION, disposition),
            (header::VARY, HeaderValue::from_static("accept")),
        ],
        to_csv(rows),
    )
        .into_response()
}

/// The days asked about: `from` to `to`, both included. Each operation that takes them reads
/// them beside its own parameters from the same query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Days {
    /// `YYYY-MM-DD`, the first day (default: 29 days before `to`); a theater's days are on its
    /// own clock.
    #[param(format = Date, pattern = r"^((20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|20([02468][048]|[13579][26])-02-29)$")]
    pub from: Option<String>,
    /// `YYYY-MM-DD`, the last day, included (default: today, UTC).
    #[param(format = Date, pattern = r"^((20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|20([02468][048]|[13579][26])-02-29)$")]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CurrencyQuery {
    /// ISO 4217 (default `USD`): money in other currencies is not summed in.
    #[param(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// The last 30 days at a glance: revenue net of refunds, bookings, tickets, plays, active
/// subscriptions, the five most popular movies, and the mean occupancy of the showtimes of the
/// last and the next 30 days.
#[utoipa::path(get, path = "/analytics/dashboard", tag = "analytics", params(CurrencyQuery), security(("bearer" = [])),
    responses((status = 200, body = Dashboard), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn dashboard(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<CurrencyQuery>,
) -> Result<Json<Dashboard>, Problem> {
    Ok(Json(ops::dashboard(&state, q.currency.as_deref()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevenueQuery {
    /// `day` (default), `week` (from Monday) or `month`; at most 1,000 periods.
    pub interval: Option<Interval>,
    /// One theater's money and bookings only.
    pub theater_id: Option<Uuid>,
    #[param(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// Revenue (captures), refunds and confirmed bookings per period, every period of the range
/// listed. Days are each theater's own (its time zone); money not for a ticket (subscriptions)
/// is placed on the UTC day.
#[utoipa::path(get, path = "/analytics/revenue", tag = "analytics", params(Days, RevenueQuery), security(("bearer" = [])),
    responses((status = 200, content((Vec<RevenuePoint> = "application/json"), (String = "text/csv"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "`from` after `to`, or more than 1,000 periods", body = Problem)))]
pub async fn revenue(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    ApiQuery(days): ApiQuery<Days>,
    ApiQuery(q): ApiQuery<RevenueQuery>,
) -> Result<Response, Problem> {
    let query = SeriesQuery {
        from: days.from.as_deref(),
        to: days.to.as_deref(),
        interval: q.interval.unwrap_or_default(),
        currency: q.currency.as_deref(),
        theater_id: q.theater_id,
    };
    let points = ops::revenue(&state, query).await?;
    Ok(answer(&headers, &points, &points, "revenue"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// `day` (default), `week` (from Monday) or `month`; at most 1,000 periods.
    pub interval: Option<Interval>,
}

impl SeriesParams {
    fn query<'a>(&self, days: &'a Days) -> SeriesQuery<'a> {
        SeriesQuery {
            from: days.from.as_deref(),
            to: days.to.as_deref(),
            interval: self.interval.unwrap_or_default(),
            ..SeriesQuery::default()
        }
    }
}

/// Playback sessions started per period (UTC days), and how many were watched past 90 %.
#[utoipa::path(get, path = "/analytics/plays", tag = "analytics", params(Days, SeriesParams), security(("bearer" = [])),
    responses((status = 200, content((Vec<PlaysPoint> = "application/json"), (String = "text/csv"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "`from` after `to`, or more than 1,000 periods", body = Problem)))]
pub async fn plays(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    ApiQuery(days): ApiQuery<Days>,
    ApiQuery(q): ApiQuery<SeriesParams>,
) -> Result<Response, Problem> {
    let points = ops::plays(&state, q.query(&days)).await?;
    Ok(answer(&headers, &points, &points, "plays"))
}

/// Subscriptions per period (UTC days): active at its start and end, started, renewed,
/// cancelled, and churn (cancelled ÷ active at the start).
#[utoipa::path(get, path = "/analytics/subscriptions", tag = "analytics", params(Days, SeriesParams), security(("bearer" = [])),
    responses((status = 200, content((Vec<SubscriptionPoint> = "application/json"), (String = "text/csv"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "`from` after `to`, or more than 1,000 periods", body = Problem)))]
pub async fn subscriptions(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    ApiQuery(days): ApiQuery<Days>,
    ApiQuery(q): ApiQuery<SeriesParams>,
) -> Result<Response, Problem> {
    let points = ops::subscriptions(&state, q.query(&days)).await?;
    Ok(answer(&headers, &points, &points, "subscriptions"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PopularQuery {
    /// How many (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Movies by tickets sold (bookings confirmed in the range and not cancelled) plus plays
/// (sessions started in it), most first.
#[utoipa::path(get, path = "/analytics/popular-movies", tag = "analytics", params(Days, PopularQuery), security(("bearer" = [])),
    responses((status = 200, content((Vec<PopularMovie> = "application/json"), (String = "text/csv"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "`from` after `to`", body = Problem)))]
pub async fn popular_movies(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    ApiQuery(days): ApiQuery<Days>,
    ApiQuery(q): ApiQuery<PopularQuery>,
) -> Result<Response, Problem> {
    let movies = ops::popular(&state, days.from.as_deref(), days.to.as_deref(), q.limit).await?;
    Ok(answer(&headers, &movies, &movies, "popular-movies"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OccupancyQuery {
    pub theater_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Each showtime of the range, soonest first: its capacity, the seats sold (confirmed and not
/// cancelled) and the share of the room that is. CSV gives the page's rows.
#[utoipa::path(get, path = "/analytics/occupancy", tag = "analytics", params(Days, OccupancyQuery), security(("bearer" = [])),
    responses((status = 200, content((Page<Occupancy> = "application/json"), (String = "text/csv"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "`from` after `to`", body = Problem)))]
pub async fn occupancy(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    ApiQuery(days): ApiQuery<Days>,
    ApiQuery(q): ApiQuery<OccupancyQuery>,
) -> Result<Response, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let shows = ops::occupancy(&state, q.theater_id, days.from.as_deref(), days.to.as_deref(), page).await?;
    let rows = shows.items.clone();
    Ok(answer(&headers, &shows, &rows, "occupancy"))
}

/// A movie's bookings, tickets, money, showtimes and their occupancy, plays and completion.
#[utoipa::path(get, path = "/analytics/movies/{id}", tag = "analytics", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = MovieMetrics), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "No event has named this movie", body = Problem)))]
pub async fn movie(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<Json<MovieMetrics>, Problem> {
    Ok(Json(ops::movie(&state, id).await?))
}

/// How many customers are in each spend segment: `vip` (net spend of 200.00 or more),
/// `regular` (50.00 to 200.00), `casual` (less), `inactive` (nothing booked, paid or played for
/// 90 days, whatever they spent).
#[utoipa::path(get, path = "/analytics/segments", tag = "analytics", params(CurrencyQuery), security(("bearer" = [])),
    responses((status = 200, body = Segments), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn segments(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<CurrencyQuery>,
) -> Result<Json<Segments>, Problem> {
    Ok(Json(ops::segments(&state, q.currency.as_deref()).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// One segment's customers (default: all).
    pub segment: Option<Segment>,
    #[param(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Customers with their segment, biggest net spend first. CSV gives the page's rows.
#[utoipa::path(get, path = "/analytics/users", tag = "analytics", params(MembersQuery), security(("bearer" = [])),
    responses((status = 200, content((Page<SegmentMember> = "application/json"), (String = "text/csv"))),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn members(
    State(state): State<AppState>,
    _admin: AdminUser,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> Result<Response, Problem> {
    let page = PageRequest::for_operators(q.page, q.per_page)?;
    let list = ops::members(&state, q.segment, q.currency.as_deref(), page).await?;
    let rows = list.items.clone();
    Ok(answer(&headers, &list, &rows, "users"))
}

/// A customer's bookings, spend, plays, last activity and segment.
#[utoipa::path(get, path = "/analytics/users/{id}/behavior", tag = "analytics",
    params(("id" = Uuid, Path), CurrencyQuery), security(("bearer" = [])),
    responses((status = 200, body = UserBehavior), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "No event has named this user", body = Problem)))]
pub async fn behavior(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
    ApiQuery(q): ApiQuery<CurrencyQuery>,
) -> Result<Json<UserBehavior>, Problem> {
    Ok(Json(ops::user(&state, id, q.currency.as_deref()).await?))
}

/// Recompute every read model from the archive of events received, in the background and in
/// one transaction: the same numbers come back. Events arriving meanwhile wait and are applied
/// after. Follow it at the `Location` given.
#[utoipa::path(post, path = "/analytics/rebuild", tag = "analytics", security(("bearer" = [])),
    responses((status = 202, body = Rebuild, headers(("location" = String, description = "where to follow it"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "`rebuild-running`: one is under way (`rebuild_id`)", body = Problem)))]
pub async fn rebuild(State(state): State<AppState>, _admin: AdminUser) -> Result<Response, Problem> {
    let started = ops::start_rebuild(&state).await?;
    let location = HeaderValue::from_str(&format!("/api/v1/analytics/rebuilds/{}", started.id))
        .unwrap_or(HeaderValue::from_static("/api/v1/analytics/rebuilds"));
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(started)).into_response())
}

/// A rebuild: `running`, then `done` (with the events replayed) or `failed` (with the error).
#[utoipa::path(get, path = "/analytics/rebuilds/{id}", tag = "analytics", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Rebuild), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn rebuild_status(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<Json<Rebuild>, Problem> {
    Ok(Json(ops::rebuild(&state, id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_chosen_by_the_accept_header() {
        let mut headers = HeaderMap::new();
        assert!(!wants_csv(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json, Text/CSV;q=0.9"));
        assert!(wants_csv(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/csvx"));
        assert!(!wants_csv(&headers));
    }
}
