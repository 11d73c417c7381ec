//! payments: the simulated card processor, payments and refunds, plans and subscriptions.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Payments and subscriptions): extract, call `ops`, answer.
//! - [`ops`]: the use cases: charges (one kept capture per reference), refunds, closing a
//!   reference, subscriptions and renewals.
//! - [`processor`]: the card processor's test-mode rules, Luhn check and tokens.
//! - [`renewals`]: charging each new month, ending cancelled subscriptions.
//! - [`store`]: the SQL.
//! - [`error`]: errors and the problems they become.
//!
//! Card numbers are never stored or logged: only the brand, the last four digits and the
//! processor's token are kept, and the request type's `Debug` hides the number.

pub mod error;
pub mod ops;
pub mod processor;
pub mod renewals;
pub mod routes;
pub mod store;

use std::{sync::Arc, time::Duration};

use axum::Router;
use events::{Effects, EventBus};
use platform::{Platform, clock::Clock, db::Db};

pub const SERVICE: &str = "payments";

/// What a restore counts as this service's own data (it refuses when any is there).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("payments", ""), ("subscriptions", "")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub effects: Effects,
    pub idempotency: platform::idempotency::Idempotency,
    pub clock: Clock,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let state = AppState {
        db: db.clone(),
        idempotency: platform::idempotency::Idempotency::new(db.clone(), &platform.credential),
        effects: events::service::start_effects(&platform, &db, &bus, None)?,
        clock: platform.clock.clone(),
    };
    let every = Duration::from_millis(platform.settings.parse_or("MARQUEE_RENEWAL_INTERVAL_MS", 60_000)?);
    platform.tasks.spawn(renewals::run(state.clone(), every, platform.shutdown.clone()));
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
