//! streaming: playback sessions within a plan's stream limit, media in an object store served
//! by signed URLs with ranges and HLS, watch history and watchlists.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Streaming): extract, call [`ops`], answer.
//! - [`ops`]: the use cases: start, heartbeat, stop, expiry; upload and delivery; the watchlist.
//! - [`domain`]: a session's states, the completion rule, media kinds and content types.
//! - [`store`]: the SQL; the unique index on (user, slot) that holds the stream limit.
//! - [`clients`]: identity, catalog and payments, asked over HTTP (timeouts, breakers).
//! - [`signing`]: signed, expiring stream URLs.
//! - [`ranges`]: `Range` and `If-Range`.
//! - [`hls`]: packaging an MP4 into HLS with ffmpeg, signing a playlist's URLs.
//! - [`objects`]: the object store (a directory or S3).
//! - [`clip`]: the demo clips `marquee up` streams: real H.264 MP4s made in pure Rust.
//! - [`demo`]: giving a few demo movies a clip at first start.
//! - [`reactions`]: subscription events make running sessions ask payments again.
//! - [`sweeper`]: ending sessions that stopped sending heartbeats.
//! - [`error`]: errors and the problems they become.

pub mod clients;
pub mod clip;
pub mod demo;
pub mod domain;
pub mod error;
pub mod hls;
pub use platform::objects;
pub mod ops;
pub mod ranges;
pub mod reactions;
pub mod routes;
pub mod signing;
pub mod store;
pub mod sweeper;

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::Router;
use events::{Consumer, Effects, EventBus};
use platform::{Platform, clock::Clock, db::Db};

pub const SERVICE: &str = "streaming";

/// What a restore counts as this service's own data (it refuses when any is there).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy = platform::snapshot::restore::Policy {
    primary: &[("media", ""), ("watch_progress", ""), ("watchlist", "")],
    merged: &[],
};

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

/// streaming's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// A session with no heartbeat for this long ends (`MARQUEE_PLAYBACK_IDLE_SECONDS`, 60).
    pub idle_ms: i64,
    /// How long a stream URL works (`MARQUEE_STREAM_URL_TTL_SECONDS`, 4 hours: a long film with
    /// pauses), while its session runs.
    pub url_ttl_secs: i64,
    /// Put before stream URLs (`MARQUEE_PUBLIC_URL`, e.g. `https://marquee.example`); empty:
    /// they are paths on the API's origin.
    pub public_url: String,
    /// The largest upload (`MARQUEE_MEDIA_MAX_BYTES`, 8 GiB).
    pub max_upload_bytes: u64,
    /// ffmpeg for HLS packaging (`MARQUEE_FFMPEG`; found on the PATH by default; `off`).
    pub ffmpeg: Option<String>,
    /// Uploads are received here before they go to the store (`<data dir>/uploads`).
    pub scratch_dir: PathBuf,
    pub packaging_timeout: Duration,
}

impl Config {
    pub fn from_settings(settings: &platform::Settings) -> anyhow::Result<Self> {
        let data = PathBuf::from(settings.get("MARQUEE_DATA_DIR").unwrap_or("./data"));
        Ok(Self {
            idle_ms: settings.parse_or("MARQUEE_PLAYBACK_IDLE_SECONDS", 60i64)? * 1000,
            url_ttl_secs: settings.parse_or("MARQUEE_STREAM_URL_TTL_SECONDS", 4 * 3600)?,
            public_url: settings
                .get("MARQUEE_PUBLIC_URL")
                .unwrap_or_default()
                .trim()
                .trim_end_matches('/')
                .to_owned(),
            max_upload_bytes: settings.parse_or("MARQUEE_MEDIA_MAX_BYTES", 8u64 << 30)?,
            ffmpeg: hls::ffmpeg_from_settings(settings),
            scratch_dir: data.join("uploads"),
            packaging_timeout: ops::media::PACKAGING_TIMEOUT,
        })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub effects: Effects,
    pub clock: Clock,
    pub clients: Arc<clients::Clients>,
    pub objects: objects::Objects,
    pub signer: signing::UrlSigner,
    pub config: Arc<Config>,
    /// Running sessions and the media version each plays, for a moment (see
    /// [`ops::media::live`]).
    pub live: moka::future::Cache<uuid::Uuid, (domain::Session, uuid::Uuid)>,
}

/// A session that ends is refused by its stream URL within this long (on every replica).
const LIVE_TTL: Duration = Duration::from_secs(2);

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let config = Config::from_settings(&platform.settings)?;
    std::fs::create_dir_all(&config.scratch_dir)?;
    let objects = objects::Objects::from_settings(&platform.settings)?;
    tracing::info!(store = %objects.describe, ffmpeg = ?config.ffmpeg, "media store");
    anyhow::ensure!(
        !platform.credential.is_empty(),
        "streaming signs stream URLs with its credential: set MARQUEE_SERVICE_CREDENTIAL"
    );
    let state = AppState {
        db: db.clone(),
        effects: events::service::start_effects(&platform, &db, &bus, None)?,
        clock: platform.clock.clone(),
        clients: Arc::new(clients::Clients::new(&platform)),
        objects,
        signer: signing::UrlSigner::new(&platform.credential),
        config: Arc::new(config),
        live: moka::future::Cache::builder().max_capacity(100_000).time_to_live(LIVE_TTL).build(),
    };
    let consumer = Consumer::new(SERVICE, reactions::EVENTS, db.clone(), Arc::new(reactions::Reactions));
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;
    let every = Duration::from_millis(platform.settings.parse_or("MARQUEE_PLAYBACK_SWEEP_MS", 5_000)?);
    platform.tasks.spawn(sweeper::run(state.clone(), every, platform.shutdown.clone()));
    if platform.settings.get("MARQUEE_DEMO").is_some_and(|v| v == "1" || v == "true") {
        platform.tasks.spawn(demo::seed(state.clone(), platform.shutdown.clone()));
    }
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app_with(&platform, api, openapi, checks, &["/api/v1/media/"])
}
