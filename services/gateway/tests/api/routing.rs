//! Forwarding to the owner, replicas in turn, and upstreams that are down or not deployed.

use std::net::SocketAddr;

use axum::{Json, Router, routing::get};
use platform::Settings;
use serde_json::{Value, json};

use crate::{closed_url, gateway, get_json, upstream};

#[tokio::test]
async fn requests_reach_the_owner_with_trace_context_and_forwarding_headers() {
    let catalog = upstream("catalog").await;
    let gw = gateway(Settings::default().with("MARQUEE_CATALOG_URL", &catalog)).await;
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (status, headers, body) = get_json(
        &format!("{gw}/api/v1/movies/42"),
        &[("traceparent", trace), ("connection", "keep-alive, x-secret")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["served_by"], "catalog");
    let forwarded = body["traceparent"].as_str().expect("traceparent passed on");
    assert!(forwarded.starts_with("00-0af7651916cd43dd8448eb211c80319c-"), "same trace: {forwarded}");
    assert_ne!(forwarded, trace, "a new span id for the hop");
    assert_eq!(body["x_request_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(body["x_forwarded_for"], "127.0.0.1");
    assert_eq!(body["connection"], Value::Null, "hop-by-hop headers are not forwarded");
    assert_eq!(headers["x-request-id"], "0af7651916cd43dd8448eb211c80319c");
}

#[tokio::test]
async fn replicas_are_used_in_turn() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let gw = gateway(Settings::default().with("MARQUEE_CATALOG_URL", format!("{a},{b}"))).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            get_json(&format!("{gw}/api/v1/movies/1"), &[]).await.2["served_by"].as_str().map(str::to_owned),
        );
    }
    let a_count = seen.iter().filter(|s| s.as_deref() == Some("a")).count();
    assert_eq!(a_count, 2, "{seen:?}");
}

#[tokio::test]
async fn an_upstream_that_is_down_is_a_fast_503_and_health_names_it() {
    let catalog = upstream("catalog").await;
    let settings =
        Settings::default().with("MARQUEE_CATALOG_URL", &catalog).with("MARQUEE_IDENTITY_URL", closed_url());
    let gw = gateway(settings).await;
    let started = std::time::Instant::now();
    let (status, headers, body) = get_json(&format!("{gw}/api/v1/users/me"), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "no hanging on a dead upstream");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert!(headers.contains_key("retry-after"));
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("identity")));

    let (status, _, health) = get_json(&format!("{gw}/health"), &[]).await;
    assert_eq!(status, 503);
    assert_eq!(health["down"], json!(["identity"]));
    assert_eq!(health["services"]["catalog"], "up", "anyone sees whether each service is up");
    assert!(!health.to_string().contains(&catalog), "but not where its replicas are: {health}");
}

#[tokio::test]
async fn unknown_prefixes_are_404_and_undeployed_services_503() {
    let gw = gateway(Settings::default()).await;
    let (status, _, body) = get_json(&format!("{gw}/api/v1/no-such-thing"), &[]).await;
    assert_eq!((status, body["type"].as_str()), (404, Some("urn:marquee:problem:not-found")));
    let (status, _, body) = get_json(&format!("{gw}/api/v1/bookings"), &[]).await;
    assert_eq!(status, 503, "{body}");
    let (status, _, _) = get_json(&format!("{gw}/health"), &[]).await;
    assert_eq!(status, 200, "nothing configured, nothing down");
}

#[tokio::test]
async fn the_breaker_opens_on_a_dead_upstream_and_closes_when_it_returns() {
    // A port with nothing on it yet; the stand-in starts there later.
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", format!("http://127.0.0.1:{port}"))
        .with("MARQUEE_GATEWAY_BREAKER_MIN_CALLS", "3")
        .with("MARQUEE_GATEWAY_RETRIES", "0")
        .with("MARQUEE_GATEWAY_BREAKER_OPEN_MS", "300");
    let gw = gateway(settings).await;
    for _ in 0..3 {
        let (status, _, body) = get_json(&format!("{gw}/api/v1/movies/1"), &[]).await;
        assert_eq!((status, body.get("circuit")), (503, None), "{body}");
    }
    let started = std::time::Instant::now();
    let (status, headers, body) = get_json(&format!("{gw}/api/v1/movies/1"), &[]).await;
    assert_eq!((status, body["circuit"].as_str()), (503, Some("open")), "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(started.elapsed() < std::time::Duration::from_millis(100), "an open circuit answers at once");

    // The service comes back; after the open period one probe goes through and closes it.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the same port");
    let app =
        Router::new().route("/api/v1/movies/{id}", get(|| async { Json(json!({"served_by": "catalog"})) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (status, _, body) = get_json(&format!("{gw}/api/v1/movies/1"), &[]).await;
    assert_eq!((status, body["served_by"].as_str()), (200, Some("catalog")), "{body}");
    assert_eq!(get_json(&format!("{gw}/api/v1/movies/2"), &[]).await.0, 200, "closed again");
}

#[tokio::test]
async fn the_reference_merges_what_the_services_publish_and_names_what_is_missing() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "catalog", "version": "1"},
        "paths": {"/api/v1/movies/{id}": {"get": {"responses": {}}}},
        "components": {"schemas": {"Movie": {"type": "object"}}},
    });
    let catalog =
        crate::serve(Router::new().route("/openapi.json", get(move || async move { Json(doc.clone()) })))
            .await;
    let settings =
        Settings::default().with("MARQUEE_CATALOG_URL", &catalog).with("MARQUEE_IDENTITY_URL", closed_url());
    let gw = gateway(settings).await;
    let (status, _, body) = get_json(&format!("{gw}/api/openapi.json"), &[]).await;
    assert_eq!(status, 200);
    assert!(body["paths"]["/api/v1/movies/{id}"]["get"].is_object());
    assert!(body["paths"]["/api/v1/movie-details/{id}"]["get"].is_object(), "the gateway's own");
    assert_eq!(body["components"]["schemas"]["Movie"]["type"], "object");
    assert_eq!(body["x-partial"], json!(["identity"]));
    assert_eq!(body["info"]["title"], "Marquee API");
    let ui = reqwest::get(format!("{gw}/api/docs/")).await.expect("docs");
    assert_eq!(ui.headers()["content-type"], "text/html");
    assert!(ui.text().await.expect("html").contains("swagger-ui"));
}
