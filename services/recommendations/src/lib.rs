//! recommendations: what to watch or see next, learnt from events. Item-to-item collaborative
//! filtering over bookings, plays (weighted by how much was watched) and ratings, blended with
//! content similarity (genres, director, cast) for movies with little history, and the week's
//! popular movies for users with none; each suggestion says why.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Recommendations).
//! - [`model`]: the recommender, with no I/O: signals, the model, content, popularity, reasons.
//! - [`engine`]: a replica's live signals and the model rebuilt from them in the background.
//! - [`reactions`]: events as changes, merged into the database once and into every replica.
//! - [`store`]: the SQL.
//! - [`eval`]: generated histories with planted tastes, and the offline evaluation.

pub mod engine;
pub mod eval;
pub mod model;
pub mod reactions;
pub mod routes;
pub mod store;

use std::{sync::Arc, time::Duration};

use axum::Router;
use events::{Consumer, EventBus};
use platform::{Platform, clock::Clock, db::Db};

pub const SERVICE: &str = "recommendations";

/// What a restore counts as this service's own data: the signals users gave.
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("interactions", "")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub engine: Arc<engine::Engine>,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let state =
        AppState { db: db.clone(), clock: platform.clock.clone(), engine: Arc::new(engine::Engine::new()) };
    // Hear every event before loading what is stored: one committed meanwhile is then merged
    // rather than missed (merges commute).
    let live = Arc::new(reactions::LiveUpdates { state: state.clone() });
    bus.subscribe_local(SERVICE, reactions::EVENTS, live, platform.shutdown.clone(), &platform.tasks).await?;
    reactions::load(&db, &state.engine).await?;
    let every = Duration::from_millis(platform.settings.parse_or("MARQUEE_RECOMMENDATIONS_REBUILD_MS", 500)?);
    platform.tasks.spawn(state.engine.clone().run(every, platform.clock.clone(), platform.shutdown.clone()));
    let reactions = reactions::Reactions { state: state.clone() };
    let consumer = Consumer::new(SERVICE, reactions::EVENTS, db.clone(), Arc::new(reactions));
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;
    // The live signals are read again from the restored tables.
    let after_restore: platform::snapshot::routes::AfterRestore = {
        let (db, engine) = (db.clone(), state.engine.clone());
        Arc::new(move || {
            let (db, engine) = (db.clone(), engine.clone());
            Box::pin(async move { reactions::reload(&db, &engine).await })
        })
    };
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes_with(
        &platform,
        &db,
        RESTORE_POLICY,
        Some(after_restore),
    ));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
