//! Forwarding: the request goes to the owner with its body streamed, and the answer comes back
//! streamed too (SSE and media pass through as they are produced).

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use futures_util::TryStreamExt;
use platform::{Problem, extract::PeerAddr, server::REQUEST_ID};

use crate::{Gateway, routes};

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

fn strip_hop_by_hop(headers: &mut HeaderMap) {
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

pub async fn forward(State(gateway): State<Gateway>, PeerAddr(peer): PeerAddr, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let service = if path == "/.well-known/jwks.json" {
        Some("identity")
    } else {
        path.strip_prefix("/api/v1/").and_then(routes::owner)
    };
    let Some(service) = service else {
        return Problem::not_found("route").into_response();
    };
    let Some(upstream_service) = gateway.upstream(service).filter(|u| !u.urls.is_empty()) else {
        return Problem::unavailable(format!("the {service} service is not deployed")).into_response();
    };
    if let Err(open) = upstream_service.breaker.allow() {
        return Problem::unavailable(format!("the {service} service is failing; not calling it for a while"))
            .retry_after(open.retry_after.as_secs().max(1))
            .extension("circuit", "open")
            .into_response();
    }
    let Some(base) = upstream_service.pick().map(str::to_owned) else {
        return Problem::unavailable(format!("the {service} service is not deployed")).into_response();
    };
    let path_and_query = request.uri().path_and_query().map_or(path.as_str(), |pq| pq.as_str()).to_owned();
    let url = format!("{base}{path_and_query}");

    let (parts, body) = request.into_parts();
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    // Append the peer we saw; services trust only the right-most entry (ours).
    if let Some(peer) = peer {
        let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(existing) => format!("{existing}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert("x-forwarded-for", v);
        }
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

    let upstream = gateway
        .http
        .request(parts.method, &url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let upstream = match upstream {
        Ok(r) => r,
        Err(e) => {
            upstream_service.breaker.record_failure();
            tracing::warn!(service, error = %e, "upstream unreachable");
            return Problem::unavailable(format!("the {service} service is unavailable")).into_response();
        }
    };
    // A 502-504 is the service (or what is in front of it) failing; any other answer, 500
    // included, means it is up and answering.
    if matches!(upstream.status().as_u16(), 502..=504) {
        upstream_service.breaker.record_failure();
    } else {
        upstream_service.breaker.record_success();
    }
    let mut response = Response::builder().status(upstream.status());
    if let Some(h) = response.headers_mut() {
        *h = upstream.headers().clone();
        strip_hop_by_hop(h);
    }
    response
        .body(Body::from_stream(upstream.bytes_stream().map_err(std::io::Error::other)))
        .unwrap_or_else(|_| Problem::internal().into_response())
}
