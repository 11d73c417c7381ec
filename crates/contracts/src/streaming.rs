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
