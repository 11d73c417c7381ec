//! backup's HTTP API (docs/api.md, Backups), for administrators: extract, call [`crate::ops`],
//! answer. A backup and a restore run in the background: both answer 202 with a `Location` to
//! follow, `GET /backups/{id}`.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use platform::{
    Problem,
    auth::AdminUser,
    extract::{ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{Backup, Restore, Trigger},
    ops,
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee backup", description = "Consistent backups of every service, and restores"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_backup, list_backups))
        .routes(routes!(get_backup))
        .routes(routes!(restore_backup));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

fn location(id: uuid::Uuid) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/v1/backups/{id}"))
        .unwrap_or(HeaderValue::from_static("/api/v1/backups"))
}

/// Back up every service now: one cut of the whole system, copied to the object store. Answers
/// at once with the running backup; follow `Location`.
#[utoipa::path(post, path = "/backups", tag = "backups", security(("bearer" = [])),
    responses((status = 202, body = Backup, headers(("location" = String, description = "where to follow it"))),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "`work-running`: a backup or a restore is under way", body = Problem)))]
pub async fn create_backup(State(state): State<AppState>, admin: AdminUser) -> Result<Response, Problem> {
    let backup = ops::start_backup(&state, Trigger::Manual, Some(admin.0.id)).await?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location(backup.id))], Json(backup)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Backups, newest first: those this system took, and those its object store holds from
/// before (a fresh system restoring an earlier one's).
#[utoipa::path(get, path = "/backups", tag = "backups", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Backup>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_backups(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Backup>>, Problem> {
    Ok(Json(ops::list(&state, PageRequest::new(q.page, q.per_page)?).await?))
}

/// A backup as it goes (services done, rows and bytes written) and its latest restore here.
#[utoipa::path(get, path = "/backups/{id}", tag = "backups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Backup), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn get_backup(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<Json<Backup>, Problem> {
    Ok(Json(ops::backup(&state, id).await?))
}

/// Restore this backup into this system, whose services must hold no data of their own (a
/// fresh deployment: seeded rows and the configured administrator are fine) and be at the
/// backup's schema versions. Checked before anything starts; then every object's checksum is
/// verified before any service is touched. Follow `Location`: the backup's `restore`.
#[utoipa::path(post, path = "/backups/{id}/restore", tag = "backups", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 202, body = Restore, headers(("location" = String, description = "where to follow it"))),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "`not-empty` (each service's data named) or `work-running`", body = Problem),
        (status = 422, description = "`schema-version`, `unknown-format`, `unknown-service`", body = Problem),
        (status = 503, description = "a service could not be asked", body = Problem)))]
pub async fn restore_backup(
    State(state): State<AppState>,
    admin: AdminUser,
    PathId(id): PathId,
) -> Result<Response, Problem> {
    let restore = ops::start_restore(&state, id, Some(admin.0.id)).await?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location(id))], Json(restore)).into_response())
}
