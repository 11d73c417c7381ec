//! Payloads of the streaming service's events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `playback.started`: a user opened a playback session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybackStarted {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub movie_id: Uuid,
    pub position_seconds: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// `playback.stopped`: a session ended, with where the viewer got to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybackStopped {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub movie_id: Uuid,
    pub position_seconds: i64,
    pub duration_seconds: i64,
    /// Watched past 90 %.
    pub completed: bool,
    /// `stopped` (the viewer stopped), `expired` (no heartbeat for a minute) or `revoked` (the
    /// subscription ended, or its plan no longer allows this many streams).
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub stopped_at: OffsetDateTime,
}

/// `media.uploaded`: a movie has media that can be streamed (catalog marks it `streamable`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaUploaded {
    pub movie_id: Uuid,
    /// `file` (one file, served with ranges) or `hls` (a playlist with segments).
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub duration_seconds: Option<i64>,
}
