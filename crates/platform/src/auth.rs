//! Access tokens: EdDSA JWTs signed by identity, verified by every service against identity's
//! JWKS (`/.well-known/jwks.json`), so a request that skips the gateway is still checked.
//!
//! The key set is cached and fetched again when a token names an unknown `kid` (identity made a
//! new key), at most once per [`REFRESH_MIN_INTERVAL`] so forged `kid`s cannot make us hammer
//! identity: a token whose key is unknown waits for the next fetch rather than being refused
//! because the last one was recent. It is also fetched again once it is [`KEYS_MAX_AGE`] old, so a
//! key identity retired stops being accepted here too. Only `EdDSA` is accepted: `alg: none` and
//! HMAC tokens are refused before any key is looked at.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Problem;

pub const ISSUER: &str = "marquee";
pub const AUDIENCE: &str = "marquee";
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(2);
/// A key set this old is fetched again before the next verification.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
    /// Another Marquee service calling on its own behalf.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
}

/// What an access token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// A user id, or `service:<name>` for a service token.
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// One public key of the set identity publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The raw public key, base64url without padding.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 401: no bearer token.
    #[error("missing bearer token")]
    Missing,
    /// 401: the token is malformed, expired, forged or uses a refused algorithm.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// 503: identity's keys could not be fetched.
    #[error("token keys unavailable: {0}")]
    KeysUnavailable(String),
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => Problem::unauthorized("send Authorization: Bearer <access_token>"),
            AuthError::Invalid(reason) => Problem::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "invalid-token",
                "The access token is not valid",
            )
            .detail(reason),
            AuthError::KeysUnavailable(_) => {
                Problem::unavailable("the identity service's keys are unavailable")
            }
        }
    }
}

/// Where a verifier gets the key set from when a token names a key it does not know.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    async fn fetch(&self) -> anyhow::Result<Jwks>;
}

/// identity's published JWKS, over HTTP.
struct RemoteJwks {
    url: String,
    http: crate::transport::Http,
}

#[async_trait::async_trait]
impl KeySource for RemoteJwks {
    async fn fetch(&self) -> anyhow::Result<Jwks> {
        let response = self.http.send(self.http.get(&self.url).timeout(Duration::from_secs(3))).await?;
        Ok(response.error_for_status()?.json().await?)
    }
}

/// No source: for a process that was not told where identity is. Every token is refused.
struct NoKeys;

#[async_trait::async_trait]
impl KeySource for NoKeys {
    async fn fetch(&self) -> anyhow::Result<Jwks> {
        anyhow::bail!("MARQUEE_IDENTITY_URL is not set")
    }
}

pub struct Verifier {
    source: Arc<dyn KeySource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When the keys in hand were fetched.
    loaded_at: RwLock<Option<Instant>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Verifier {
    /// Keys from `source`, fetched on first use and again on an unknown `kid`.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            keys: RwLock::default(),
            loaded_at: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// Verify against the JWKS at `identity_url/.well-known/jwks.json`.
    pub fn remote(identity_url: &str, http: crate::transport::Http) -> Self {
        let url = format!("{}/.well-known/jwks.json", identity_url.trim_end_matches('/'));
        Self::new(Arc::new(RemoteJwks { url, http }))
    }

    /// A verifier that refuses every token (no identity configured).
    pub fn without_keys() -> Self {
        Self::new(Arc::new(NoKeys))
    }

    /// Start with `jwks` in hand; go back to `source` for keys made later (identity reading its
    /// own database, where another replica may have added a key).
    pub fn preloaded(jwks: &Jwks, source: Arc<dyn KeySource>) -> anyhow::Result<Self> {
        let verifier = Self::new(source);
        verifier.replace_keys(jwks)?;
        Ok(verifier)
    }

    fn replace_keys(&self, jwks: &Jwks) -> anyhow::Result<()> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                continue;
            }
            let key = DecodingKey::from_ed_components(&jwk.x).with_context(|| format!("key {}", jwk.kid))?;
            keys.insert(jwk.kid.clone(), key);
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        *self.loaded_at.write().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    fn is_stale(&self) -> bool {
        self.loaded_at.read().unwrap_or_else(|p| p.into_inner()).is_none_or(|at| at.elapsed() > KEYS_MAX_AGE)
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(kid).cloned()
    }

