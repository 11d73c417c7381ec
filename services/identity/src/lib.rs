//! identity: accounts, roles, passwords, access and refresh tokens, the activity log.
//!
//! # Layout
//! - [`routes`]: the HTTP API (docs/api.md, Identity), the JWKS and the service-token endpoint:
//!   extract, call [`ops`], answer.
//! - [`ops`]: the use cases: registering, sessions and the sign-in throttle, profiles, the
//!   admin's user management, service tokens.
//! - [`domain`]: parsing emails, names and passwords at the edge.
//! - [`passwords`]: Argon2id off the async threads.
//! - [`purge`]: dropping expired refresh tokens and finished login-failure counters, hourly.
//! - [`keys`]: the Ed25519 signing keys, kept in the database.
//! - [`throttle`]: the sign-in and registration limits (the policy is written there).
//! - [`store`]: the SQL.
//! - [`activity`]: the activity log, built from events.
//! - [`error`]: errors and the problems they become.

pub mod activity;
pub mod domain;
pub mod error;
pub mod keys;
pub mod ops;
pub mod passwords;
pub mod purge;
pub mod routes;
pub mod store;
pub mod throttle;

use std::sync::Arc;

use axum::Router;
use events::{Consumer, Effects, EventBus};
use platform::{Platform, auth::Role, db::Db};

pub const SERVICE: &str = "identity";

/// What a restore counts as identity's own data: accounts other than administrators (a fresh
/// system has the configured one). Signing keys are merged: tokens signed before the restore
/// keep verifying, and so do the backup's, whose keys are published but never sign here (they
/// were never published here for the activation delay).
pub const RESTORE_POLICY: platform::snapshot::restore::Policy = platform::snapshot::restore::Policy {
    primary: &[("users", "role <> 'admin'")],
    merged: &[platform::snapshot::restore::Merged { table: "signing_keys", set: &[("signs", 0)] }],
};

/// The migrations of identity's database: the event tables and its own.
pub fn migrator() -> sqlx::migrate::Migrator {
    platform::db::combine(&[&events::migrations(), &sqlx::migrate!("./migrations")])
}

/// Limits and lifetimes, from settings.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// Failed sign-ins per account (or known place) within the window before it is locked.
    pub max_failures_per_account: i64,
    /// Failed sign-ins per client address within the window before it is slowed.
    pub max_failures_per_address: i64,
    pub failure_window_secs: i64,
    pub lockout_secs: i64,
    /// A slowed address gets one attempt per this many seconds.
    pub slow_secs: i64,
    /// Registrations per client address within the window.
    pub registrations_per_address: i64,
    /// Peers whose `X-Forwarded-For` is believed: the gateway's addresses.
    pub trusted_proxies: platform::forwarded::TrustedProxies,
    /// Addresses the per-address limits spare, as at the gateway (`MARQUEE_RATE_LIMIT_EXEMPT`,
    /// a load-test host); `None` when `MARQUEE_RATE_LIMIT=off` spares every address.
    pub address_limits: Option<Vec<ipnet::IpNet>>,
    pub service_secret: String,
}

impl IdentityConfig {
    fn window_ms(&self) -> i64 {
        self.failure_window_secs.saturating_mul(1000)
    }

    /// Do the per-address limits apply to `client`?
    pub fn limits_address(&self, client: &str) -> bool {
        let Some(exempt) = &self.address_limits else {
            return false;
        };
        client.parse::<std::net::IpAddr>().map_or(true, |ip| !exempt.iter().any(|net| net.contains(&ip)))
    }

    /// An account's, or a known place's, sign-in failures.
    pub fn account_throttle(&self) -> throttle::Throttle {
        throttle::Throttle {
            limit: self.max_failures_per_account,
            window_ms: self.window_ms(),
            beyond: throttle::Beyond::Lock { ms: self.lockout_secs.saturating_mul(1000) },
        }
    }

    /// A client address's sign-in failures.
    pub fn address_throttle(&self) -> throttle::Throttle {
        throttle::Throttle {
            limit: self.max_failures_per_address,
            window_ms: self.window_ms(),
            beyond: throttle::Beyond::Slow { ms: self.slow_secs.saturating_mul(1000) },
        }
    }

    /// A client address's registrations: locked for a window once spent.
    pub fn registration_throttle(&self) -> throttle::Throttle {
        throttle::Throttle {
            limit: self.registrations_per_address,
            window_ms: self.window_ms(),
            beyond: throttle::Beyond::Lock { ms: self.window_ms() },
        }
    }

