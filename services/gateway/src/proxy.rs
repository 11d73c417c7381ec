//! Forwarding: the request goes to a healthy replica of the owner with its body streamed, and the
//! answer comes back streamed too (SSE and media pass through as they are produced); bodies up
//! to 64 KiB are read whole first. Bodiless GET/HEAD/OPTIONS are retried on another replica
//! when one fails, within the retry budget; any request whose body can be sent again is retried
//! when a replica refuses the connection.

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use axum::{
    body::{Body, HttpBody},
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{StreamExt, TryStreamExt, future::Either};
use platform::{Problem, extract::PeerAddr, server::REQUEST_ID};

use crate::{
    Gateway, retry, routes,
    upstream::{Upstream, Verdict},
};

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
];

pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Does the request carry a body? Content-Length or Transfer-Encoding say so on HTTP/1.1; an
/// HTTP/2 body may come with neither, which the body's own size hint tells.
fn has_body(headers: &HeaderMap, body: &Body) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
        || HttpBody::size_hint(body).exact() != Some(0)
}

/// The client's address as the edge worked it out (behind trusted proxies: from their
/// `X-Forwarded-For`), for the services' own per-address checks.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The headers sent upstream: the client's, minus hop-by-hop ones, plus forwarding and tracing.
fn upstream_headers(request: &axum::http::request::Parts, peer: Option<std::net::SocketAddr>) -> HeaderMap {
    let mut headers = request.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    // The client's address as the edge worked it out, and nothing else: the entries a client
    // wrote itself must not reach services that believe the gateway's word.
    let client = request.extensions.get::<ClientIp>().map(|c| c.0).or(peer.map(|p| p.ip()));
    headers.remove("x-forwarded-for");
    if let Some(client) = client
        && let Ok(v) = HeaderValue::from_str(&client.to_string())
    {
        headers.insert("x-forwarded-for", v);
    }
    // The request id the observe middleware settled on is the trace id unless the client sent one.
    if let Some(ctx) = platform::telemetry::current() {
        if !headers.contains_key(REQUEST_ID)
            && let Ok(v) = HeaderValue::from_str(&ctx.trace_id)
        {
            headers.insert(REQUEST_ID, v);
        }
        if let Ok(v) = HeaderValue::from_str(&ctx.child().traceparent()) {
            headers.insert("traceparent", v);
        }
    }
    headers
}

/// The owning service of a path the gateway forwards.
fn owner(path: &str) -> Option<&'static str> {
    if path == "/.well-known/jwks.json" {
        Some("identity")
    } else {
        path.strip_prefix("/api/v1/").and_then(routes::owner)
    }
}

pub async fn forward(
    State(gateway): State<Arc<Gateway>>,
    PeerAddr(peer): PeerAddr,
    request: Request,
) -> Response {
    let path = request.uri().path().to_owned();
    let Some(service) = owner(&path) else {
        return Problem::not_found("route").into_response();
    };
    let Some(upstream) = gateway.upstream(service).filter(|u| u.is_deployed()) else {
        return Problem::unavailable(format!("the {service} service is not deployed")).into_response();
    };
    let route = routes::label(&path);
    let limit = if path.starts_with("/api/v1/media/") { gateway.upload_limit } else { gateway.body_limit };
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return too_large(Some(limit));
    }
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let body = if !has_body(&parts.headers, &body) {
        Outgoing::Empty
    } else if declared.is_some_and(|len| len <= BUFFER_UP_TO) {
        // Read whole: one write upstream, and a request that can go to another replica if the
        // first one refuses the connection.
        match axum::body::to_bytes(body, BUFFER_UP_TO as usize).await {
            Ok(bytes) => Outgoing::Whole(bytes),
            Err(_) => return incomplete_body(),
        }
    } else {
        let (body, state) = limited(body, limit);
        Outgoing::Stream(body, state)
    };
    let response = send(&gateway, upstream, Request::from_parts(parts, body), peer).await;
    let status = platform::server::status_label(response.status().as_u16());
    metrics::counter!("gateway_upstream_requests_total",
        "service" => service, "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("gateway_upstream_duration_seconds", "service" => service, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// What goes upstream as the request's body.
pub enum Outgoing {
    Empty,
    /// A small body read whole before sending, which can be sent again.
    Whole(bytes::Bytes),
    /// A body streamed as it arrives, which can be sent once.
    Stream(Body, BodyState),
}

impl Outgoing {
    /// A copy to send, of a body that can be sent again (bytes are shared, not copied).
    fn again(&self) -> Outgoing {
        match self {
            Outgoing::Whole(bytes) => Outgoing::Whole(bytes.clone()),
            _ => Outgoing::Empty,
        }
    }

    /// Can the request be sent again, to another replica?
    fn replayable(&self) -> bool {
        !matches!(self, Outgoing::Stream(..))
    }
}

fn incomplete_body() -> Response {
    Problem::new(StatusCode::BAD_REQUEST, "incomplete-body", "The request body was cut off").into_response()
}

fn too_large(limit: Option<u64>) -> Response {
    let problem = Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "The body is too large");
    match limit {
        Some(limit) => problem.detail(format!("at most {limit} bytes")),
        None => problem,
    }
    .into_response()
}

