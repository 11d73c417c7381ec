//! booking's HTTP API (API.md §Booking, and the seat map of §Theaters and showtimes).

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use contracts::{
    CloudEvent,
    booking::{BookingConfirmed, BookingEnded, BookingHeld},
    event_types::{BOOKING_CANCELLED, BOOKING_CONFIRMED, BOOKING_EXPIRED, BOOKING_HELD},
    payments::Card,
};
use platform::{
    FieldError, Problem,
    auth::AuthUser,
    extract::{ApiJson, ApiQuery, PathId},
    idempotency,
    pagination::{Page, PageRequest},
    time::{now_ms, to_ms},
};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use ticket_codes::code;
use time::{Duration, OffsetDateTime};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState, SERVICE,
    domain::{Booking, Ticket, parse_seats},
    error::BookingError,
    payments_client::PaymentAnswer,
    store,
};

mod ticket_codes {
    /// A ticket code: 128 random bits (UUID v4's randomness), in a form people can read out.
    pub fn code() -> String {
        let hex = uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase();
        format!("{}-{}-{}-{}", &hex[0..8], &hex[8..16], &hex[16..24], &hex[24..32])
    }
}

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

/// End a booking (cancelled or expired) with its event, releasing its seats, inside `tx`.
pub async fn end(
    tx: &mut AnyConnection,
    state: &AppState,
    b: &Booking,
    from: &[&str],
    to: &str,
    refunded_cents: i64,
) -> anyhow::Result<bool> {
    if !store::end_booking(tx, b.id, from, to).await? {
        return Ok(false);
    }
    let kind = if to == "expired" { BOOKING_EXPIRED } else { BOOKING_CANCELLED };
    let payload = BookingEnded {
        booking_id: b.id,
        user_id: b.user_id,
        showtime_id: b.showtime_id,
        movie_id: b.movie_id,
        seats: b.seats.clone(),
        refunded_cents,
        currency: b.currency.clone(),
    };
    state.outbox.add(tx, CloudEvent::new(SERVICE, kind, b.id.to_string(), &payload)?).await?;
    Ok(true)
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoldRequest {
    pub showtime_id: Uuid,
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
    Ok(idempotency::once(&state.db, &scope, key, &req, async {
        let booking = hold_seats(&state, user.id, &req).await?;
        Ok((StatusCode::CREATED, json(&booking)?))
    })
    .await)
}

async fn hold_seats(state: &AppState, user: Uuid, req: &HoldRequest) -> Result<Booking, BookingError> {
    let seats = parse_seats(&req.seats).map_err(|e| BookingError::Invalid(vec![e]))?;
    let show = state
        .showtimes
        .get(req.showtime_id)
        .await?
        .ok_or_else(|| BookingError::Invalid(vec![FieldError::new("showtime_id", "no such showtime")]))?;
    let now = OffsetDateTime::now_utc();
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
        user_id: user,
        showtime_id: show.id,
        movie_id: show.movie_id,
        total_cents: seats.iter().map(|s| show.price_of(s)).sum(),
        currency: show.currency.clone(),
        seats,
        status: "held".into(),
        expires_at: now + Duration::seconds(state.hold_ttl_secs),
        created_at: now,
        payment_id: None,
        tickets: Vec::new(),
    };
    let mut tx = state.db.begin_write().await?;
    // Holds that ran out on these seats end now, so they never block this buyer.
    for stale in store::stale_holds(&mut tx, show.id, &booking.seats).await? {
        if let Some((b, _)) = store::booking_in(&mut tx, stale).await? {
            end(&mut tx, state, &b, &["held"], "expired", 0).await?;
        }
    }
    store::insert_booking(&mut tx, &booking, to_ms(show.starts_at)).await?;
    if !store::claim_seats(&mut tx, show.id, &booking.seats, booking.id, to_ms(booking.expires_at)).await? {
        tx.rollback().await?;
        let unavailable = store::taken(&state.db, show.id, &booking.seats).await?;
        return Err(BookingError::SeatsTaken(unavailable));
    }
    let held = BookingHeld {
        booking_id: booking.id,
        user_id: user,
        showtime_id: show.id,
        seats: booking.seats.clone(),
        total_cents: booking.total_cents,
        currency: booking.currency.clone(),
        expires_at: booking.expires_at,
    };
    state
        .outbox
        .add(
            &mut tx,
            CloudEvent::new(SERVICE, BOOKING_HELD, booking.id.to_string(), &held)
                .map_err(anyhow::Error::from)?,
        )
        .await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(booking)
}

