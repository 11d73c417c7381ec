//! Endpoints for other services, not for clients: the public keys and service tokens. The
//! gateway forwards only `/api/v1/...` and `/.well-known/jwks.json`, so `/internal` stays inside.

use axum::{Json, extract::State};
use platform::{
    Problem,
    auth::{Jwks, ServiceTokenRequest, ServiceTokenResponse},
    extract::{ApiJson, PeerAddr},
};

use crate::{AppState, ops::services};

pub async fn jwks(State(state): State<AppState>) -> Result<Json<Jwks>, Problem> {
    Ok(Json(services::jwks(&state).await?))
}

/// A short-lived token with role `service` for a service that shows its own credential.
pub async fn service_token(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<ServiceTokenRequest>,
) -> Result<ApiJson<ServiceTokenResponse>, Problem> {
    let client = super::auth::client_address(&state, &headers, peer);
    Ok(ApiJson(services::service_token(&state, &req.service, &req.secret, &client).await?))
}
