//! catalog: movies, genres, search that forgives typos, ratings from reviews, IMDb import.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Catalog): extract, call [`ops`], answer.
//! - [`ops`]: the use cases: listing, search, the cached read, adding (by hand, import, demo),
//!   changing and removing movies, each write with its `movie.*` event.
//! - [`domain`]: the movie type and parsing requests.
//! - [`store`]: the SQL.
//! - [`search`]: the tantivy index.
//! - [`reactions`]: ratings from `review.*`, `streamable` from `media.uploaded`, the index and
//!   cache from `movie.*`.
//! - [`import`]: the IMDb provider and the offline catalog.
//! - [`error`]: errors and the problems they become.

pub mod domain;
pub mod error;
pub mod import;
pub mod ops;
pub mod reactions;
pub mod routes;
pub mod search;
pub mod store;

use std::sync::Arc;

use axum::Router;
use events::{Consumer, Effects, EventBus};
use platform::{Platform, cache::Cache, db::Db};

pub const SERVICE: &str = "catalog";

/// What a restore counts as the catalog's own data: movies (genres are seeded).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("movies", "")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub effects: Effects,
    pub cache: Arc<dyn Cache>,
    pub index: Arc<search::SearchIndex>,
    pub indexer: Arc<reactions::IndexUpdater>,
    pub importer: Arc<import::Importer>,
}

/// Build the catalog: migrate, load the demo catalog when asked (`MARQUEE_DEMO`) and the
/// database has no movies, build the search index, start the relay and consumers.
pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let index = Arc::new(search::SearchIndex::new()?);
    let indexer = Arc::new(reactions::IndexUpdater {
        db: db.clone(),
        index: index.clone(),
        cache: platform.cache.clone(),
    });
    let state = AppState {
        db: db.clone(),
        effects: events::service::start_effects(&platform, &db, &bus, None)?,
        cache: platform.cache.clone(),
        index,
        indexer: indexer.clone(),
        importer: Arc::new(import::Importer {
            provider: import::RapidApi::from_settings(&platform.settings, platform.http.client().clone()),
        }),
    };
    // Subscribe before building the index: a write on another replica in between is then
    // applied after the build instead of lost.
    bus.subscribe_local(
        SERVICE,
        reactions::MOVIE_EVENTS,
        indexer.clone(),
        platform.shutdown.clone(),
        &platform.tasks,
    )
    .await?;
    if platform.settings.get("MARQUEE_DEMO").is_some_and(|v| v == "1" || v == "true") {
        seed_demo(&state).await?;
    }
    let indexed = indexer.rebuild().await?;
    tracing::info!(movies = indexed, "search index built");

    let reactions =
        Arc::new(reactions::Reactions { cache: platform.cache.clone(), effects: state.effects.clone() });
    bus.subscribe(
        Arc::new(Consumer::new(SERVICE, reactions::CONSUMED_EVENTS, db.clone(), reactions)),
        platform.shutdown.clone(),
        &platform.tasks,
    )
    .await?;

    let (api, openapi) = routes::router(state);
    // The search index is built from the restored movies.
    let after_restore: platform::snapshot::routes::AfterRestore = Arc::new(move || {
        let indexer = indexer.clone();
        Box::pin(async move { indexer.rebuild().await.map(|_| ()) })
    });
    let api = api.merge(platform::snapshot::routes::routes_with(
        &platform,
        &db,
        RESTORE_POLICY,
        Some(after_restore),
    ));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}

/// The offline catalog as demo data, once: only into a catalog that has never had a movie.
/// The index is rebuilt after, so the movies are not indexed one by one.
async fn seed_demo(state: &AppState) -> anyhow::Result<()> {
    if store::count_all(&state.db).await? > 0 {
        return Ok(());
    }
    let mut added = 0;
    for film in import::offline_catalog() {
        let Ok(new) = film.to_new_movie() else {
            tracing::warn!(imdb_id = %film.imdb_id, "skipping an invalid offline film");
            continue;
        };
        match ops::add_without_indexing(state, &new).await {
            Ok(_) => added += 1,
            // Another replica seeding at the same moment got there first.
            Err(error::CatalogError::ImdbIdTaken) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(added, "demo catalog loaded");
    Ok(())
}
