//! Playback sessions: start (user, movie, subscription, a free stream slot), heartbeats that keep
//! the slot and save progress, stop, the end of idle sessions, and the history.
//!
//! The stream limit counts sessions, not devices. A start first takes the user's turn (a row
//! lock in the database, so one user's starts on any replica go one after the other), counts
//! their running sessions, and takes a free stream slot; the unique (user, slot) index is a
//! second guard. Two starts racing on two replicas for the last stream cannot both get it.

use contracts::{event_types::PLAYBACK_STARTED, streaming::PlaybackStarted};
use platform::{FieldError, time::from_ms};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{end_in, progress, retrying};
use crate::{
    AppState,
    domain::{Session, Status, free_slot, resume_position},
    error::StreamingError,
    store::{self, Progress},
};

/// The answer to a start.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Started {
    pub session_id: Uuid,
    pub movie_id: Uuid,
    /// Signed; works until `expires_at` while the session runs. Relative to the API's origin
    /// unless `MARQUEE_PUBLIC_URL` is set.
    pub stream_url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
    pub resume_position_seconds: i64,
    pub duration_seconds: i64,
    /// `file` (one file, with ranges) or `hls` (a playlist).
    pub kind: String,
}

/// Payments' answer is taken for at most this long: an event that was missed (consumed in the
/// moment between a start's question and its insert, say) costs at most this much streaming.
const RECHECK_AT_LEAST_EVERY_MS: i64 = 5 * 60 * 1000;

fn until_ms(rfc3339: &str, now: i64) -> i64 {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map_or(now, platform::time::to_ms)
        .min(now + RECHECK_AT_LEAST_EVERY_MS)
}

/// Open a playback session of `movie` for `user`.
pub async fn start(state: &AppState, user: Uuid, movie_id: Uuid) -> Result<Started, StreamingError> {
    if !state.clients.user_exists(user).await? {
        return Err(StreamingError::UnknownUser);
    }
    let movie = state.clients.movie(movie_id).await?.ok_or(StreamingError::NotFound("movie"))?;
    let media = match movie.streamable {
        true => store::media(&state.db, movie_id).await?.ok_or(StreamingError::NotStreamable)?,
        false => return Err(StreamingError::NotStreamable),
    };
    let entitlement = state.clients.entitlement(user).await?.ok_or(StreamingError::NoSubscription)?;
    let now = state.clock.now_ms();
    let saved = store::progress(&state.db, user, movie_id).await?;
    let duration = media.duration_seconds.unwrap_or(movie.runtime_minutes * 60).max(1);
    let resume = resume_position(saved.map(|p| (p.position_seconds, p.completed))).min(duration);
    let url_expires_at = now / 1000 + state.config.url_ttl_secs;
    let base = Session {
        id: Uuid::now_v7(),
        user_id: user,
        movie_id,
        slot: None,
        status: Status::Active,
        max_streams: entitlement.max_streams,
        entitled_until: until_ms(&entitlement.until, now),
        recheck: 0,
        position_seconds: resume,
        duration_seconds: duration,
        url_expires_at,
        started_at: from_ms(now),
        last_seen_at: now,
        media_version: Some(media.version),
    };
    let idle_before = now - state.config.idle_ms;
    let taken = retrying(|| async {
        let mut session = base.clone();
        let mut work = state.effects.begin(&state.db).await?;
        // A session gone quiet frees its slot now rather than at the sweeper's next pass.
        for idle in store::idle_sessions(work.conn(), Some(user), idle_before, 100).await? {
            end_in(&mut work, &idle, Status::Expired, None, now, Some(idle_before)).await?;
        }
        store::take_turn(work.conn(), user).await?;
        let running = store::running_slots(work.conn(), user).await?;
        let mut taken = None;
        if (running.len() as i64) < entitlement.max_streams {
            session.slot = Some(free_slot(&running));
            if store::insert_session(work.conn(), &session).await? {
                taken = session.slot;
            }
        }
        if taken.is_some() {
            let started = PlaybackStarted {
                session_id: session.id,
                user_id: user,
                movie_id,
                position_seconds: resume,
                started_at: session.started_at,
            };
            work.emit(PLAYBACK_STARTED, session.id.to_string(), &started).await?;
        }
        // Commit either way: the idle sessions ended above stay ended.
        work.commit().await?;
        Ok(taken.map(|slot| (slot, session)))
    })
    .await?;
    let Some((slot, session)) = taken else {
        return Err(StreamingError::StreamLimit(entitlement.max_streams));
    };
    tracing::info!(session_id = %session.id, %movie_id, slot, "playback started");
    let stream_url =
        format!("{}{}", state.config.public_url, state.signer.url(session.id, &media.entry, url_expires_at));
    Ok(Started {
        session_id: session.id,
        movie_id,
        stream_url,
        expires_at: from_ms(url_expires_at * 1000),
        resume_position_seconds: resume,
        duration_seconds: duration,
        kind: media.kind.as_str().to_owned(),
    })
}

/// A position as a player reports it (seconds, maybe with a fraction), checked and clamped to the
/// running time.
pub fn position(seconds: f64, duration: i64) -> Result<i64, StreamingError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(StreamingError::Invalid(vec![FieldError::new(
            "position_seconds",
            "must be a number of seconds, 0 or more",
        )]));
    }
    Ok((seconds.floor() as i64).min(duration))
}

