//! The gateway: the one front door. Routes `/api/v1/...` to the owning service by the table in
//! docs/architecture.md, passes request ids and trace context on, answers problems when an upstream
//! is missing or down, and aggregates every service's readiness at `/health`.
//!
//! # Layout
//! - [`paths`]: one path, decided once: dot segments, encoded slashes and the like are refused.
//! - [`routes`]: the ownership table (path prefix → service, from the registry) and route labels.
//! - [`upstream`]: each service's replicas, health checks, breaker and timeout.
//! - [`retry`]: which requests may be retried, the retry budget and backoff.
//! - [`proxy`]: forwarding a request to an upstream and streaming the answer back.
//! - [`edge`]: token verification, rate limits, CORS and security headers at the door.
//! - [`ratelimit`]: the token buckets, in Redis or in the process.
//! - [`aggregate`]: `movie-details` and `me/dashboard`, answers built from several services.
//! - [`docs`]: the merged OpenAPI document and Swagger UI.
//! - [`health`]: `/health`, every service's readiness.

pub mod aggregate;
pub mod docs;
pub mod edge;
pub mod health;
pub mod paths;
pub mod proxy;
pub mod ratelimit;
pub mod retry;
pub mod routes;
pub mod session;
pub mod upstream;
pub mod web;

use std::{sync::Arc, time::Duration};

use axum::{Router, middleware, routing::get};
use platform::{Platform, server::HttpLimits};

pub use upstream::Upstream;

pub const SERVICE: &str = "gateway";

#[derive(Clone)]
pub struct Gateway {
    pub upstreams: Arc<Vec<Upstream>>,
    pub http: platform::transport::Http,
    /// For request bodies streamed as they arrive (uploads): HTTP/2 unless told otherwise, whose
    /// streams let a service answer early (413, 403) while the body is still coming, where an
    /// HTTP/1.1 connection is closed under the upload and the answer lost.
    pub upload_http: platform::transport::Http,
    /// How long an aggregation waits for its slowest part.
    pub aggregate_timeout: Duration,
    pub docs: Arc<docs::DocCache>,
    /// How often every replica's readiness is checked.
    pub health_interval: Duration,
    /// Request bodies larger than this are refused (413) before or while they stream.
    pub body_limit: u64,
    /// The same for media uploads (`/api/v1/media/...`).
    pub upload_limit: u64,
    /// How long the answer to a streamed (large) body may take once it is sent
    /// (`MARQUEE_GATEWAY_UPLOAD_TIMEOUT_MS`, 15 minutes): the service stores what it received,
    /// and streaming packages a film, before it answers.
    pub upload_timeout: Duration,
    /// How long the web UI's refresh-token cookie lives: identity's refresh-token lifetime
    /// (`MARQUEE_REFRESH_TOKEN_TTL_SECONDS`, the same setting).
    pub refresh_ttl_secs: i64,
}

impl Gateway {
    pub fn from_settings(platform: &Platform) -> anyhow::Result<Self> {
        let upstreams = routes::services()
            .map(|service| Upstream::from_settings(service, &platform.settings))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            upstreams: Arc::new(upstreams),
            http: platform.http.with_client(upstream_client(&platform.settings, false)?),
            upload_http: platform.http.with_client(upstream_client(&platform.settings, true)?),
            aggregate_timeout: aggregate::timeout_from_settings(&platform.settings)?,
            docs: Arc::default(),
            health_interval: Duration::from_millis(
                platform.settings.parse_or("MARQUEE_GATEWAY_HEALTH_INTERVAL_MS", 5_000)?,
            ),
            body_limit: platform.settings.parse_or("MARQUEE_GATEWAY_BODY_LIMIT_BYTES", 1024 * 1024)?,
            upload_limit: platform.settings.parse_or("MARQUEE_GATEWAY_UPLOAD_LIMIT_BYTES", 8 << 30)?,
            upload_timeout: Duration::from_millis(
                platform.settings.parse_or("MARQUEE_GATEWAY_UPLOAD_TIMEOUT_MS", 15 * 60_000)?,
            ),
            refresh_ttl_secs: platform
                .settings
                .parse_or("MARQUEE_REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)?,
        })
    }

    pub fn upstream(&self, service: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.service == service)
    }
}

