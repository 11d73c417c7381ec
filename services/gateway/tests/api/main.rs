//! The gateway in front of stand-in upstreams: forwarding, headers passed on, replicas taken in
//! turn, what happens when an upstream is down or slow, rate limits and aggregations.

mod aggregate;
mod edge;
mod resilience;
mod routing;
mod web;

use std::net::SocketAddr;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::{
    Json, Router,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use platform::{
    Platform, Settings,
    auth::{AUDIENCE, Claims, ISSUER, Role},
};
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

/// A stand-in identity publishing one key, and tokens signed with it.
pub struct Identity {
    pub url: String,
    kid: String,
    key: jsonwebtoken::EncodingKey,
}

impl Identity {
    pub async fn start() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        let kid = uuid::Uuid::new_v4().to_string();
        let jwks = json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        }]});
        let app = Router::new()
            .route("/.well-known/jwks.json", get(move || async move { Json(jwks.clone()) }))
            .route("/health/ready", get(|| async { "ok" }))
            .route(
                "/api/v1/users/me",
                get(|headers: HeaderMap| async move {
                    // Good enough for a stand-in: the gateway has verified the token already.
                    match headers.get("authorization") {
                        Some(_) => Json(json!({"id": "u1", "email": "ada@example.com"})).into_response(),
                        None => StatusCode::UNAUTHORIZED.into_response(),
                    }
                }),
            );
        let url = serve(app).await;
        Self { url, kid, key: jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()) }
    }

    pub fn token(&self, sub: &str, expires_in: i64) -> String {
        self.token_as(sub, Role::Customer, expires_in)
    }

    pub fn token_as(&self, sub: &str, role: Role, expires_in: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: sub.into(),
            role,
            email: None,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + expires_in,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signed")
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}
