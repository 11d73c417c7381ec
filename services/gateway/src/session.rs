//! The web UI's sessions: the refresh token lives in a cookie the page's scripts cannot read
//! (`HttpOnly`, `SameSite=Strict`, sent only to `/ui/session`), and the access token only in
//! the page's memory. A script injected into the page could use a token while the page is open,
//! but never carry off the refresh token, which outlives it. API clients keep using
//! `/api/v1/auth/*` with tokens in JSON.
//!
//! Each endpoint relays to identity's (same limits, same problems) and moves the refresh token
//! between the JSON and the cookie. Every request must carry `X-Requested-With: marquee`: a
//! cross-site page cannot send that header without a CORS preflight the gateway never grants,
//! so it can neither sign a visitor in to another account nor refresh their session.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header},
    response::{IntoResponse, Response},
};
use platform::{Problem, extract::PeerAddr};
use serde_json::Value;

use crate::{Gateway, proxy};

pub const COOKIE: &str = "marquee_refresh";
const PATH: &str = "/ui/session";
const CSRF_HEADER: &str = "x-requested-with";
const CSRF_VALUE: &str = "marquee";

fn checked(headers: &HeaderMap) -> Result<(), Response> {
    if headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) == Some(CSRF_VALUE) {
        Ok(())
    } else {
        Err(Problem::forbidden(format!("send {CSRF_HEADER}: {CSRF_VALUE} (the web UI's requests do)"))
            .into_response())
    }
}

/// The refresh token from the request's cookie.
fn refresh_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// `Secure` when the client reached the gateway over TLS (directly or through a proxy that says
/// so); a plain `http://127.0.0.1` would never send a secure cookie back.
fn cookie(headers: &HeaderMap, value: &str, max_age: i64) -> HeaderValue {
    let secure = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https");
    let cookie = format!(
        "{COOKIE}={value}; Path={PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("marquee_refresh=; Max-Age=0"))
}

/// POST `path` to identity with `body`, as the caller (its address goes along for the limits).
async fn relay(
    gateway: &Gateway,
    peer: Option<std::net::SocketAddr>,
    path: &'static str,
    body: Bytes,
) -> Response {
    let Some(upstream) = gateway.upstream("identity").filter(|u| u.is_deployed()) else {
        return Problem::unavailable("the identity service is not deployed").into_response();
    };
    let mut request = Request::new(proxy::Outgoing::Whole(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = axum::http::Uri::from_static(path);
    let h = request.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    proxy::send(gateway, upstream, request, peer).await
}

/// A session from identity, with its refresh token moved into the cookie.
async fn into_cookie(headers: &HeaderMap, response: Response, refresh_ttl: i64) -> Response {
    let status = response.status();
    if !status.is_success() {
        return response;
    }
    let Ok(bytes) = axum::body::to_bytes(response.into_body(), 1024 * 1024).await else {
        return Problem::unavailable("identity's answer was cut off").into_response();
    };
    let Ok(Value::Object(mut session)) = serde_json::from_slice::<Value>(&bytes) else {
        return Problem::unavailable("identity's answer was not a session").into_response();
    };
    let Some(Value::String(token)) = session.remove("refresh_token") else {
        return Problem::unavailable("identity's answer had no refresh token").into_response();
    };
    let mut answer = (status, axum::Json(Value::Object(session))).into_response();
    answer.headers_mut().insert(header::SET_COOKIE, cookie(headers, &token, refresh_ttl));
    answer.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// `POST /ui/session`: sign in with `{email, password}`.
pub async fn sign_in(
    State(g): State<std::sync::Arc<Gateway>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    open(&g, peer, &headers, "/api/v1/auth/login", body).await
}

/// `POST /ui/session/register`: create an account `{email, password, name}` and sign in.
pub async fn register(
    State(g): State<std::sync::Arc<Gateway>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    open(&g, peer, &headers, "/api/v1/auth/register", body).await
}

/// Ask identity for a session at `path` and keep its refresh token in the cookie.
async fn open(
    g: &Gateway,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
    path: &'static str,
    body: Bytes,
) -> Response {
    if let Err(refused) = checked(headers) {
        return refused;
    }
    into_cookie(headers, relay(g, peer, path, body).await, g.refresh_ttl_secs).await
}

/// `POST /ui/session/refresh`: a new access token for the cookie's refresh token, which identity
/// rotates (the old one is spent; reusing it ends the whole family).
pub async fn refresh(
    State(g): State<std::sync::Arc<Gateway>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = checked(&headers) {
        return refused;
    }
    let Some(token) = refresh_token(&headers) else {
        return Problem::unauthorized("not signed in").into_response();
    };
    let body = Bytes::from(serde_json::json!({ "refresh_token": token }).to_string());
    let response = relay(&g, peer, "/api/v1/auth/refresh", body).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        // Spent or revoked: forget it, so the page shows "signed out" rather than retrying.
        let mut response = response;
        response.headers_mut().insert(header::SET_COOKIE, cookie(&headers, "", 0));
        return response;
    }
    into_cookie(&headers, response, g.refresh_ttl_secs).await
}

/// `DELETE /ui/session`: sign out (identity revokes the refresh token) and drop the cookie.
pub async fn sign_out(
    State(g): State<std::sync::Arc<Gateway>>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = checked(&headers) {
        return refused;
    }
    if let Some(token) = refresh_token(&headers) {
        let body = Bytes::from(serde_json::json!({ "refresh_token": token }).to_string());
        let response = relay(&g, peer, "/api/v1/auth/logout", body).await;
        if response.status().is_server_error() {
            return response; // identity could not revoke it: keep the cookie, let the user retry
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&headers, "", 0));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_token_is_found_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers
            .insert(header::COOKIE, HeaderValue::from_static("theme=dark; marquee_refresh=abc.def; other=1"));
        assert_eq!(refresh_token(&headers).as_deref(), Some("abc.def"));
        headers.insert(header::COOKIE, HeaderValue::from_static("marquee_refresh="));
        assert_eq!(refresh_token(&headers), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_behind_tls() {
        let mut headers = HeaderMap::new();
        let plain = cookie(&headers, "t", 60);
        assert_eq!(plain, "marquee_refresh=t; Path=/ui/session; HttpOnly; SameSite=Strict; Max-Age=60");
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(cookie(&headers, "t", 60).to_str().is_ok_and(|c| c.ends_with("; Secure")));
    }
}
