//! Profiles: the signed-in user's own (name, password) and activity, and the admin's view and
//! changes of every user. Another user's account is a 404, not a 403, so ids cannot be probed.

use platform::{
    FieldError,
    auth::{Caller, Role},
    pagination::{Page, PageRequest},
};
use uuid::Uuid;

use crate::{
    AppState, domain,
    error::IdentityError,
    ops::auth,
    store::{self, Activity, User},
};

/// The signed-in user. A valid token for an account that no longer exists is treated as if
/// the token were bad (401).
pub async fn profile(state: &AppState, id: Uuid) -> Result<User, IdentityError> {
    store::user_by_id(&state.db, id).await?.ok_or(IdentityError::AccountGone)
}

/// What `PATCH /users/me` asks; absent fields stay as they are.
pub struct ProfileChange {
    pub name: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

/// Change your name or password. A new password needs the current one and signs out every
/// other session: the user's refresh tokens are revoked with the change.
pub async fn update_profile(
    state: &AppState,
    id: Uuid,
    change: ProfileChange,
) -> Result<User, IdentityError> {
    let current = profile(state, id).await?;
    let mut errors = Vec::new();
    let name =
        change.name.as_deref().map(domain::parse_name).transpose().map_err(|e| errors.push(e)).ok().flatten();
    if let Some(p) = &change.password
        && let Err(e) = domain::check_password("password", p)
    {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Err(IdentityError::Invalid(errors));
    }
    if let Some(password) = change.password {
        auth::check_current_password(state, &current, change.current_password.as_deref()).await?;
        let hash = state.passwords.hash(password).await?;
        store::update_password(&state.db, current.id, &hash).await?;
    }
    if let Some(name) = name {
        store::update_name(&state.db, current.id, &name).await?;
    }
    profile(state, id).await
}

/// What the user did recently, newest first (from other services' events, see
/// [`crate::activity`]).
pub async fn activity(
    state: &AppState,
    user_id: Uuid,
    page: PageRequest,
) -> Result<Page<Activity>, IdentityError> {
    let (items, total) = store::list_activity(&state.db, user_id, page).await?;
    Ok(Page::new(items, page, total))
}

/// Every user (for admins), optionally of one role (`customer` or `admin`; services have no
/// accounts) and matching a piece of the email or name.
pub async fn list(
    state: &AppState,
    role: Option<&str>,
    q: Option<&str>,
    page: PageRequest,
) -> Result<Page<User>, IdentityError> {
    let role = match role {
        None | Some("") => None,
        Some(r) => Some(Role::parse(r).filter(|r| *r != Role::Service).ok_or_else(|| {
            IdentityError::Invalid(vec![FieldError::new("role", "must be customer or admin")])
        })?),
    };
    if q.is_some_and(|q| q.chars().count() > 200) {
        return Err(IdentityError::Invalid(vec![FieldError::new("q", "must be at most 200 characters")]));
    }
    let (items, total) = store::list_users(&state.db, role, q, page).await?;
    Ok(Page::new(items, page, total))
}

/// One user, as `viewer` may see it: themselves, or anyone for an admin or a service (streaming
/// checks the account behind a token still exists).
pub async fn user(state: &AppState, viewer: &Caller, id: Uuid) -> Result<User, IdentityError> {
    if !viewer.can_access(id) {
        return Err(IdentityError::UserNotFound);
    }
    store::user_by_id(&state.db, id).await?.ok_or(IdentityError::UserNotFound)
}

/// What `PATCH /users/{id}` asks; absent fields stay as they are.
pub struct UserChange {
    pub role: Option<Role>,
    pub name: Option<String>,
}

/// Change a user's role or name, as the admin `admin`. An admin cannot demote themselves, so
/// the last admin cannot lock everyone out by accident.
pub async fn update_user(
    state: &AppState,
    admin: Uuid,
    id: Uuid,
    change: UserChange,
) -> Result<User, IdentityError> {
    let mut errors = Vec::new();
    if change.role == Some(Role::Service) {
        errors.push(FieldError::new("role", "must be customer or admin"));
    }
    if id == admin && change.role == Some(Role::Customer) {
        errors.push(FieldError::new("role", "you cannot remove your own admin role"));
    }
    let name =
        change.name.as_deref().map(domain::parse_name).transpose().map_err(|e| errors.push(e)).ok().flatten();
    if !errors.is_empty() {
        return Err(IdentityError::Invalid(errors));
    }
    store::user_by_id(&state.db, id).await?.ok_or(IdentityError::UserNotFound)?;
    if let Some(role) = change.role {
        store::update_role(&state.db, id, role).await?;
    }
    if let Some(name) = name {
        store::update_name(&state.db, id, &name).await?;
    }
    store::user_by_id(&state.db, id).await?.ok_or(IdentityError::UserNotFound)
}
