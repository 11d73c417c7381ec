//! streaming's errors and the problems they become.

use axum::http::StatusCode;
use platform::{FieldError, Problem};

use crate::{domain::Status, signing::BadUrl};

#[derive(Debug, thiserror::Error)]
pub enum StreamingError {
    /// 404 (also another user's session).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 401: a valid token for an account identity no longer has.
    #[error("unknown user")]
    UnknownUser,
    /// 403 `session-ended`: a stream URL of a session that is over.
    #[error("the session is over")]
    NotPlaying,
    /// 404 `not-streamable`: the movie exists but has no media, or is not offered for streaming.
    #[error("the movie cannot be streamed")]
    NotStreamable,
    /// 403 `subscription-required`.
    #[error("no active subscription")]
    NoSubscription,
    /// 403 `subscription-ended`: a running session whose subscription ended.
    #[error("the subscription ended")]
    SubscriptionEnded,
    /// 409 `stream-limit`: the plan's streams are all playing.
    #[error("the plan allows {0} streams at once")]
    StreamLimit(i64),
    /// 409 `session-ended`: a heartbeat for a session that is over.
    #[error("the session has ended ({0:?})")]
    SessionEnded(Status),
    /// 403 `bad-stream-url` / `stream-url-expired`.
    #[error("a stream URL that is not valid: {0:?}")]
    BadUrl(BadUrl),
    /// 415 `unsupported-media-type`.
    #[error("unsupported media type")]
    UnsupportedMedia,
    /// 413 `too-large`.
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    /// 400 `incomplete-body`: the client's upload broke off.
    #[error("the upload broke off")]
    Incomplete,
    /// 422.
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// 503 when identity, catalog or payments cannot be asked, or the object store fails.
    #[error("{0}")]
    Unavailable(String),
    /// 500, logged.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StreamingError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<platform::client::Unavailable> for StreamingError {
    fn from(e: platform::client::Unavailable) -> Self {
        Self::Unavailable(format!("the {} service is unavailable", e.service))
    }
}

impl From<StreamingError> for Problem {
    fn from(e: StreamingError) -> Self {
        match e {
            StreamingError::NotFound(what) => Problem::not_found(what),
            StreamingError::UnknownUser => {
                Problem::unauthorized("the account this token was issued for does not exist")
            }
            StreamingError::NotPlaying => {
                Problem::new(StatusCode::FORBIDDEN, "session-ended", "The session has ended")
                    .detail("this playback session is over; start playback again for a new URL")
            }
            StreamingError::NotStreamable => {
                Problem::new(StatusCode::NOT_FOUND, "not-streamable", "Not available for streaming")
                    .detail("this movie has no media to stream")
            }
            StreamingError::NoSubscription => {
                Problem::new(StatusCode::FORBIDDEN, "subscription-required", "A subscription is required")
                    .detail("subscribe to a plan (POST /api/v1/subscriptions) to watch movies")
            }
            StreamingError::SubscriptionEnded => {
                Problem::new(StatusCode::FORBIDDEN, "subscription-ended", "The subscription ended")
                    .detail("this session was stopped because the subscription is no longer active")
            }
            StreamingError::StreamLimit(max) => Problem::conflict("stream-limit", "Too many streams")
                .detail(format!(
                    "your plan plays {max} stream{} at once; stop one to start another",
                    if max == 1 { "" } else { "s" }
                ))
                .extension("max_streams", max),
            StreamingError::SessionEnded(status) => {
                Problem::conflict("session-ended", "The session has ended")
                    .detail(match status {
                        Status::Expired => "no heartbeat came for too long; start playback again",
                        Status::Revoked => "the plan no longer allows this stream; start playback again",
                        _ => "the session was stopped; start playback again",
                    })
                    .extension("reason", status.as_str())
            }
            StreamingError::BadUrl(BadUrl::Expired) => {
                Problem::new(StatusCode::FORBIDDEN, "stream-url-expired", "The stream URL expired")
                    .detail("start playback again for a new URL")
            }
            StreamingError::BadUrl(_) => {
                Problem::new(StatusCode::FORBIDDEN, "bad-stream-url", "Not a valid stream URL")
                    .detail("the URL's signature does not match; use the URL playback start gave")
            }
            StreamingError::UnsupportedMedia => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .detail("upload video/mp4 or video/webm"),
            StreamingError::TooLarge(max) => {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "The upload is too large")
                    .detail(format!("media files may be at most {max} bytes (MARQUEE_MEDIA_MAX_BYTES)"))
            }
            StreamingError::Incomplete => {
                Problem::new(StatusCode::BAD_REQUEST, "incomplete-body", "The upload broke off")
                    .detail("the request body ended early; nothing was stored")
            }
            StreamingError::Invalid(errors) => Problem::invalid(errors),
            StreamingError::Unavailable(detail) => Problem::unavailable(detail),
            StreamingError::Internal(e) => e.into(),
        }
    }
}

impl axum::response::IntoResponse for StreamingError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