/// The booking of `user` (an admin may see any); anyone else's is a 404.
async fn owned(state: &AppState, user: &AuthUser, id: Uuid) -> Result<(Booking, i64), BookingError> {
    store::booking(&state.db, id)
        .await?
        .filter(|(b, _)| user.can_access(b.user_id))
        .ok_or(BookingError::NotFound("booking"))
}

#[utoipa::path(get, path = "/bookings/{id}", tag = "bookings", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Booking), (status = 404, body = Problem)))]
pub async fn get_booking(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<ApiJson<Booking>, Problem> {
    Ok(ApiJson(owned(&state, &user, id).await?.0))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct BookingQuery {
    /// Admins only.
    pub user_id: Option<Uuid>,
    pub page: Option<i64>,
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
    let page = PageRequest::new(q.page, q.per_page)?;
    let whose = if user.is_admin() { q.user_id } else { Some(user.id) };
    let (items, total) = store::bookings(&state.db, whose, page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PayRequest {
    #[schema(value_type = Object)]
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
    Ok(idempotency::once(&state.db, &scope, key, &req, async {
        let booking = pay_booking(&state, &user, id, &req.payment_method).await?;
        Ok((StatusCode::OK, json(&booking)?))
    })
    .await)
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

async fn pay_booking(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
    card: &Card,
) -> Result<Booking, BookingError> {
    let (booking, _) = owned(state, user, id).await?;
    match booking.status.as_str() {
        "confirmed" => return Ok(booking), // paid already: nothing more to do
        "held" => {}
        "expired" => return Err(BookingError::HoldExpired),
        other => return Err(BookingError::Conflict("not-payable", format!("the booking is {other}"))),
    }
    if booking.expires_at.unix_timestamp() * 1000 <= now_ms() {
        let mut tx = state.db.begin_write().await?;
        end(&mut tx, state, &booking, &["held"], "expired", 0).await?;
        tx.commit().await?;
        state.outbox.wake();
        return Err(BookingError::HoldExpired);
    }
    // An earlier attempt may have charged the card and died before confirming: use that charge
    // rather than making another.
    let earlier = if store::was_charging(&state.db, booking.id).await? {
        state.payments.captured_for(booking.id).await?.into_iter().next()
    } else {
        None
    };
    let payment_id = match earlier {
        Some(p) => p.id,
        None => charge(state, &booking, card).await?,
    };
    let mut tx = state.db.begin_write().await?;
    if !store::confirm(&mut tx, booking.id, booking.seats.len(), payment_id).await? {
        tx.rollback().await?;
        // Confirmed meanwhile by the same charge (a concurrent retry): that is success.
        if let Some((now, _)) = store::booking(&state.db, booking.id).await?
            && now.status == "confirmed"
            && now.payment_id == Some(payment_id)
        {
            return Ok(now);
        }
        // The hold ran out while the card was charged and the seats went to someone else:
        // nothing is sold, and the charge is paid back.
        state.payments.refund_all(payment_id).await?;
        let mut tx = state.db.begin_write().await?;
        end(&mut tx, state, &booking, &["held"], "expired", booking.total_cents).await?;
        tx.commit().await?;
        state.outbox.wake();
        return Err(BookingError::HoldExpired);
    }
    let tickets: Vec<Ticket> = booking
        .seats
        .iter()
        .map(|seat| Ticket { id: Uuid::now_v7(), seat: seat.clone(), code: code() })
        .collect();
    for ticket in &tickets {
        store::insert_ticket(&mut tx, booking.id, ticket).await?;
    }
    let confirmed = BookingConfirmed {
        booking_id: booking.id,
        user_id: booking.user_id,
        showtime_id: booking.showtime_id,
        movie_id: booking.movie_id,
        seats: booking.seats.clone(),
        total_cents: booking.total_cents,
        currency: booking.currency.clone(),
        confirmed_at: OffsetDateTime::now_utc(),
    };
    state
        .outbox
        .add(
            &mut tx,
            CloudEvent::new(SERVICE, BOOKING_CONFIRMED, booking.id.to_string(), &confirmed)
                .map_err(anyhow::Error::from)?,
        )
        .await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(Booking { status: "confirmed".into(), payment_id: Some(payment_id), tickets, ..booking })
}

/// Charge the card for the booking; the payment's id, or 402/422/503.
async fn charge(state: &AppState, booking: &Booking, card: &Card) -> Result<Uuid, BookingError> {
    store::mark_charging(&state.db, booking.id).await?;
    let token = state.payments.token().await?;
    let body = serde_json::json!({
        "amount_cents": booking.total_cents,
        "currency": booking.currency,
        "reference": crate::payments_client::reference(booking.id),
        "user_id": booking.user_id,
        "payment_method": card,
    });
    let key = payment_key(booking.id, card);
    let (status, answer) = state
        .payments
        .client
        .post_json("/api/v1/payments", &token, &body, &[("idempotency-key", key.as_str())])
        .await?;
    if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        let errors: Vec<FieldError> = serde_json::from_value(answer["errors"].clone()).unwrap_or_default();
        return Err(BookingError::Invalid(errors));
    }
    if !status.is_success() {
        return Err(BookingError::Unavailable(format!("payments answered {status}")));
    }
    let payment: PaymentAnswer = serde_json::from_value(answer)
        .map_err(|e| BookingError::Internal(anyhow::anyhow!("payments' answer: {e}")))?;
    if payment.status != "succeeded" {
        return Err(BookingError::Declined(payment.failure_code.unwrap_or_else(|| "declined".into())));
    }
    Ok(payment.id)
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
    let (booking, starts_at) = owned(&state, &user, id).await?;
    let refunded = match booking.status.as_str() {
        "held" => 0,
        "confirmed" => {
            if starts_at - now_ms() < 3_600_000 {
                return Err(BookingError::Conflict(
                    "too-late-to-cancel",
                    "a paid booking can be cancelled until an hour before the show".into(),
                )
                .into());
            }
            let payment =
                booking.payment_id.ok_or_else(|| anyhow::anyhow!("a confirmed booking without a payment"))?;
            state.payments.refund_all(payment).await.map_err(Problem::from)?;
            booking.total_cents
        }
        other => {
            return Err(BookingError::Conflict("not-cancellable", format!("the booking is {other}")).into());
        }
    };
    let mut tx = state.db.begin_write().await?;
    end(&mut tx, &state, &booking, &["held", "confirmed"], "cancelled", refunded).await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(ApiJson(owned(&state, &user, id).await?.0))
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
#[utoipa::path(get, path = "/showtimes/{id}/seats", tag = "seats", params(("id" = Uuid, Path)),
    responses((status = 200, body = SeatMap), (status = 404, body = Problem)))]
pub async fn seat_map(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<ApiJson<SeatMap>, Problem> {
    let show = state
        .showtimes
        .get(id)
        .await
        .map_err(BookingError::from)?
        .ok_or(BookingError::NotFound("showtime"))?;
    let claims: std::collections::HashMap<String, &'static str> =
        store::claims(&state.db, id).await?.into_iter().collect();
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
    Ok(ApiJson(SeatMap { showtime_id: id, available, rows }))
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

/// Check a ticket at the door (admin).
#[utoipa::path(get, path = "/tickets/{code}", tag = "tickets", params(("code" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = TicketCheck), (status = 404, body = Problem)))]
pub async fn check_ticket(
    State(state): State<AppState>,
    _admin: platform::auth::AdminUser,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Result<ApiJson<TicketCheck>, Problem> {
    let code = code.trim().to_ascii_uppercase();
    let (ticket, booking_id) =
        store::ticket_by_code(&state.db, &code).await?.ok_or(BookingError::NotFound("ticket"))?;
    let (booking, _) =
        store::booking(&state.db, booking_id).await?.ok_or(BookingError::NotFound("booking"))?;
    let show = state
        .showtimes
        .fresh(booking.showtime_id)
        .await
        .map_err(BookingError::from)?
        .ok_or(BookingError::NotFound("showtime"))?;
    // Doors stay open for latecomers until three hours after the start.
    let over = show.starts_at + Duration::hours(3) < OffsetDateTime::now_utc();
    let valid = booking.status == "confirmed" && !show.cancelled && !over;
    let showtime = ShowtimeSummary { id: show.id, starts_at: show.starts_at, cancelled: show.cancelled };
    Ok(ApiJson(TicketCheck { ticket, booking, showtime, valid }))
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
    use axum::response::sse::{Event, KeepAlive};
    use futures_util::StreamExt;
    use tokio::sync::broadcast::error::RecvError;

    let receiver = state.seat_feed.sender.subscribe();
    let stream = futures_util::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(change) if change.showtime_id == id => {
                    let events: Vec<Result<Event, std::convert::Infallible>> = change
                        .seats
                        .iter()
                        .map(|seat| {
                            let data = serde_json::json!({"seat": seat, "status": change.status}).to_string();
                            Ok(Event::default().event("seat").data(data))
                        })
                        .collect();
                    return Some((futures_util::stream::iter(events), receiver));
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {
                    let lagged = vec![Ok(Event::default().event("lagged").data("reload the seat map"))];
                    return Some((futures_util::stream::iter(lagged), receiver));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .flatten();
    axum::response::Sse::new(stream).keep_alive(KeepAlive::default())
}