    /// Fetch the key set again unless that was done very recently.
    async fn refresh(&self) -> Result<(), AuthError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFRESH_MIN_INTERVAL) {
            return Ok(());
        }
        self.fetch_holding(&mut last).await
    }

    /// Fetch the key set for a token naming `kid`, a key not in hand: if a fetch began after the
    /// token arrived (`arrived`), its answer stands; otherwise wait out the interval and fetch.
    /// A key made just after the last fetch is then found, and a stream of forged `kid`s still
    /// costs identity one fetch per interval: they queue here, and each finds the fetch that
    /// began after it arrived.
    async fn refresh_for(&self, kid: &str, arrived: Instant) -> Result<(), AuthError> {
        let mut last = self.last_fetch.lock().await;
        if self.key(kid).is_some() || last.is_some_and(|t| t >= arrived) {
            return Ok(());
        }
        if let Some(t) = *last {
            tokio::time::sleep(REFRESH_MIN_INTERVAL.saturating_sub(t.elapsed())).await;
        }
        self.fetch_holding(&mut last).await
    }

    async fn fetch_holding(&self, last: &mut Option<Instant>) -> Result<(), AuthError> {
        *last = Some(Instant::now());
        let jwks = self.source.fetch().await.map_err(|e| {
            tracing::warn!(error = format!("{e:#}"), "fetching the JWKS failed");
            AuthError::KeysUnavailable(e.to_string())
        })?;
        self.replace_keys(&jwks).map_err(|e| AuthError::KeysUnavailable(e.to_string()))
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let arrived = Instant::now();
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
        let key = match self.key(&kid) {
            // Old keys in hand: fetch again first (identity may have retired this one); keep the
            // ones in hand if identity cannot be reached.
            Some(_) if self.is_stale() => {
                let _ = self.refresh().await;
                self.key(&kid).ok_or_else(|| AuthError::Invalid("unknown signing key".into()))?
            }
            Some(key) => key,
            None => {
                let had_keys = !self.keys.read().unwrap_or_else(|p| p.into_inner()).is_empty();
                match self.refresh_for(&kid, arrived).await {
                    Ok(()) => {}
                    // With keys in hand, an unknown kid is the token's fault, not identity's.
                    Err(_) if had_keys => {}
                    Err(e) => return Err(e),
                }
                self.key(&kid).ok_or_else(|| AuthError::Invalid("unknown signing key".into()))?
            }
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}

/// The bearer token of a request, if it sends one; a malformed Authorization header is an error.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Invalid("malformed Authorization header".into()))?;
    let (scheme, token) =
        value.split_once(' ').ok_or(AuthError::Invalid("expected a Bearer token".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Invalid("expected a Bearer token".into()));
    }
    Ok(Some(token.trim()))
}

async fn claims_of(parts: &Parts) -> Result<Option<Claims>, Problem> {
    let Some(token) = bearer(&parts.headers)? else {
        return Ok(None);
    };
    let verifier = parts
        .extensions
        .get::<Arc<Verifier>>()
        .ok_or_else(|| Problem::from(anyhow::anyhow!("no Verifier in request extensions")))?;
    Ok(Some(verifier.verify(token).await?))
}

/// A signed-in user (customer or admin). Service tokens are not users.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
    pub email: Option<String>,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The user may see a resource owned by `owner`: theirs, or any for an admin.
    pub fn can_access(&self, owner: Uuid) -> bool {
        self.is_admin() || self.id == owner
    }

    fn from_claims(claims: Claims) -> Result<Self, Problem> {
        if claims.role == Role::Service {
            return Err(Problem::forbidden("service tokens cannot act as a user"));
        }
        let id = claims
            .sub
            .parse()
            .map_err(|_| Problem::from(AuthError::Invalid("subject is not a user id".into())))?;
        Ok(Self { id, role: claims.role, email: claims.email })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match claims_of(parts).await? {
            Some(claims) => Self::from_claims(claims),
            None => Err(AuthError::Missing.into()),
        }
    }
}

/// A user when a token is sent, nobody when none is. A token that is sent but bad is still a
/// 401: `Option<AuthUser>` would swallow it and quietly treat a forged token as anonymous.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match claims_of(parts).await? {
            Some(claims) => Ok(Self(Some(AuthUser::from_claims(claims)?))),
            None => Ok(Self(None)),
        }
    }
}

/// An admin; anyone else signed in gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.is_admin() { Ok(Self(user)) } else { Err(Problem::forbidden("administrators only")) }
    }
}

/// Another service, authenticated by a service token; users get 403.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    pub service: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = claims_of(parts).await?.ok_or(AuthError::Missing)?;
        match (claims.role, claims.sub.strip_prefix("service:")) {
            (Role::Service, Some(name)) => Ok(Self { service: name.to_owned() }),
            _ => Err(Problem::forbidden("services only")),
        }
    }
}

/// Another service or an admin (`POST /payments`, refunds); customers get 403.
#[derive(Debug, Clone)]
pub enum ServiceOrAdmin {
    Service(String),
    Admin(AuthUser),
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceOrAdmin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = claims_of(parts).await?.ok_or(AuthError::Missing)?;
        match (claims.role, claims.sub.strip_prefix("service:")) {
            (Role::Service, Some(name)) => Ok(Self::Service(name.to_owned())),
            (Role::Admin, _) => Ok(Self::Admin(AuthUser::from_claims(claims)?)),
            _ => Err(Problem::forbidden("services and administrators only")),
        }
    }
}

impl ServiceOrAdmin {
    /// Who is asking, for scoping idempotency keys: `service:<name>` or the admin's id.
    pub fn caller(&self) -> String {
        match self {
            Self::Service(name) => format!("service:{name}"),
            Self::Admin(user) => user.id.to_string(),
        }
    }
}

