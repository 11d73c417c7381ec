//! What other services ask identity for: the public keys to verify access tokens with, and
//! short-lived service tokens for a service that knows the shared secret.

use platform::auth::{Jwks, Role, ServiceTokenResponse};

use crate::{AppState, error::IdentityError};

/// Service tokens are short: a leaked one is useless within minutes.
pub const SERVICE_TOKEN_TTL_SECS: i64 = 300;

/// The published public keys, read each time so a key another replica made is published too.
pub async fn jwks(state: &AppState) -> Result<Jwks, IdentityError> {
    Ok(state.keys.published(platform::time::now_ms()).await?)
}

/// A token with role `service` for `service`, when `secret` is the shared secret. An empty
/// configured secret accepts nobody; the secret is compared in constant time.
pub fn service_token(
    state: &AppState,
    service: &str,
    secret: &str,
) -> Result<ServiceTokenResponse, IdentityError> {
    let expected = state.config.service_secret.as_bytes();
    let valid_name = !service.is_empty() && service.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    let secret_ok = !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(secret.as_bytes(), expected).is_ok();
    if !(valid_name && secret_ok) {
        return Err(IdentityError::InvalidServiceCredentials);
    }
    let token =
        state.keys.sign(&format!("service:{service}"), Role::Service, None, SERVICE_TOKEN_TTL_SECS)?;
    Ok(ServiceTokenResponse { access_token: token, expires_in: SERVICE_TOKEN_TTL_SECS as u64 })
}
