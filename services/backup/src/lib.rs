//! backup: a consistent export of every service to the object store, and a restore that gives
//! the same answers (docs/backups.md).
//!
//! A backup asks every service at once for a snapshot cut at one instant (each holds its
//! writers for a moment, so the snapshots are one state of the whole system), copies each
//! table's gzip JSON Lines into the store as it streams in, checking its SHA-256, and writes
//! the manifest last. A restore checks every service is empty and at the backup's schema
//! version, checks every object's checksum, then hands each service its tables, and finally has
//! the events of the minutes before the cut published again, for consumers' inboxes to dedupe.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Backups): extract, call [`ops`], answer.
//! - [`ops`]: starting a backup or a restore, and reading them back (from this database and
//!   from the store's manifests).
//! - [`run`]: a backup, service by service and table by table.
//! - [`restore`]: a restore: verify, restore, resend.
//! - [`schedule`]: scheduled backups and retention.
//! - [`remote`]: the calls to the services' snapshot endpoints.
//! - [`domain`]: the manifest and the answers.
//! - [`store`]: the SQL.
//! - [`error`]: errors and the problems they become.

pub mod domain;
pub mod error;
pub mod ops;
pub mod remote;
pub mod restore;
pub mod routes;
pub mod run;
pub mod schedule;
pub mod store;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use platform::{Platform, db::Db, objects::Objects};

pub const SERVICE: &str = "backup";

pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

/// Settings of backups.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// `MARQUEE_BACKUP_SCHEDULE`: how often a scheduled backup runs; `None`: never.
    pub every: Option<Duration>,
    /// `MARQUEE_BACKUP_KEEP`: how many scheduled backups are kept (0: all).
    pub keep: usize,
    /// `MARQUEE_BACKUP_RESEND_MINUTES`: on a restore, events sent this long before the cut are
    /// published again (a consumer may not have had them yet when it was cut).
    pub resend_ms: i64,
    /// `MARQUEE_BACKUP_FREEZE_MS`: how long each service holds its writers at the cut.
    pub hold_ms: i64,
    /// How far ahead the cut is set, so every service has the request before it comes.
    pub lead_ms: i64,
    /// `MARQUEE_BACKUP_CHECK_MS`: how often the schedule is looked at (a minute).
    pub check_every: Duration,
}

impl BackupConfig {
    pub fn from_settings(s: &platform::Settings) -> anyhow::Result<Self> {
        let every = domain::parse_schedule(s.get("MARQUEE_BACKUP_SCHEDULE").unwrap_or("off"))
            .map_err(|e| anyhow::anyhow!("MARQUEE_BACKUP_SCHEDULE {e}"))?;
        Ok(Self {
            every,
            keep: s.parse_or("MARQUEE_BACKUP_KEEP", 7)?,
            resend_ms: s.parse_or::<i64>("MARQUEE_BACKUP_RESEND_MINUTES", 15)?.saturating_mul(60_000),
            hold_ms: s.parse_or("MARQUEE_BACKUP_FREEZE_MS", 100)?,
            lead_ms: s.parse_or("MARQUEE_BACKUP_LEAD_MS", 500)?,
            check_every: Duration::from_millis(s.parse_or("MARQUEE_BACKUP_CHECK_MS", 60_000)?),
        })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub objects: Objects,
    pub remote: Arc<remote::Remote>,
    /// Every service a backup covers, in the registry's order.
    pub services: Arc<Vec<remote::Service>>,
    pub config: BackupConfig,
    /// The schedule's time (tests move it forward).
    pub clock: platform::clock::Clock,
    /// Backups and restores run here, and are waited for at shutdown.
    pub tasks: tokio_util::task::TaskTracker,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Every service with data: the registry's, less the gateway and this one.
pub fn covered(settings: &platform::Settings) -> Vec<remote::Service> {
    contracts::services::SERVICES
        .iter()
        .filter(|s| s.name != SERVICE)
        .map(|s| remote::Service { name: s.name, url: settings.service_url(s.name) })
        .collect()
}

pub async fn build(platform: Platform, db: Db) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let config = BackupConfig::from_settings(&platform.settings)?;
    let objects = Objects::from_settings_or(&platform.settings, "MARQUEE_BACKUP_STORE")
        .context("opening the backup store")?;
    tracing::info!(store = %objects.describe, schedule = ?config.every, keep = config.keep, "backups");
    let state = AppState {
        db: db.clone(),
        objects,
        remote: Arc::new(remote::Remote::new(platform.http.clone(), platform.service_tokens.clone())),
        services: Arc::new(covered(&platform.settings)),
        config,
        clock: platform.clock.clone(),
        tasks: platform.tasks.clone(),
        shutdown: platform.shutdown.clone(),
    };
    platform.tasks.spawn(schedule::run(state.clone()));
    let (api, openapi) = routes::router(state);
    let checks: Vec<Arc<dyn platform::server::ReadinessCheck>> = vec![Arc::new(db)];
    platform::server::service_app(&platform, api, openapi, checks)
}
