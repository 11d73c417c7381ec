//! Aggregations: one answer built from several services, asked in parallel through the same
//! breakers, timeouts and retries as forwarded requests. A part that fails, is too slow or whose
//! service is not deployed is left out and named in `partial`; only the parts without which
//! the answer means nothing (the movie, the caller's identity) decide the status.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use platform::{Problem, extract::PeerAddr};
use serde_json::{Map, Value};

use crate::{Gateway, proxy};

/// What one part came back as.
enum Part {
    Found(Value),
    /// The service answered 404: there is nothing (no subscription yet, no such movie).
    Missing,
    /// The service said no to the caller (401/403).
    Refused(Response),
    /// Down, failing, too slow, not deployed, or an answer that is not JSON.
    Failed,
}

/// GET `path_and_query` from `service` with the caller's headers (its token among them).
async fn fetch(
    gateway: &Gateway,
    service: &'static str,
    path_and_query: String,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> Part {
    let Some(upstream) = gateway.upstream(service).filter(|u| u.is_deployed()) else {
        return Part::Failed;
    };
    let mut request = Request::new(proxy::Outgoing::Empty);
    *request.method_mut() = Method::GET;
    let Ok(uri) = path_and_query.parse() else {
        return Part::Failed;
    };
    *request.uri_mut() = uri;
    for name in [header::AUTHORIZATION, header::ACCEPT_LANGUAGE] {
        if let Some(value) = headers.get(&name) {
            request.headers_mut().insert(name, value.clone());
        }
    }
    request.headers_mut().insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let part = async {
        let response = proxy::send(gateway, upstream, request, peer).await;
        match response.status() {
            s if s.is_success() => {
                let bytes = axum::body::to_bytes(response.into_body(), 4 * 1024 * 1024).await.ok()?;
                serde_json::from_slice(&bytes).ok().map(Part::Found)
            }
            StatusCode::NOT_FOUND => Some(Part::Missing),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(Part::Refused(response)),
            status => {
                // `partial` names the part; the log says why it was left out.
                tracing::warn!(service, %status, "an aggregated part was refused; left out");
                None
            }
        }
    };
    match tokio::time::timeout(gateway.aggregate_timeout, part).await {
        Ok(Some(part)) => part,
        Ok(None) => Part::Failed,
        Err(_) => {
            tracing::warn!(service, "an aggregated part did not answer in time; left out");
            Part::Failed
        }
    }
}

/// Collects the parts of an answer and the names of those that failed.
#[derive(Default)]
struct Answer {
    body: Map<String, Value>,
    partial: Vec<&'static str>,
}

impl Answer {
    /// Put `part` under `name`; `missing` is what "there is none" looks like (null, []).
    fn add(&mut self, name: &'static str, part: Part, missing: Value, pick: impl FnOnce(Value) -> Value) {
        match part {
            Part::Found(value) => {
                self.body.insert(name.into(), pick(value));
            }
            Part::Missing => {
                self.body.insert(name.into(), missing);
            }
            Part::Refused(_) | Part::Failed => self.partial.push(name),
        }
    }

    fn finish(mut self) -> Response {
        self.body.insert("partial".into(), self.partial.into());
        Json(Value::Object(self.body)).into_response()
    }
}

/// The `items` of a page, or the value itself when it is already a list.
fn items(value: Value) -> Value {
    match value {
        Value::Object(mut page) if page.contains_key("items") => page.remove("items").unwrap_or_default(),
        other => other,
    }
}

/// `GET /api/v1/movie-details/{id}`: the movie, its rating stats, upcoming showtimes and similar
/// movies.
#[utoipa::path(get, path = "/api/v1/movie-details/{id}", tag = "gateway",
    params(("id" = String, Path, description = "movie id")),
    responses(
        (status = 200, description = "`{movie, ratings, showtimes, similar, partial}`; parts that failed are left out and named in `partial`"),
        (status = 404, description = "no such movie", content_type = "application/problem+json"),
    ))]
