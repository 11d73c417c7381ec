//! At the door: tokens verified before forwarding, rate limits (per address, per user, tighter on
//! /auth, shared through Redis), CORS and security headers.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Json, Router, routing::get};
use platform::Settings;
use serde_json::json;

use crate::{Identity, bearer, gateway, get_json, serve};

/// A catalog stand-in that counts what reaches it.
async fn counted_catalog() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().route("/health/ready", get(|| async { "ok" })).route(
        "/api/v1/{*rest}",
        get(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Json(json!({"ok": true}))
            }
        })
        .post(|| async { Json(json!({"ok": true})) }),
    );
    (serve(app).await, hits)
}

#[tokio::test]
async fn bad_tokens_are_refused_at_the_gateway_and_good_ones_pass() {
    let identity = Identity::start().await;
    let (catalog, hits) = counted_catalog().await;
    let gw = gateway(
        Settings::default().with("MARQUEE_IDENTITY_URL", &identity.url).with("MARQUEE_CATALOG_URL", &catalog),
    )
    .await;
    let url = format!("{gw}/api/v1/movies/1");

    let good = bearer(&identity.token("user-1", 300));
    assert_eq!(get_json(&url, &[("authorization", &good)]).await.0, 200);
    assert_eq!(get_json(&url, &[]).await.0, 200, "public routes stay public");
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    let expired = bearer(&identity.token("user-1", -120));
    let mut forged = identity.token("user-1", 300);
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    let other = Identity::start().await; // a key the gateway does not trust
    for token in [expired, bearer(&forged), bearer(&other.token("user-1", 300)), "Basic dXNlcjpwYXNz".into()]
    {
        let (status, headers, body) = get_json(&url, &[("authorization", &token)]).await;
        assert_eq!(status, 401, "{token}: {body}");
        assert_eq!(headers["content-type"], "application/problem+json");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2, "no bad token reached the service");
}

