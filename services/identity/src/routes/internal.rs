//! Endpoints for other services, not for clients: the public keys and service tokens. The
//! gateway forwards only `/api/v1/...` and `/.well-known/jwks.json`, so `/internal` stays inside.

use axum::{Json, extract::State};
use platform::{
    Problem,
    auth::{Jwks, Role, ServiceTokenRequest, ServiceTokenResponse},
    extract::ApiJson,
};

use crate::{AppState, error::IdentityError, keys::SigningKeys};

/// Service tokens are short: a leaked one is useless within minutes.
const SERVICE_TOKEN_TTL_SECS: i64 = 300;

pub async fn jwks(State(state): State<AppState>) -> Result<Json<Jwks>, Problem> {
    Ok(Json(SigningKeys::published(&state.db).await?))
}

/// A short-lived token with role `service` for a service that knows the shared secret.
pub async fn service_token(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ServiceTokenRequest>,
) -> Result<ApiJson<ServiceTokenResponse>, Problem> {
    let expected = state.config.service_secret.as_bytes();
    let valid_name =
        !req.service.is_empty() && req.service.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    let secret_ok = !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(req.secret.as_bytes(), expected).is_ok();
    if !(valid_name && secret_ok) {
        return Err(IdentityError::InvalidServiceCredentials.into());
    }
    let token =
        state.keys.sign(&format!("service:{}", req.service), Role::Service, None, SERVICE_TOKEN_TTL_SECS)?;
    Ok(ApiJson(ServiceTokenResponse { access_token: token, expires_in: SERVICE_TOKEN_TTL_SECS as u64 }))
}
