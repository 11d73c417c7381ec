//! reviews: one review per user and movie, edits and deletes by the author or an admin, lists,
//! rating stats, and the "verified" badge for people who booked or played the movie.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Reviews): extract, call [`ops`], answer.
//! - [`ops`]: the use cases; every change is one unit of work with its versioned event.
//! - [`domain`]: the review and the rules of its fields.
//! - [`store`]: the SQL; the unique index that allows one live review per user and movie.
//! - [`reactions`]: `booking.confirmed` and `playback.started`: who saw which movie.
//! - [`error`]: errors and the problems they become.

pub mod domain;
pub mod error;
pub mod ops;
pub mod reactions;
pub mod routes;
pub mod store;

use std::sync::Arc;

use axum::Router;
use events::{Consumer, Effects, EventBus};
use platform::{Platform, client::ServiceClient, clock::Clock, db::Db};

pub const SERVICE: &str = "reviews";

/// What a restore counts as this service's own data (it refuses when any is there).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("reviews", "")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub effects: Effects,
    pub clock: Clock,
    /// Whether a movie exists, asked of the catalog (timeout, breaker).
    pub catalog: Arc<ServiceClient>,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let state = AppState {
        db: db.clone(),
        effects: events::service::start_effects(&platform, &db, &bus, None)?,
        clock: platform.clock.clone(),
        catalog: Arc::new(ServiceClient::new(
            platform.http.clone(),
            "catalog",
            platform.settings.service_urls("catalog"),
        )),
    };
    let consumer = Consumer::new(SERVICE, reactions::EVENTS, db.clone(), Arc::new(reactions::Reactions));
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
