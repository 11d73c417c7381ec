//! The one call that turns a service's routes into a served application:
//! request ids, trace context, one access-log line per request, metrics, a request timeout,
//! a body-size limit, compression, panics as 500 problems, problem answers for unknown routes
//! and methods, `/health/live`, `/health/ready`, `/metrics` and `/openapi.json`.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use axum::{
    Extension, Json, Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::{
        CompressionLayer, Predicate,
        predicate::{DefaultPredicate, NotForContentType},
    },
};
use tracing::Instrument;

use crate::{
    Platform, Problem,
    auth::Verifier,
    telemetry::{self, TraceContext},
};

pub const REQUEST_ID: &str = "x-request-id";

/// Something `/health/ready` checks: the database, the broker.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> anyhow::Result<()>;

    /// Can the service serve without it? A shared dependency whose absence the service rides
    /// out (the broker: events wait in the outbox; the cache: reads miss) must not fail
    /// readiness, or every replica leaves rotation together and a partial outage becomes a
    /// whole one. Its failure is reported as `degraded`, with a 200.
    fn essential(&self) -> bool {
        true
    }
}

#[async_trait::async_trait]
impl ReadinessCheck for crate::db::Db {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn check(&self) -> anyhow::Result<()> {
        self.ping().await
    }
}

/// Limits of the HTTP layer, from settings.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub body_limit: usize,
    /// Paths under these prefixes are not bound by `request_timeout`: handlers that read a
    /// large upload as it arrives (streaming's `PUT /media/{id}`) take as long as the client
    /// takes to send it, and bound themselves.
    pub untimed: &'static [&'static str],
}

impl HttpLimits {
    pub fn from_settings(settings: &crate::Settings) -> anyhow::Result<Self> {
        Ok(Self {
            request_timeout: Duration::from_millis(settings.parse_or("MARQUEE_REQUEST_TIMEOUT_MS", 15_000)?),
            body_limit: settings.parse_or("MARQUEE_BODY_LIMIT_BYTES", 1024 * 1024)?,
            untimed: &[],
        })
    }
}

/// Declare the `bearer` scheme that operations name in `security(("bearer" = []))`.
pub fn with_bearer_scheme(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let scheme =
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build());
    openapi.components.get_or_insert_with(Default::default).add_security_scheme("bearer", scheme);
    openapi
}

/// A service's full application: its `api` routes plus everything every service has.
pub fn service_app(
    platform: &Platform,
    api: Router,
    openapi: utoipa::openapi::OpenApi,
    checks: Vec<Arc<dyn ReadinessCheck>>,
) -> anyhow::Result<Router> {
    service_app_with(platform, api, openapi, checks, &[])
}

/// [`service_app`] with paths that the request timeout does not bound ([`HttpLimits::untimed`]).
pub fn service_app_with(
    platform: &Platform,
    api: Router,
    openapi: utoipa::openapi::OpenApi,
    checks: Vec<Arc<dyn ReadinessCheck>>,
    untimed: &'static [&'static str],
) -> anyhow::Result<Router> {
    let limits = HttpLimits { untimed, ..HttpLimits::from_settings(&platform.settings)? };
    let openapi = serde_json::to_value(with_bearer_scheme(openapi))?;
    let openapi = Arc::new(crate::openapi::complete(openapi));
    let checks = Arc::new(checks);
    let ops = Router::new()
        .route("/health/live", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/health/ready", get(ready).with_state(checks))
        .route("/metrics", get(render_metrics))
        .route("/openapi.json", get(move || async move { Json(openapi.as_ref().clone()) }));
    Ok(with_middleware(api.merge(ops), platform.service, limits, platform.verifier.clone()))
}

/// The middleware stack alone, for routers that are not a plain service (the gateway).
pub fn with_middleware(
    router: Router,
    service: &'static str,
    limits: HttpLimits,
    verifier: Arc<Verifier>,
) -> Router {
    metrics_handle();
    router
        .fallback(|| async { Problem::not_found("route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
        })
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            Problem::internal().into_response()
        }))
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(middleware::from_fn_with_state(limits, timeout))
        // Audio and video are compressed already, and a compressed range would no longer be
        // the bytes its Content-Range names.
        .layer(
            CompressionLayer::new().compress_when(
                DefaultPredicate::new()
                    .and(NotForContentType::const_new("video/"))
                    .and(NotForContentType::const_new("audio/")),
            ),
        )
        .layer(Extension(verifier))
        .layer(middleware::from_fn_with_state(service, observe))
}

