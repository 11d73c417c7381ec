//! Accounts and sessions: registering, signing in (the same failure for an unknown email and a
//! wrong password, and a throttle per account and per client address), rotating refresh tokens
//! (a reuse revokes the family), signing out, and checking the current password before a change.

use aws_lc_rs::digest;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use contracts::{event_types::USER_REGISTERED, identity::UserRegistered};
use platform::{FieldError, auth::Role};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{self, Email},
    error::IdentityError,
    store::{self, NewUser, User},
};

/// A signed-in user: what registering, signing in and refreshing answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// What `POST /auth/register` asks.
pub struct Registration<'a> {
    pub email: &'a str,
    pub password: String,
    pub name: &'a str,
}

/// Create a customer account and sign it in. Every invalid field is named at once.
pub async fn register(state: &AppState, input: Registration<'_>) -> Result<Session, IdentityError> {
    let mut errors = Vec::new();
    let email = Email::parse(input.email).map_err(|e| errors.push(e)).ok();
    let name = domain::parse_name(input.name).map_err(|e| errors.push(e)).ok();
    if let Err(e) = domain::check_password("password", &input.password) {
        errors.push(e);
    }
    let (Some(email), Some(name), true) = (email, name, errors.is_empty()) else {
        return Err(IdentityError::Invalid(errors));
    };
    let hash = state.passwords.hash(input.password).await?;
    let user = create_user(state, &email, &name, &hash, Role::Customer).await?;
    open_session(state, user, Uuid::now_v7()).await
}

/// Insert a user and its `user.registered` event in one unit of work. The unique key on the
/// normalized email decides a race between two registrations of one address (409 for the loser).
pub async fn create_user(
    state: &AppState,
    email: &Email,
    name: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, IdentityError> {
    let mut work = state.effects.begin(&state.db).await?;
    let new =
        NewUser { email: &email.display, email_normalized: &email.normalized, name, password_hash, role };
    let user = store::insert_user(work.conn(), new).await?;
    let payload = UserRegistered {
        user_id: user.id,
        email: user.email.clone(),
        name: user.name.clone(),
        registered_at: user.created_at,
    };
    work.emit(USER_REGISTERED, user.id.to_string(), &payload).await?;
    work.commit().await?;
    Ok(user)
}

/// What `POST /auth/login` asks; `client` is the caller's address, for the per-address throttle.
pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: String,
    pub client: &'a str,
}

/// Sign in with email and password. A locked account or address is a 429 before the password
/// is even checked; an unknown email costs as long as a wrong password (the dummy hash).
pub async fn login(state: &AppState, input: SignIn<'_>) -> Result<Session, IdentityError> {
    // An unparseable email cannot match an account; it is a failed sign-in like any other.
    let normalized =
        Email::parse(input.email).map(|e| e.normalized).unwrap_or_else(|_| input.email.trim().to_lowercase());
    let account_key = format!("account:{normalized}");
    let address_key = format!("address:{}", input.client);
    for key in [&account_key, &address_key] {
        if let Some(retry_after_secs) = store::blocked_for(&state.db, key).await? {
            return Err(IdentityError::Throttled { retry_after_secs });
        }
    }
    // No account has a longer password, and hashing a huge one would be a cheap attack.
    if input.password.chars().count() > domain::MAX_PASSWORD_CHARS {
        return Err(IdentityError::InvalidCredentials);
    }
    let found = store::credentials_by_email(&state.db, &normalized).await?;
    let (user, hash) = match found {
        Some(c) => (Some(c.user), Some(c.password_hash)),
        None => (None, None),
    };
    let valid = state.passwords.verify(input.password, hash).await?;
    let Some(user) = user.filter(|_| valid) else {
        count_failure(state, &account_key, state.config.max_failures_per_account).await?;
        count_failure(state, &address_key, state.config.max_failures_per_address).await?;
        return Err(IdentityError::InvalidCredentials);
    };
    store::clear_failures(&state.db, &account_key).await?;
    open_session(state, user, Uuid::now_v7()).await
}

/// Count a failed attempt for `key`; at `limit` within the window it is locked out.
async fn count_failure(state: &AppState, key: &str, limit: i64) -> anyhow::Result<()> {
    let c = &state.config;
    store::record_failure(&state.db, key, limit, c.failure_window_secs * 1000, c.lockout_secs * 1000).await
}

/// Trade a refresh token for a new pair. The old token stops working; presenting it again
/// revokes its whole family, since one of the two holders is not the user.
pub async fn refresh(state: &AppState, presented: &str) -> Result<Session, IdentityError> {
    // A write transaction from the start: two refreshes with one token take turns, and the
    // second sees the first one's mark (a reuse) instead of failing to upgrade a read lock.
    let mut tx = state.db.begin_write().await?;
    let Some(token) = store::refresh_token_by_hash(&mut tx, &hash_token(presented)).await? else {
        return Err(IdentityError::InvalidRefreshToken);
    };
    if token.used || token.revoked || !store::mark_refresh_token_used(&mut tx, &token.id).await? {
        // The revocation must outlive this transaction: end it first, then revoke on its own.
        tx.rollback().await.ok();
        if !token.revoked {
            tracing::warn!(family_id = %token.family_id, user_id = %token.user_id, "refresh token reused; revoking its family");
        }
        store::revoke_family(&state.db, token.family_id).await?;
        return Err(IdentityError::InvalidRefreshToken);
    }
    if token.expires_at <= platform::time::now_ms() {
        return Err(IdentityError::InvalidRefreshToken);
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
    session_for(state, user, new_token)
}

/// Sign out: the refresh token's family stops working. A token nobody knows is no error, so
/// signing out says nothing about which tokens exist.
pub async fn logout(state: &AppState, presented: &str) -> Result<(), IdentityError> {
    let mut conn = state.db.pool.acquire().await?;
    let token = store::refresh_token_by_hash(&mut conn, &hash_token(presented)).await?;
    drop(conn);
    if let Some(token) = token {
        store::revoke_family(&state.db, token.family_id).await?;
    }
    Ok(())
}

/// Before a password change: check the current password, with the same throttle as sign-in
/// (a stolen access token must not become a way to guess the password).
pub async fn check_current_password(
    state: &AppState,
    user: &User,
    given: Option<&str>,
) -> Result<(), IdentityError> {
    let key = format!("account:{}", user.email.to_lowercase());
    if let Some(retry_after_secs) = store::blocked_for(&state.db, &key).await? {
        return Err(IdentityError::Throttled { retry_after_secs });
    }
    let Some(given) = given else {
        return Err(IdentityError::Invalid(vec![FieldError::new(
            "current_password",
            "is required to change the password",
        )]));
    };
    let hash = store::password_hash(&state.db, user.id).await?;
    if state.passwords.verify(given.to_owned(), hash).await? {
        return Ok(());
    }
    count_failure(state, &key, state.config.max_failures_per_account).await?;
    Err(IdentityError::Invalid(vec![FieldError::new("current_password", "is incorrect")]))
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
