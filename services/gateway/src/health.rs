//! `/health`: every configured service's readiness, checked in parallel.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::Gateway;

pub async fn health(State(gateway): State<Gateway>) -> Response {
    let checks =
        gateway.upstreams.iter().flat_map(|u| u.urls.iter().map(move |url| (u.service, url.clone())));
    let results = futures_util::future::join_all(checks.map(|(service, url)| {
        let http = gateway.http.clone();
        async move {
            let ok = http
                .get(format!("{url}/health/ready"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (service, url, ok)
        }
    }))
    .await;
    let mut services = Map::new();
    let mut down = Vec::new();
    for (service, url, ok) in results {
        if !ok && !down.contains(&service) {
            down.push(service);
        }
        let entry = services.entry(service).or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            m.insert(url, json!(if ok { "up" } else { "down" }));
        }
    }
    let status = if down.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if down.is_empty() { "ok" } else { "degraded" },
        "down": down,
        "services": services,
    });
    let mut response = (status, Json(body)).into_response();
    if status != StatusCode::OK {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}
