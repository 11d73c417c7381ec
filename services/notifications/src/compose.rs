//! Everything a message says, gathered when it is sent (outside any transaction): who the user
//! is (from user.registered, else asked of identity once), and for bookings the movie, the
//! theater and the show's time on the theater's clock (asked of showtimes, cached). A service
//! that cannot be asked delays the message; it is tried again later.

use std::{sync::Arc, time::Duration};

use contracts::{
    booking::{BookingConfirmed, BookingEnded},
    identity::UserView,
    showtimes::{ShowtimeView, TheaterView},
};
use platform::{
    Platform,
    client::{ServiceClient, Unavailable},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    AppState,
    channels::SendError,
    domain::{self, Kind},
    store::{self, Due},
    templates::{self, Email},
};

pub struct Clients {
    identity: ServiceClient,
    showtimes: ServiceClient,
    theaters: moka::future::Cache<Uuid, Arc<TheaterView>>,
    showings: moka::future::Cache<Uuid, Arc<ShowtimeView>>,
}

fn cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> moka::future::Cache<Uuid, V> {
    moka::future::Cache::builder().max_capacity(10_000).time_to_live(ttl).build()
}

impl Clients {
    pub fn new(platform: &Platform) -> Self {
        let client = |service: &'static str| {
            ServiceClient::new(platform.http.clone(), service, platform.settings.service_urls(service))
                .with_tokens(platform.service_tokens.clone())
        };
        Clients {
            identity: client("identity"),
            showtimes: client("showtimes"),
            // A theater's name and zone do not change; a showtime's time does not either (a
            // cancelled one is a new fact, and its message says so from the event).
            theaters: cache(Duration::from_secs(600)),
            showings: cache(Duration::from_secs(60)),
        }
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserView>, Unavailable> {
        self.identity.get_json::<UserView>(&format!("/api/v1/users/{id}")).await
    }

    async fn showtime(&self, id: Uuid) -> Result<Option<Arc<ShowtimeView>>, Unavailable> {
        if let Some(hit) = self.showings.get(&id).await {
            return Ok(Some(hit));
        }
        let Some(found) = self.showtimes.get_json::<ShowtimeView>(&format!("/api/v1/showtimes/{id}")).await?
        else {
            return Ok(None);
        };
        let found = Arc::new(found);
        self.showings.insert(id, found.clone()).await;
        Ok(Some(found))
    }

    async fn theater(&self, id: Uuid) -> Result<Option<Arc<TheaterView>>, Unavailable> {
        if let Some(hit) = self.theaters.get(&id).await {
            return Ok(Some(hit));
        }
        let Some(found) = self.showtimes.get_json::<TheaterView>(&format!("/api/v1/theaters/{id}")).await?
        else {
            return Ok(None);
        };
        let found = Arc::new(found);
        self.theaters.insert(id, found.clone()).await;
        Ok(Some(found))
    }
}

fn later(e: Unavailable) -> SendError {
    SendError::Temporary(format!("{e}"))
}

fn malformed(e: serde_json::Error) -> SendError {
    SendError::Permanent(format!("the event's payload is not what its kind says: {e}"))
}

/// The user's address and name: from user.registered, else from identity (kept for next time).
pub async fn recipient(state: &AppState, user: Uuid) -> Result<(String, String), SendError> {
    if let Some(known) =
        store::recipient(&state.db, user).await.map_err(|e| SendError::Temporary(format!("{e:#}")))?
    {
        return Ok(known);
    }
    let view = state.clients.user(user).await.map_err(later)?;
    let Some(UserView { email: Some(email), name, .. }) = view else {
        return Err(SendError::Permanent(format!("identity has no address for user {user}")));
    };
    let name = name.unwrap_or_default();
    if let Ok(mut conn) = state.db.pool.acquire().await {
        let _ = store::upsert_recipient(&mut conn, user, &email, &name, state.clock.now_ms()).await;
    }
    Ok((email, name))
}

