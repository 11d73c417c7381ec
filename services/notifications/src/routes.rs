//! notifications' HTTP API (docs/api.md, Notifications): extract, call [`crate::ops`], answer.

use axum::{Json, Router, extract::State};
use platform::{
    Problem,
    auth::{AdminUser, AuthUser},
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::{Deserialize, Deserializer, Serialize, de::DeserializeOwned};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{Delivery, EmailKinds, Feed, Notification, Preferences},
    ops::{self, PreferencesChange},
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee notifications", description = "The feed, email and SMS"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(feed))
        .routes(routes!(read))
        .routes(routes!(read_all))
        .routes(routes!(get_preferences, patch_preferences))
        .routes(routes!(deliveries))
        .routes(routes!(retry));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Your notifications, newest first, with how many are unread.
#[utoipa::path(get, path = "/notifications", tag = "notifications", params(FeedQuery), security(("bearer" = [])),
    responses((status = 200, body = Feed), (status = 401, body = Problem)))]
pub async fn feed(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Json<Feed>, Problem> {
    Ok(Json(ops::feed(&state, user.id, PageRequest::new(q.page, q.per_page)?).await?))
}

/// Mark one of your notifications read (again: no change).
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "notifications", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 200, body = Notification), (status = 404, body = Problem)))]
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<Json<Notification>, Problem> {
    Ok(Json(ops::read(&state, user.id, id).await?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadAll {
    /// How many were unread.
    pub marked: u64,
}

/// Mark all your notifications read.
#[utoipa::path(post, path = "/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = ReadAll), (status = 401, body = Problem)))]
pub async fn read_all(State(state): State<AppState>, user: AuthUser) -> Result<Json<ReadAll>, Problem> {
    Ok(Json(ReadAll { marked: ops::read_all(&state, user.id).await? }))
}

/// Which emails you receive, and SMS.
#[utoipa::path(get, path = "/notifications/preferences", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Preferences), (status = 401, body = Problem)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Preferences>, Problem> {
    Ok(Json(ops::preferences(&state, user.id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSms {
    /// E.164 (`+15551234567`); null removes it.
    #[serde(default, deserialize_with = "platform::extract::present")]
    #[schema(value_type = Option<String>, pattern = r"^\+[1-9][0-9]{7,14}$")]
    pub phone: Option<Option<String>>,
    pub booking_confirmed: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPreferences {
    /// Email kinds to turn on (true) or off (false); absent kinds stay.
    #[serde(default, deserialize_with = "object")]
    #[schema(example = json!({"tier_reached": false}))]
    pub email: Option<EmailKinds>,
    #[serde(default, deserialize_with = "object")]
    pub sms: Option<PatchSms>,
}

/// A nested object, as the schema says: serde would also take a struct from an array.
fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let Some(map) = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? else {
        return Ok(None);
    };
    serde_json::from_value(serde_json::Value::Object(map)).map(Some).map_err(serde::de::Error::custom)
}

/// Turn email kinds on or off, and set a phone for SMS; absent fields stay.
#[utoipa::path(patch, path = "/notifications/preferences", tag = "notifications", request_body = PatchPreferences,
    security(("bearer" = [])),
    responses((status = 200, body = Preferences), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_preferences(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PatchPreferences>,
) -> Result<Json<Preferences>, Problem> {
    let (phone, sms_booking_confirmed) = req.sms.map_or((None, None), |s| (s.phone, s.booking_confirmed));
    let email = req.email.map(|e| e.named()).unwrap_or_default();
    let change = PreferencesChange { email, phone, sms_booking_confirmed };
    Ok(Json(ops::change_preferences(&state, user.id, change).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// `pending`, `sending`, `sent` or `failed`.
    #[param(pattern = "^(pending|sending|sent|failed)$")]
    pub status: Option<String>,
    pub user_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// The delivery log (admin): every email and SMS, newest first; `?status=failed` for those
/// that spent every try.
#[utoipa::path(get, path = "/notifications/deliveries", tag = "notifications", params(DeliveriesQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Page<Delivery>), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn deliveries(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Page<Delivery>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(Json(ops::deliveries(&state, q.status.as_deref(), q.user_id, page).await?))
}

/// Send a failed delivery again (admin); its tries start over. 409 `not-failed` otherwise.
#[utoipa::path(post, path = "/notifications/deliveries/{id}/retry", tag = "notifications", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Delivery), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn retry(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<Json<Delivery>, Problem> {
    Ok(Json(ops::retry(&state, id).await?))
}