/// The body, cut off with an error once more than `limit` bytes have come (a chunked body
/// declares no length up front; the upstream then sees a broken request, not a short one). The
/// [`BodyState`] it returns tells [`send`] when the body has been sent and why sending failed.
fn limited(body: Body, limit: u64) -> (Body, BodyState) {
    let state = BodyState::default();
    let (on_chunk, on_end) = (state.clone(), state.clone());
    let mut seen = 0u64;
    let on_error = state.clone();
    let chunks = body
        .into_data_stream()
        .map_err(move |e| {
            on_error.0.client_failed.store(true, Ordering::Relaxed);
            std::io::Error::other(e)
        })
        .and_then(move |chunk| {
            seen += chunk.len() as u64;
            let outcome = if seen > limit {
                on_chunk.0.too_large.store(true, Ordering::Relaxed);
                Err(std::io::Error::other("the request body is over the gateway's limit"))
            } else {
                Ok(chunk)
            };
            std::future::ready(outcome)
        });
    let end = futures_util::stream::poll_fn(move |_| {
        on_end.0.sent.send_replace(true);
        std::task::Poll::Ready(None)
    });
    (Body::from_stream(chunks.chain(end)), state)
}

/// A streamed request body's progress, shared between the stream and [`send`].
#[derive(Clone)]
pub struct BodyState(Arc<BodyProgress>);

struct BodyProgress {
    too_large: AtomicBool,
    /// The client's side of the body failed: it went away or broke off mid-upload.
    client_failed: AtomicBool,
    /// Set once the last byte has gone upstream.
    sent: tokio::sync::watch::Sender<bool>,
}

impl Default for BodyState {
    fn default() -> Self {
        Self(Arc::new(BodyProgress {
            too_large: AtomicBool::new(false),
            client_failed: AtomicBool::new(false),
            sent: tokio::sync::watch::channel(false).0,
        }))
    }
}

impl BodyState {
    async fn wait_until_sent(&self) {
        let mut sent = self.0.sent.subscribe();
        let _ = sent.wait_for(|sent| *sent).await;
    }
}

fn circuit_open(service: &str, open: platform::breaker::Open) -> Response {
    Problem::unavailable(format!("the {service} service is failing; not calling it for a while"))
        .retry_after(open.retry_after.as_secs().max(1))
        .extension("circuit", "open")
        .into_response()
}

