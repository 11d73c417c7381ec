//! booking's HTTP API (docs/api.md, bookings, and the seat map of the showtimes). Each
//! handler extracts, calls [`crate::ops`] and answers.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use contracts::payments::Card;
use platform::{
    Problem,
    auth::AuthUser,
    extract::{ApiJson, ApiQuery, PathId},
    idempotency,
    pagination::{Page, PageRequest},
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    domain::Booking,
    ops::{
        self,
        view::{SeatMap, TicketCheck},
    },
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee booking", description = "Seat holds, bookings, tickets and seat maps"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_bookings, hold))
        .routes(routes!(get_booking))
        .routes(routes!(pay))
        .routes(routes!(cancel))
        .routes(routes!(seat_map))
        .routes(routes!(seat_stream))
        .routes(routes!(check_ticket));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, Problem> {
    serde_json::to_value(value).map_err(|e| Problem::from(anyhow::Error::from(e)))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoldRequest {
    pub showtime_id: Uuid,
    /// Seats of the showtime's room, such as `E5`.
    #[schema(min_items = 1, max_items = 10, example = json!(["E5", "E6"]))]
    pub seats: Vec<String>,
}

/// Hold seats for a while (`MARQUEE_HOLD_TTL_SECONDS`, 600 by default) until they are paid.
/// 409 with `unavailable` when any is held or sold.
#[utoipa::path(post, path = "/bookings", tag = "bookings", request_body = HoldRequest, security(("bearer" = [])),
    responses((status = 201, body = Booking), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn hold(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<HoldRequest>,
) -> Result<Response, Problem> {
    let key = idempotency::key(&headers)?;
    let scope = format!("{}:POST /bookings", user.id);
    Ok(state
        .idempotency
        .once(&scope, key, &req, async {
            let input =
                ops::hold::HoldInput { user: user.id, showtime_id: req.showtime_id, seats: &req.seats };
            let booking = ops::hold::hold(&state, input).await?;
            Ok((StatusCode::CREATED, json(&booking)?))
        })
        .await)
}

#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Booking), (status = 404, body = Problem)))]
pub async fn get_booking(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<ApiJson<Booking>, Problem> {
    Ok(ApiJson(ops::owned(&state, &user, id).await?.booking))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookingQuery {
    /// Admins only.
    pub user_id: Option<Uuid>,
    #[param(minimum = 1)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Your bookings, newest first (admins: all, or one user's).
#[utoipa::path(get, path = "/bookings", tag = "bookings", params(BookingQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Booking>)))]
pub async fn list_bookings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<BookingQuery>,
) -> Result<ApiJson<Page<Booking>>, Problem> {
    // No result window: a customer pages through their own bookings, an admin through all.
    let page = PageRequest::for_operators(q.page, q.per_page)?;
    let whose = if user.is_admin() { q.user_id } else { Some(user.id) };
    Ok(ApiJson(ops::view::bookings(&state, whose, page).await?))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayRequest {
    #[schema(value_type = platform::openapi::CardSchema)]
    pub payment_method: Card,
}

/// Pay for a held booking: payments charges the card with the booking as idempotency key, so
/// a retried pay never charges twice; then the seats are sold and tickets issued. 402 when the
/// card is declined (the hold stays); 409 when the hold has expired.
#[utoipa::path(post, path = "/bookings/{id}/pay", tag = "bookings", request_body = PayRequest, params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Booking), (status = 402, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn pay(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PayRequest>,
) -> Result<Response, Problem> {
    let key = idempotency::key(&headers)?;
    let scope = format!("{}:POST /bookings/{id}/pay", user.id);
    Ok(state
        .idempotency
        .once(&scope, key, &req, async {
            let input = ops::pay::PayInput { booking: id, card: &req.payment_method };
            let booking = ops::pay::pay(&state, &user, input).await?;
            Ok((StatusCode::OK, json(&booking)?))
        })
        .await)
}

/// Cancel a booking (its owner or an admin). A held booking just ends; a confirmed one is
/// refunded in full when cancelled at least an hour before the show, else it is a 409.
#[utoipa::path(post, path = "/bookings/{id}/cancel", tag = "bookings", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Booking), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<ApiJson<Booking>, Problem> {
    Ok(ApiJson(ops::end::cancel(&state, &user, id).await?))
}

/// Every seat of a showtime with its status and price.
#[utoipa::path(get, path = "/showtimes/{id}/seats", tag = "seats", params(("id" = Uuid, Path)),
    responses((status = 200, body = SeatMap), (status = 404, body = Problem)))]
pub async fn seat_map(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<ApiJson<SeatMap>, Problem> {
    Ok(ApiJson(ops::view::seat_map(&state, id).await?))
}

/// Check a ticket at the door (admin).
#[utoipa::path(get, path = "/tickets/{code}", tag = "tickets",
    params(("code" = String, Path, description = "as printed on the ticket", pattern = "^[0-9A-Za-z-]{1,64}$", example = "9F86D081-884C7D65-9A2FEAA0-C55AD015")),
    security(("bearer" = [])),
    responses((status = 200, body = TicketCheck), (status = 404, body = Problem)))]
pub async fn check_ticket(
    State(state): State<AppState>,
    _admin: platform::auth::AdminUser,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Result<ApiJson<TicketCheck>, Problem> {
    Ok(ApiJson(ops::view::check_ticket(&state, &code).await?))
}

/// Server-Sent Events: one `seat` event per seat whose status changes (`held`, `booked`,
/// `available`), as it happens on any replica; a `lagged` event when this stream fell behind
/// and the client should reload the seat map.
#[utoipa::path(get, path = "/showtimes/{id}/seats/stream", tag = "seats", params(("id" = Uuid, Path)),
    responses((status = 200, content_type = "text/event-stream", description = "seat status changes")))]
pub async fn seat_stream(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> axum::response::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    let stream = state.seat_feed.events_of(id);
    axum::response::Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default())
}
