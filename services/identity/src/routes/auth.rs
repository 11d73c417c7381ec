//! Register, sign in, refresh, sign out.

use std::net::SocketAddr;

use aws_lc_rs::digest;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use contracts::{CloudEvent, event_types::USER_REGISTERED, identity::UserRegistered};
use platform::{
    FieldError, Problem,
    auth::Role,
    extract::{ApiJson, PeerAddr},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState, SERVICE,
    domain::{self, Email},
    error::IdentityError,
    store::{self, NewUser, User},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = Session), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, ApiJson<Session>), Problem> {
    let mut errors = Vec::new();
    let email = Email::parse(&req.email).map_err(|e| errors.push(e)).ok();
    let name = domain::parse_name(&req.name).map_err(|e| errors.push(e)).ok();
    if let Err(e) = domain::check_password("password", &req.password) {
        errors.push(e);
    }
    let (Some(email), Some(name), true) = (email, name, errors.is_empty()) else {
        return Err(Problem::invalid(errors));
    };
    let hash = state.passwords.hash(req.password).await?;
    let user = create_user(&state, &email, &name, &hash, Role::Customer).await?;
    let session = open_session(&state, user, Uuid::now_v7()).await?;
    Ok((StatusCode::CREATED, ApiJson(session)))
}

/// Insert a user and its `user.registered` event in one transaction.
pub async fn create_user(
    state: &AppState,
    email: &Email,
    name: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, IdentityError> {
    let mut tx = state.db.pool.begin().await?;
    let user = store::insert_user(
        &mut tx,
        NewUser { email: &email.display, email_normalized: &email.normalized, name, password_hash, role },
    )
    .await?;
    let payload = UserRegistered {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        registered_at: user.created_at,
    };
    let event = CloudEvent::new(SERVICE, USER_REGISTERED, user.id.to_string(), &payload)
        .map_err(anyhow::Error::from)?;
    state.outbox.add(&mut tx, event).await?;
    tx.commit().await?;
    state.outbox.wake();
    Ok(user)
}

/// The client's address: the right-most `X-Forwarded-For` entry (the one our gateway added),
/// else the peer. Left-most entries are whatever the client claimed and are not trusted.
fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .or_else(|| peer.map(|p| p.ip().to_string()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<ApiJson<Session>, Problem> {
    let config = &state.config;
    // An unparseable email cannot match an account; it is a failed sign-in like any other.
    let normalized =
        Email::parse(&req.email).map(|e| e.normalized).unwrap_or_else(|_| req.email.trim().to_lowercase());
    let account_key = format!("account:{normalized}");
    let address_key = format!("address:{}", client_address(&headers, peer));
    for key in [&account_key, &address_key] {
        if let Some(retry_after_secs) = store::blocked_for(&state.db, key).await? {
            return Err(IdentityError::Throttled { retry_after_secs }.into());
        }
    }
    if req.password.chars().count() > domain::MAX_PASSWORD_CHARS {
        return Err(IdentityError::InvalidCredentials.into());
    }
    let found = store::credentials_by_email(&state.db, &normalized).await?;
    let (user, hash) = match found {
        Some(c) => (Some(c.user), Some(c.password_hash)),
        None => (None, None),
    };
    let valid = state.passwords.verify(req.password, hash).await?;
    let Some(user) = user.filter(|_| valid) else {
        let window = config.failure_window_secs * 1000;
        let lockout = config.lockout_secs * 1000;
        store::record_failure(&state.db, &account_key, config.max_failures_per_account, window, lockout)
            .await?;
        store::record_failure(&state.db, &address_key, config.max_failures_per_address, window, lockout)
            .await?;
        return Err(IdentityError::InvalidCredentials.into());
    };
    store::clear_failures(&state.db, &account_key).await?;
    Ok(ApiJson(open_session(&state, user, Uuid::now_v7()).await?))
}

/// A fresh access token and a refresh token in `family_id`.
async fn open_session(state: &AppState, user: User, family_id: Uuid) -> Result<Session, IdentityError> {
    let mut conn = state.db.pool.acquire().await?;
    let refresh_token = new_refresh_token();
    store::insert_refresh_token(
        &mut conn,
        &hash_token(&refresh_token),
        family_id,
        user.id,
        state.config.refresh_ttl_secs * 1000,
    )
    .await?;
    drop(conn);
    session_for(state, user, refresh_token)
}

fn session_for(state: &AppState, user: User, refresh_token: String) -> Result<Session, IdentityError> {
    let ttl = state.config.access_ttl_secs;
    let access_token = state.keys.sign(&user.id.to_string(), user.role, Some(&user.email), ttl)?;
    Ok(Session { user, access_token, refresh_token, token_type: "Bearer", expires_in: ttl })
}

/// 256 random bits, base64url.
fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Refresh tokens are stored as SHA-256: a leaked table gives no usable token.
fn hash_token(token: &str) -> String {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Trade a refresh token for a new pair. The old token stops working; presenting it again
/// revokes its whole family, since one of the two holders is not the user.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<ApiJson<Session>, Problem> {
    let mut tx = state.db.pool.begin().await?;
    let Some(token) = store::refresh_token_by_hash(&mut tx, &hash_token(&req.refresh_token)).await? else {
        return Err(IdentityError::InvalidRefreshToken.into());
    };
    if token.used || token.revoked || !store::mark_refresh_token_used(&mut tx, &token.id).await? {
        tx.rollback().await.ok();
        if !token.revoked {
            tracing::warn!(family_id = %token.family_id, user_id = %token.user_id, "refresh token reused; revoking its family");
        }
        store::revoke_family(&state.db, token.family_id).await?;
        return Err(IdentityError::InvalidRefreshToken.into());
    }
    if token.expires_at <= platform::time::now_ms() {
        return Err(IdentityError::InvalidRefreshToken.into());
    }
    let new_token = new_refresh_token();
    store::insert_refresh_token(
        &mut tx,
        &hash_token(&new_token),
        token.family_id,
        token.user_id,
        state.config.refresh_ttl_secs * 1000,
    )
    .await?;
    tx.commit().await?;
    // The role and email may have changed since sign-in: read them now.
    let user =
        store::user_by_id(&state.db, token.user_id).await?.ok_or(IdentityError::InvalidRefreshToken)?;
    Ok(ApiJson(session_for(&state, user, new_token)?))
}

/// Sign out: the refresh token's family stops working. Always 204, known token or not.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest, responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode, Problem> {
    let mut conn = state.db.pool.acquire().await?;
    let token = store::refresh_token_by_hash(&mut conn, &hash_token(&req.refresh_token)).await?;
    drop(conn);
    if let Some(token) = token {
        store::revoke_family(&state.db, token.family_id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// For `PATCH /users/me`: check the current password with the same throttle as sign-in.
pub async fn check_current_password(
    state: &AppState,
    user: &User,
    given: Option<&str>,
) -> Result<(), Problem> {
    let key = format!("account:{}", user.email.to_lowercase());
    if let Some(retry_after_secs) = store::blocked_for(&state.db, &key).await? {
        return Err(IdentityError::Throttled { retry_after_secs }.into());
    }
    let Some(given) = given else {
        return Err(Problem::invalid(vec![FieldError::new(
            "current_password",
            "is required to change the password",
        )]));
    };
    let hash = store::password_hash(&state.db, user.id).await?;
    if state.passwords.verify(given.to_owned(), hash).await? {
        return Ok(());
    }
    let c = &state.config;
    store::record_failure(
        &state.db,
        &key,
        c.max_failures_per_account,
        c.failure_window_secs * 1000,
        c.lockout_secs * 1000,
    )
    .await?;
    Err(Problem::invalid(vec![FieldError::new("current_password", "is incorrect")]))
}
