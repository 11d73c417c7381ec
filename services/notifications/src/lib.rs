//! notifications: the in-app feed, and email and SMS about what happens to a user's account,
//! bookings, subscription and points, each exactly once per event.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Notifications): extract, call [`ops`], answer.
//! - [`ops`]: the use cases; [`ops::record`] writes an event's feed entry and messages.
//! - [`reactions`]: the events it takes, in the inbox's transaction.
//! - [`worker`]: sends the messages, retried with backoff, outside any transaction.
//! - [`compose`]: what a message says, gathered at send time (identity, showtimes).
//! - [`templates`]: the messages as minijinja templates (templates/).
//! - [`channels`]: SMTP or `.eml` files (lettre), and SMS providers.
//! - [`domain`]: kinds, preferences, the feed and the delivery log; [`store`]: the SQL.

pub mod channels;
pub mod compose;
pub mod domain;
pub mod error;
pub mod ops;
pub mod reactions;
pub mod routes;
pub mod store;
pub mod templates;
pub mod worker;

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::Router;
use channels::{Mailer, SimulatedSms, SmsProvider};
use events::{Consumer, EventBus};
use lettre::message::Mailbox;
use platform::{Platform, Settings, clock::Clock, db::Db};

pub const SERVICE: &str = "notifications";

/// What a restore counts as this service's own data (it refuses when any is there): a fresh
/// system's administrator has a welcome message, and nothing else.
pub const RESTORE_POLICY: platform::snapshot::restore::Policy =
    platform::snapshot::restore::Policy { primary: &[("notifications", "kind <> 'welcome'")], merged: &[] };

pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

/// notifications' settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `MARQUEE_SMTP_URL`; without it, emails are `.eml` files in `mail_dir`.
    pub smtp_url: Option<String>,
    pub smtp_timeout: Duration,
    /// `MARQUEE_MAIL_DIR` (default `<data dir>/mail`).
    pub mail_dir: PathBuf,
    /// `MARQUEE_MAIL_FROM`.
    pub from: Mailbox,
    /// Links in messages (`MARQUEE_PUBLIC_URL`).
    pub public_url: String,
    /// The worker's pause when nothing is due (it is also woken by every new message).
    pub poll: Duration,
    /// Tries of a message before it is failed; the pause doubles from `retry_base` to `retry_cap`.
    pub max_attempts: i64,
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Config {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let data = PathBuf::from(settings.get("MARQUEE_DATA_DIR").unwrap_or("./data"));
        let from = settings.get("MARQUEE_MAIL_FROM").unwrap_or("Marquee <no-reply@marquee.localhost>");
        Ok(Config {
            smtp_url: settings.get("MARQUEE_SMTP_URL").filter(|u| !u.is_empty()).map(str::to_owned),
            smtp_timeout: Duration::from_millis(settings.parse_or("MARQUEE_SMTP_TIMEOUT_MS", 10_000)?),
            mail_dir: settings.get("MARQUEE_MAIL_DIR").map_or_else(|| data.join("mail"), PathBuf::from),
            from: from.parse().map_err(|e| anyhow::anyhow!("MARQUEE_MAIL_FROM {from:?}: {e}"))?,
            public_url: settings
                .get("MARQUEE_PUBLIC_URL")
                .unwrap_or("http://127.0.0.1:8080")
                .trim_end_matches('/')
                .to_owned(),
            poll: Duration::from_millis(settings.parse_or("MARQUEE_NOTIFY_POLL_MS", 1_000)?),
            max_attempts: settings.parse_or("MARQUEE_NOTIFY_MAX_ATTEMPTS", 10)?,
            retry_base: Duration::from_millis(settings.parse_or("MARQUEE_NOTIFY_RETRY_BASE_MS", 5_000)?),
            retry_cap: Duration::from_millis(
                settings.parse_or("MARQUEE_NOTIFY_MAX_BACKOFF_MS", 30 * 60_000)?,
            ),
        })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Clock,
    pub config: Arc<Config>,
    pub mailer: Arc<Mailer>,
    pub sms: Arc<dyn SmsProvider>,
    pub clients: Arc<compose::Clients>,
    /// Wakes the delivery worker when a message is written.
    pub wake: Arc<tokio::sync::Notify>,
}

pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let config = Config::from_settings(&platform.settings)?;
    let mailer = match &config.smtp_url {
        Some(url) => Mailer::smtp(url, config.smtp_timeout)?,
        None => Mailer::Files(config.mail_dir.clone()),
    };
    tracing::info!(to = %mailer.describe(), "email");
    let state = AppState {
        db: db.clone(),
        clock: platform.clock.clone(),
        config: Arc::new(config),
        mailer: Arc::new(mailer),
        sms: Arc::new(SimulatedSms),
        clients: Arc::new(compose::Clients::new(&platform)),
        wake: Arc::new(tokio::sync::Notify::new()),
    };
    let reactions = reactions::Reactions { state: state.clone() };
    let consumer = Consumer::new(SERVICE, reactions::EVENTS, db.clone(), Arc::new(reactions));
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;
    platform.tasks.spawn(worker::run(state.clone(), platform.shutdown.clone()));
    let (api, openapi) = routes::router(state);
    let api = api.merge(platform::snapshot::routes::routes(&platform, &db, RESTORE_POLICY));
    let checks = events::service::readiness(&platform, &db, &bus);
    platform::server::service_app(&platform, api, openapi, checks)
}