/// Send to one replica after another until an answer comes that is not a failure, the retries
/// allowed are spent, or the request may not be repeated.
///
/// Two kinds of failure may be retried on another replica. A refused connection, for any method
/// whose body can be sent again: nothing reached the replica, so nothing can have happened
/// twice. Any failure of a GET, HEAD or OPTIONS without a body, within the retry budget.
pub async fn send(
    gateway: &Gateway,
    upstream: &Upstream,
    request: Request<Outgoing>,
    peer: Option<std::net::SocketAddr>,
) -> Response {
    let service = upstream.service;
    let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_owned();
    let (parts, body) = request.into_parts();
    let headers = upstream_headers(&parts, peer);
    let idempotent = retry::is_retryable(&parts.method, !matches!(body, Outgoing::Empty));
    let replayable = body.replayable();
    let (mut body, streaming) = match body {
        Outgoing::Stream(body, state) => (Some(Outgoing::Stream(body, state.clone())), Some(state)),
        other => (Some(other), None),
    };
    upstream.budget.deposit();
    // The breaker judges requests, not tries: a failure that a retry on another replica mended
    // is a replica's problem (the health checks' business), not the service's.
    let permit = match upstream.breaker.permit() {
        Ok(permit) => permit,
        Err(open) => return circuit_open(service, open),
    };
    // If this future is dropped (the client went away, an aggregation's deadline passed) or
    // ends without a verdict on the service, the half-open probe must not stay taken for ever.
    let _abandon = permit.probe.then_some(platform::breaker::ProbeGuard(&upstream.breaker));
    let mut attempt = 0;
    let mut avoid: Option<String> = None;
    loop {
        let Some(replica) = upstream.pick(avoid.as_deref()) else {
            return Problem::unavailable(format!("the {service} service is not deployed")).into_response();
        };
        let this_body = if replayable { body.as_ref().map(Outgoing::again) } else { body.take() };
        // A replica this process serves (the embedded mode) gets the request as it is, into its
        // router; any other one over HTTP.
        let exchange = match gateway.http.in_process(&replica.url) {
            Some(router) => {
                let mut request = Request::new(match this_body {
                    Some(Outgoing::Whole(bytes)) => Body::from(bytes),
                    Some(Outgoing::Stream(stream, _)) => stream,
                    Some(Outgoing::Empty) | None => Body::empty(),
                });
                *request.method_mut() = parts.method.clone();
                *request.headers_mut() = headers.clone();
                match path_and_query.parse() {
                    Ok(uri) => *request.uri_mut() = uri,
                    Err(_) => return Problem::not_found("route").into_response(),
                }
                Either::Left(async move {
                    platform::transport::call(router, request, None).await.map(Answer::Local)
                })
            }
            None => {
                let http = if matches!(this_body, Some(Outgoing::Stream(..))) {
                    &gateway.upload_http
                } else {
                    &gateway.http
                };
                let mut outgoing = http
                    .request(parts.method.clone(), format!("{}{path_and_query}", replica.url))
                    .headers(headers.clone());
                match this_body {
                    Some(Outgoing::Whole(bytes)) => outgoing = outgoing.body(bytes),
                    Some(Outgoing::Stream(stream, _)) => {
                        outgoing = outgoing.body(reqwest::Body::wrap_stream(stream.into_data_stream()));
                    }
                    Some(Outgoing::Empty) | None => {}
                }
                Either::Right(async move { http.send(outgoing).await.map(Answer::Remote) })
            }
        };
        // The timeout starts once the body is sent: a client that uploads slowly is not the
        // service being slow.
        let deadline = async {
            let wait = match &streaming {
                Some(state) => {
                    state.wait_until_sent().await;
                    upstream.timeout.max(gateway.upload_timeout)
                }
                None => upstream.timeout,
            };
            tokio::time::sleep(wait).await;
        };
        let outcome = tokio::select! {
            sent = exchange => Ok(sent),
            () = deadline => Err(()),
        };
        let failure = match outcome {
            // A 502-504 is the service (or what is in front of it) failing; any other answer,
            // 500 included, means it is up and answering.
            Ok(Ok(answer)) if !matches!(answer.status().as_u16(), 502..=504) => {
                return match relay(answer).await {
                    Ok(response) => {
                        upstream.breaker.record_success();
                        response
                    }
                    Err(cut_off) => {
                        upstream.breaker.record_failure();
                        cut_off
                    }
                };
            }
            Ok(Ok(answer)) => Failure::Status(answer),
            // The client's body failed (too large, or the client went away mid-upload): nothing
            // was learnt about the service.
            Ok(Err(_)) if streaming.as_ref().is_some_and(|s| s.0.too_large.load(Ordering::Relaxed)) => {
                return too_large(None);
            }
            Ok(Err(_)) if streaming.as_ref().is_some_and(|s| s.0.client_failed.load(Ordering::Relaxed)) => {
                return incomplete_body();
            }
            Ok(Err(e)) if e.is_connect() => {
                // Nothing listens there: out of rotation until a health check passes.
                replica.set_verdict(Verdict::Unreachable, service);
                tracing::warn!(service, url = %replica.url, error = %e, "upstream refused the connection");
                Failure::Refused
            }
            Ok(Err(e)) => {
                tracing::warn!(service, url = %replica.url, error = %e, "upstream connection failed");
                Failure::Unreachable
            }
            Err(_) => Failure::Timeout,
        };
        attempt += 1;
        let may_retry = attempt <= upstream.budget.max_retries
            && match failure {
                // Nothing was sent, so the service bore no load: no retry budget is spent.
                Failure::Refused => replayable,
                // A timeout is not retried: the client has already waited the whole timeout once.
                Failure::Timeout => false,
                Failure::Status(_) | Failure::Unreachable => idempotent && upstream.budget.withdraw(),
            };
        if !may_retry {
            upstream.breaker.record_failure();
            return failure.into_response(service, upstream).await;
        }
        metrics::counter!("gateway_retries_total", "service" => service).increment(1);
        avoid = Some(replica.url.clone());
        tokio::time::sleep(upstream.budget.backoff(attempt)).await;
    }
}

