//! catalog's HTTP API (docs/api.md, Catalog): each handler extracts, calls [`crate::ops`] and
//! answers.

use axum::{Router, extract::State, http::StatusCode};
use platform::{
    Problem,
    auth::AdminUser,
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AppState,
    domain::{Movie, MovieInput},
    ops,
    store::Genre,
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee catalog", description = "Movies, genres, search and import"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_movies, create_movie))
        .routes(routes!(featured))
        .routes(routes!(search))
        .routes(routes!(import))
        .routes(routes!(get_movie, update_movie, delete_movie))
        .routes(routes!(genres));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// A piece of the title or the director's name (for ranked, typo-tolerant search use
    /// `/movies/search`).
    pub q: Option<String>,
    pub genre: Option<String>,
    pub year: Option<i64>,
    /// `title` (default), `-release_date` or `-rating`.
    pub sort: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// Movies, filtered and sorted.
#[utoipa::path(get, path = "/movies", tag = "movies", params(ListQuery),
    responses((status = 200, body = Page<Movie>), (status = 422, body = Problem)))]
pub async fn list_movies(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<Page<Movie>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    let input = ops::ListInput {
        q: q.q.as_deref(),
        genre: q.genre.as_deref(),
        year: q.year,
        sort: q.sort.as_deref(),
    };
    Ok(ApiJson(ops::list(&state, input, page).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// Featured movies, by title.
#[utoipa::path(get, path = "/movies/featured", tag = "movies", params(PageQuery),
    responses((status = 200, body = Page<Movie>)))]
pub async fn featured(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<ApiJson<Page<Movie>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(ApiJson(ops::featured(&state, page).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// Ranked full-text search over title, synopsis, cast and director that forgives typos and
/// accents and matches the last word as a prefix.
#[utoipa::path(get, path = "/movies/search", tag = "movies", params(SearchQuery),
    responses((status = 200, body = Page<Movie>), (status = 422, body = Problem)))]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<ApiJson<Page<Movie>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(ApiJson(ops::search(&state, q.q.as_deref().unwrap_or_default(), page).await?))
}

/// One movie; deleted ones are 404.
#[utoipa::path(get, path = "/movies/{id}", tag = "movies", params(("id" = Uuid, Path)),
    responses((status = 200, body = Movie), (status = 404, body = Problem)))]
pub async fn get_movie(State(state): State<AppState>, PathId(id): PathId) -> Result<ApiJson<Movie>, Problem> {
    Ok(ApiJson(ops::movie(&state, id).await?))
}

/// Add a movie (admin).
#[utoipa::path(post, path = "/movies", tag = "movies", request_body = MovieInput, security(("bearer" = [])),
    responses((status = 201, body = Movie), (status = 403, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_movie(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(input): ApiJson<MovieInput>,
) -> Result<(StatusCode, ApiJson<Movie>), Problem> {
    Ok((StatusCode::CREATED, ApiJson(ops::create(&state, input).await?)))
}

/// Change a movie (admin): only the fields sent change.
#[utoipa::path(patch, path = "/movies/{id}", tag = "movies", request_body = MovieInput, security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Movie), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update_movie(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
    ApiJson(input): ApiJson<MovieInput>,
) -> Result<ApiJson<Movie>, Problem> {
    Ok(ApiJson(ops::update(&state, id, input).await?))
}

/// Remove a movie (admin). It is 404 everywhere after, but stays in the database for history.
#[utoipa::path(delete, path = "/movies/{id}", tag = "movies", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_movie(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<StatusCode, Problem> {
    ops::delete(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ImportRequest {
    pub imdb_id: String,
}

/// Add a movie by IMDb id (admin), with metadata from the provider or the offline catalog.
#[utoipa::path(post, path = "/movies/import", tag = "movies", request_body = ImportRequest, security(("bearer" = [])),
    responses((status = 201, body = Movie), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 503, body = Problem)))]
pub async fn import(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(req): ApiJson<ImportRequest>,
) -> Result<(StatusCode, ApiJson<Movie>), Problem> {
    Ok((StatusCode::CREATED, ApiJson(ops::import(&state, &req.imdb_id).await?)))
}

/// The genres, with how many movies each has.
#[utoipa::path(get, path = "/genres", tag = "genres", responses((status = 200, body = Vec<Genre>)))]
pub async fn genres(State(state): State<AppState>) -> Result<ApiJson<Vec<Genre>>, Problem> {
    Ok(ApiJson(ops::genres(&state).await?))
}
