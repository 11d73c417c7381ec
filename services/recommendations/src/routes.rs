//! recommendations' HTTP API (docs/api.md, Recommendations): extract, call the engine, answer.

use axum::{Json, Router, extract::State};
use platform::{
    FieldError, Problem,
    auth::AuthUser,
    extract::{ApiQuery, PathId},
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{AppState, engine::Pick};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee recommendations", description = "What to watch or see next, and why"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(for_me)).routes(routes!(similar));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

/// One suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub movie_id: Uuid,
    pub title: String,
    /// Higher is better; comparable within one answer only.
    pub score: f64,
    /// Why: "because you watched Heat", "popular in crime this week", ...
    pub reason: String,
}

fn answer(picks: Vec<Pick>) -> Vec<Recommendation> {
    picks
        .into_iter()
        .map(|p| Recommendation {
            movie_id: p.movie_id,
            title: p.title,
            score: (f64::from(p.score) * 10_000.0).round() / 10_000.0,
            reason: p.reason,
        })
        .collect()
}

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 50;

fn limit(asked: Option<i64>) -> Result<usize, Problem> {
    match asked.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n as usize),
        _ => Err(Problem::invalid(vec![FieldError::new("limit", format!("must be 1 to {MAX_LIMIT}"))])),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum For {
    /// Anything: to watch or to see.
    Anything,
    /// Only movies with a showtime to come, those at the theaters you booked at first.
    Cinema,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MeQuery {
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
    /// `cinema`: only movies with a showtime to come (default `anything`).
    #[serde(rename = "for")]
    #[param(rename = "for")]
    pub purpose: Option<For>,
}

/// Movies for you, from what you booked, watched (weighted by how much) and rated: movies the
/// same people liked, movies like them for those few have seen yet, and the week's popular ones
/// when there is little to go on. Never one you already booked, watched or rated.
#[utoipa::path(get, path = "/recommendations/me", tag = "recommendations", params(MeQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<Recommendation>), (status = 401, body = Problem)))]
pub async fn for_me(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<MeQuery>,
) -> Result<Json<Vec<Recommendation>>, Problem> {
    let limit = limit(q.limit)?;
    let cinema = q.purpose == Some(For::Cinema);
    Ok(Json(answer(state.engine.recommend(user.id, limit, cinema, state.clock.now_ms()))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimilarQuery {
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<i64>,
}

/// Movies watched and booked by the same people, then those sharing genres, director or cast
/// (only those, for a movie nobody has seen yet).
#[utoipa::path(get, path = "/recommendations/similar/{movie_id}", tag = "recommendations",
    params(("movie_id" = Uuid, Path), SimilarQuery),
    responses((status = 200, body = Vec<Recommendation>), (status = 404, body = Problem)))]
pub async fn similar(
    State(state): State<AppState>,
    PathId(movie): PathId,
    ApiQuery(q): ApiQuery<SimilarQuery>,
) -> Result<Json<Vec<Recommendation>>, Problem> {
    let limit = limit(q.limit)?;
    let picks = state.engine.similar(movie, limit).ok_or_else(|| Problem::not_found("movie"))?;
    Ok(Json(answer(picks)))
}
