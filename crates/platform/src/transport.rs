//! How a request reaches another service: over HTTP, or, when that service is served by this
//! very process (the embedded mode), straight into its router.
//!
//! The in-process path runs the same router the service's listener serves, middleware and all
//! (request ids, timeouts, body limits, problems), so a call answers exactly what it would over
//! a socket; only the encoding, the loopback connection and the parsing are skipped. Callers
//! keep their own timeouts, retries and circuit breakers: they see a `reqwest::Response` either
//! way. The distributed mode registers nothing and every call goes over HTTP.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, HttpBody},
    extract::ConnectInfo,
};
use tower::ServiceExt;

/// The outgoing side of a service: a pooled HTTP client, and the routers of the services this
/// process serves itself, by base URL.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    in_process: InProcess,
}

/// The services served in this process, by the base URL they listen at
/// (`http://127.0.0.1:8081`). Shared by every service of one running system.
#[derive(Clone, Default)]
pub struct InProcess(Arc<RwLock<HashMap<String, Router>>>);

impl InProcess {
    /// Serve calls to `base_url` with `router` (the same one its listener serves).
    pub fn register(&self, base_url: &str, router: Router) {
        // Known by the origin a request's URL shows (`http://host` for port 80, say).
        let key = reqwest::Url::parse(base_url)
            .map_or_else(|_| origin(base_url).to_owned(), |url| url.origin().ascii_serialization());
        self.0.write().unwrap_or_else(PoisonError::into_inner).insert(key, router);
    }

    /// Calls to every registered service go over HTTP again (the system is stopping).
    pub fn clear(&self) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn router(&self, url: &reqwest::Url) -> Option<Router> {
        let routes = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if routes.is_empty() {
            return None;
        }
        routes.get(origin(url.as_str())).cloned()
    }
}

/// `scheme://host:port` of a URL (what a listener is known by), without path or slash.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find('/').map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// An in-process call gave no answer within the request's timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// An in-process call's handler task was lost (the runtime is shutting down).
    #[error("the service's handler did not finish: {0}")]
    Aborted(String),
}

impl SendError {
    /// Nothing reached the service: the request can be sent elsewhere without doing anything twice.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Http(e) if e.is_connect())
    }

    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Http(e) => e.is_timeout(),
            Self::Timeout(_) => true,
            Self::Aborted(_) => false,
        }
    }
}

/// The peer an in-process call comes from, as the service would see a loopback connection.
const LOOPBACK_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

impl Http {
    pub fn new(client: reqwest::Client) -> Self {
        Self { client, in_process: InProcess::default() }
    }

    /// Calls to the services in `in_process` go into their routers.
    pub fn with_in_process(mut self, in_process: InProcess) -> Self {
        self.in_process = in_process;
        self
    }

    /// The same in-process services, with another HTTP client for the rest (the gateway's own
    /// settings for its upstreams).
    pub fn with_client(&self, client: reqwest::Client) -> Self {
        Self { client, in_process: self.in_process.clone() }
    }

    /// The HTTP client alone, for calls outside the system (outside providers).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Send a request built from [`Http::get`] and the like. The request's timeout bounds the
    /// wait for the answer's head in-process, as it bounds the whole exchange over HTTP.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, SendError> {
        let request = request.build()?;
        let Some(router) = self.in_process.router(request.url()) else {
            return Ok(self.client.execute(request).await?);
        };
        let timeout = request.timeout().copied();
        let request = http::Request::<reqwest::Body>::try_from(request)?.map(Body::new);
        let answer = call(router, request, timeout).await?;
        Ok(reqwest::Response::from(answer.map(|body| reqwest::Body::wrap(SyncBody(Mutex::new(body))))))
    }

    /// The router that serves `base_url` in this process, if one does: for a caller that holds
    /// an `http::Request` already (the gateway's forwarding) and passes it to [`call`] as it is.
    pub fn in_process(&self, base_url: &str) -> Option<Router> {
        let routes = self.in_process.0.read().unwrap_or_else(PoisonError::into_inner);
        if routes.is_empty() {
            return None;
        }
        routes.get(origin(base_url)).cloned()
    }
}

