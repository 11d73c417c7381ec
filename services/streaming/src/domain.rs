//! streaming's domain: a session's states, the completion rule, media kinds and their content
//! types. No axum, no SQL.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// A playback session's state. Only `Active` holds a stream slot; every other state is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    /// The viewer stopped it.
    Stopped,
    /// No heartbeat for the idle timeout (60 s).
    Expired,
    /// The subscription ended, or its plan allows fewer streams than are running.
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Stopped => "stopped",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Stopped, Self::Expired, Self::Revoked].into_iter().find(|x| x.as_str() == s)
    }
}

/// A playback session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub movie_id: Uuid,
    pub slot: Option<i64>,
    pub status: Status,
    pub max_streams: i64,
    /// epoch ms
    pub entitled_until: i64,
    /// Bumped by each subscription event of the user; nonzero: ask payments again. A heartbeat
    /// clears it only if no event came while it asked.
    pub recheck: i64,
    pub position_seconds: i64,
    pub duration_seconds: i64,
    /// epoch ms
    pub url_expires_at: i64,
    pub started_at: OffsetDateTime,
    /// epoch ms
    pub last_seen_at: i64,
    /// The media version it plays (`None`: sessions from before versions were kept: the
    /// movie's current one).
    pub media_version: Option<Uuid>,
}

/// Watched past 90 % of the running time.
pub fn completed(position_seconds: i64, duration_seconds: i64) -> bool {
    duration_seconds > 0 && position_seconds.saturating_mul(10) >= duration_seconds.saturating_mul(9)
}

/// The longest running time a media file may claim (100 hours); a header saying more is taken
/// as saying nothing.
pub const MAX_DURATION_SECONDS: i64 = 100 * 3600;

/// The lowest stream slot not in `taken`.
pub fn free_slot(taken: &[i64]) -> i64 {
    (0..).find(|slot| !taken.contains(slot)).unwrap_or(0)
}

/// Where a new session starts: where the viewer stopped, or the beginning when they finished it.
pub fn resume_position(saved: Option<(i64, bool)>) -> i64 {
    match saved {
        Some((position, false)) => position,
        _ => 0,
    }
}

/// How a movie's media is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// One file served as it is, with ranges.
    File,
    /// An HLS playlist (`index.m3u8`) with its segments.
    Hls,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Hls => "hls",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Self::File),
            "hls" => Some(Self::Hls),
            _ => None,
        }
    }
}

/// The uploads we take and the name the file is kept under.
pub fn upload_name(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "video/mp4" => Some("media.mp4"),
        "video/webm" => Some("media.webm"),
        _ => None,
    }
}

/// The content type of an object of a media version, by its name.
pub fn content_type_of(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("aac") => "audio/aac",
        Some("vtt") => "text/vtt",
        _ => "application/octet-stream",
    }
}

/// An object name inside a media version: plain file names only (`seg001.ts`), so nothing from a
/// URL or a playlist can reach outside its version's prefix.
pub fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_movie_is_completed_past_ninety_percent() {
        assert!(!completed(89, 100));
        assert!(completed(90, 100));
        assert!(!completed(0, 0), "an unknown running time never completes");
        assert_eq!(resume_position(Some((42, false))), 42);
        assert_eq!(resume_position(Some((95, true))), 0, "a finished movie starts over");
        assert_eq!(resume_position(None), 0);
        assert!(!completed(1, i64::MAX), "no overflow");
        assert_eq!(free_slot(&[]), 0);
        assert_eq!(free_slot(&[0, 2]), 1);
        assert_eq!(free_slot(&[1, 0]), 2);
    }

    #[test]
    fn object_names_cannot_leave_their_version() {
        for bad in ["", "../x", "..", ".hidden", "a/b", "a\\b", "seg 1.ts", "é.ts", "%2e%2e"] {
            assert!(!is_object_name(bad), "{bad:?}");
        }
        for good in ["media.mp4", "index.m3u8", "seg_001.ts", "init-0.m4s"] {
            assert!(is_object_name(good), "{good:?}");
        }
        assert_eq!(content_type_of("seg001.ts"), "video/mp2t");
        assert_eq!(upload_name("Video/MP4; codecs=avc1"), Some("media.mp4"));
        assert_eq!(upload_name("text/html"), None);
    }
}
