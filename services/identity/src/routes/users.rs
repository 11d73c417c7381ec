//! The signed-in user's profile and activity; the admin's view of all users.

use axum::extract::State;
use platform::{
    FieldError, Problem,
    auth::{AdminUser, AuthUser, Role},
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;

use crate::{
    AppState, domain,
    error::IdentityError,
    store::{self, Activity, User},
};

async fn load(state: &AppState, user: &AuthUser) -> Result<User, Problem> {
    // A valid token for a user that no longer exists: as if the token were bad.
    store::user_by_id(&state.db, user.id)
        .await?
        .ok_or_else(|| Problem::unauthorized("the account no longer exists"))
}

/// The signed-in user.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = Problem)))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<ApiJson<User>, Problem> {
    Ok(ApiJson(load(&state, &user).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchMe {
    pub name: Option<String>,
    pub password: Option<String>,
    pub current_password: Option<String>,
}

/// Change your name or password. A new password needs the current one and signs out every
/// other session (refresh tokens are revoked).
#[utoipa::path(patch, path = "/users/me", tag = "users", request_body = PatchMe, security(("bearer" = [])),
    responses((status = 200, body = User), (status = 422, body = Problem)))]
pub async fn patch_me(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PatchMe>,
) -> Result<ApiJson<User>, Problem> {
    let current = load(&state, &user).await?;
    let mut errors = Vec::new();
    let name =
        req.name.as_deref().map(domain::parse_name).transpose().map_err(|e| errors.push(e)).ok().flatten();
    if let Some(p) = &req.password
        && let Err(e) = domain::check_password("password", p)
    {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    if let Some(password) = req.password {
        auth_check(&state, &current, req.current_password.as_deref()).await?;
        let hash = state.passwords.hash(password).await?;
        store::update_password(&state.db, current.id, &hash).await?;
    }
    if let Some(name) = name {
        store::update_name(&state.db, current.id, &name).await?;
    }
    Ok(ApiJson(load(&state, &user).await?))
}

async fn auth_check(state: &AppState, user: &User, given: Option<&str>) -> Result<(), Problem> {
    super::auth::check_current_password(state, user, given).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// What you did recently, newest first: sign-up, bookings confirmed, playback started.
#[utoipa::path(get, path = "/users/me/activity", tag = "users", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Activity>)))]
pub async fn my_activity(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<Activity>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let (items, total) = store::list_activity(&state.db, user.id, page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
    /// `customer` or `admin`.
    pub role: Option<String>,
    /// A piece of the email or name.
    pub q: Option<String>,
}

/// All users (admin).
#[utoipa::path(get, path = "/users", tag = "users", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<User>), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<Page<User>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let role = match q.role.as_deref() {
        None | Some("") => None,
        Some(r) => Some(
            Role::parse(r)
                .filter(|r| *r != Role::Service)
                .ok_or_else(|| Problem::invalid_field("role", "must be customer or admin"))?,
        ),
    };
    let (items, total) = store::list_users(&state.db, role, q.q.as_deref(), page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
}

/// One user: yourself, or anyone for an admin. Another user's account is a 404, not a 403, so
/// ids cannot be probed.
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = User), (status = 404, body = Problem)))]
pub async fn get_user(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<ApiJson<User>, Problem> {
    if !user.can_access(id) {
        return Err(IdentityError::UserNotFound.into());
    }
    Ok(ApiJson(store::user_by_id(&state.db, id).await?.ok_or(IdentityError::UserNotFound)?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchUser {
    pub role: Option<Role>,
    pub name: Option<String>,
}

/// Change a user's role or name (admin). An admin cannot demote themselves, so the last admin
/// cannot lock everyone out by accident.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = PatchUser, security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = User), (status = 403, body = Problem)))]
pub async fn patch_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    PathId(id): PathId,
    ApiJson(req): ApiJson<PatchUser>,
) -> Result<ApiJson<User>, Problem> {
    let mut errors = Vec::new();
    if req.role == Some(Role::Service) {
        errors.push(FieldError::new("role", "must be customer or admin"));
    }
    if id == admin.id && req.role == Some(Role::Customer) {
        errors.push(FieldError::new("role", "you cannot remove your own admin role"));
    }
    let name =
        req.name.as_deref().map(domain::parse_name).transpose().map_err(|e| errors.push(e)).ok().flatten();
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    store::user_by_id(&state.db, id).await?.ok_or(IdentityError::UserNotFound)?;
    if let Some(role) = req.role {
        store::update_role(&state.db, id, role).await?;
    }
    if let Some(name) = name {
        store::update_name(&state.db, id, &name).await?;
    }
    Ok(ApiJson(store::user_by_id(&state.db, id).await?.ok_or(IdentityError::UserNotFound)?))
}
