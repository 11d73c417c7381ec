//! streaming's use cases: playback sessions ([`playback`]), media upload and delivery
//! ([`media`]), the watchlist ([`watchlist`]). Handlers, the idle sweeper, the consumer and the
//! demo seeder call these; each state change is one unit of work with its events.
//!
//! Here: what they share: ending a session with its event and its progress, and retrying a unit
//! of work the database refused as a transient conflict.

pub mod media;
pub mod playback;
pub mod watchlist;

use contracts::{event_types::PLAYBACK_STOPPED, streaming::PlaybackStopped};
use events::UnitOfWork;
use platform::time::from_ms;

use crate::{
    domain::{Session, Status, completed},
    error::StreamingError,
    store::{self, Progress},
};

/// End a running session inside the unit of work: free its slot, keep where the viewer got to,
/// announce `playback.stopped`. False (and nothing written) when it had ended already, or, with
/// `idle_before`, when a heartbeat came after all.
pub(crate) async fn end_in(
    work: &mut UnitOfWork,
    session: &Session,
    status: Status,
    position: Option<i64>,
    now: i64,
    idle_before: Option<i64>,
) -> anyhow::Result<bool> {
    if !store::end_session(work.conn(), session.id, status, position, now, idle_before).await? {
        return Ok(false);
    }
    let position = position.unwrap_or(session.position_seconds);
    let done = completed(position, session.duration_seconds);
    // An idle session's viewer was last seen at its last heartbeat, not now.
    let seen = if status == Status::Expired { session.last_seen_at } else { now };
    store::save_progress(work.conn(), session.user_id, &progress(session, position, seen)).await?;
    let event = PlaybackStopped {
        session_id: session.id,
        user_id: session.user_id,
        movie_id: session.movie_id,
        position_seconds: position,
        duration_seconds: session.duration_seconds,
        completed: done,
        reason: status.as_str().to_owned(),
        stopped_at: from_ms(now),
    };
    work.emit(PLAYBACK_STOPPED, session.id.to_string(), &event).await?;
    tracing::info!(session_id = %session.id, reason = status.as_str(), position, "playback ended");
    Ok(true)
}

/// Where the viewer of `session` got to, at `position` seconds, seen at `at` (epoch ms).
pub(crate) fn progress(session: &Session, position: i64, at: i64) -> Progress {
    Progress {
        movie_id: session.movie_id,
        position_seconds: position,
        duration_seconds: session.duration_seconds,
        completed: completed(position, session.duration_seconds),
        last_watched_at: from_ms(at),
    }
}

/// Run a whole unit of work again when the database refused it as a transient conflict (a
/// deadlock or serialization failure on PostgreSQL, a lock timeout on SQLite).
pub(crate) async fn retrying<T, F, Fut>(work: F) -> Result<T, StreamingError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StreamingError>>,
{
    platform::db::retry_transient(
        work,
        |e| matches!(e, StreamingError::Internal(e) if platform::db::is_transient(e)),
    )
    .await
}
