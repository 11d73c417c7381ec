//! Endpoints for other services, not for clients: the public keys and service tokens. The
//! gateway forwards only `/api/v1/...` and `/.well-known/jwks.json`, so `/internal` stays inside.

use axum::{Json, extract::State};
use platform::{
    Problem,
    auth::{Jwks, ServiceTokenRequest, ServiceTokenResponse},
    extract::ApiJson,
};

use crate::{AppState, ops::services};

pub async fn jwks(State(state): State<AppState>) -> Result<Json<Jwks>, Problem> {
    Ok(Json(services::jwks(&state).await?))
}

/// A short-lived token with role `service` for a service that knows the shared secret.
pub async fn service_token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ServiceTokenRequest>,
) -> Result<ApiJson<ServiceTokenResponse>, Problem> {
    Ok(ApiJson(services::service_token(&state, &req.service, &req.secret)?))
}
