//! What every Marquee service shares, so that a service crate holds only its own domain.
//!
//! # Layout
//! - [`settings`]: `MARQUEE_*` configuration as a map, from the environment or from a test.
//! - [`telemetry`]: JSON logs, W3C trace context carried through a request and into events.
//! - [`problem`]: RFC 9457 problem responses with stable `type`s.
//! - [`forwarded`]: the client's address behind trusted proxies (`X-Forwarded-For`).
//! - [`extract`]: `ApiJson` and `ApiQuery`, whose rejections are problems (400/413/415/422).
//! - [`openapi`]: the answers every operation can give, added to each service's document.
//! - [`idempotency`]: `Idempotency-Key` handling.
//! - [`objects`]: the object store (a directory or S3) media and backups live in.
//! - [`periodic`]: background work in passes until shutdown.
//! - [`pagination`]: the `?page=&per_page=` request and the `{items, page, per_page, total}` shape.
//! - [`db`]: one pool type over SQLite and PostgreSQL, and migrations.
//! - [`cache`]: Redis or in-process, behind one trait.
//! - [`auth`]: JWT verification against identity's JWKS, the `AuthUser` family of extractors,
//!   and the service tokens services use to call each other.
//! - [`server`]: the one call that gives a service its middleware, health, metrics and OpenAPI,
//!   and serves it until shutdown.
//! - [`transport`]: outgoing requests, over HTTP or into a router this process serves.
//! - [`client`]: typed calls to other services, with trace propagation, timeouts and a breaker.
//! - [`clock`]: the business rules' time, which tests can move forward.
//! - [`breaker`]: a circuit breaker for calls to other services and outside providers.
//! - [`time`]: clock helpers; times are epoch milliseconds in storage, RFC 3339 on the wire.

pub mod auth;
pub mod breaker;
pub mod cache;
pub mod client;
pub mod clock;
pub mod db;
pub mod extract;
pub mod forwarded;
pub mod idempotency;
pub mod objects;
pub mod openapi;
pub mod pagination;
pub mod periodic;
pub mod problem;
pub mod server;
pub mod settings;
pub mod snapshot;
pub mod telemetry;
pub mod time;
pub mod transport;
pub mod zones;

pub use problem::{FieldError, Problem};
pub use settings::Settings;

use std::sync::Arc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Everything a service gets from the process that runs it, apart from its database and bus.
#[derive(Clone)]
pub struct Platform {
    /// The service's name: `identity`, `catalog`, ...
    pub service: &'static str,
    pub settings: Settings,
    /// Verifies access tokens against identity's keys.
    pub verifier: Arc<auth::Verifier>,
    /// Gets this service a short-lived token for calling other services.
    pub service_tokens: Arc<auth::ServiceTokens>,
    /// This service's own secret ([`auth::service_credential`]): what it shows identity for a
    /// service token, and the key of its `Idempotency-Key` hashes. Empty when none is set.
    pub credential: String,
    /// Outgoing requests to other services: over the shared HTTP client (connection pool), or
    /// into their routers when this process serves them too (the embedded mode).
    pub http: transport::Http,
    /// Redis when `MARQUEE_REDIS_URL` is set, else in-process.
    pub cache: Arc<dyn cache::Cache>,
    /// Cancelled when the process shuts down; background loops watch it.
    pub shutdown: CancellationToken,
    /// Background tasks (relay, consumers); the runner waits for them after shutdown.
    pub tasks: TaskTracker,
    /// The time for business rules (holds, renewals); shared by the services of a process.
    pub clock: clock::Clock,
}

impl Platform {
    /// `/health/ready` checks: the cache, when it is a shared one (Redis).
    pub fn cache_check(&self) -> Option<Arc<dyn server::ReadinessCheck>> {
        self.settings
            .get("MARQUEE_REDIS_URL")
            .map(|_| Arc::new(cache::CacheReadiness(self.cache.clone())) as Arc<dyn server::ReadinessCheck>)
    }

    /// A platform for `service` whose verifier fetches identity's JWKS from the configured
    /// `MARQUEE_IDENTITY_URL`.
    pub fn new(
        service: &'static str,
        settings: Settings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        Self::with_http(service, settings, shutdown, transport::Http::new(client::http_client()))
    }

    /// A platform whose calls go through `http`: its keys, service tokens and calls to other
    /// services reach the ones `http` holds in-process without a socket.
    pub fn with_http(
        service: &'static str,
        settings: Settings,
        shutdown: CancellationToken,
        http: transport::Http,
    ) -> anyhow::Result<Self> {
        let identity = settings.service_url("identity");
        let verifier = match &identity {
            Some(url) => auth::Verifier::remote(url, http.clone()),
            // Only identity itself runs without it, and it verifies with its own keys.
            None => auth::Verifier::without_keys(),
        };
        let verifier = Arc::new(verifier);
        // Keys are `<namespace>:<service>:...`: services never read each other's entries.
        let cache: Arc<dyn cache::Cache> = match settings.get("MARQUEE_REDIS_URL") {
            Some(url) => {
                let namespace = settings.get("MARQUEE_REDIS_NAMESPACE").unwrap_or("marquee");
                Arc::new(cache::RedisCache::new(url, &format!("{namespace}:{service}"))?)
            }
            None => {
                Arc::new(cache::MemoryCache::new(settings.parse_or("MARQUEE_CACHE_MAX_ENTRIES", 10_000)?))
            }
        };
        let credential = auth::own_credential(&settings, service);
        let service_tokens = Arc::new(auth::ServiceTokens::new(
            service,
            settings.service_url("identity"),
            credential.clone(),
            http.clone(),
        ));
        Ok(Self {
            service,
            settings,
            verifier,
            service_tokens,
            credential,
            http,
            cache,
            shutdown,
            tasks: TaskTracker::new(),
            clock: clock::Clock::system(),
        })
    }
}

/// Install the TLS provider once per process: rustls cannot choose on its own (STACK.md).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
