//! An HTTP proxy in front of a service that misbehaves on demand, the way a network and a
//! struggling service do: it answers slowly (after the service has done the work), fails a share
//! of calls with a 503 (before the service sees them), cuts a share of connections after the
//! service has done the work (the caller cannot know it happened), or is down altogether.
//!
//! Point a caller at [`FaultProxy::url`] (with [`crate::TestSystem::start_routed`]) and the
//! proxy at the real service with [`FaultProxy::set_target`].

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};

/// What the proxy does to calls, changeable while it runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// Answer this much later (the service has answered already).
    pub delay_ms: AtomicU64,
    /// Out of 1000 calls, this many get a 503 and never reach the service.
    pub fail_per_mille: AtomicU32,
    /// Out of 1000 calls, this many reach the service and then lose their connection.
    pub reset_per_mille: AtomicU32,
    /// Every call loses its connection before it reaches the service.
    pub down: AtomicBool,
    /// The next this-many calls are held back `stall_ms` before they reach the service, and
    /// reach it even if their caller gave up meanwhile (a request stuck in a network queue).
    pub stall_next: AtomicU32,
    pub stall_ms: AtomicU64,
    pub calls: AtomicU64,
    /// Calls judged for a 503, and for a cut (each fault counts its own calls).
    fail_rolls: AtomicU64,
    reset_rolls: AtomicU64,
    pub failed: AtomicU64,
    pub reset: AtomicU64,
    pub refused: AtomicU64,
}

impl Faults {
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }
    pub fn set_fail(&self, per_mille: u32) {
        self.fail_per_mille.store(per_mille, Ordering::SeqCst);
    }
    pub fn set_reset(&self, per_mille: u32) {
        self.reset_per_mille.store(per_mille, Ordering::SeqCst);
    }
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    /// Hold the next `calls` calls back for `by` before passing them on.
    pub fn stall_next(&self, calls: u32, by: Duration) {
        self.stall_ms.store(by.as_millis() as u64, Ordering::SeqCst);
        self.stall_next.store(calls, Ordering::SeqCst);
    }
    /// Behave again.
    pub fn heal(&self) {
        self.set_delay(Duration::ZERO);
        self.set_fail(0);
        self.set_reset(0);
        self.set_down(false);
    }
    /// What was done so far: (calls, 503s, cut after the service answered, refused).
    pub fn counts(&self) -> (u64, u64, u64, u64) {
        (
            self.calls.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            self.reset.load(Ordering::SeqCst),
            self.refused.load(Ordering::SeqCst),
        )
    }
}

#[derive(Clone)]
struct Proxy {
    target: Arc<RwLock<String>>,
    faults: Arc<Faults>,
    http: reqwest::Client,
}

pub struct FaultProxy {
    pub url: String,
    pub faults: Arc<Faults>,
    target: Arc<RwLock<String>>,
}

impl FaultProxy {
    /// Listen on a port of its own; calls fail until a target is set.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let proxy = Proxy {
            target: Arc::new(RwLock::new(String::new())),
            faults: Arc::new(Faults::default()),
            http: reqwest::Client::new(),
        };
        let (faults, target) = (proxy.faults.clone(), proxy.target.clone());
        let app = axum::Router::new().fallback(forward).with_state(proxy);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, faults, target })
    }

    /// Where calls go: the real service's base URL.
    pub fn set_target(&self, url: &str) {
        *self.target.write().unwrap_or_else(|p| p.into_inner()) = url.trim_end_matches('/').to_owned();
    }
}

/// An answer whose body fails at once: the caller sees its connection cut mid-answer.
fn cut() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut by the fault proxy",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// True for `per_mille` calls out of every 1000, spread evenly over the calls (call `n` of a
/// kind of fault): deterministic, so a run of 20 calls at 10 % is sure to see two, and a test
/// that needs the fault to happen cannot pass by luck without it.
fn roll(per_mille: u32, n: u64) -> bool {
    let per_mille = u64::from(per_mille.min(1000));
    per_mille > 0 && (n * per_mille) % 1000 < per_mille
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let faults = &proxy.faults;
    faults.calls.fetch_add(1, Ordering::SeqCst);
    if faults.down.load(Ordering::SeqCst) {
        faults.refused.fetch_add(1, Ordering::SeqCst);
        return cut();
    }
    if roll(
        faults.fail_per_mille.load(Ordering::SeqCst),
        faults.fail_rolls.fetch_add(1, Ordering::SeqCst) + 1,
    ) {
        faults.failed.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "the fault proxy failed this call").into_response();
    }
    let target = proxy.target.read().unwrap_or_else(|p| p.into_inner()).clone();
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut request = proxy.http.request(method, format!("{target}{path}")).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let stalled =
        faults.stall_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let answer = if stalled {
        // A task of its own: the call reaches the service even if its caller hangs up.
        let stall = Duration::from_millis(faults.stall_ms.load(Ordering::SeqCst));
        let call = tokio::spawn(async move {
            tokio::time::sleep(stall).await;
            request.send().await
        });
        match call.await {
            Ok(answer) => answer,
            Err(_) => return cut(),
        }
    } else {
        request.send().await
    };
    let delay = faults.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if roll(
        faults.reset_per_mille.load(Ordering::SeqCst),
        faults.reset_rolls.fetch_add(1, Ordering::SeqCst) + 1,
    ) {
        faults.reset.fetch_add(1, Ordering::SeqCst);
        return cut();
    }
    match answer {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(_) => (StatusCode::BAD_GATEWAY, "the fault proxy could not reach its target").into_response(),
    }
}
