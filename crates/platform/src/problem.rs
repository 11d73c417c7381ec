//! RFC 9457 problem details: every error a client sees is one of these.
//!
//! `type` is `urn:marquee:problem:<code>` with a stable snake-case-free, kebab-case code that
//! clients may switch on; `title` is the human summary of that code; `detail` is about this
//! occurrence. A 500 never carries the cause: it is logged with the request id instead.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Map, Value};

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension members, e.g. `unavailable: ["E5"]` on a seat conflict.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: Map<String, Value>,
    /// Sent as the `Retry-After` header (seconds) on 429 and 503.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:marquee:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn field_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The code part of `type`.
    pub fn code(&self) -> &str {
        self.type_uri.rsplit(':').next().unwrap_or_default()
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    // The common ones, so every service says them the same way.

    /// 400: the body or query could not be parsed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "The request could not be parsed").detail(detail)
    }

    /// 401: no token, or a token that is not valid.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication is required").detail(detail)
    }

    /// 403: authenticated, but this role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed").detail(detail)
    }

    /// 404: also what another user's private resource looks like.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!("{what} not found"))
    }

    /// 409 with a specific code (`email-taken`, `seat-taken`, ...).
    pub fn conflict(code: &str, title: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, title)
    }

    /// 422: well-formed, but these fields are invalid.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let detail =
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed", "Some fields are invalid")
            .detail(detail)
            .field_errors(errors)
    }

    pub fn invalid_field(field: &str, message: &str) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
            .detail(format!("try again in {retry_after_secs} s"))
            .retry_after(retry_after_secs)
    }

    /// 503 with `Retry-After`: a dependency is down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service-unavailable", "A dependency is unavailable")
            .detail(detail)
            .retry_after(5)
    }

    /// 500: a bug. The cause goes to the log, never to the client.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            .detail("the error was logged with this request's id")
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// Any unexpected error: logged in full, answered as an opaque 500.
impl From<anyhow::Error> for Problem {
    fn from(error: anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "internal error");
        Self::internal()
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Self {
        anyhow::Error::from(error).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_serializes_with_its_type_and_extensions() {
        let p = Problem::conflict("seat-taken", "Seat already taken").extension("unavailable", vec!["E5"]);
        let v = serde_json::to_value(&p).expect("serializes");
        assert_eq!(v["type"], "urn:marquee:problem:seat-taken");
        assert_eq!(v["status"], 409);
        assert_eq!(v["unavailable"][0], "E5");
        assert!(v.get("errors").is_none());
        assert_eq!(p.code(), "seat-taken");
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let r = Problem::too_many_requests(30).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "30");
        assert_eq!(r.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    }
}
