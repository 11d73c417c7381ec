//! Extractors whose rejections are problems: axum's own answer with plain text.
//!
//! - malformed JSON or query → 400, with what the parser said;
//! - a body of the wrong type → 415; too large → 413;
//! - JSON of the wrong shape (missing field, wrong type) → 422 naming the field.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{FieldError, Problem};

/// A JSON body (request) or JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Expected a JSON body",
            )
            .detail("send Content-Type: application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "The body is too large")
            } else {
                Problem::bad_request(rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parse JSON bytes with the rules above; public so handlers that take raw bytes agree.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    // Every body is an object (serde would read a struct from an array of its fields).
    if !value.is_object() {
        return Err(Problem::invalid(vec![FieldError::new("body", "must be a JSON object")]));
    }
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                // A missing or unknown field is named under its parent: `sms.phone`.
                // (An unknown field's path already ends with it; a missing one's is its parent's.)
                let field = match missing_field(&message) {
                    Some(name) if path == name || path.ends_with(&format!(".{name}")) => path,
                    Some(name) if path != "." => format!("{path}.{name}"),
                    Some(name) => name,
                    None => path,
                };
                let field = if field == "." { "body".to_owned() } else { field };
                Problem::invalid(vec![FieldError::new(field, strip_position(&message))])
            }
            _ => Problem::bad_request(format!("malformed JSON: {inner}")),
        }
    })
}

/// JSON has one number type: `80.0` is the integer 80 (JSON Schema says so too), which serde
/// would refuse for an integer field.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9_007_199_254_740_992.0
            {
                *n = serde_json::Number::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(Ok(value)) = content_type.map(|v| v.to_str()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// serde reports a missing or unknown field at the parent's path; name the field itself.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `").or_else(|| message.strip_prefix("unknown field `"))?;
    Some(rest.split('`').next()?.to_owned())
}

/// "invalid type: ... at line 1 column 12" → without the position, which means nothing to clients.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string; anything that does not parse is a 400 problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
    }
}

/// A path parameter that must be a UUID: a malformed one is a 400, not axum's plain text.
#[derive(Debug, Clone, Copy)]
pub struct PathId(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?;
        raw.parse()
            .map(PathId)
            .map_err(|_| Problem::bad_request(format!("{raw:?} is not a valid id (a UUID)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: u32,
    }

    #[test]
    fn malformed_json_is_a_400_and_the_wrong_shape_a_422_naming_the_field() {
        let bad = parse_json::<Body>(b"{\"email\": ").expect_err("malformed");
        assert_eq!(bad.status, 400);
        let missing = parse_json::<Body>(b"{\"age\": 3}").expect_err("missing");
        assert_eq!(missing.status, 422);
        assert_eq!(missing.errors[0].field, "email");
        let wrong = parse_json::<Body>(b"{\"email\": \"a\", \"age\": \"x\"}").expect_err("wrong type");
        let whole = parse_json::<Body>(b"{\"email\": \"a\", \"age\": 80.0}").expect("80.0 is an integer");
        assert_eq!(whole.age, 80);
        assert_eq!(
            parse_json::<Body>(b"{\"email\": \"a\", \"age\": 8.5}").expect_err("fraction").status,
            422
        );
        assert_eq!(wrong.status, 422);
        assert_eq!(wrong.errors[0].field, "age");
        assert!(!wrong.errors[0].message.contains("line"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        let v = |s: &'static str| Some(header::HeaderValue::from_static(s));
        assert!(is_json(v("application/json; charset=utf-8").as_ref()));
        assert!(is_json(v("application/merge-patch+json").as_ref()));
        assert!(!is_json(v("text/plain").as_ref()));
        assert!(!is_json(None));
    }
}

/// The peer's socket address when the server knows it (it is served with connect info).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0)))
    }
}

/// For `#[serde(default, deserialize_with = "platform::extract::present")]` on an
/// `Option<Option<T>>`: a field sent as null is `Some(None)` ("clear it"), an absent one `None`
/// ("leave it"), which a PATCH needs to tell apart.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