pub async fn movie_details(
    State(gateway): State<std::sync::Arc<Gateway>>,
    PeerAddr(peer): PeerAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // Movie ids are UUIDs; anything else names no movie (and must not reach a query string).
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return Problem::not_found("movie").into_response();
    };
    let g = &gateway;
    let (movie, ratings, showtimes, similar) = tokio::join!(
        fetch(g, "catalog", format!("/api/v1/movies/{id}"), &headers, peer),
        fetch(g, "reviews", format!("/api/v1/reviews/stats/{id}"), &headers, peer),
        fetch(g, "showtimes", format!("/api/v1/showtimes?movie_id={id}&per_page=50"), &headers, peer),
        fetch(g, "recommendations", format!("/api/v1/recommendations/similar/{id}"), &headers, peer),
    );
    if matches!(movie, Part::Missing) {
        return Problem::not_found("movie").into_response();
    }
    let mut answer = Answer::default();
    answer.add("movie", movie, Value::Null, |v| v);
    answer.add("ratings", ratings, Value::Null, |v| v);
    answer.add("showtimes", showtimes, Value::Array(vec![]), items);
    answer.add("similar", similar, Value::Array(vec![]), items);
    answer.finish()
}

/// `GET /api/v1/me/dashboard`: the caller's profile, recent bookings, loyalty, subscription,
/// what they were watching and what to watch next.
#[utoipa::path(get, path = "/api/v1/me/dashboard", tag = "gateway", security(("bearer" = [])),
    responses(
        (status = 200, description = "`{profile, bookings, loyalty, subscription, continue_watching, recommendations, partial}`"),
        (status = 401, description = "no valid access token", content_type = "application/problem+json"),
    ))]
pub async fn dashboard(
    State(gateway): State<std::sync::Arc<Gateway>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
) -> Response {
    // The edge has verified a token if one was sent; a dashboard needs one.
    if !headers.contains_key(header::AUTHORIZATION) {
        return Problem::unauthorized("send Authorization: Bearer <access_token>").into_response();
    }
    let g = &gateway;
    let (profile, bookings, loyalty, subscription, history, recommendations) = tokio::join!(
        fetch(g, "identity", "/api/v1/users/me".into(), &headers, peer),
        fetch(g, "booking", "/api/v1/bookings?per_page=5".into(), &headers, peer),
        fetch(g, "loyalty", "/api/v1/loyalty/me".into(), &headers, peer),
        fetch(g, "payments", "/api/v1/subscriptions/me".into(), &headers, peer),
        fetch(g, "streaming", "/api/v1/playback/history".into(), &headers, peer),
        fetch(g, "recommendations", "/api/v1/recommendations/me?limit=10".into(), &headers, peer),
    );
    // Identity refusing the token (a deleted user, say) refuses the whole dashboard.
    if let Part::Refused(response) = profile {
        return response;
    }
    let mut answer = Answer::default();
    answer.add("profile", profile, Value::Null, |v| v);
    answer.add("bookings", bookings, Value::Array(vec![]), items);
    answer.add("loyalty", loyalty, Value::Null, |v| v);
    answer.add("subscription", subscription, Value::Null, |v| v);
    answer.add("continue_watching", history, Value::Array(vec![]), |v| {
        let unfinished = items(v)
            .as_array()
            .map(|entries| {
                entries.iter().filter(|e| e["completed"] != Value::Bool(true)).take(10).cloned().collect()
            })
            .unwrap_or_default();
        Value::Array(unfinished)
    });
    answer.add("recommendations", recommendations, Value::Array(vec![]), items);
    answer.finish()
}

/// How long an aggregation waits for its slowest part.
pub fn timeout_from_settings(settings: &platform::Settings) -> anyhow::Result<Duration> {
    Ok(Duration::from_millis(settings.parse_or("MARQUEE_GATEWAY_AGGREGATE_TIMEOUT_MS", 2_000)?))
}
