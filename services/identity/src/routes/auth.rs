//! Register, sign in, refresh, sign out: extract, call [`crate::ops::auth`], answer.

use std::net::SocketAddr;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use platform::{
    Problem,
    extract::{ApiJson, PeerAddr},
};
use serde::Deserialize;

use crate::{
    AppState,
    ops::auth::{self, Session},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// One `@`, a dotted domain, no spaces (but around it) or control characters.
    #[schema(
        max_length = 254,
        pattern = "^\\s*[^\\s@\\x00-\\x1f\\x7f-\\x9f]+@(?:[^\\s@.\\x00-\\x1f\\x7f-\\x9f-](?:[^\\s@.\\x00-\\x1f\\x7f-\\x9f]*[^\\s@.\\x00-\\x1f\\x7f-\\x9f-])?\\.)+[^\\s@.\\x00-\\x1f\\x7f-\\x9f-](?:[^\\s@.\\x00-\\x1f\\x7f-\\x9f]*[^\\s@.\\x00-\\x1f\\x7f-\\x9f-])?\\s*$",
        example = "ada@example.com"
    )]
    pub email: String,
    #[schema(min_length = 8, max_length = 128, example = "analytical-engine")]
    pub password: String,
    /// 1 to 100 characters, not all spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Ada Lovelace"
    )]
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = Session), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem), (status = 503, body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, ApiJson<Session>), Problem> {
    let client = client_address(&state, &headers, peer);
    let input =
        auth::Registration { email: &req.email, password: req.password, name: &req.name, client: &client };
    Ok((StatusCode::CREATED, ApiJson(auth::register(&state, input).await?)))
}

/// The client's address: the peer, or when the peer is one of ours (`MARQUEE_TRUSTED_PROXIES`,
/// the gateway) the address it forwarded for. Anyone else's `X-Forwarded-For` is their claim.
pub(crate) fn client_address(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    peer.map_or_else(
        || "unknown".to_owned(),
        |peer| state.config.trusted_proxies.client_ip(peer.ip(), headers).to_string(),
    )
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem), (status = 429, body = Problem),
        (status = 503, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<ApiJson<Session>, Problem> {
    let client = client_address(&state, &headers, peer);
    let input = auth::SignIn { email: &req.email, password: req.password, client: &client };
    Ok(ApiJson(auth::login(&state, input).await?))
}

/// Trade a refresh token for a new pair. The old token stops working; presenting it again
/// revokes its whole family, since one of the two holders is not the user.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<ApiJson<Session>, Problem> {
    Ok(ApiJson(auth::refresh(&state, &req.refresh_token).await?))
}

/// Sign out: the refresh token's family stops working. Always 204, known token or not.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest, responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode, Problem> {
    auth::logout(&state, &req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