/// Answer 503 when the handler takes too long; streaming bodies are not cut, only the wait for
/// the response head is bounded.
async fn timeout(State(limits): State<HttpLimits>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // A snapshot or a restore moves every row of a service: as long as that takes.
    let snapshot = [crate::snapshot::routes::PREFIX, crate::snapshot::routes::RESTORES];
    if limits.untimed.iter().chain(&snapshot).any(|prefix| path.starts_with(prefix)) {
        return next.run(request).await;
    }
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "The request took too long")
            .retry_after(1)
            .into_response(),
    }
}

/// Request id, trace context, span, access log and metrics for every request.
async fn observe(State(service): State<&'static str>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let parent =
        request.headers().get("traceparent").and_then(|v| v.to_str().ok()).and_then(TraceContext::parse);
    let ctx = parent.map(|p| p.child()).unwrap_or_else(TraceContext::root);
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| ctx.trace_id.clone());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "request",
        service,
        %method,
        path,
        request_id = %request_id,
        trace_id = %ctx.trace_id,
    );
    let trace_id = ctx.trace_id.clone();
    let mut response = telemetry::in_context(ctx, next.run(request)).instrument(span).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    // The access line names the span's fields itself instead of being logged inside the span:
    // the JSON formatter would parse the span's fields back from text for it, on every request.
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    if status >= 500 {
        tracing::warn!(service, %method, path, %request_id, %trace_id, status, latency_ms, "request failed");
    } else {
        tracing::info!(service, %method, path, %request_id, %trace_id, status, latency_ms, "request");
    }
    let (method, status) = (method_label(&method), status_label(status));
    metrics::counter!("http_requests_total",
        "service" => service, "method" => method.clone(), "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "service" => service, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Metric label values without an allocation for the usual methods and statuses (they are
/// recorded on every request).
fn method_label(method: &axum::http::Method) -> metrics::SharedString {
    use axum::http::Method;
    let known = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ];
    const NAMES: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    match known.iter().position(|m| m == method) {
        Some(i) => metrics::SharedString::const_str(NAMES[i]),
        None => metrics::SharedString::from_owned(method.to_string()),
    }
}

