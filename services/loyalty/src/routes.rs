//! loyalty's HTTP API (docs/api.md, Loyalty): extract, call [`crate::ops`], answer.

use axum::{Json, Router, extract::State, http::StatusCode};
use platform::{
    Problem,
    auth::{AdminUser, AuthUser, MaybeAuthUser},
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{Account, LedgerEntry, Redemption, Reward},
    ops::{self, CodeCheck, RewardChange, RewardInput},
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee loyalty", description = "Points, tiers and rewards"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .routes(routes!(my_transactions))
        .routes(routes!(my_redemptions))
        .routes(routes!(member))
        .routes(routes!(check_code))
        .routes(routes!(use_code))
        .routes(routes!(list_rewards, create_reward))
        .routes(routes!(get_reward, update_reward))
        .routes(routes!(redeem));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

impl PageQuery {
    fn request(&self) -> Result<PageRequest, Problem> {
        PageRequest::new(self.page, self.per_page)
    }
}

/// Your points, lifetime points, tier and how far the next tier is.
#[utoipa::path(get, path = "/loyalty/me", tag = "loyalty", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = Problem)))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<Account>, Problem> {
    Ok(Json(ops::account(&state, user.id).await?))
}

/// Every movement of your points, newest first: earned, reversed, redeemed.
#[utoipa::path(get, path = "/loyalty/me/transactions", tag = "loyalty", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<LedgerEntry>), (status = 401, body = Problem)))]
pub async fn my_transactions(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<LedgerEntry>>, Problem> {
    Ok(Json(ops::transactions(&state, user.id, q.request()?).await?))
}

/// The rewards you redeemed, with their codes, newest first.
#[utoipa::path(get, path = "/loyalty/me/redemptions", tag = "loyalty", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<Redemption>), (status = 401, body = Problem)))]
pub async fn my_redemptions(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Redemption>>, Problem> {
    Ok(Json(ops::redemptions(&state, user.id, q.request()?).await?))
}

/// A member's account (admin).
#[utoipa::path(get, path = "/loyalty/users/{id}", tag = "loyalty", params(("id" = uuid::Uuid, Path)),
    security(("bearer" = [])), responses((status = 200, body = Account), (status = 403, body = Problem)))]
pub async fn member(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<Json<Account>, Problem> {
    Ok(Json(ops::account(&state, id).await?))
}

/// Check a redemption code at the counter (admin): the reward it claims and whether it is still
/// valid. A mistyped code (its check symbol does not match) is a 422, an unknown one a 404.
#[utoipa::path(get, path = "/loyalty/redemptions/{code}", tag = "loyalty",
    params(("code" = String, Path, pattern = "^[Rr][Ww]-([0-9A-Za-z]{4}-){4}[0-9A-Za-z*~$=]$", example = "RW-7F3K-Q9XM-2D8V-T4NB-N")),
    security(("bearer" = [])),
    responses((status = 200, body = CodeCheck), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn check_code(
    State(state): State<AppState>,
    _admin: AdminUser,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Result<Json<CodeCheck>, Problem> {
    Ok(Json(ops::check_code(&state, &code).await?))
}

/// Take a redemption code at the counter (admin): once; a second time is 409 `code-used`.
#[utoipa::path(post, path = "/loyalty/redemptions/{code}/use", tag = "loyalty",
    params(("code" = String, Path, pattern = "^[Rr][Ww]-([0-9A-Za-z]{4}-){4}[0-9A-Za-z*~$=]$", example = "RW-7F3K-Q9XM-2D8V-T4NB-N")),
    security(("bearer" = [])),
    responses((status = 200, body = CodeCheck), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn use_code(
    State(state): State<AppState>,
    _admin: AdminUser,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> Result<Json<CodeCheck>, Problem> {
    Ok(Json(ops::use_code(&state, &code).await?))
}

/// The rewards points can buy, cheapest first (admins see inactive ones too).
#[utoipa::path(get, path = "/rewards", tag = "rewards", params(PageQuery), responses((status = 200, body = Page<Reward>)))]
pub async fn list_rewards(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Reward>>, Problem> {
    Ok(Json(ops::rewards(&state, who.as_ref(), q.request()?).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewReward {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    #[serde(default)]
    pub description: String,
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub points_cost: i64,
    /// How many can be redeemed; absent or null for no limit.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
    /// Default true.
    pub active: Option<bool>,
}

/// Add a reward (admin).
#[utoipa::path(post, path = "/rewards", tag = "rewards", request_body = NewReward, security(("bearer" = [])),
    responses((status = 201, body = Reward), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_reward(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(req): ApiJson<NewReward>,
) -> Result<(StatusCode, Json<Reward>), Problem> {
    let input = RewardInput {
        name: &req.name,
        description: &req.description,
        points_cost: req.points_cost,
        stock: req.stock,
        active: req.active.unwrap_or(true),
    };
    Ok((StatusCode::CREATED, Json(ops::create_reward(&state, input).await?)))
}

/// One reward (an inactive one only for admins).
#[utoipa::path(get, path = "/rewards/{id}", tag = "rewards", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Reward), (status = 404, body = Problem)))]
pub async fn get_reward(
    State(state): State<AppState>,
    MaybeAuthUser(who): MaybeAuthUser,
    PathId(id): PathId,
) -> Result<Json<Reward>, Problem> {
    Ok(Json(ops::reward(&state, who.as_ref(), id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchReward {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub points_cost: Option<i64>,
    /// null: no limit from now on.
    #[serde(default, deserialize_with = "platform::extract::present")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<Option<i64>>,
    pub active: Option<bool>,
}

/// Change a reward (admin); absent fields stay. An inactive reward cannot be redeemed.
#[utoipa::path(patch, path = "/rewards/{id}", tag = "rewards", request_body = PatchReward, security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Reward), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn update_reward(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
    ApiJson(req): ApiJson<PatchReward>,
) -> Result<Json<Reward>, Problem> {
    let change = RewardChange {
        name: req.name.as_deref(),
        description: req.description.as_deref(),
        points_cost: req.points_cost,
        stock: req.stock,
        active: req.active,
    };
    Ok(Json(ops::update_reward(&state, id, change).await?))
}

/// Spend points on a reward: 201 with the code to show at the counter; 409
/// `not-enough-points` or `out-of-stock`. Concurrent redemptions never spend more than the
/// balance.
#[utoipa::path(post, path = "/rewards/{id}/redeem", tag = "rewards", params(("id" = uuid::Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 201, body = Redemption), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn redeem(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<Redemption>), Problem> {
    Ok((StatusCode::CREATED, Json(ops::redeem(&state, user.id, id).await?)))
}
