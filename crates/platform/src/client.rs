//! Outgoing HTTP between services: one pooled client, with the trace context passed on.

use std::time::Duration;

/// The shared client. Per-call timeouts are set by callers; this one bounds connecting.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("marquee/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Add `traceparent` (a child of the current context) to an outgoing request.
pub fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match crate::telemetry::current_traceparent() {
        Some(tp) => request.header("traceparent", tp),
        None => request,
    }
}
