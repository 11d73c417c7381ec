//! The gateway: the one front door. Routes `/api/v1/...` to the owning service by the table in
//! ARCHITECTURE.md, passes request ids and trace context on, answers problems when an upstream
//! is missing or down, and aggregates every service's readiness at `/health`.
//!
//! # Layout
//! - [`routes`]: the ownership table (path prefix → service).
//! - [`proxy`]: forwarding a request to an upstream and streaming the answer back.
//! - [`health`]: `/health`, every service's readiness.

pub mod health;
pub mod proxy;
pub mod routes;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, routing::get};
use platform::{Platform, server::HttpLimits};

pub const SERVICE: &str = "gateway";

/// The base URLs of one upstream service; several replicas are used in turn.
pub struct Upstream {
    pub service: &'static str,
    pub urls: Vec<String>,
    next: AtomicUsize,
    /// Opens after repeated failures, so a service that is down costs callers nothing.
    pub breaker: platform::breaker::CircuitBreaker,
}

impl Upstream {
    pub fn pick(&self) -> Option<&str> {
        if self.urls.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
        Some(&self.urls[i])
    }
}

#[derive(Clone)]
pub struct Gateway {
    pub upstreams: Arc<Vec<Upstream>>,
    pub http: reqwest::Client,
}

impl Gateway {
    pub fn from_settings(platform: &Platform) -> anyhow::Result<Self> {
        let failures = platform.settings.parse_or("MARQUEE_GATEWAY_BREAKER_FAILURES", 5)?;
        let open_for = std::time::Duration::from_millis(
            platform.settings.parse_or("MARQUEE_GATEWAY_BREAKER_OPEN_MS", 10_000)?,
        );
        let upstreams = routes::SERVICES
            .iter()
            .map(|&service| Upstream {
                service,
                urls: platform.settings.service_urls(service),
                next: AtomicUsize::new(0),
                breaker: platform::breaker::CircuitBreaker::new(service, failures, open_for),
            })
            .collect();
        Ok(Self { upstreams: Arc::new(upstreams), http: platform.http.clone() })
    }

    pub fn upstream(&self, service: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.service == service)
    }
}

/// The gateway's application.
pub fn build(platform: &Platform) -> anyhow::Result<Router> {
    let gateway = Gateway::from_settings(platform)?;
    let router = Router::new()
        .route("/health", get(health::health))
        .route("/health/live", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/metrics", get(platform::server::render_metrics))
        .route("/.well-known/jwks.json", get(proxy::forward))
        .route("/api/v1/{*rest}", axum::routing::any(proxy::forward))
        .with_state(gateway);
    // Larger bodies than a service accepts are the service's to refuse; the gateway streams.
    let limits = HttpLimits::from_settings(&platform.settings)?;
    Ok(platform::server::with_middleware(router, SERVICE, limits, platform.verifier.clone()))
}