/// Call `router` with `request` as a connection from this machine would: in a task of its own,
/// so the handler runs on to its end even if the caller stops waiting (and on the other core
/// meanwhile), waiting at most `timeout` for the answer's head. The request's URI may be a
/// path alone.
pub async fn call(
    router: Router,
    mut request: http::Request<Body>,
    timeout: Option<Duration>,
) -> Result<axum::response::Response, SendError> {
    request.extensions_mut().insert(ConnectInfo(LOOPBACK_PEER));
    let call = tokio::spawn(router.oneshot(request));
    let answer = match timeout {
        Some(timeout) => {
            tokio::time::timeout(timeout, call).await.map_err(|_| SendError::Timeout(timeout))?
        }
        None => call.await,
    };
    match answer {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(never)) => match never {},
        Err(e) => Err(SendError::Aborted(e.to_string())),
    }
}

/// An axum body that is `Sync`, as `reqwest::Body::wrap` wants: it is only ever polled through
/// `&mut`, so the mutex is never contended (polling takes it with `get_mut`, no locking).
struct SyncBody(Mutex<Body>);

impl HttpBody for SyncBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let body = self.get_mut().0.get_mut().unwrap_or_else(PoisonError::into_inner);
        Pin::new(body).poll_frame(cx)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).size_hint()
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::{extract::ConnectInfo, routing::get};

    use super::*;

    /// Nothing listens at this address: an answer can only come from the router.
    const NOWHERE: &str = "http://127.0.0.1:9";

    fn http_with(router: Router) -> Http {
        let in_process = InProcess::default();
        in_process.register(NOWHERE, router);
        Http::new(reqwest::Client::new()).with_in_process(in_process)
    }

    #[tokio::test]
    async fn a_registered_service_answers_without_a_socket() {
        let router = Router::new().route(
            "/echo/{word}",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                 axum::extract::Path(word): axum::extract::Path<String>| async move {
                    format!("{word} from {}", peer.ip())
                },
            ),
        );
        let http = http_with(router);
        let answer = http.send(http.get(format!("{NOWHERE}/echo/hello?x=1"))).await.expect("answered");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.content_length(), Some(20), "the length is known, as over HTTP");
        assert_eq!(answer.text().await.expect("body"), "hello from 127.0.0.1");
        // Another address is not the router's: it goes over HTTP, and nothing listens there.
        let elsewhere = http.send(http.get("http://127.0.0.1:10/echo/x")).await;
        assert!(elsewhere.is_err_and(|e| e.is_connect()), "port 10 is a real, closed port");
    }

    #[tokio::test]
    async fn an_in_process_call_has_its_timeout_and_the_handler_runs_to_its_end() {
        let finished = Arc::new(AtomicBool::new(false));
        let seen = finished.clone();
        let router = Router::new().route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                seen.store(true, Ordering::SeqCst);
                "done"
            }),
        );
        let http = http_with(router);
        let request = http.get(format!("{NOWHERE}/slow")).timeout(Duration::from_millis(30));
        let outcome = http.send(request).await;
        assert!(outcome.as_ref().is_err_and(SendError::is_timeout), "{:?}", outcome.err());
        // Like a server whose client stopped waiting, the handler is not cut off halfway.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(finished.load(Ordering::SeqCst), "the handler finished");
    }

    #[tokio::test]
    async fn request_bodies_and_headers_reach_the_router() {
        let router = Router::new().route(
            "/sum",
            axum::routing::post(|headers: axum::http::HeaderMap, body: String| async move {
                let key =
                    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned();
                (axum::http::StatusCode::CREATED, format!("{key}:{body}"))
            }),
        );
        let http = http_with(router);
        let request = http.post(format!("{NOWHERE}/sum")).header("idempotency-key", "k1").body("1+2");
        let answer = http.send(request).await.expect("answered");
        assert_eq!(answer.status(), 201);
        assert_eq!(answer.text().await.expect("body"), "k1:1+2");
    }

    #[test]
    fn a_url_is_known_by_its_origin() {
        assert_eq!(origin("http://127.0.0.1:8081/api/v1/movies?x=1"), "http://127.0.0.1:8081");
        assert_eq!(origin("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(origin("http://127.0.0.1:8081/"), "http://127.0.0.1:8081");
    }
}
