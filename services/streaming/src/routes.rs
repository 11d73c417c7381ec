//! streaming's HTTP API (docs/api.md, Streaming): extract, call [`crate::ops`], answer.

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use platform::{
    Problem,
    auth::{AdminUser, AuthUser},
    extract::{ApiJson, ApiQuery, PathId},
};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    AppState,
    ops::{
        self,
        media::{Delivery, MediaView, StreamRequest, Upload},
        playback::Started,
        watchlist::WatchlistEntry,
    },
    ranges::Span,
    store::Progress,
};

#[derive(OpenApi)]
#[openapi(info(
    title = "Marquee streaming",
    description = "Playback sessions, media, history and watchlists"
))]
struct ApiDoc;

pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(start))
        .routes(routes!(heartbeat))
        .routes(routes!(stop))
        .routes(routes!(history))
        .routes(routes!(stream))
        .routes(routes!(upload, media))
        .routes(routes!(watchlist))
        .routes(routes!(add_to_watchlist, remove_from_watchlist));
    let (router, openapi) = OpenApiRouter::new().nest("/api/v1", api).split_for_parts();
    (router.with_state(state), openapi)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct StartRequest {
    pub movie_id: Uuid,
}

/// Start watching: checks the account, the movie and the subscription, takes one of the plan's
/// streams, and answers a signed stream URL and where to resume. 404 when the movie is unknown
/// or cannot be streamed, 403 without an active subscription, 409 when the plan's streams are
/// all playing.
#[utoipa::path(post, path = "/playback/start", tag = "playback", request_body = StartRequest, security(("bearer" = [])),
    responses((status = 201, body = Started), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn start(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<StartRequest>,
) -> Result<(StatusCode, Json<Started>), Problem> {
    Ok((StatusCode::CREATED, Json(ops::playback::start(&state, user.id, req.movie_id).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PositionRequest {
    /// Where the player is, in seconds from the start (a fraction is dropped).
    #[schema(minimum = 0.0, example = 754.2)]
    pub position_seconds: f64,
}

/// Keep the session's stream and save the position; send one every 10 to 30 seconds. 409 when
/// the session has ended (a minute with no heartbeat ends it), 403 when the subscription has.
#[utoipa::path(post, path = "/playback/{session_id}/heartbeat", tag = "playback", request_body = PositionRequest,
    security(("bearer" = [])), params(("session_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    user: AuthUser,
    Path(session_id): Path<String>,
    ApiJson(req): ApiJson<PositionRequest>,
) -> Result<StatusCode, Problem> {
    let id = session_id_of(&session_id)?;
    ops::playback::heartbeat(&state, user.id, id, req.position_seconds).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop watching: frees the stream and saves the position (past 90 % the movie counts as
/// watched). Stopping again answers the same.
#[utoipa::path(post, path = "/playback/{session_id}/stop", tag = "playback", request_body = PositionRequest,
    security(("bearer" = [])), params(("session_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn stop(
    State(state): State<AppState>,
    user: AuthUser,
    Path(session_id): Path<String>,
    ApiJson(req): ApiJson<PositionRequest>,
) -> Result<StatusCode, Problem> {
    let id = session_id_of(&session_id)?;
    ops::playback::stop(&state, user.id, id, req.position_seconds).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn session_id_of(raw: &str) -> Result<Uuid, Problem> {
    raw.parse().map_err(|_| Problem::bad_request(format!("{raw:?} is not a valid session id (a UUID)")))
}

/// What you watched: "continue watching" (unfinished, most recent first), then finished movies.
#[utoipa::path(get, path = "/playback/history", tag = "playback", security(("bearer" = [])),
    responses((status = 200, body = Vec<Progress>)))]
pub async fn history(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<Progress>>, Problem> {
    Ok(Json(ops::playback::history(&state, user.id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The URL's expiry (Unix seconds), as playback start gave it.
    pub expires: Option<String>,
    /// The URL's signature.
    pub sig: Option<String>,
}

/// A media object of a playback session, for the holder of the signed URL (no token: a video
/// element cannot send one). Honours `Range` (206 with `Content-Range`, 416 beyond the end),
/// `If-Range` and `If-None-Match`; an HLS playlist comes back with every segment URL signed.
/// 403 when the signature is wrong or expired or the session is over.
#[utoipa::path(get, path = "/stream/{session_id}/{object}", tag = "playback",
    params(("session_id" = Uuid, Path), ("object" = String, Path, pattern = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$"), StreamQuery),
    responses((status = 200, description = "the object", content_type = "application/octet-stream"),
        (status = 206, description = "a range of the object"), (status = 304),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 416, body = Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    Path((session_id, object)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let session = session_id_of(&session_id)?;
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let request = StreamRequest {
        session,
        object: &object,
        expires: q.expires.as_deref(),
        sig: q.sig.as_deref(),
        range: text(header::RANGE),
        if_range: text(header::IF_RANGE),
        if_none_match: text(header::IF_NONE_MATCH),
    };
    Ok(match ops::media::open(&state, request).await? {
        Delivery::Playlist(text) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.mpegurl")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            text,
        )
            .into_response(),
        Delivery::NotModified(object) => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(tag) = HeaderValue::from_str(&object.etag) {
                response.headers_mut().insert(header::ETAG, tag);
            }
            response
        }
        Delivery::Unsatisfiable(object) => {
            let mut response = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
            )
            .detail(format!("the object has {} bytes", object.size_bytes))
            .into_response();
            let headers = response.headers_mut();
            if let Ok(range) = HeaderValue::from_str(&format!("bytes */{}", object.size_bytes)) {
                headers.insert(header::CONTENT_RANGE, range);
            }
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            response
        }
        Delivery::Bytes { object, span, body } => {
            let size = object.size_bytes.max(0) as u64;
            let (status, length, range) = match span {
                Span::Part { start, end } => (
                    StatusCode::PARTIAL_CONTENT,
                    end - start + 1,
                    Some(format!("bytes {start}-{end}/{size}")),
                ),
                _ => (StatusCode::OK, size, None),
            };
            let mut response = Response::new(Body::from_stream(body));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            if let Ok(kind) = HeaderValue::from_str(&object.content_type) {
                headers.insert(header::CONTENT_TYPE, kind);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            // The URL is one session's: shared caches must not keep it; the player may.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
            if let Ok(tag) = HeaderValue::from_str(&object.etag) {
                headers.insert(header::ETAG, tag);
            }
            if let Some(range) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
                headers.insert(header::CONTENT_RANGE, range);
            }
            response
        }
    })
}

/// A media file as the OpenAPI document shows it.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct MediaFile(Vec<u8>);

/// Upload a movie's media (admin): `video/mp4` or `video/webm`, streamed to the object store as
/// it arrives. An MP4 is also packaged into HLS when ffmpeg is installed. The movie becomes
/// streamable. 201 for its first media, 200 when this replaces it.
#[utoipa::path(put, path = "/media/{movie_id}", tag = "media", security(("bearer" = [])),
    params(("movie_id" = Uuid, Path)),
    request_body(content((MediaFile = "video/mp4"), (MediaFile = "video/webm"))),
    responses((status = 201, body = MediaView), (status = 200, body = MediaView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, body = Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    PathId(movie_id): PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<MediaView>), Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let declared_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let input = Upload { movie_id, content_type, declared_length, by: admin.id };
    let (view, created) = ops::media::upload(&state, input, body.into_data_stream()).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view)))
}

/// A movie's media (admin).
#[utoipa::path(get, path = "/media/{movie_id}", tag = "media", security(("bearer" = [])),
    params(("movie_id" = Uuid, Path)),
    responses((status = 200, body = MediaView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn media(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(movie_id): PathId,
) -> Result<Json<MediaView>, Problem> {
    Ok(Json(ops::media::media(&state, movie_id).await?))
}

/// Your watchlist, most recently added first.
#[utoipa::path(get, path = "/watchlist", tag = "watchlist", security(("bearer" = [])),
    responses((status = 200, body = Vec<WatchlistEntry>)))]
pub async fn watchlist(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<WatchlistEntry>>, Problem> {
    Ok(Json(ops::watchlist::list(&state, user.id).await?))
}

/// Add a movie to your watchlist (again: no change). 404 when the catalog has no such movie.
#[utoipa::path(put, path = "/watchlist/{movie_id}", tag = "watchlist", security(("bearer" = [])),
    params(("movie_id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn add_to_watchlist(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(movie_id): PathId,
) -> Result<StatusCode, Problem> {
    ops::watchlist::add(&state, user.id, movie_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a movie off your watchlist (not on it: no change).
#[utoipa::path(delete, path = "/watchlist/{movie_id}", tag = "watchlist", security(("bearer" = [])),
    params(("movie_id" = Uuid, Path)), responses((status = 204)))]
pub async fn remove_from_watchlist(
    State(state): State<AppState>,
    user: AuthUser,
    PathId(movie_id): PathId,
) -> Result<StatusCode, Problem> {
    ops::watchlist::remove(&state, user.id, movie_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
