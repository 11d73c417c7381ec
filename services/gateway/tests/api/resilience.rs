//! Timeouts, retries (of idempotent requests only), health-checked replicas and streaming.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    http::StatusCode,
    response::sse::{Event, Sse},
    routing::get,
};
use futures_util::StreamExt;
use platform::Settings;
use serde_json::json;

use crate::{closed_url, gateway, get_json, serve};

/// A stand-in that answers every movie request with `status` and counts the requests by method.
async fn counting(name: &'static str, status: StatusCode, ready: bool) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let answer = move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (status, Json(json!({"served_by": name})))
        }
    };
    let ready_status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let app = Router::new()
        .route("/health/ready", get(move || async move { ready_status }))
        .route("/api/v1/movies/{id}", get(answer.clone()).post(answer));
    (serve(app).await, hits)
}

#[tokio::test]
async fn a_slow_upstream_hits_its_timeout() {
    let app = Router::new().route(
        "/api/v1/movies/{id}",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "too late"
        }),
    );
    let slow = serve(app).await;
    let gw = gateway(
        Settings::default()
            .with("MARQUEE_CATALOG_URL", &slow)
            .with("MARQUEE_GATEWAY_CATALOG_TIMEOUT_MS", "200"),
    )
    .await;
    let started = Instant::now();
    let (status, headers, body) = get_json(&format!("{gw}/api/v1/movies/1"), &[]).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (504, Some("urn:marquee:problem:upstream-timeout")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "the timeout, not the upstream, decided: {waited:?}");
}

#[tokio::test]
async fn a_failing_get_is_retried_on_another_replica() {
    let (bad, bad_hits) = counting("bad", StatusCode::BAD_GATEWAY, true).await;
    let (good, good_hits) = counting("good", StatusCode::OK, true).await;
    let gw = gateway(Settings::default().with("MARQUEE_CATALOG_URL", format!("{bad},{good}"))).await;
    for _ in 0..4 {
        let (status, _, body) = get_json(&format!("{gw}/api/v1/movies/1"), &[]).await;
        assert_eq!((status, body["served_by"].as_str()), (200, Some("good")), "{body}");
    }
    assert_eq!(good_hits.load(Ordering::SeqCst), 4);
    assert!(bad_hits.load(Ordering::SeqCst) >= 1, "the bad replica was tried and its failure retried");
}

#[tokio::test]
async fn a_post_is_never_retried() {
    let (a, a_hits) = counting("a", StatusCode::SERVICE_UNAVAILABLE, true).await;
    let (b, b_hits) = counting("b", StatusCode::SERVICE_UNAVAILABLE, true).await;
    let gw = gateway(Settings::default().with("MARQUEE_CATALOG_URL", format!("{a},{b}"))).await;
    let res = reqwest::Client::new()
        .post(format!("{gw}/api/v1/movies/1"))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 503);
    assert_eq!(a_hits.load(Ordering::SeqCst) + b_hits.load(Ordering::SeqCst), 1, "sent exactly once");

    // A GET to the same failing pair is retried, within the budget.
    let (status, _, _) = get_json(&format!("{gw}/api/v1/movies/1"), &[]).await;
    assert_eq!(status, 503);
    assert_eq!(a_hits.load(Ordering::SeqCst) + b_hits.load(Ordering::SeqCst), 4, "one try and two retries");
}

/// Issue 10, item 9: with a booking replica killed, holds and pays answered 400 `incomplete-body`:
/// the gateway took the refused connection for a client that had cut its body off.
#[tokio::test]
async fn a_refused_connection_sends_a_post_to_another_replica() {
    let (good, good_hits) = counting("good", StatusCode::OK, true).await;
    // A replica that passes its first health checks and then dies, as under `kill -9`.
    let doomed_app = Router::new()
        .route("/health/ready", get(|| async { "ok" }))
        .route("/api/v1/movies/{id}", get(|| async { "alive" }).post(|| async { "alive" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let doomed = format!("http://{}", listener.local_addr().expect("addr"));
    let kill = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, doomed_app)
            .with_graceful_shutdown(kill.clone().cancelled_owned())
            .into_future(),
    );
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", format!("{doomed},{good}"))
        .with("MARQUEE_GATEWAY_HEALTH_INTERVAL_MS", "600000");
    let gw = gateway(settings).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // the first checks pass on both
    kill.cancel();
    let _ = server.await;
    let client = reqwest::Client::new();
    for _ in 0..4 {
        let res = client
            .post(format!("{gw}/api/v1/movies/1"))
            .json(&json!({"title": "x"}))
            .send()
            .await
            .expect("sent");
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        assert_eq!((status.as_u16(), body["served_by"].as_str()), (200, Some("good")), "{body}");
    }
    assert_eq!(good_hits.load(Ordering::SeqCst), 4, "each POST reached the live replica once");
}

/// A streamed body cannot be sent twice; a refused connection is still the service's failure,
/// never the client's.
#[tokio::test]
async fn a_streamed_body_to_a_dead_replica_is_a_503_not_a_400() {
    let gw = gateway(Settings::default().with("MARQUEE_CATALOG_URL", closed_url())).await;
    let chunks = futures_util::stream::iter(
        ["{\"title\":", " \"x\"}"].map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from_static(c.as_bytes()))),
    );
    let res = reqwest::Client::new()
        .post(format!("{gw}/api/v1/movies/1"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.expect("problem");
    assert_eq!(body["type"], "urn:marquee:problem:service-unavailable", "{body}");
}

/// With the broker down every replica failed its checks, and the gateway then took the dead
/// replica in turn with the live one.
#[tokio::test]
async fn when_no_replica_is_ready_the_dead_one_comes_last() {
    let (unready, hits) = counting("unready", StatusCode::OK, false).await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", format!("{},{unready}", closed_url()))
        .with("MARQUEE_GATEWAY_HEALTH_INTERVAL_MS", "50");
    let gw = gateway(settings).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::new();
    for _ in 0..6 {
        let res = client.post(format!("{gw}/api/v1/movies/1")).json(&json!({})).send().await.expect("sent");
        assert_eq!(res.status(), 200);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 6);
    let (_, _, metrics) = get_json(&format!("{gw}/health"), &[]).await;
    assert_eq!(metrics["services"]["catalog"], "down", "{metrics}");
}

#[tokio::test]
async fn the_retry_budget_caps_retries() {
    let (a, hits) = counting("a", StatusCode::BAD_GATEWAY, true).await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &a)
        .with("MARQUEE_GATEWAY_RETRY_BURST", "2")
        .with("MARQUEE_GATEWAY_RETRY_RATIO", "0.25")
        // The breaker would stop the calls first otherwise.
        .with("MARQUEE_GATEWAY_BREAKER_MIN_CALLS", "64")
        .with("MARQUEE_GATEWAY_BREAKER_WINDOW", "64");
    let gw = gateway(settings).await;
    for _ in 0..10 {
        assert_eq!(get_json(&format!("{gw}/api/v1/movies/1"), &[]).await.0, 502);
    }
    // 10 tries; the first takes the burst (2 retries), then every 4th request earns one more.
    assert_eq!(hits.load(Ordering::SeqCst), 10 + 2 + 2);
}

