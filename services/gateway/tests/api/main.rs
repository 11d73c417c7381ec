//! The gateway in front of stand-in upstreams: forwarding, headers passed on, replicas taken in
//! turn, what happens when an upstream is down or slow, rate limits and aggregations.

mod edge;
mod resilience;
mod routing;

use std::net::SocketAddr;

use axum::{Json, Router, http::HeaderMap, routing::get};
use platform::{Platform, Settings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A stand-in service answering `/health/ready` and echoing what it was sent.
pub async fn upstream(name: &'static str) -> String {
    let app = Router::new().route("/health/ready", get(|| async { Json(json!({"status": "ok"})) })).route(
        "/api/v1/movies/{id}",
        get(move |headers: HeaderMap| async move {
            let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
            Json(json!({
                "served_by": name,
                "traceparent": h("traceparent"),
                "x_request_id": h("x-request-id"),
                "x_forwarded_for": h("x-forwarded-for"),
                "connection": h("connection"),
            }))
        }),
    );
    serve(app).await
}

pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    url
}

/// A URL where nothing listens.
pub fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", l.local_addr().expect("addr"))
}

pub async fn gateway(settings: Settings) -> String {
    platform::install_crypto_provider();
    let platform = Platform::new("gateway", settings, CancellationToken::new()).expect("platform");
    serve(gateway::build(&platform).expect("gateway")).await
}

pub async fn get_json(url: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Value) {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap_or(Value::Null))
}