/// What a booking's message says about its show: the movie, where and when (on the theater's
/// clock).
async fn show(state: &AppState, showtime: Uuid) -> Result<Value, SendError> {
    let Some(s) = state.clients.showtime(showtime).await.map_err(later)? else {
        return Err(SendError::Permanent(format!("showtimes has no showtime {showtime}")));
    };
    let theater = match s.theater_id {
        Some(id) => state.clients.theater(id).await.map_err(later)?,
        None => None,
    };
    let zone = s
        .timezone
        .clone()
        .or_else(|| theater.as_ref().map(|t| t.timezone.clone()))
        .unwrap_or_else(|| "UTC".into());
    Ok(json!({
        "movie_title": s.movie_title,
        "local_time": domain::local_time(s.starts_at, &zone),
        "theater_name": theater.as_ref().map_or(String::new(), |t| t.name.clone()),
        "theater_address": theater.as_ref().map_or(String::new(), |t| format!("{}, {}", t.address, t.city)),
    }))
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn multiplier(tier: &str) -> &'static str {
    match tier {
        "silver" => "1.25",
        "gold" => "1.5",
        "platinum" => "2",
        _ => "1",
    }
}

/// The context of a message: the event's payload, the user and what the kind needs besides.
async fn context(state: &AppState, due: &Due, name: &str, email: &str) -> Result<Value, SendError> {
    let data = &due.data;
    let mut context = json!({
        "name": if name.is_empty() { "there" } else { name },
        "email": email,
        "app_url": state.config.public_url,
    });
    match due.kind {
        Kind::Welcome => {}
        Kind::BookingConfirmed => {
            let e: BookingConfirmed = serde_json::from_value(data.clone()).map_err(malformed)?;
            merge(&mut context, show(state, e.showtime_id).await?);
            merge(
                &mut context,
                json!({
                    "booking_id": e.booking_id,
                    "seats": e.seats,
                    "tickets": e.tickets,
                    "total": domain::money(e.total_cents, &e.currency),
                }),
            );
        }
        Kind::BookingCancelled => {
            let e: BookingEnded = serde_json::from_value(data.clone()).map_err(malformed)?;
            merge(&mut context, show(state, e.showtime_id).await?);
            let why = match e.reason.as_deref() {
                Some("showtime-cancelled") => {
                    "We are sorry: this showing was cancelled, and your booking with it."
                }
                Some("payment-refunded") => {
                    "Your payment for this booking was refunded, so its tickets are no longer valid."
                }
                _ => "Your booking is cancelled, as you asked.",
            };
            merge(
                &mut context,
                json!({
                    "booking_id": e.booking_id,
                    "seats": e.seats,
                    "why": why,
                    "refunded": if e.refunded_cents > 0 { domain::money(e.refunded_cents, &e.currency) } else { String::new() },
                }),
            );
        }
        Kind::SubscriptionActivated => {
            let plan = data["plan_id"].as_str().unwrap_or("your");
            let end = data["current_period_end"].as_str().unwrap_or_default();
            let end = time::OffsetDateTime::parse(end, &time::format_description::well_known::Rfc3339)
                .map(|t| domain::local_time(t, "UTC"))
                .unwrap_or_else(|_| end.to_owned());
            merge(
                &mut context,
                json!({"plan": plan, "max_streams": data["max_streams"].as_i64().unwrap_or(1), "period_end": end}),
            );
        }
        Kind::RewardRedeemed => merge(&mut context, data.clone()),
        Kind::TierReached | Kind::TierLowered => {
            let tier = data["to"].as_str().unwrap_or("bronze");
            merge(
                &mut context,
                json!({"tier": tier, "lifetime_points": data["lifetime_points"], "multiplier": multiplier(tier)}),
            );
        }
    }
    Ok(context)
}

/// The email for a delivery and where it goes.
pub async fn email(state: &AppState, due: &Due) -> Result<(String, String, Email), SendError> {
    let (address, name) = recipient(state, due.user).await?;
    let context = context(state, due, &name, &address).await?;
    let mail =
        templates::email(due.kind, &context).map_err(|e| SendError::Permanent(format!("template: {e:#}")))?;
    Ok((address, name, mail))
}

/// The SMS for a confirmed booking: the show and the ticket codes, short.
pub async fn sms(state: &AppState, due: &Due) -> Result<String, SendError> {
    let e: BookingConfirmed = serde_json::from_value(due.data.clone()).map_err(malformed)?;
    let show = show(state, e.showtime_id).await?;
    let codes: Vec<String> = e.tickets.iter().map(|t| format!("{} {}", t.seat, t.code)).collect();
    Ok(format!(
        "Marquee: {}, {} at {}. Tickets: {}",
        show["movie_title"].as_str().unwrap_or_default(),
        show["local_time"].as_str().unwrap_or_default(),
        show["theater_name"].as_str().unwrap_or_default(),
        codes.join("; ")
    ))
}
