//! Accounts and sessions: registering (limited per client address), signing in (the same
//! failure for an unknown email and a wrong password, throttled as [`crate::throttle`] says),
//! rotating refresh tokens (a reuse revokes the family), signing out, and checking the current
//! password before a change.

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
    throttle::{self, Reservation, Throttle},
};

fn now() -> i64 {
    platform::time::now_ms()
}

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

/// What `POST /auth/register` asks; `client` is the caller's address, for the limit.
pub struct Registration<'a> {
    pub email: &'a str,
    pub password: String,
    pub name: &'a str,
    pub client: &'a str,
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
    // Every registration that gets as far as hashing counts, made or not (a taken email too).
    if state.config.limits_address(input.client) {
        let (key, limit, now) =
            (format!("register:{}", input.client), state.config.registration_throttle(), now());
        if let Reservation::Refused { retry_after_secs } =
            throttle::reserve(&state.db, &key, limit, now).await?
        {
            return Err(IdentityError::TooManyRegistrations { retry_after_secs });
        }
        throttle::failed(&state.db, &key, limit, now).await?;
    }
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

/// Sign in with email and password. Each counter that applies reserves the attempt before the
/// password is checked (a 429 when one is spent); an unknown email costs as long as a wrong
/// password (the dummy hash).
pub async fn login(state: &AppState, input: SignIn<'_>) -> Result<Session, IdentityError> {
    // An unparseable email cannot match an account; it is a failed sign-in like any other.
    let normalized =
        Email::parse(input.email).map(|e| e.normalized).unwrap_or_else(|_| input.email.trim().to_lowercase());
    // No account has a longer password, and hashing a huge one would be a cheap attack.
    if input.password.chars().count() > domain::MAX_PASSWORD_CHARS {
        return Err(IdentityError::InvalidCredentials);
    }
    let (db, config, now) = (&state.db, &state.config, now());
    let mut counters = Vec::with_capacity(2);
    if throttle::is_known_place(db, &normalized, input.client).await? {
        counters.push(Counter::identity(
            format!("place:{normalized}|{}", input.client),
            config.account_throttle(),
        ));
    } else {
        counters.push(Counter::identity(format!("account:{normalized}"), config.account_throttle()));
        if config.limits_address(input.client) {
            counters.push(Counter::address(format!("address:{}", input.client), config.address_throttle()));
        }
    }
    reserve_all(db, &counters, now).await?;
    let outcome = check_credentials(state, &normalized, input.password).await;
    for counter in &counters {
        match &outcome {
            Ok(Some(_)) if counter.proves_identity => throttle::clear(db, &counter.key).await?,
            Ok(Some(_)) | Err(IdentityError::Busy) => throttle::succeeded(db, &counter.key).await?,
            _ => throttle::failed(db, &counter.key, counter.throttle, now).await?,
        }
    }
    let Some(user) = outcome? else {
        return Err(IdentityError::InvalidCredentials);
    };
    throttle::remember_place(db, &normalized, input.client, now).await?;
    open_session(state, user, Uuid::now_v7()).await
}

/// A counter a sign-in is reserved on.
struct Counter {
    key: String,
    throttle: Throttle,
    /// A success clears it (the account's owner proved who they are), rather than giving one
    /// attempt back (an address is shared).
    proves_identity: bool,
}

impl Counter {
    fn identity(key: String, throttle: Throttle) -> Self {
        Self { key, throttle, proves_identity: true }
    }

    fn address(key: String, throttle: Throttle) -> Self {
        Self { key, throttle, proves_identity: false }
    }
}

/// Reserve an attempt on every counter, or on none: a refusal gives back what was reserved.
async fn reserve_all(db: &platform::db::Db, counters: &[Counter], now: i64) -> Result<(), IdentityError> {
    for (i, counter) in counters.iter().enumerate() {
        if let Reservation::Refused { retry_after_secs } =
            throttle::reserve(db, &counter.key, counter.throttle, now).await?
        {
            for earlier in &counters[..i] {
                throttle::succeeded(db, &earlier.key).await?;
            }
            return Err(IdentityError::Throttled { retry_after_secs });
        }
    }
    Ok(())
}

/// The user, when the email is theirs and the password right.
async fn check_credentials(
    state: &AppState,
    normalized: &str,
    password: String,
) -> Result<Option<User>, IdentityError> {
    let (user, hash) = match store::credentials_by_email(&state.db, normalized).await? {
        Some(c) => (Some(c.user), Some(c.password_hash)),
        None => (None, None),
    };
    let valid = state.passwords.verify(password, hash).await?;
    Ok(user.filter(|_| valid))
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

/// Before a password change: check the current password, on the account's own counter (a
/// stolen access token must not become a way to guess the password).
pub async fn check_current_password(
    state: &AppState,
    user: &User,
    given: Option<&str>,
) -> Result<(), IdentityError> {
    let Some(given) = given else {
        return Err(IdentityError::Invalid(vec![FieldError::new(
            "current_password",
            "is required to change the password",
        )]));
    };
    let (key, limit, now) =
        (format!("account:{}", user.email.to_lowercase()), state.config.account_throttle(), now());
    if let Reservation::Refused { retry_after_secs } = throttle::reserve(&state.db, &key, limit, now).await? {
        return Err(IdentityError::Throttled { retry_after_secs });
    }
    let hash = store::password_hash(&state.db, user.id).await?;
    match state.passwords.verify(given.to_owned(), hash).await {
        Ok(true) => {
            throttle::clear(&state.db, &key).await?;
            Ok(())
        }
        Ok(false) => {
            throttle::failed(&state.db, &key, limit, now).await?;
            Err(IdentityError::Invalid(vec![FieldError::new("current_password", "is incorrect")]))
        }
        Err(e) => {
            throttle::succeeded(&state.db, &key).await?;
            Err(e.into())
        }
    }
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
