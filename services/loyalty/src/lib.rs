//! loyalty: points for confirmed bookings (1 per whole currency unit, times the tier's
//! multiplier), taken back exactly when a booking is cancelled or refunded, tiers by lifetime
//! points, a rewards catalogue, redemptions that cannot overspend, and codes checked at the
//! counter. The balance always equals the sum of the ledger.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Loyalty): extract, call [`ops`], answer.
//! - [`ops`]: the use cases; each change of points is one transaction with its ledger row.
//! - [`domain`]: tiers, the points formula, rewards and redemption codes.
//! - [`store`]: the SQL; [`store::move_points`] is the one place a balance changes.
//! - [`reactions`]: `booking.confirmed` and `booking.cancelled`.
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
use platform::{Platform, clock::Clock, db::Db};

pub const SERVICE: &str = "loyalty";

/// What a restore counts as this service's own data (it refuses when any is there).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy = platform::snapshot::restore::Policy {
    primary: &[("ledger", ""), ("rewards", ""), ("redemptions", "")],
    merged: &[],
};

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub effects: Effects,
    pub clock: Clock,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let state = AppState {
        db: db.clone(),
        effects: events::service::start_effects(&platform, &db, &bus, None)?,
        clock: platform.clock.clone(),
    };
    let reactions = reactions::Reactions { state: state.clone() };
    let consumer = Consumer::new(SERVICE, reactions::EVENTS, db.clone(), Arc::new(reactions));
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
