//! The platform's auth extractors and service tokens, with real tokens from a running identity.

use std::sync::Arc;

use axum::{Extension, Router, body::Body, http::Request, routing::get};
use platform::auth::{AdminUser, AuthUser, MaybeAuthUser, ServiceCaller, ServiceTokens, Verifier};
use testkit::TestSystem;
use tower::ServiceExt;

/// A service of our own verifying against identity over HTTP, as every other service does.
fn probe_app(sys: &TestSystem) -> Router {
    let verifier = Arc::new(Verifier::remote(
        &sys.service_url("identity"),
        platform::transport::Http::new(reqwest::Client::new()),
    ));
    Router::new()
        .route("/user", get(|u: AuthUser| async move { u.id.to_string() }))
        .route("/admin", get(|AdminUser(u): AdminUser| async move { u.id.to_string() }))
        .route("/service", get(|s: ServiceCaller| async move { s.service }))
        .route(
            "/maybe",
            get(|MaybeAuthUser(u): MaybeAuthUser| async move {
                u.map_or("anonymous".to_owned(), |u| u.id.to_string())
            }),
        )
        .layer(Extension(verifier))
}

async fn call(app: &Router, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = app.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("infallible");
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn each_extractor_admits_only_its_callers() {
    let sys = TestSystem::start().await;
    let app = probe_app(&sys);
    let (customer, customer_id) = sys.user_token().await;
    let admin = sys.admin_token().await;
    let secret = sys.settings.get("MARQUEE_SERVICE_SECRET").expect("secret");
    let credential = platform::auth::service_credential(secret, "booking");
    let tokens = ServiceTokens::new(
        "booking",
        Some(sys.service_url("identity")),
        credential,
        platform::transport::Http::new(reqwest::Client::new()),
    );
    let service = tokens.token().await.expect("a service token");
    assert_eq!(tokens.token().await.expect("cached"), service, "kept until near expiry");

    assert_eq!(call(&app, "/user", Some(&customer)).await, (200, customer_id.clone()));
    assert_eq!(call(&app, "/user", None).await.0, 401);
    assert_eq!(call(&app, "/user", Some(&service)).await.0, 403, "a service is not a user");
    assert_eq!(call(&app, "/admin", Some(&customer)).await.0, 403);
    assert_eq!(call(&app, "/admin", Some(&admin)).await.0, 200);
    assert_eq!(call(&app, "/service", Some(&service)).await, (200, "booking".to_owned()));
    assert_eq!(call(&app, "/service", Some(&admin)).await.0, 403);
    assert_eq!(call(&app, "/service", None).await.0, 401);
    assert_eq!(call(&app, "/maybe", None).await, (200, "anonymous".to_owned()));
    assert_eq!(call(&app, "/maybe", Some(&customer)).await, (200, customer_id));
    assert_eq!(call(&app, "/maybe", Some("forged.token.here")).await.0, 401, "a bad token is not anonymous");
}

#[tokio::test]
async fn metrics_count_requests_by_service_and_route() {
    let sys = TestSystem::start().await;
    sys.register("counted@example.com").await;
    let metrics = sys.http.get(format!("{}/metrics", sys.gateway)).send().await.expect("sent");
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("text");
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains(r#"service="identity""#)
            && l.contains(r#"route="/api/v1/auth/register""#)
            && l.contains(r#"status="201""#)),
        "{text}"
    );
}

#[tokio::test]
async fn answers_are_compressed_for_clients_that_ask() {
    let sys = TestSystem::start().await;
    let url = format!("{}/openapi.json", sys.service_url("identity"));
    let res = sys.http.get(url).header("accept-encoding", "gzip").send().await.expect("sent");
    assert_eq!(res.headers().get("content-encoding").map(|v| v.as_bytes()), Some(&b"gzip"[..]));
}
