//! What other services ask identity for: the public keys to verify access tokens with, and
//! short-lived service tokens for a service that knows the shared secret.

use platform::auth::{Jwks, Role, ServiceTokenResponse};

use crate::{
    AppState,
    error::IdentityError,
    throttle::{self, Reservation},
};

/// Service tokens are short: a leaked one is useless within minutes.
pub const SERVICE_TOKEN_TTL_SECS: i64 = 300;

/// The published public keys, read each time so a key another replica made is published too.
pub async fn jwks(state: &AppState) -> Result<Jwks, IdentityError> {
    Ok(state.keys.published(platform::time::now_ms()).await?)
}

/// A token with role `service` for `service`, when `credential` is that service's own
/// ([`platform::auth::service_credential`] under the deployment's secret, which only identity
/// holds). An empty configured secret accepts nobody; credentials are compared in constant time.
/// Failures are counted per client address and slow it down like failed sign-ins.
pub async fn service_token(
    state: &AppState,
    service: &str,
    credential: &str,
    client: &str,
) -> Result<ServiceTokenResponse, IdentityError> {
    let (key, limit, now) =
        (format!("service-token:{client}"), state.config.address_throttle(), platform::time::now_ms());
    if let Reservation::Refused { retry_after_secs } = throttle::reserve(&state.db, &key, limit, now).await? {
        return Err(IdentityError::Throttled { retry_after_secs });
    }
    let secret = &state.config.service_secret;
    let valid_name = contracts::services::spec(service).is_some_and(|s| s.name != "gateway");
    let credential_ok = !secret.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            credential.as_bytes(),
            platform::auth::service_credential(secret, service).as_bytes(),
        )
        .is_ok();
    if !(valid_name && credential_ok) {
        throttle::failed(&state.db, &key, limit, now).await?;
        return Err(IdentityError::InvalidServiceCredentials);
    }
    throttle::succeeded(&state.db, &key).await?;
    let token =
        state.keys.sign(&format!("service:{service}"), Role::Service, None, SERVICE_TOKEN_TTL_SECS)?;
    Ok(ServiceTokenResponse { access_token: token, expires_in: SERVICE_TOKEN_TTL_SECS as u64 })
}
