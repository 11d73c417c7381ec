//! analytics: read models (CQRS) fed by the platform's events, never by reading other
//! services' tables: revenue and refunds per day and theater on the theater's clock, bookings
//! and occupancy per showtime, plays and completion per movie, subscriptions and churn, each
//! customer's behaviour and spend segment, and popular movies. Every event it receives is kept
//! in an archive, and `POST /analytics/rebuild` recomputes every read model from it.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Analytics): extract, call [`ops`], answer JSON or CSV.
//! - [`ops`]: the answers, folded from the read models into periods, and the rebuild.
//! - [`projection`]: one event applied to the read models, in any order, at most once.
//! - [`domain`]: ranges and periods, segments, the answers' shapes and their CSV form.
//! - [`store`]: the SQL of the answers and the archive.
//! - [`reactions`]: the consumer: archive, then apply.
//! - [`error`]: errors and the problems they become.

pub mod domain;
pub mod error;
pub mod ops;
pub mod projection;
pub mod reactions;
pub mod routes;
pub mod store;

use std::sync::Arc;

use axum::Router;
use events::{Consumer, EventBus};
use platform::{Platform, clock::Clock, db::Db};

pub const SERVICE: &str = "analytics";

/// What a restore counts as this service's own data (it refuses when any is there).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("bookings", ""), ("plays", "")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let state = AppState { db: db.clone(), clock: platform.clock.clone() };
    let reactions = reactions::Reactions { state: state.clone() };
    let consumer = Consumer::new(SERVICE, reactions::EVENTS, db.clone(), Arc::new(reactions));
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
