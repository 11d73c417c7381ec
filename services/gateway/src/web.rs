//! The web UI: a single-page app written as ES modules in `services/gateway/web/`, no build step.
//! Its files are in the binary (rust-embed; a debug build reads them from disk, so an edit shows
//! at the next reload), served with an ETag (revalidated with `If-None-Match`), a short cache
//! lifetime, and gzip when the client takes it (the router's compression layer).

use axum::{
    Router,
    body::Body,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use platform::Problem;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// The content security policy of a page (the web UI, the API reference): its own scripts and
/// styles only; posters may come from the movie databases' image hosts (https), video from the
/// gateway or a player's blob: (HLS through media source extensions).
pub const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' data: https:; media-src 'self' blob:; \
     worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(asset))
        .layer(tower_http::compression::CompressionLayer::new())
}

/// The page every client route (`/#/movies/{id}`, ...) starts from: revalidated each time, so a
/// new release is picked up at the next load.
async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers, "no-cache")
}

/// Scripts, styles and vendored libraries: cached for five minutes, then revalidated by ETag
/// (file names carry no hash: there is no build step to put one there).
async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers, "public, max-age=300, must-revalidate")
}

fn serve(path: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    // The global path check has refused dot segments and empty segments already.
    let Some(file) = Assets::get(path) else {
        return Problem::not_found("file").into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if path.ends_with(".html") {
        // Set here, not by content type at the edge: a 304 has no content type, and its headers
        // replace the cached page's, policy included.
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    }
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    }
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_ui_has_a_known_type() {
        for path in Assets::iter() {
            assert_ne!(content_type(&path), "application/octet-stream", "{path}");
        }
        assert!(Assets::get("index.html").is_some());
    }
}
