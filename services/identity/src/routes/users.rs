//! The signed-in user's profile and activity; the admin's view of all users. Each handler
//! extracts, calls [`crate::ops::users`] and answers.

use axum::extract::State;
use platform::{
    Problem,
    auth::{AdminUser, AuthUser, Caller, Role},
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;

use crate::{
    AppState,
    ops::users,
    store::{Activity, User},
};

/// The signed-in user.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = Problem)))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<ApiJson<User>, Problem> {
    Ok(ApiJson(users::profile(&state, user.id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchMe {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// Required with `password`.
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
    let change = users::ProfileChange {
        name: req.name,
        password: req.password,
        current_password: req.current_password,
    };
    Ok(ApiJson(users::update_profile(&state, user.id, change).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// What you did recently, newest first: sign-up, bookings confirmed, playback started and
/// stopped.
#[utoipa::path(get, path = "/users/me/activity", tag = "users", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Activity>)))]
pub async fn my_activity(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<Activity>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(ApiJson(users::activity(&state, user.id, page).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// `customer` or `admin` (empty: both).
    #[param(pattern = "^(customer|admin)?$")]
    pub role: Option<String>,
    /// A piece of the email or name.
    #[param(max_length = 200)]
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
    Ok(ApiJson(users::list(&state, q.role.as_deref(), q.q.as_deref(), page).await?))
}

/// One user: yourself, or anyone for an admin or another service. Another user's account is a
/// 404, not a 403, so ids cannot be probed.
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), responses((status = 200, body = User), (status = 404, body = Problem)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<ApiJson<User>, Problem> {
    Ok(ApiJson(users::user(&state, &caller, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchUser {
    /// `customer` or `admin`.
    #[schema(value_type = Option<String>, pattern = "^(customer|admin)$")]
    pub role: Option<Role>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
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
    let change = users::UserChange { role: req.role, name: req.name };
    Ok(ApiJson(users::update_user(&state, admin.id, id, change).await?))
}
