//! reviews' HTTP API (docs/api.md, Reviews): extract, call [`crate::ops`], answer.

use axum::{Json, Router, extract::State, http::StatusCode};
use platform::{
    Problem,
    auth::AuthUser,
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    domain::Review,
    ops::{self, Change, NewReview, Stats},
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee reviews", description = "Reviews and rating stats"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_reviews, post_review))
        .routes(routes!(get_review, update_review, delete_review))
        .routes(routes!(stats));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PostReview {
    pub movie_id: Uuid,
    #[schema(minimum = 1, maximum = 10)]
    pub rating: i64,
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: String,
    /// Up to 4000 characters; line breaks and tabs are fine.
    #[schema(max_length = 4000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    #[serde(default)]
    pub body: String,
}

/// Review a movie: one review per user and movie (409 `already-reviewed` on a second, naming the
/// first). It is "verified" when you booked a showtime of the movie or played it.
#[utoipa::path(post, path = "/reviews", tag = "reviews", request_body = PostReview, security(("bearer" = [])),
    responses((status = 201, body = Review), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn post_review(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PostReview>,
) -> Result<(StatusCode, Json<Review>), Problem> {
    let new = NewReview { movie_id: req.movie_id, rating: req.rating, title: &req.title, body: &req.body };
    Ok((StatusCode::CREATED, Json(ops::post(&state, user.id, new).await?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub movie_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Reviews, newest first: of a movie, by a user, or all.
#[utoipa::path(get, path = "/reviews", tag = "reviews", params(ListQuery), responses((status = 200, body = Page<Review>)))]
pub async fn list_reviews(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Review>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(Json(ops::list(&state, q.movie_id, q.user_id, page).await?))
}

/// One review.
#[utoipa::path(get, path = "/reviews/{id}", tag = "reviews", params(("id" = Uuid, Path)),
    responses((status = 200, body = Review), (status = 404, body = Problem)))]
pub async fn get_review(State(state): State<AppState>, PathId(id): PathId) -> Result<Json<Review>, Problem> {
    Ok(Json(ops::get(&state, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PatchReview {
    #[schema(minimum = 1, maximum = 10)]
    pub rating: Option<i64>,
    #[schema(
        min_length = 1,
        max_length = 120,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: Option<String>,
    #[schema(max_length = 4000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    pub body: Option<String>,
}

/// Change your review (admins: anyone's); absent fields stay. Another user's review is a 404.
#[utoipa::path(patch, path = "/reviews/{id}", tag = "reviews", request_body = PatchReview, security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Review), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_review(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
    ApiJson(req): ApiJson<PatchReview>,
) -> Result<Json<Review>, Problem> {
    let change = Change { rating: req.rating, title: req.title.as_deref(), body: req.body.as_deref() };
    Ok(Json(ops::update(&state, &user, id, change).await?))
}

/// Delete your review (admins: anyone's).
#[utoipa::path(delete, path = "/reviews/{id}", tag = "reviews", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_review(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(id): PathId,
) -> Result<StatusCode, Problem> {
    ops::delete(&state, &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A movie's rating stats: count, average and the histogram of ratings 1 to 10.
#[utoipa::path(get, path = "/reviews/stats/{movie_id}", tag = "reviews", params(("movie_id" = Uuid, Path)),
    responses((status = 200, body = Stats)))]
pub async fn stats(State(state): State<AppState>, PathId(movie): PathId) -> Result<Json<Stats>, Problem> {
    Ok(Json(ops::stats(&state, movie).await?))
}
