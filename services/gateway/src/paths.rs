//! One path, decided once. The gateway routes, rate-limits and forwards on the path as the
//! client sent it, and the HTTP client that forwards it would resolve dot segments on the way,
//! so a path like `/api/v1/auth/%2e%2e/%2e%2e/internal/service-token` would be routed as an
//! `auth` call and arrive as `/internal/service-token`. Before anything else looks at a path,
//! it is refused (400) unless every segment is plain: no dot segments in any spelling (`..`,
//! `%2e%2e`, `.%2E`, ...), no encoded slashes or backslashes, no backslashes, no empty segments,
//! no NUL or other control characters, and no broken percent-encoding.

use axum::{extract::Request, middleware::Next, response::Response};
use platform::Problem;

/// Why a path was refused, or `None` when it is plain.
pub fn refusal(path: &str) -> Option<&'static str> {
    let Some(rest) = path.strip_prefix('/') else { return Some("a path starts with /") };
    if path.contains('\\') {
        return Some("backslashes are not allowed in a path");
    }
    if rest.is_empty() {
        return None;
    }
    for (i, segment) in rest.split('/').enumerate() {
        let last = i == rest.matches('/').count();
        // A trailing slash is harmless (the route just does not match); an empty segment
        // anywhere else is refused, since proxies and servers disagree about it.
        if segment.is_empty() {
            if last {
                continue;
            }
            return Some("empty path segments are not allowed");
        }
        let decoded = match decode(segment) {
            Some(d) => d,
            None => return Some("a path segment is not valid percent-encoding"),
        };
        if decoded == b"." || decoded == b".." {
            return Some("dot segments are not allowed in a path");
        }
        if decoded.iter().any(|b| *b == b'/' || *b == b'\\') {
            return Some("encoded slashes are not allowed in a path");
        }
        if decoded.iter().any(|b| b.is_ascii_control()) {
            return Some("control characters are not allowed in a path");
        }
    }
    None
}

/// Percent-decode one segment; `None` for a `%` not followed by two hex digits.
fn decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The middleware: a 400 problem for a path that is not plain, before routing and limits.
pub async fn plain_paths_only(request: Request, next: Next) -> Response {
    match refusal(request.uri().path()) {
        Some(why) => axum::response::IntoResponse::into_response(Problem::bad_request(why)),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn dot_segments_are_refused_in_every_spelling() {
        for path in [
            "/api/v1/auth/../internal",
            "/api/v1/auth/%2e%2e/internal",
            "/api/v1/auth/%2E%2e/internal",
            "/api/v1/auth/.%2e/internal",
            "/api/v1/auth/%2e./internal",
            "/api/v1/auth/./login",
            "/api/v1/auth/%2e/login",
            "/api/v1/auth/%2e%2e",
        ] {
            assert_eq!(refusal(path), Some("dot segments are not allowed in a path"), "{path}");
        }
    }

    #[test]
    fn slashes_backslashes_empty_segments_and_control_characters_are_refused() {
        for path in [
            "/api/v1/auth%2f..%2finternal",
            "/api/v1/auth%2F..",
            "/api/v1/auth%5c..%5cinternal",
            "/api/v1/auth\\..\\internal",
            "/api/v1//internal",
            "//internal/service-token",
            "/api/v1/movies/%00",
            "/api/v1/movies/a%0a",
            "/api/v1/movies/%zz",
            "/api/v1/movies/%2",
        ] {
            assert!(refusal(path).is_some(), "{path}");
        }
    }

    #[test]
    fn plain_paths_pass() {
        for path in [
            "/",
            "/health",
            "/api/v1/movies/search",
            "/api/v1/movies/",
            "/api/v1/movies/caf%C3%A9",
            "/api/v1/a.b/..c",
        ] {
            assert_eq!(refusal(path), None, "{path}");
        }
    }
}
