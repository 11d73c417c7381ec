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
    domain::{Movie, MovieInput, NewMovieInput},
    ops,
    store::Genre,
};

#[derive(OpenApi)]
#[openapi(info(title = "Marquee catalog", description = "Movies, genres, search and import"))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = api().split_for_parts();
    (router.with_state(state), openapi)
}

fn api() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_movies, create_movie))
        .routes(routes!(featured))
        .routes(routes!(search))
        .routes(routes!(import))
        .routes(routes!(get_movie, update_movie, delete_movie))
        .routes(routes!(genres));
    OpenApiRouter::new().nest("/api/v1", api)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A piece of the title or the director's name (for ranked, typo-tolerant search use
    /// `/movies/search`).
    pub q: Option<String>,
    /// A genre slug (see `GET /genres`); empty is no filter.
    #[param(
        pattern = r"^(action|adventure|animation|comedy|crime|documentary|drama|family|fantasy|history|horror|music|mystery|romance|science-fiction|thriller|war|western)?$"
    )]
    pub genre: Option<String>,
    /// The release year.
    #[param(minimum = 1870, maximum = 2100)]
    pub year: Option<i64>,
    /// `title` (default, also when empty), `-release_date` or `-rating`.
    #[param(pattern = r"^(title|-release_date|-rating)?$")]
    pub sort: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Movies, filtered and sorted.
#[utoipa::path(get, path = "/movies", tag = "movies", params(ListQuery),
    responses((status = 200, body = Page<Movie>)))]
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
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
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
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// 1 to 200 characters, not all whitespace. Required: without it (an empty `q`) the answer
    /// is a 422 naming `q`.
    #[serde(default)]
    #[param(
        required = true,
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub q: String,
    #[param(minimum = 1, maximum = 100)]
    pub page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Ranked full-text search over title, synopsis, cast and director that forgives typos and
/// accents and matches the last word as a prefix.
#[utoipa::path(get, path = "/movies/search", tag = "movies", params(SearchQuery),
    responses((status = 200, body = Page<Movie>)))]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<ApiJson<Page<Movie>>, Problem> {
    let page = PageRequest::new(q.page, q.per_page)?;
    Ok(ApiJson(ops::search(&state, &q.q, page).await?))
}

/// One movie; deleted ones are 404.
#[utoipa::path(get, path = "/movies/{id}", tag = "movies", params(("id" = Uuid, Path)),
    responses((status = 200, body = Movie)))]
pub async fn get_movie(State(state): State<AppState>, PathId(id): PathId) -> Result<ApiJson<Movie>, Problem> {
    Ok(ApiJson(ops::movie(&state, id).await?))
}

/// Add a movie (admin).
#[utoipa::path(post, path = "/movies", tag = "movies", request_body = NewMovieInput, security(("bearer" = [])),
    responses((status = 201, body = Movie),
        (status = 409, description = "`already-imported`: a movie with this IMDb id exists", body = Problem)))]
pub async fn create_movie(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(input): ApiJson<NewMovieInput>,
) -> Result<(StatusCode, ApiJson<Movie>), Problem> {
    Ok((StatusCode::CREATED, ApiJson(ops::create(&state, input.into()).await?)))
}

/// Change a movie (admin): only the fields sent change.
#[utoipa::path(patch, path = "/movies/{id}", tag = "movies", request_body = MovieInput, security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Movie),
        (status = 409, description = "`already-imported`: another movie has this IMDb id", body = Problem)))]
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
    responses((status = 204, description = "Removed")))]
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
    /// `tt` and 7 or 8 digits.
    #[schema(pattern = r"^tt[0-9]{7,8}$")]
    pub imdb_id: String,
}

/// Add a movie by IMDb id (admin), with metadata from the provider or the offline catalog.
#[utoipa::path(post, path = "/movies/import", tag = "movies", request_body = ImportRequest, security(("bearer" = [])),
    responses((status = 201, body = Movie),
        (status = 404, description = "Neither the provider nor the offline catalog knows the id", body = Problem),
        (status = 409, description = "`already-imported`: a movie with this IMDb id exists", body = Problem),
        (status = 503, description = "The provider is down and the offline catalog lacks the id", body = Problem)))]
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::domain::GENRES;

    fn document() -> Value {
        serde_json::to_value(super::api().split_for_parts().1).expect("the document is JSON")
    }

    /// The genre patterns are written out in the attributes; they must list exactly [`GENRES`].
    #[test]
    fn the_genre_patterns_are_the_genre_list() {
        let doc = document();
        let slugs = GENRES.join("|");
        let params = doc["paths"]["/api/v1/movies"]["get"]["parameters"].as_array().expect("parameters");
        let genre = params.iter().find(|p| p["name"] == "genre").expect("a genre parameter");
        assert_eq!(genre["schema"]["pattern"], format!("^({slugs})?$"));
        for body in ["NewMovieInput", "MovieInput"] {
            let items = &doc["components"]["schemas"][body]["properties"]["genres"]["items"];
            assert_eq!(items["pattern"], format!("^({slugs})$"), "{body}");
        }
    }

    #[test]
    fn a_search_requires_q_and_a_create_its_title_genres_and_runtime() {
        let doc = document();
        let params =
            doc["paths"]["/api/v1/movies/search"]["get"]["parameters"].as_array().expect("parameters");
        let q = params.iter().find(|p| p["name"] == "q").expect("q");
        assert_eq!(
            (&q["required"], &q["schema"]["minLength"], &q["schema"]["maxLength"]),
            (&Value::Bool(true), &1.into(), &200.into())
        );
        let create = &doc["components"]["schemas"]["NewMovieInput"];
        assert_eq!(create["required"], serde_json::json!(["title", "genres", "runtime_minutes"]));
        assert!(
            doc["components"]["schemas"]["MovieInput"]["required"].is_null(),
            "a PATCH may send any field"
        );
    }

    #[test]
    #[ignore = "prints the document"]
    fn print_document() {
        println!("{}", serde_json::to_string_pretty(&document()).expect("json"));
    }
}
