//! catalog's HTTP API (API.md §Catalog).

use std::time::Duration;

use axum::{Router, extract::State, http::StatusCode};
use contracts::{
    CloudEvent,
    catalog::{MovieChanged, MovieDeleted},
    event_types::{MOVIE_CREATED, MOVIE_DELETED, MOVIE_UPDATED},
};
use platform::{
    FieldError, Problem,
    auth::AdminUser,
    cache,
    extract::{ApiJson, ApiQuery, PathId},
    pagination::{Page, PageRequest},
};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState, SERVICE,
    domain::{GENRES, Movie, MovieInput, NewMovie, Sort, parse_imdb_id},
    error::CatalogError,
    reactions::cache_key,
    store::{self, Genre, ListFilter},
};

/// How long a movie stays cached; writes and rating changes invalidate it sooner.
const MOVIE_TTL: Duration = Duration::from_secs(300);

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
    let mut errors = Vec::new();
    let sort = Sort::parse(q.sort.as_deref()).map_err(|e| errors.push(e)).unwrap_or(Sort::Title);
    let genre = q.genre.as_deref().map(str::trim).filter(|g| !g.is_empty());
    if let Some(g) = genre
        && !GENRES.contains(&g)
    {
        errors.push(FieldError::new("genre", format!("unknown genre {g:?}; see GET /genres")));
    }
    if let Some(y) = q.year
        && !(1870..=2100).contains(&y)
    {
        errors.push(FieldError::new("year", "must be between 1870 and 2100"));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let filter = ListFilter { q: q.q.as_deref(), genre, year: q.year, featured_only: false, sort };
    let (items, total) = store::list(&state.db, &filter, page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
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
    let filter = ListFilter { q: None, genre: None, year: None, featured_only: true, sort: Sort::Title };
    let (items, total) = store::list(&state.db, &filter, page).await?;
    Ok(ApiJson(Page::new(items, page, total)))
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
    let text = q.q.unwrap_or_default();
    if text.trim().is_empty() || text.chars().count() > 200 {
        return Err(Problem::invalid_field("q", "must be 1 to 200 characters"));
    }
    let index = state.index.clone();
    let (limit, offset) = (page.limit() as usize, page.offset() as usize);
    let hits = tokio::task::spawn_blocking(move || index.search(&text, limit, offset))
        .await
        .map_err(anyhow::Error::from)??;
    let ids: Vec<Uuid> = hits.ids.iter().map(|(id, _)| *id).collect();
    let items = store::get_many(&state.db, &ids).await?;
    Ok(ApiJson(Page::new(items, page, hits.total as i64)))
}

/// One movie; deleted ones are 404.
#[utoipa::path(get, path = "/movies/{id}", tag = "movies", params(("id" = Uuid, Path)),
    responses((status = 200, body = Movie), (status = 404, body = Problem)))]
pub async fn get_movie(State(state): State<AppState>, PathId(id): PathId) -> Result<ApiJson<Movie>, Problem> {
    let key = cache_key(id);
    if let Some(movie) = cache::get_json::<Movie>(state.cache.as_ref(), &key).await {
        return Ok(ApiJson(movie));
    }
    let movie = store::get(&state.db, id).await?.ok_or(CatalogError::MovieNotFound)?;
    cache::set_json(state.cache.as_ref(), &key, &movie, MOVIE_TTL).await;
    Ok(ApiJson(movie))
}

/// The `movie.created` / `movie.updated` payload of a movie.
pub fn changed(movie: &Movie) -> MovieChanged {
    MovieChanged {
        movie_id: movie.id,
        title: movie.title.clone(),
        runtime_minutes: movie.runtime_minutes,
        genres: movie.genres.clone(),
        streamable: movie.streamable,
    }
}

/// Write a new movie and its `movie.created` event, then index it here at once (other
/// replicas index it from the event).
pub async fn create(state: &AppState, new: &NewMovie) -> Result<Movie, CatalogError> {
    let mut tx = state.db.pool.begin().await?;
    let movie = store::insert(&mut tx, new).await?;
    let event = CloudEvent::new(SERVICE, MOVIE_CREATED, movie.id.to_string(), &changed(&movie))
        .map_err(anyhow::Error::from)?;
    state.outbox.add(&mut tx, event).await?;
    tx.commit().await?;
    state.outbox.wake();
    state.indexer.refresh(movie.id).await?;
    Ok(movie)
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
    let new = input.apply(NewMovie::empty()).map_err(CatalogError::Invalid)?;
    Ok((StatusCode::CREATED, ApiJson(create(&state, &new).await?)))
}

fn as_new(m: &Movie) -> NewMovie {
    NewMovie {
        title: m.title.clone(),
        synopsis: m.synopsis.clone(),
        genres: m.genres.clone(),
        runtime_minutes: m.runtime_minutes,
        release_date: m.release_date.as_deref().and_then(|d| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
        }),
        director: m.director.clone(),
        cast: m.cast.clone(),
        poster_url: m.poster_url.clone(),
        featured: m.featured,
        streamable: m.streamable,
        imdb_id: m.imdb_id.clone(),
    }
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
    let current = store::get(&state.db, id).await?.ok_or(CatalogError::MovieNotFound)?;
    let new = input.apply(as_new(&current)).map_err(CatalogError::Invalid)?;
    let mut tx = state.db.pool.begin().await?;
    let movie = store::update(&mut tx, id, &new)
        .await
        .map_err(CatalogError::from)?
        .ok_or(CatalogError::MovieNotFound)?;
    let event = CloudEvent::new(SERVICE, MOVIE_UPDATED, id.to_string(), &changed(&movie))
        .map_err(anyhow::Error::from)?;
    state.outbox.add(&mut tx, event).await?;
    tx.commit().await?;
    state.outbox.wake();
    state.indexer.refresh(id).await?;
    Ok(ApiJson(movie))
}

/// Remove a movie (admin). It is 404 everywhere after, but stays in the database for history.
#[utoipa::path(delete, path = "/movies/{id}", tag = "movies", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_movie(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<StatusCode, Problem> {
    let mut tx = state.db.pool.begin().await?;
    if !store::soft_delete(&mut tx, id).await? {
        return Err(CatalogError::MovieNotFound.into());
    }
    let event = CloudEvent::new(SERVICE, MOVIE_DELETED, id.to_string(), &MovieDeleted { movie_id: id })
        .map_err(anyhow::Error::from)?;
    state.outbox.add(&mut tx, event).await?;
    tx.commit().await?;
    state.outbox.wake();
    state.indexer.refresh(id).await?;
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
    let imdb_id = parse_imdb_id(&req.imdb_id)
        .ok_or_else(|| Problem::invalid_field("imdb_id", "must look like tt0068646"))?;
    if store::exists_with_imdb_id(&state.db, &imdb_id).await? {
        return Err(CatalogError::ImdbIdTaken.into());
    }
    let new = state.importer.lookup(&imdb_id).await.map_err(CatalogError::from)?;
    Ok((StatusCode::CREATED, ApiJson(create(&state, &new).await?)))
}

/// The genres, with how many movies each has.
#[utoipa::path(get, path = "/genres", tag = "genres", responses((status = 200, body = Vec<Genre>)))]
pub async fn genres(State(state): State<AppState>) -> Result<ApiJson<Vec<Genre>>, Problem> {
    Ok(ApiJson(store::genres(&state.db).await?))
}