#[tokio::test]
async fn replicas_failing_their_health_checks_get_no_traffic() {
    let (sick, sick_hits) = counting("sick", StatusCode::OK, false).await;
    let (well, _) = counting("well", StatusCode::OK, true).await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", format!("{sick},{well}"))
        .with("MARQUEE_GATEWAY_HEALTH_INTERVAL_MS", "50");
    let gw = gateway(settings).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::new();
    for _ in 0..6 {
        // POSTs, which are never retried: each one goes to the replica picked first.
        let res = client.post(format!("{gw}/api/v1/movies/1")).send().await.expect("sent");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["served_by"], "well");
    }
    assert_eq!(sick_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn server_sent_events_pass_through_as_they_are_produced() {
    let app = Router::new().route(
        "/api/v1/showtimes/{id}/seats/stream",
        get(|| async {
            let first = futures_util::stream::once(async {
                Ok::<_, std::convert::Infallible>(Event::default().data("first"))
            });
            let later = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok(Event::default().data("later"))
            });
            Sse::new(first.chain(later))
        }),
    );
    let booking = serve(app).await;
    let gw = gateway(Settings::default().with("MARQUEE_BOOKING_URL", &booking)).await;
    let started = Instant::now();
    let res = reqwest::get(format!("{gw}/api/v1/showtimes/1/seats/stream")).await.expect("sent");
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut stream = res.bytes_stream();
    let chunk = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("the first event arrives before the stream ends")
        .expect("a chunk")
        .expect("bytes");
    assert!(String::from_utf8_lossy(&chunk).contains("data: first"));
    assert!(started.elapsed() < Duration::from_secs(2), "not buffered until the upstream finished");
}

#[tokio::test]
async fn a_slow_upload_is_not_the_service_timing_out() {
    // The upstream reads the whole body, then answers at once.
    let app = Router::new().route(
        "/api/v1/movies/{id}",
        axum::routing::post(|body: axum::body::Bytes| async move { Json(json!({"received": body.len()})) }),
    );
    let catalog = serve(app).await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_GATEWAY_CATALOG_TIMEOUT_MS", "200")
        .with("MARQUEE_GATEWAY_BREAKER_MIN_CALLS", "1");
    let gw = gateway(settings).await;
    // Three chunks 150 ms apart: 450 ms of uploading against a 200 ms upstream timeout.
    let chunks = futures_util::stream::iter(0..3).then(|i| async move {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        Ok::<_, std::io::Error>(vec![b'x'; 100])
    });
    let res = reqwest::Client::new()
        .post(format!("{gw}/api/v1/movies/1"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["received"], 300);
    // Nothing counted against the service: the breaker (opening on one failure) is closed.
    assert_eq!(get_json(&format!("{gw}/api/v1/movies/1"), &[]).await.0, 405, "GET: the route has only POST");
}

#[tokio::test]
async fn health_answers_from_fresh_checks_instead_of_asking_every_time() {
    let probes = Arc::new(AtomicUsize::new(0));
    let counter = probes.clone();
    let app = Router::new().route(
        "/health/ready",
        get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let catalog = serve(app).await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_GATEWAY_HEALTH_INTERVAL_MS", "60000");
    let gw = gateway(settings).await;
    for _ in 0..10 {
        let (status, _, body) = get_json(&format!("{gw}/health"), &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    let asked = probes.load(Ordering::SeqCst);
    assert!((1..=2).contains(&asked), "the background check, and at most one before it: {asked}");
}
