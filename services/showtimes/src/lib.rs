//! showtimes: theaters, rooms with seat layouts, and showtimes that never overlap in a room.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Theaters and showtimes): extract, call [`ops`], answer.
//! - [`ops`]: the use cases: theaters and rooms, scheduling (one showtime per slot, with
//!   `showtime.scheduled`) and cancelling (with `showtime.cancelled`).
//! - [`domain`]: the types and parsing requests (layouts, capacity).
//! - [`store`]: the SQL, including the per-room scheduling turn that keeps overlaps out.
//! - [`catalog_client`]: asking the catalog about movies, with a timeout and a breaker.
//! - [`demo`]: the demo theaters and week of showtimes for `marquee up`.
//! - [`error`]: errors and the problems they become.

pub mod catalog_client;
pub mod demo;
pub mod domain;
pub mod error;
pub mod ops;
pub mod routes;
pub mod store;

use std::sync::Arc;

use axum::Router;
use events::{Effects, EventBus};
use platform::{Platform, clock::Clock, db::Db};

pub const SERVICE: &str = "showtimes";

/// What a restore counts as this service's own data (it refuses when any is there).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("theaters", "")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub effects: Effects,
    /// "Now" for the rules: a start in the past, showtimes still to come.
    pub clock: Clock,
    pub catalog: Arc<catalog_client::CatalogClient>,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    store::fill_local_dates(&db).await?;
    let state = AppState {
        db: db.clone(),
        effects: events::service::start_effects(&platform, &db, &bus, None)?,
        clock: platform.clock.clone(),
        catalog: Arc::new(catalog_client::CatalogClient::new(
            platform.http.clone(),
            platform.settings.service_urls("catalog"),
        )),
    };
    if platform.settings.get("MARQUEE_DEMO").is_some_and(|v| v == "1" || v == "true") {
        let seed =
            demo::seed(state.clone(), platform.settings.service_urls("catalog"), platform.http.clone());
        let shutdown = platform.shutdown.clone();
        platform.tasks.spawn(async move {
            tokio::select! {
                () = seed => {},
                () = shutdown.cancelled() => {},
            }
        });
    }
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