#[tokio::test]
async fn an_address_over_its_limit_gets_429_with_rate_limit_headers() {
    let (catalog, hits) = counted_catalog().await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_RATE_LIMIT_IP_BURST", "3")
        .with("MARQUEE_RATE_LIMIT_IP_PER_SECOND", "0.2");
    let gw = gateway(settings).await;
    let url = format!("{gw}/api/v1/movies/1");
    for remaining in ["2", "1", "0"] {
        let (status, headers, _) = get_json(&url, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(headers["ratelimit-limit"], "3");
        assert_eq!(headers["ratelimit-remaining"], remaining);
        assert_eq!(headers["ratelimit-policy"], "3;w=15");
    }
    let (status, headers, body) = get_json(&url, &[]).await;
    assert_eq!((status, body["type"].as_str()), (429, Some("urn:marquee:problem:rate-limited")), "{body}");
    let retry_after: u64 =
        headers["retry-after"].to_str().ok().and_then(|v| v.parse().ok()).expect("seconds");
    assert!((1..=5).contains(&retry_after), "one token comes back in 5 s: {retry_after}");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the refused request was not forwarded");
    for probe in ["/health/live", "/health/ready"] {
        let (status, _, _) = get_json(&format!("{gw}{probe}"), &[]).await;
        assert_eq!(status, 200, "{probe}: the gateway's own probes are not limited");
    }
    let (status, _, _) = get_json(&format!("{gw}/health"), &[]).await;
    assert_eq!(status, 429, "the aggregated health, which calls every replica, is");
}

#[tokio::test]
async fn auth_routes_have_a_tighter_limit_and_users_their_own() {
    let identity = Identity::start().await;
    let (catalog, _) = counted_catalog().await;
    let settings = Settings::default()
        .with("MARQUEE_IDENTITY_URL", &identity.url)
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_RATE_LIMIT_AUTH_BURST", "2")
        .with("MARQUEE_RATE_LIMIT_AUTH_PER_SECOND", "0.01")
        .with("MARQUEE_RATE_LIMIT_USER_BURST", "2")
        .with("MARQUEE_RATE_LIMIT_USER_PER_SECOND", "0.01");
    let gw = gateway(settings).await;
    let client = reqwest::Client::new();
    let login = format!("{gw}/api/v1/auth/login");
    let statuses: Vec<u16> = futures_util::future::join_all((0..3).map(|_| async {
        client.post(&login).json(&json!({})).send().await.expect("sent").status().as_u16()
    }))
    .await;
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(refused, 1, "two tries, then refused: {statuses:?}");
    assert_eq!(get_json(&format!("{gw}/api/v1/movies/1"), &[]).await.0, 200, "other routes are not held up");
    // Issue 10, item 4: refreshing a session is not a credential check; it is not held up either.
    for _ in 0..3 {
        let refresh = client.post(format!("{gw}/api/v1/auth/refresh")).json(&json!({})).send().await;
        assert_ne!(refresh.expect("sent").status(), 429, "refresh draws on the address's general bucket");
    }

    // A user's own bucket: the third call with the same user's token is refused, another user's is not.
    let alice = bearer(&identity.token("alice", 300));
    let bob = bearer(&identity.token("bob", 300));
    let url = format!("{gw}/api/v1/movies/2");
    for expected in [200, 200, 429] {
        assert_eq!(get_json(&url, &[("authorization", &alice)]).await.0, expected);
    }
    assert_eq!(get_json(&url, &[("authorization", &bob)]).await.0, 200);
}

#[tokio::test]
async fn exempt_addresses_are_not_limited() {
    let (catalog, _) = counted_catalog().await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_RATE_LIMIT_IP_BURST", "1")
        .with("MARQUEE_RATE_LIMIT_EXEMPT", "10.0.0.0/8, 127.0.0.1");
    let gw = gateway(settings).await;
    for _ in 0..5 {
        let (status, headers, _) = get_json(&format!("{gw}/api/v1/movies/1"), &[]).await;
        assert_eq!(status, 200);
        assert!(!headers.contains_key("ratelimit-limit"));
    }
}

/// With `MARQUEE_TEST_REDIS_URL` (the distributed run) two gateways share one limit; without it,
/// each gateway limits in its own process.
#[tokio::test]
async fn two_gateways_share_one_limit_through_redis() {
    let (catalog, _) = counted_catalog().await;
    let redis = std::env::var("MARQUEE_TEST_REDIS_URL").ok().filter(|u| !u.is_empty());
    let namespace = format!("marquee_test_{}", uuid::Uuid::new_v4().simple());
    let mut settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_RATE_LIMIT_IP_BURST", "4")
        .with("MARQUEE_RATE_LIMIT_IP_PER_SECOND", "0.01");
    if let Some(url) = &redis {
        settings = settings.with("MARQUEE_REDIS_URL", url).with("MARQUEE_REDIS_NAMESPACE", &namespace);
    }
    let (a, b) = (gateway(settings.clone()).await, gateway(settings).await);
    let status = |gw: &str| {
        let url = format!("{gw}/api/v1/movies/1");
        async move { get_json(&url, &[]).await.0 }
    };
    for gw in [&a, &b, &a, &b] {
        assert_eq!(status(gw).await, 200);
    }
    if let Some(url) = &redis {
        assert_eq!(status(&a).await, 429, "four taken across both: the shared bucket is empty");
        assert_eq!(status(&b).await, 429);
        let keys = platform::cache::RedisCache::new(url, &namespace).expect("redis");
        platform::cache::Cache::clear(&keys).await.expect("clean up");
    } else {
        for _ in 0..2 {
            assert_eq!(status(&a).await, 200, "in-process buckets: each gateway counts its own");
        }
        assert_eq!(status(&a).await, 429);
    }
}

#[tokio::test]
async fn cors_and_security_headers() {
    let (catalog, _) = counted_catalog().await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_CORS_ORIGINS", "https://tickets.example");
    let gw = gateway(settings).await;
    let client = reqwest::Client::new();
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{gw}/api/v1/movies/1"))
        .header("origin", "https://tickets.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .expect("sent");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://tickets.example");

    let (_, headers, _) =
        get_json(&format!("{gw}/api/v1/movies/1"), &[("origin", "https://evil.example")]).await;
    assert!(!headers.contains_key("access-control-allow-origin"), "an origin not configured");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers.contains_key("content-security-policy"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_declared_or_streamed() {
    let (catalog, _) = counted_catalog().await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_GATEWAY_BODY_LIMIT_BYTES", "1000");
    let gw = gateway(settings).await;
    let client = reqwest::Client::new();
    let url = format!("{gw}/api/v1/movies/1");
    let small = client.post(&url).body(vec![b'x'; 1000]).send().await.expect("sent");
    assert_eq!(small.status(), 200);
    let declared = client.post(&url).body(vec![b'x'; 1001]).send().await.expect("sent");
    assert_eq!(declared.status(), 413);
    let body: serde_json::Value = declared.json().await.expect("problem");
    assert_eq!(body["type"], "urn:marquee:problem:payload-too-large");
    // Chunked: no length up front, so the gateway counts as it streams.
    let chunks = futures_util::stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 400])));
    let streamed = client.post(&url).body(reqwest::Body::wrap_stream(chunks)).send().await.expect("sent");
    assert_eq!(streamed.status(), 413);
}