/// The client for upstream calls. `MARQUEE_GATEWAY_UPSTREAM_HTTP2`: `uploads` (the default) is
/// HTTP/1.1 over a pool of kept-alive connections, as nginx proxies, and HTTP/2 over cleartext
/// (every Marquee service accepts it) for streamed request bodies only; `true` is HTTP/2 for
/// everything, `false` HTTP/1.1 for everything (behind Kubernetes Services, which spread
/// connections rather than requests). HTTP/2's framing, flow control and header compression
/// cost more than its shared connection saves: 10,700 against 12,900 requests/s through the
/// gateway over HTTP/1.1, same build, same run (issue 16).
fn upstream_client(settings: &platform::Settings, upload: bool) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        // The gateway passes redirects on; following them is the client's business.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("marquee-gateway/", env!("CARGO_PKG_VERSION")));
    let http2 = match settings.get("MARQUEE_GATEWAY_UPSTREAM_HTTP2").unwrap_or("uploads") {
        "true" => true,
        "false" => false,
        "uploads" => upload,
        other => anyhow::bail!("MARQUEE_GATEWAY_UPSTREAM_HTTP2 is true, false or uploads, not {other:?}"),
    };
    if http2 {
        builder = builder.http2_prior_knowledge().http2_adaptive_window(true);
    }
    Ok(builder.build()?)
}

/// The gateway's application. Starts the replicas' health checks, which stop on shutdown.
pub fn build(platform: &Platform) -> anyhow::Result<Router> {
    let gateway = Gateway::from_settings(platform)?;
    platform.tasks.spawn(upstream::check_health(
        gateway.upstreams.clone(),
        gateway.http.clone(),
        gateway.health_interval,
        platform.shutdown.clone(),
    ));
    let edge = Arc::new(edge::Edge::from_settings(&platform.settings, platform.verifier.clone())?);
    // Everything a client can reach goes through the edge guard (tokens, rate limits), the
    // aggregated /health and /metrics too: each /health call probes every replica.
    let guarded = Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(platform::server::render_metrics))
        .route("/api/openapi.json", get(docs::openapi))
        .route("/.well-known/jwks.json", get(proxy::forward))
        .route("/api/v1/movie-details/{id}", get(aggregate::movie_details))
        .route("/api/v1/me/dashboard", get(aggregate::dashboard))
        .route("/api/v1/{*rest}", axum::routing::any(proxy::forward))
        .route("/ui/session", axum::routing::post(session::sign_in).delete(session::sign_out))
        .route("/ui/session/register", axum::routing::post(session::register))
        .route("/ui/session/refresh", axum::routing::post(session::refresh))
        .route_layer(middleware::from_fn_with_state(edge, edge::guard));
    // The gateway's own probes: alive and ready whatever the services behind it are doing (one
    // service down must not take the front door out of rotation), and never rate-limited.
    let ok = || async { axum::Json(serde_json::json!({"status": "ok"})) };
    let router = Router::new()
        .route("/health/live", get(ok))
        .route("/health/ready", get(ok))
        .merge(guarded)
        .with_state(Arc::new(gateway))
        .merge(docs::swagger_ui())
        .merge(web::router());
    // The gateway streams bodies and limits them itself (proxy::limited).
    // Forwarded requests have their upstream's timeout (counted from the end of the request
    // body) and aggregations their own deadline; the overall one only stops what hangs.
    let limits = HttpLimits {
        request_timeout: Duration::from_millis(
            platform.settings.parse_or("MARQUEE_GATEWAY_REQUEST_TIMEOUT_MS", 3_600_000)?,
        ),
        ..HttpLimits::from_settings(&platform.settings)?
    };
    // Paths are judged before anything routes, limits or forwards on them (paths.rs).
    let router = router.layer(middleware::from_fn(paths::plain_paths_only));
    let app = platform::server::with_middleware(router, SERVICE, limits, platform.verifier.clone())
        .layer(middleware::from_fn(edge::security_headers));
    // Outermost, so that preflight requests are answered before limits and tokens are looked at.
    Ok(match edge::cors(&platform.settings)? {
        Some(cors) => app.layer(cors),
        None => app,
    })
}