    pub fn from_settings(s: &platform::Settings) -> anyhow::Result<Self> {
        Ok(Self {
            access_ttl_secs: s.parse_or("MARQUEE_ACCESS_TOKEN_TTL_SECONDS", 900)?,
            refresh_ttl_secs: s.parse_or("MARQUEE_REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
            max_failures_per_account: s.parse_or("MARQUEE_LOGIN_MAX_FAILURES", 5)?,
            max_failures_per_address: s.parse_or("MARQUEE_LOGIN_MAX_FAILURES_PER_ADDRESS", 50)?,
            failure_window_secs: s.parse_or("MARQUEE_LOGIN_FAILURE_WINDOW_SECONDS", 900)?,
            lockout_secs: s.parse_or("MARQUEE_LOGIN_LOCKOUT_SECONDS", 900)?,
            slow_secs: s.parse_or("MARQUEE_LOGIN_SLOW_SECONDS", 10)?,
            registrations_per_address: s.parse_or("MARQUEE_REGISTRATIONS_PER_ADDRESS", 10)?,
            trusted_proxies: platform::forwarded::TrustedProxies::parse(
                s.get("MARQUEE_TRUSTED_PROXIES").unwrap_or("127.0.0.0/8, ::1"),
            )?,
            address_limits: match s.get("MARQUEE_RATE_LIMIT") {
                Some(v) if v.eq_ignore_ascii_case("off") => None,
                _ => Some(platform::forwarded::parse_nets(
                    s.get("MARQUEE_RATE_LIMIT_EXEMPT").unwrap_or_default(),
                )?),
            },
            service_secret: s.get("MARQUEE_SERVICE_SECRET").unwrap_or_default().trim().to_owned(),
        })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: Arc<keys::SigningKeys>,
    pub passwords: passwords::Passwords,
    pub effects: Effects,
    pub config: Arc<IdentityConfig>,
}

/// Build identity: migrate, load keys, bootstrap the admin, start the relay and the activity
/// consumer, and return the application to serve.
pub async fn build(platform: Platform, db: Db, bus: Arc<dyn EventBus>) -> anyhow::Result<Router> {
    db.migrate(&migrator()).await?;
    let config = Arc::new(IdentityConfig::from_settings(&platform.settings)?);
    let longest_token = config.access_ttl_secs.max(ops::services::SERVICE_TOKEN_TTL_SECS);
    let policy = keys::KeyPolicy::from_settings(&platform.settings, longest_token)?;
    let keys = Arc::new(keys::SigningKeys::load_or_create(&db, policy).await?);
    // identity verifies with the keys it holds, not over HTTP to itself, and reads the database
    // for keys another replica made.
    let verifier = Arc::new(platform::auth::Verifier::preloaded(
        &keys.jwks(),
        Arc::new(keys::StoredKeys(keys.clone())),
    )?);
    let platform = Platform { verifier, ..platform };
    let state = AppState {
        db: db.clone(),
        keys: keys.clone(),
        passwords: passwords::Passwords::new(platform.settings.parse_or("MARQUEE_PASSWORD_QUEUE", 64)?)?,
        effects: events::service::start_effects(&platform, &db, &bus, None)?,
        config,
    };
    bootstrap_admin(&platform, &state).await?;
    let window_ms = state.config.failure_window_secs.saturating_mul(1000);
    platform.tasks.spawn(purge::run(db.clone(), window_ms, platform.shutdown.clone()));
    let (minute, shutdown) = (std::time::Duration::from_secs(60), platform.shutdown.clone());
    platform.tasks.spawn(async move {
        platform::periodic::every("signing keys", minute, shutdown, || {
            keys.maintain(platform::time::now_ms())
        })
        .await;
    });

    let consumer =
        Consumer::new(SERVICE, activity::ACTIVITY_EVENTS, db.clone(), Arc::new(activity::ActivityLog));
    bus.subscribe(Arc::new(consumer), platform.shutdown.clone(), &platform.tasks).await?;

    // The restored keys are published (and the right one signs) at once, not at the next pass.
    let after_restore: platform::snapshot::routes::AfterRestore = {
        let keys = state.keys.clone();
        Arc::new(move || {
            let keys = keys.clone();
            Box::pin(async move { keys.maintain(platform::time::now_ms()).await.map(|_| ()) })
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

/// The admin account from `MARQUEE_ADMIN_EMAIL` / `MARQUEE_ADMIN_PASSWORD`: created when missing;
/// when it exists as a customer, promoted with the configured password (its sessions revoked);
/// an existing admin's password is left as it is (it may have been changed since).
async fn bootstrap_admin(platform: &Platform, state: &AppState) -> anyhow::Result<()> {
    let (Some(email), Some(password)) =
        (platform.settings.get("MARQUEE_ADMIN_EMAIL"), platform.settings.get("MARQUEE_ADMIN_PASSWORD"))
    else {
        return Ok(());
    };
    let email =
        domain::Email::parse(email).map_err(|e| anyhow::anyhow!("MARQUEE_ADMIN_EMAIL: {}", e.message))?;
    domain::check_password("MARQUEE_ADMIN_PASSWORD", password)
        .map_err(|e| anyhow::anyhow!("MARQUEE_ADMIN_PASSWORD: {}", e.message))?;
    if let Some(existing) = store::credentials_by_email(&state.db, &email.normalized).await? {
        if existing.user.role != Role::Admin {
            // Whoever registered this email as a customer (perhaps before the operator
            // configured it) must not become admin with their own password: the account gets
            // the configured password, and its sessions are revoked, before it is promoted.
            let hash = state.passwords.hash(password.to_owned()).await?;
            store::update_password(&state.db, existing.user.id, &hash).await?;
            store::update_role(&state.db, existing.user.id, Role::Admin).await?;
            tracing::warn!(email = %email.display, "promoted the configured admin and set its configured password");
        }
        return Ok(());
    }
    let hash = state.passwords.hash(password.to_owned()).await?;
    ops::auth::create_user(state, &email, "Administrator", &hash, Role::Admin)
        .await
        .map_err(|e| anyhow::anyhow!("creating the admin: {e}"))?;
    tracing::info!(email = %email.display, "created the configured admin");
    Ok(())
}