/// An upstream's answer: over HTTP, or from a router in this process.
enum Answer {
    Remote(reqwest::Response),
    Local(Response),
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::Remote(answer) => answer.status(),
            Answer::Local(answer) => answer.status(),
        }
    }
}

enum Failure {
    Status(Answer),
    /// The connection was refused: the request never reached the replica.
    Refused,
    /// The connection broke after the request may have been sent.
    Unreachable,
    Timeout,
}

impl Failure {
    async fn into_response(self, service: &str, upstream: &Upstream) -> Response {
        match self {
            // The service's own 502-504 (a problem of its own, usually) goes back as it is.
            Failure::Status(answer) => relay(answer).await.unwrap_or_else(|cut_off| cut_off),
            Failure::Refused | Failure::Unreachable => {
                Problem::unavailable(format!("the {service} service is unavailable")).into_response()
            }
            Failure::Timeout => {
                Problem::new(StatusCode::GATEWAY_TIMEOUT, "upstream-timeout", "The service took too long")
                    .detail(format!(
                        "the {service} service did not answer within {} ms",
                        upstream.timeout.as_millis()
                    ))
                    .retry_after(1)
                    .into_response()
            }
        }
    }
}

/// Bodies up to this size that say their length are read whole and sent on in one piece: one
/// write instead of a head and a trickle of chunks, which is most of what a proxy hop costs.
const BUFFER_UP_TO: u64 = 64 * 1024;

/// The upstream's answer. Small bodies of known length are passed on whole; everything else
/// (SSE, media, large or unknown lengths) chunk by chunk as it arrives. `Err` when a small
/// body could not be read: a 503 problem to send instead.
async fn relay(answer: Answer) -> Result<Response, Response> {
    let answer = match answer {
        Answer::Remote(answer) => answer,
        // Already a response of ours, body and all: passed on as it is.
        Answer::Local(mut answer) => {
            strip_hop_by_hop(answer.headers_mut());
            return Ok(answer);
        }
    };
    let mut response = Response::builder().status(answer.status());
    if let Some(h) = response.headers_mut() {
        *h = answer.headers().clone();
        strip_hop_by_hop(h);
    }
    let body = if answer.content_length().is_some_and(|n| n <= BUFFER_UP_TO) {
        match answer.bytes().await {
            Ok(bytes) => Body::from(bytes),
            Err(e) => {
                tracing::warn!(error = %e, "upstream body cut off");
                return Err(Problem::unavailable("the service's answer was cut off").into_response());
            }
        }
    } else {
        Body::from_stream(answer.bytes_stream().map_err(std::io::Error::other))
    };
    Ok(response.body(body).unwrap_or_else(|_| Problem::internal().into_response()))
}
