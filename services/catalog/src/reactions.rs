//! What the catalog does when events arrive: ratings from reviews and the `streamable` flag from
//! streaming's `media.uploaded` (once per service, with the inbox), and this replica's search
//! index and cache from `movie.*` (every replica).

use std::sync::Arc;

use contracts::{
    CloudEvent,
    event_types::{
        MEDIA_UPLOADED, MOVIE_CREATED, MOVIE_DELETED, MOVIE_UPDATED, REVIEW_DELETED, REVIEW_POSTED,
        REVIEW_UPDATED,
    },
    reviews::{ReviewDeleted, ReviewRated},
    streaming::MediaUploaded,
};
use events::Effects;
use platform::{cache::Cache, db::Db};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::{search::SearchIndex, store};

/// What catalog's queue takes (the registry's entry, so the broker and the code agree).
pub const CONSUMED_EVENTS: &[&str] = contracts::services::CATALOG.consumes;
pub const MOVIE_EVENTS: &[&str] = &[MOVIE_CREATED, MOVIE_UPDATED, MOVIE_DELETED];

pub fn cache_key(id: Uuid) -> String {
    format!("movie:{id}")
}

fn movie_id_of(event: &CloudEvent) -> anyhow::Result<Uuid> {
    let id = event.data.get("movie_id").and_then(|v| v.as_str()).unwrap_or_default();
    id.parse().map_err(|_| anyhow::anyhow!("{} without a movie_id", event.event_type))
}

/// `rating` and `rating_count` follow the reviews; `streamable` turns on when media arrives
/// (announced as `movie.updated`, so every replica's index and cache follow).
pub struct Reactions {
    pub cache: Arc<dyn Cache>,
    pub effects: Effects,
}

#[async_trait::async_trait]
impl events::EventHandler for Reactions {
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        match event.event_type.as_str() {
            REVIEW_POSTED | REVIEW_UPDATED => {
                let r: ReviewRated = event.data_as()?;
                anyhow::ensure!((1..=10).contains(&r.rating), "rating {} is outside 1..10", r.rating);
                store::rate(tx, r.review_id, r.movie_id, r.rating, r.version).await
            }
            REVIEW_DELETED => {
                let r: ReviewDeleted = event.data_as()?;
                store::unrate(tx, r.review_id, r.movie_id, r.version).await
            }
            MEDIA_UPLOADED => {
                let m: MediaUploaded = event.data_as()?;
                match store::mark_streamable(tx, m.movie_id).await? {
                    Some(movie) => {
                        let changed = crate::ops::changed(&movie);
                        self.effects.emit_in(tx, MOVIE_UPDATED, movie.id.to_string(), &changed).await
                    }
                    // Streamable already, or deleted: nothing changes.
                    None => Ok(()),
                }
            }
            other => anyhow::bail!("catalog does not handle {other}"),
        }
    }

    async fn after_commit(&self, event: &CloudEvent) {
        self.effects.wake();
        if let Ok(id) = movie_id_of(event) {
            let _ = self.cache.delete(&cache_key(id)).await;
        }
    }
}

/// Keeps this replica's search index (and, without Redis, its cache) in step with writes made
/// by any replica.
pub struct IndexUpdater {
    pub db: Db,
    pub index: Arc<SearchIndex>,
    pub cache: Arc<dyn Cache>,
}

impl IndexUpdater {
    /// Bring the index in line with the database for one movie.
    pub async fn refresh(&self, id: Uuid) -> anyhow::Result<()> {
        let movie = store::get(&self.db, id).await?;
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || match movie {
            Some(m) => index.upsert(&m),
            None => index.remove(id),
        })
        .await??;
        let _ = self.cache.delete(&cache_key(id)).await;
        Ok(())
    }

    /// Rebuild the index from the database.
    pub async fn rebuild(&self) -> anyhow::Result<usize> {
        let movies = store::all(&self.db).await?;
        let index = self.index.clone();
        let n = movies.len();
        tokio::task::spawn_blocking(move || index.rebuild(&movies)).await??;
        Ok(n)
    }
}

#[async_trait::async_trait]
impl events::LocalHandler for IndexUpdater {
    async fn handle(&self, event: &CloudEvent) -> anyhow::Result<()> {
        self.refresh(movie_id_of(event)?).await
    }

    async fn resync(&self) -> anyhow::Result<()> {
        self.rebuild().await.map(|_| ())
    }
}
