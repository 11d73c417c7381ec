//! booking: seat holds that never sell a seat twice, payment, tickets, cancellation, seat maps.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, bookings, and `GET /showtimes/{id}/seats`): extract,
//!   call [`ops`], answer.
//! - [`ops`]: the use cases: hold, pay, cancel, expire, and reactions to other services.
//! - [`domain`]: the booking type, its [`domain::Status`] state machine, parsing seat lists.
//! - [`store`]: the SQL; seat claims with a primary key on (showtime, seat).
//! - [`showtimes_client`]: a showtime's seats and price, from the showtimes service.
//! - [`live`]: seat changes for the Server-Sent Events stream, from every replica.
//! - [`payments_client`]: charging, finding what was captured, closing a booking's reference.
//! - [`commands`]: what booking owes payments (refunds), carried out by the command relay.
//! - [`reactions`]: `showtime.cancelled` and `payment.refunded`.
//! - [`sweeper`]: ending holds that ran out and charges whose request died.
//! - [`error`]: errors and the problems they become.

pub mod commands;
pub mod domain;
pub mod error;
pub mod live;
pub mod ops;
pub mod payments_client;
pub mod reactions;
pub mod routes;
pub mod showtimes_client;
pub mod store;
pub mod sweeper;

use std::{sync::Arc, time::Duration};

use axum::Router;
use events::{Consumer, Effects, EventBus};
use platform::{Platform, client::ServiceClient, clock::Clock, db::Db};

pub const SERVICE: &str = "booking";

/// What a restore counts as this service's own data (it refuses when any is there).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("bookings", "")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub effects: Effects,
    pub idempotency: platform::idempotency::Idempotency,
    pub clock: Clock,
    pub showtimes: Arc<showtimes_client::ShowtimesClient>,
    pub payments: Arc<payments_client::PaymentsClient>,
    pub hold_ttl_secs: i64,
    /// At most this many seats held (not yet paid) by one user at once: of one showtime, and in
    /// all (`MARQUEE_MAX_HELD_SEATS_PER_SHOWTIME`, `MARQUEE_MAX_HELD_SEATS`), so nobody can hoard
    /// a show's seats with holds they never pay.
    pub hold_limits: (i64, i64),
    pub seat_feed: Arc<live::SeatFeed>,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let payments = Arc::new(payments_client::PaymentsClient {
        client: ServiceClient::new(
            platform.http.clone(),
            "payments",
            platform.settings.service_urls("payments"),
        )
        .with_tokens(platform.service_tokens.clone()),
    });
    let commands = Arc::new(commands::BookingCommands { payments: payments.clone() });
    let state = AppState {
        db: db.clone(),
        idempotency: platform::idempotency::Idempotency::new(db.clone(), &platform.credential),
        effects: events::service::start_effects(&platform, &db, &bus, Some(commands))?,
        clock: platform.clock.clone(),
        showtimes: Arc::new(showtimes_client::ShowtimesClient::new(
            platform.http.clone(),
            platform.settings.service_urls("showtimes"),
            platform.cache.clone(),
        )),
        payments,
        hold_ttl_secs: platform.settings.parse_or("MARQUEE_HOLD_TTL_SECONDS", 600)?,
        hold_limits: (
            platform.settings.parse_or("MARQUEE_MAX_HELD_SEATS_PER_SHOWTIME", 10)?,
            platform.settings.parse_or("MARQUEE_MAX_HELD_SEATS", 20)?,
        ),
        seat_feed: Arc::new(live::SeatFeed::new()),
    };
    bus.subscribe_local(
        SERVICE,
        live::EVENTS,
        state.seat_feed.clone(),
        platform.shutdown.clone(),
        &platform.tasks,
    )
    .await?;
    let every = Duration::from_millis(platform.settings.parse_or("MARQUEE_HOLD_SWEEP_MS", 5_000)?);
    platform.tasks.spawn(sweeper::run(state.clone(), every, platform.shutdown.clone()));
    let reactions = Arc::new(reactions::Reactions { state: state.clone() });
    let consumer = Consumer::new(SERVICE, reactions::EVENTS, db.clone(), reactions);
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
