//! The demo (`MARQUEE_DEMO`, which `marquee up` sets): a few featured movies get a short clip at
//! first start, made by [`crate::clip`] (a test pattern with the title and a clock, real H.264),
//! and uploaded like any admin upload, so they are streamable out of the box, as HLS when ffmpeg
//! is installed. It runs in the background: the service is ready at once, the clips follow.

use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    AppState, clip,
    ops::media::{self, Upload},
    store,
};

/// How many movies, and how long their clips run.
const MOVIES: usize = 3;
const CLIP_SECONDS: u32 = 20;

pub async fn seed(state: AppState, shutdown: CancellationToken) {
    // The catalog may still be starting (distributed mode): ask again for a minute.
    for _ in 0..30 {
        match seed_once(&state).await {
            Ok(added) => {
                if added > 0 {
                    tracing::info!(movies = added, "demo clips stored");
                }
                return;
            }
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "demo clips: catalog not ready yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
    tracing::warn!("demo clips: gave up waiting for the catalog");
}

async fn seed_once(state: &AppState) -> anyhow::Result<usize> {
    let movies = state.clients.featured(MOVIES).await?;
    anyhow::ensure!(!movies.is_empty(), "the catalog has no featured movies yet");
    let mut added = 0;
    for movie in movies.into_iter().take(MOVIES) {
        if store::media(&state.db, movie.id).await?.is_some() {
            continue; // an earlier start (or another replica) gave it one
        }
        let title = movie.title.clone();
        let bytes = tokio::task::spawn_blocking(move || clip::mp4(&title, CLIP_SECONDS)).await?;
        let input = Upload {
            movie_id: movie.id,
            content_type: Some("video/mp4"),
            declared_length: Some(bytes.len() as u64),
            by: Uuid::nil(),
        };
        let body = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(Bytes::from(bytes))]);
        media::upload(state, input, body).await.map_err(|e| anyhow::anyhow!("uploading a demo clip: {e}"))?;
        added += 1;
    }
    Ok(added)
}