/// A signed-in user or another service: for reads that services make on users' behalf.
#[derive(Debug, Clone)]
pub enum Caller {
    User(AuthUser),
    Service(String),
}

impl Caller {
    /// Admins and services see everything; users only what is theirs.
    pub fn sees_all(&self) -> bool {
        match self {
            Self::User(u) => u.is_admin(),
            Self::Service(_) => true,
        }
    }

    pub fn can_access(&self, owner: Uuid) -> bool {
        match self {
            Self::User(u) => u.can_access(owner),
            Self::Service(_) => true,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = claims_of(parts).await?.ok_or(AuthError::Missing)?;
        match (claims.role, claims.sub.strip_prefix("service:")) {
            (Role::Service, Some(name)) => Ok(Self::Service(name.to_owned())),
            _ => Ok(Self::User(AuthUser::from_claims(claims)?)),
        }
    }
}

/// Tokens for calling other services: asked of identity with the shared service secret and kept
/// until shortly before they expire.
/// Service `service`'s own credential: HMAC-SHA-256 of its name under the deployment's service
/// secret, in hex. Only identity needs the secret, to check credentials; every other service is
/// given its own credential (`MARQUEE_SERVICE_CREDENTIAL`, from `marquee keys service-credential
/// <service>`), so a leaked one lets its holder act as that one service only.
pub fn service_credential(secret: &str, service: &str) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("marquee service credential v1\0{service}").as_bytes());
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// This process's credential as `service`: `MARQUEE_SERVICE_CREDENTIAL`, else derived from
/// `MARQUEE_SERVICE_SECRET` when the process has it (`marquee up`, a single-secret setup), else
/// empty (no service tokens).
pub fn own_credential(settings: &crate::Settings, service: &str) -> String {
    match (settings.get("MARQUEE_SERVICE_CREDENTIAL"), settings.get("MARQUEE_SERVICE_SECRET")) {
        (Some(credential), _) if !credential.trim().is_empty() => credential.trim().to_owned(),
        (_, Some(secret)) if !secret.trim().is_empty() => service_credential(secret.trim(), service),
        _ => String::new(),
    }
}

pub struct ServiceTokens {
    service: String,
    identity_url: Option<String>,
    secret: String,
    http: crate::transport::Http,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceTokenRequest {
    pub service: String,
    pub secret: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceTokenResponse {
    pub access_token: String,
    pub expires_in: u64,
}

impl ServiceTokens {
    pub fn new(
        service: &str,
        identity_url: Option<String>,
        secret: String,
        http: crate::transport::Http,
    ) -> Self {
        Self { service: service.to_owned(), identity_url, secret, http, cached: Default::default() }
    }

    pub async fn token(&self) -> anyhow::Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, valid_until)) = cached.as_ref()
            && Instant::now() < *valid_until
        {
            return Ok(token.clone());
        }
        let base = self.identity_url.as_deref().context("no identity URL configured")?;
        let request = self
            .http
            .post(format!("{base}/internal/service-token"))
            .timeout(Duration::from_secs(3))
            .json(&ServiceTokenRequest { service: self.service.clone(), secret: self.secret.clone() });
        let response: ServiceTokenResponse = self
            .http
            .send(request)
            .await
            .context("asking identity for a service token")?
            .error_for_status()
            .context("identity refused a service token")?
            .json()
            .await?;
        // Renew a minute early so a token never expires on the way.
        let valid_for = Duration::from_secs(response.expires_in.saturating_sub(60).max(1));
        *cached = Some((response.access_token.clone(), Instant::now() + valid_for));
        Ok(response.access_token)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    /// One key, `known`, and a count of the fetches.
    struct Counting(AtomicUsize);

    #[async_trait::async_trait]
    impl KeySource for Counting {
        async fn fetch(&self) -> anyhow::Result<Jwks> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
            let jwk = Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x,
                kid: "known".into(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            };
            Ok(Jwks { keys: vec![jwk] })
        }
    }

    fn naming(kid: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#));
        format!("{header}.e30.c2ln")
    }

    #[tokio::test]
    async fn forged_kids_cost_identity_one_fetch_per_interval() {
        let source = Arc::new(Counting(AtomicUsize::new(0)));
        let verifier = Arc::new(Verifier::new(source.clone()));
        assert!(verifier.verify(&naming("known")).await.is_err(), "a bad signature");
        assert_eq!(source.0.load(Ordering::SeqCst), 1, "first use fetches");
        let forged = (0..20).map(|i| {
            let verifier = verifier.clone();
            tokio::spawn(async move { verifier.verify(&naming(&format!("forged-{i}"))).await })
        });
        for outcome in futures_util::future::join_all(forged).await {
            let refused = outcome.expect("joined");
            assert!(matches!(refused, Err(AuthError::Invalid(_))), "{refused:?}");
        }
        assert_eq!(source.0.load(Ordering::SeqCst), 2, "twenty forged kids, one more fetch");
    }
}