/// See [`method_label`].
pub fn status_label(status: u16) -> metrics::SharedString {
    const COMMON: [(u16, &str); 16] = [
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (206, "206"),
        (304, "304"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (409, "409"),
        (422, "422"),
        (429, "429"),
        (500, "500"),
        (503, "503"),
        (504, "504"),
    ];
    match COMMON.iter().find(|(code, _)| *code == status) {
        Some((_, name)) => metrics::SharedString::const_str(name),
        None => metrics::SharedString::from_owned(status.to_string()),
    }
}

async fn ready(State(checks): State<Arc<Vec<Arc<dyn ReadinessCheck>>>>) -> Response {
    let results = futures_util::future::join_all(checks.iter().map(|c| async move {
        let outcome = tokio::time::timeout(Duration::from_secs(2), c.check()).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(_) => Some("timed out".to_owned()),
        };
        (c.name(), c.essential(), error)
    }))
    .await;
    let ready = results.iter().all(|(_, essential, e)| !essential || e.is_none());
    let whole = results.iter().all(|(_, _, e)| e.is_none());
    let body: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, _, e)| {
            (name.to_owned(), json!(e.map_or_else(|| "ok".to_owned(), |e| format!("down: {e}"))))
        })
        .collect();
    let (status, verdict) = match (ready, whole) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let mut response = (status, Json(json!({"status": verdict, "checks": body}))).into_response();
    if !ready {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// The process-wide Prometheus recorder; every service in the process reports into it with a
/// `service` label, so the embedded mode has one `/metrics` for all.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0])
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder is installed (a test harness's): then ours renders empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub async fn render_metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics_handle().render())
}

/// Serve `app` on `listener` until `shutdown` is cancelled; requests in flight finish first.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Resolves when the process is asked to stop: Ctrl-C or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled: call it
/// before announcing readiness, or a SIGTERM that arrives right after the announcement would
/// still kill the process the default way instead of shutting it down.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt.take()) => {},
                () = wait(terminate.take()) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, routing::post};
    use tower::ServiceExt;

    async fn panics() -> &'static str {
        panic!("a bug")
    }

    fn app(limits: HttpLimits) -> Router {
        let router = Router::new()
            .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
            .route(
                "/echo",
                post(|crate::extract::ApiJson(v): crate::extract::ApiJson<serde_json::Value>| async move {
                    Json(v)
                }),
            )
            .route("/panic", get(panics));
        with_middleware(router, "test", limits, Arc::new(Verifier::without_keys()))
    }

    async fn call(
        app: Router,
        request: axum::http::Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = app.oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn get_request(path: &str) -> axum::http::Request<Body> {
        axum::http::Request::get(path).body(Body::empty()).expect("request")
    }

    #[tokio::test]
    async fn a_slow_handler_is_cut_off_with_a_503_problem() {
        let limits =
            HttpLimits { request_timeout: Duration::from_millis(50), body_limit: 1024, untimed: &[] };
        let (status, headers, body) = call(app(limits), get_request("/slow")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["type"], "urn:marquee:problem:timeout");
        assert!(headers.contains_key(REQUEST_ID));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_413_problem() {
        let limits = HttpLimits { request_timeout: Duration::from_secs(5), body_limit: 64, untimed: &[] };
        let big = format!("{{\"x\": \"{}\"}}", "a".repeat(200));
        let request = axum::http::Request::post("/echo")
            .header("content-type", "application/json")
            .body(Body::from(big))
            .expect("request");
        let (status, _, body) = call(app(limits), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["type"], "urn:marquee:problem:payload-too-large");
    }

    #[tokio::test]
    async fn a_panic_is_a_500_problem_and_unknown_routes_and_methods_are_problems() {
        let limits = HttpLimits { request_timeout: Duration::from_secs(5), body_limit: 1024, untimed: &[] };
        let (status, headers, body) = call(app(limits), get_request("/panic")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(headers[header::CONTENT_TYPE], crate::problem::CONTENT_TYPE);
        assert_eq!(body["type"], "urn:marquee:problem:internal");
        let (status, _, _) = call(app(limits), get_request("/nowhere")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, body) = call(app(limits), get_request("/echo")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["type"], "urn:marquee:problem:method-not-allowed");
    }

    #[tokio::test]
    async fn a_request_id_is_kept_when_sane_and_made_when_not() {
        let limits = HttpLimits { request_timeout: Duration::from_secs(5), body_limit: 1024, untimed: &[] };
        let req = axum::http::Request::get("/nowhere")
            .header(REQUEST_ID, "abc-123")
            .body(Body::empty())
            .expect("req");
        let (_, headers, _) = call(app(limits), req).await;
        assert_eq!(headers[REQUEST_ID], "abc-123");
        let req =
            axum::http::Request::get("/nowhere").header(REQUEST_ID, "a b").body(Body::empty()).expect("req");
        let (_, headers, _) = call(app(limits), req).await;
        let made = headers[REQUEST_ID].to_str().expect("ascii");
        assert_eq!(made.len(), 32, "a trace id: {made}");
    }

    struct Check(&'static str, bool, bool);

    #[async_trait::async_trait]
    impl ReadinessCheck for Check {
        fn name(&self) -> &'static str {
            self.0
        }
        fn essential(&self) -> bool {
            self.1
        }
        async fn check(&self) -> anyhow::Result<()> {
            if self.2 { Ok(()) } else { Err(anyhow::anyhow!("refused")) }
        }
    }

    async fn readiness(checks: Vec<Arc<dyn ReadinessCheck>>) -> (StatusCode, serde_json::Value) {
        let app = Router::new().route("/health/ready", get(ready).with_state(Arc::new(checks)));
        let (status, _, body) = call(app, get_request("/health/ready")).await;
        (status, body)
    }

    /// Issue 10, item 9: with the broker down every replica failed readiness together, so the
    /// gateway had no replica it trusted and seat maps answered 503 although nothing needed it.
    #[tokio::test]
    async fn only_an_essential_check_failing_makes_a_replica_unready() {
        let (status, body) =
            readiness(vec![Arc::new(Check("database", true, true)), Arc::new(Check("broker", false, false))])
                .await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("degraded")), "{body}");
        assert_eq!(body["checks"]["broker"], "down: refused");
        let (status, body) =
            readiness(vec![Arc::new(Check("database", true, false)), Arc::new(Check("broker", false, true))])
                .await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")));
        let (status, body) = readiness(vec![Arc::new(Check("database", true, true))]).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    }
}