/// The user's own session (another user's is a 404, so ids cannot be probed).
async fn own_session(state: &AppState, user: Uuid, id: Uuid) -> Result<Session, StreamingError> {
    store::session(&state.db, id)
        .await?
        .filter(|s| s.user_id == user)
        .ok_or(StreamingError::NotFound("session"))
}

/// A heartbeat: save the position and keep the slot. A session that went idle, or whose
/// subscription ended (payments is asked again when its answer ran out or a subscription event
/// came), is over.
pub async fn heartbeat(state: &AppState, user: Uuid, id: Uuid, seconds: f64) -> Result<(), StreamingError> {
    let session = own_session(state, user, id).await?;
    let at = position(seconds, session.duration_seconds)?;
    if session.status != Status::Active {
        return Err(StreamingError::SessionEnded(session.status));
    }
    let now = state.clock.now_ms();
    let idle_before = now - state.config.idle_ms;
    if session.last_seen_at < idle_before {
        end_session(state, &session, Status::Expired, Some(at), Some(idle_before)).await?;
        return Err(StreamingError::SessionEnded(Status::Expired));
    }
    let mut entitled = None;
    if session.recheck != 0 || now >= session.entitled_until {
        match state.clients.entitlement(user).await {
            Ok(None) => {
                end_session(state, &session, Status::Revoked, Some(at), None).await?;
                return Err(StreamingError::SubscriptionEnded);
            }
            Ok(Some(e)) if store::rank(&state.db, &session).await? >= e.max_streams => {
                // A smaller plan: the streams started first play on, the later ones end.
                end_session(state, &session, Status::Revoked, Some(at), None).await?;
                return Err(StreamingError::StreamLimit(e.max_streams));
            }
            Ok(Some(e)) => entitled = Some((e.max_streams, until_ms(&e.until, now))),
            // Payments being down stops no film: the session plays on and asks again next time.
            Err(e) => tracing::warn!(session_id = %id, error = %e, "could not recheck the subscription"),
        }
    }
    let touched = retrying(|| async {
        let mut work = state.effects.begin(&state.db).await?;
        if !store::touch(work.conn(), id, at, now, idle_before).await? {
            work.rollback().await?;
            return Ok(false);
        }
        if let Some((max_streams, until)) = entitled {
            store::entitled(work.conn(), id, max_streams, until, session.recheck).await?;
        }
        store::save_progress(work.conn(), user, &progress(&session, at, now)).await?;
        work.commit().await?;
        Ok(true)
    })
    .await?;
    if !touched {
        // Ended between the read and the write (stopped elsewhere, swept as idle).
        let status = store::session(&state.db, id).await?.map_or(Status::Expired, |s| s.status);
        return Err(StreamingError::SessionEnded(if status == Status::Active {
            Status::Expired
        } else {
            status
        }));
    }
    Ok(())
}

async fn end_session(
    state: &AppState,
    session: &Session,
    status: Status,
    at: Option<i64>,
    idle_before: Option<i64>,
) -> Result<bool, StreamingError> {
    let now = state.clock.now_ms();
    retrying(|| async {
        let mut work = state.effects.begin(&state.db).await?;
        let ended = end_in(&mut work, session, status, at, now, idle_before).await?;
        work.commit().await?;
        Ok(ended)
    })
    .await
}

/// Stop: free the slot and keep the position. Stopping a session that is already over (it went
/// idle, say) still keeps the position the player reports, and answers the same.
pub async fn stop(state: &AppState, user: Uuid, id: Uuid, seconds: f64) -> Result<(), StreamingError> {
    let session = own_session(state, user, id).await?;
    let at = position(seconds, session.duration_seconds)?;
    if end_session(state, &session, Status::Stopped, Some(at), None).await? {
        return Ok(());
    }
    let seen = progress(&session, at, state.clock.now_ms());
    retrying(|| async {
        let mut work = state.effects.begin(&state.db).await?;
        store::save_progress(work.conn(), user, &seen).await?;
        work.commit().await?;
        Ok(())
    })
    .await
}

/// End sessions with no heartbeat for the idle timeout, freeing their slots. One pass; the
/// sweeper runs it, tests call it.
pub async fn expire_idle(state: &AppState) -> anyhow::Result<usize> {
    let now = state.clock.now_ms();
    let idle_before = now - state.config.idle_ms;
    let idle = {
        let mut conn = state.db.pool.acquire().await?;
        store::idle_sessions(&mut conn, None, idle_before, 500).await?
    };
    let mut ended = 0;
    for session in idle {
        if end_session(state, &session, Status::Expired, None, Some(idle_before)).await.map_err(anyhow_of)? {
            ended += 1;
        }
    }
    Ok(ended)
}

fn anyhow_of(e: StreamingError) -> anyhow::Error {
    match e {
        StreamingError::Internal(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

/// What the user watched: unfinished movies first ("continue watching"), then finished ones,
/// each most recent first.
pub async fn history(state: &AppState, user: Uuid) -> Result<Vec<Progress>, StreamingError> {
    Ok(store::history(&state.db, user, 100).await?)
}