#[tokio::test]
async fn behind_a_trusted_proxy_services_learn_the_client_address() {
    let catalog = crate::upstream("catalog").await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_GATEWAY_TRUSTED_PROXIES", "127.0.0.0/8");
    let gw = gateway(settings).await;
    let (_, _, body) =
        get_json(&format!("{gw}/api/v1/movies/1"), &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]).await;
    assert_eq!(body["x_forwarded_for"], "203.0.113.7", "the client the edge saw, and only that");

    // Issue 10, item 4: without a trusted proxy in front, a client's own claim goes no further
    // (identity believes the gateway's X-Forwarded-For, so a forged entry must not reach it).
    let gw = gateway(Settings::default().with("MARQUEE_CATALOG_URL", &catalog)).await;
    let (_, _, body) =
        get_json(&format!("{gw}/api/v1/movies/1"), &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")]).await;
    assert_eq!(body["x_forwarded_for"], "127.0.0.1", "{body}");
}

#[tokio::test]
async fn with_redis_down_each_gateway_still_limits_and_answers_quickly() {
    let (catalog, _) = counted_catalog().await;
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", &catalog)
        .with("MARQUEE_REDIS_URL", format!("redis://{}", crate::closed_url().trim_start_matches("http://")))
        .with("MARQUEE_RATE_LIMIT_IP_BURST", "3")
        .with("MARQUEE_RATE_LIMIT_IP_PER_SECOND", "0.01");
    let gw = gateway(settings).await;
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..6 {
            out.push(get_json(&format!("{gw}/api/v1/movies/1"), &[]).await.0);
        }
        out
    };
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429], "limited in the process instead");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the store's breaker stops requests from waiting on Redis: {:?}",
        started.elapsed()
    );
}

/// Send a request line exactly as given (an HTTP client would resolve its dot segments first)
/// and return the status.
async fn raw_status(gateway: &str, method: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gateway.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"service":"booking","secret":"guess"}"#;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Issue 10: the gateway routed on the raw path and its HTTP client then resolved the dot
/// segments, so `/api/v1/auth/%2e%2e/%2e%2e/%2e%2e/internal/service-token` reached identity's
/// internal endpoint. Every spelling of a way out is refused before routing, and the upstream
/// never sees it.
#[tokio::test]
async fn no_spelling_of_a_dot_segment_reaches_an_upstream() {
    // What reached the stand-in, but for the gateway's own health checks.
    let reached = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = reached.clone();
    let identity = serve(Router::new().route("/health/ready", get(|| async { "ok" })).fallback(
        move |uri: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(uri.path().to_owned());
                "an upstream answered"
            }
        },
    ))
    .await;
    let gw = gateway(Settings::default().with("MARQUEE_IDENTITY_URL", &identity)).await;
    for path in [
        "/api/v1/auth/../../../internal/service-token",
        "/api/v1/auth/%2e%2e/%2e%2e/%2e%2e/internal/service-token",
        "/api/v1/auth/%2E%2E/%2e%2E/%2E%2e/internal/service-token",
        "/api/v1/auth/.%2e/.%2e/.%2e/internal/service-token",
        "/api/v1/auth/%2e./%2e./%2e./internal/service-token",
        "/api/v1/auth/./login",
        "/api/v1/auth%2f..%2f..%2f..%2finternal%2fservice-token",
        "/api/v1/auth%5c..%5c..%5cinternal",
        "/api/v1/auth\\..\\..\\internal",
        "/api/v1/auth//login",
        "/api/v1/auth/log%00in",
        "/api/v1/auth/%zz",
    ] {
        assert_eq!(raw_status(&gw, "POST", path).await, 400, "{path}");
    }
    assert_eq!(*reached.lock().expect("lock"), Vec::<String>::new(), "no request reached identity");
    assert_eq!(raw_status(&gw, "POST", "/api/v1/auth/login").await, 200, "a plain path still goes through");
    assert_eq!(*reached.lock().expect("lock"), ["/api/v1/auth/login"]);
}

/// Issue 10, item 6: `/health` told anyone the address of every replica. Anyone sees whether
/// each service is up; only an admin sees the replicas.
#[tokio::test]
async fn only_admins_see_where_the_replicas_are() {
    let identity = Identity::start().await;
    let catalog = crate::upstream("catalog").await;
    let gw = gateway(
        Settings::default().with("MARQUEE_IDENTITY_URL", &identity.url).with("MARQUEE_CATALOG_URL", &catalog),
    )
    .await;
    let customer = bearer(&identity.token(&uuid::Uuid::new_v4().to_string(), 300));
    let admin =
        bearer(&identity.token_as(&uuid::Uuid::new_v4().to_string(), platform::auth::Role::Admin, 300));
    for auth in [None, Some(customer.as_str())] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let (_, _, health) = get_json(&format!("{gw}/health"), &headers).await;
        assert_eq!(health["services"]["catalog"], "up", "{health}");
        assert!(!health.to_string().contains(&catalog), "{auth:?} sees no replica address: {health}");
    }
    let (_, _, health) = get_json(&format!("{gw}/health"), &[("authorization", admin.as_str())]).await;
    assert_eq!(health["services"]["catalog"][&catalog], "up", "an admin sees each replica: {health}");
}
