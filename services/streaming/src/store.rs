//! streaming's SQL, written once for SQLite and PostgreSQL. Times are passed in (the service's
//! clock), never read here.

use platform::{
    db::{Db, flag, uuid_column as uuid},
    time::{from_ms, to_ms},
};
use serde::Serialize;
use sqlx::{AnyConnection, Row, any::AnyRow};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{MediaKind, Session, Status};

// ---------------------------------------------------------------------------------------------
// media

/// The media a movie is served from.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub movie_id: Uuid,
    pub version: Uuid,
    pub kind: MediaKind,
    pub entry: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub duration_seconds: Option<i64>,
    pub uploaded_by: Uuid,
    pub uploaded_at: OffsetDateTime,
}

impl Media {
    /// The object store prefix of this version's objects.
    pub fn prefix(&self) -> String {
        version_prefix(self.movie_id, self.version)
    }
}

pub fn version_prefix(movie: Uuid, version: Uuid) -> String {
    format!("media/{movie}/{version}")
}

/// One object of a media version.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaObject {
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub etag: String,
}

const MEDIA_COLUMNS: &str = "movie_id, version, kind, entry, content_type, size_bytes, sha256, duration_seconds, uploaded_by, uploaded_at";

fn media_from(row: &AnyRow) -> anyhow::Result<Media> {
    let kind: String = row.try_get("kind")?;
    Ok(Media {
        movie_id: uuid(row, "movie_id")?,
        version: uuid(row, "version")?,
        kind: MediaKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("unknown media kind {kind:?}"))?,
        entry: row.try_get("entry")?,
        content_type: row.try_get("content_type")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        duration_seconds: row.try_get("duration_seconds")?,
        uploaded_by: uuid(row, "uploaded_by")?,
        uploaded_at: from_ms(row.try_get("uploaded_at")?),
    })
}

pub async fn media(db: &Db, movie: Uuid) -> anyhow::Result<Option<Media>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {MEDIA_COLUMNS} FROM media WHERE movie_id = $1")))
            .bind(movie.to_string())
            .fetch_optional(&db.pool)
            .await?;
    row.as_ref().map(media_from).transpose()
}

/// An object of a media version.
pub async fn media_object(
    db: &Db,
    movie: Uuid,
    version: Uuid,
    name: &str,
) -> anyhow::Result<Option<MediaObject>> {
    let row = sqlx::query(
        "SELECT name, content_type, size_bytes, etag FROM media_objects \
         WHERE movie_id = $1 AND version = $2 AND name = $3",
    )
    .bind(movie.to_string())
    .bind(version.to_string())
    .bind(name)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(MediaObject {
            name: r.try_get("name")?,
            content_type: r.try_get("content_type")?,
            size_bytes: r.try_get("size_bytes")?,
            etag: r.try_get("etag")?,
        })
    })
    .transpose()
}

/// Make `media` the movie's media with its objects. The version it replaces is retired: kept
/// while sessions play it, deleted by the sweeper after ([`unused_retired`]). The movie's row is
/// locked first, so two uploads racing each retire what the other replaced.
pub async fn replace_media(
    tx: &mut AnyConnection,
    media: &Media,
    objects: &[MediaObject],
    for_update: &str,
) -> anyhow::Result<Option<Uuid>> {
    let old: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM media WHERE movie_id = $1{for_update}"
    )))
    .bind(media.movie_id.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let old = old.and_then(|v| v.parse::<Uuid>().ok()).filter(|v| *v != media.version);
    if let Some(old) = old {
        sqlx::query(
            "INSERT INTO media_retired (movie_id, version, retired_at) VALUES ($1, $2, $3) \
             ON CONFLICT (movie_id, version) DO NOTHING",
        )
        .bind(media.movie_id.to_string())
        .bind(old.to_string())
        .bind(to_ms(media.uploaded_at))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO media (movie_id, version, kind, entry, content_type, size_bytes, sha256, duration_seconds, \
         uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (movie_id) DO UPDATE SET version = $2, kind = $3, entry = $4, content_type = $5, \
         size_bytes = $6, sha256 = $7, duration_seconds = $8, uploaded_by = $9, uploaded_at = $10",
    )
    .bind(media.movie_id.to_string())
    .bind(media.version.to_string())
    .bind(media.kind.as_str())
    .bind(&media.entry)
    .bind(&media.content_type)
    .bind(media.size_bytes)
    .bind(&media.sha256)
    .bind(media.duration_seconds)
    .bind(media.uploaded_by.to_string())
    .bind(to_ms(media.uploaded_at))
    .execute(&mut *tx)
    .await?;
    for o in objects {
        sqlx::query(
            "INSERT INTO media_objects (movie_id, version, name, content_type, size_bytes, etag) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(media.movie_id.to_string())
        .bind(media.version.to_string())
        .bind(&o.name)
        .bind(&o.content_type)
        .bind(o.size_bytes)
        .bind(&o.etag)
        .execute(&mut *tx)
        .await?;
    }
    Ok(old)
}

/// Retired versions no running session plays any more: their objects can go.
pub async fn unused_retired(db: &Db, limit: i64) -> anyhow::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query(
        "SELECT r.movie_id, r.version FROM media_retired r WHERE NOT EXISTS (\
           SELECT 1 FROM playback_sessions s WHERE s.movie_id = r.movie_id AND s.media_version = r.version \
           AND s.slot IS NOT NULL) ORDER BY r.retired_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((uuid(r, "movie_id")?, uuid(r, "version")?))).collect()
}

/// Forget a retired version once its objects are deleted.
pub async fn forget_version(db: &Db, movie: Uuid, version: Uuid) -> anyhow::Result<()> {
    let mut tx = db.begin_write().await?;
    for table in ["media_objects", "media_retired"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE movie_id = $1 AND version = $2")))
            .bind(movie.to_string())
            .bind(version.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// playback sessions

const SESSION_COLUMNS: &str = "id, user_id, movie_id, slot, status, max_streams, entitled_until, recheck, \
                               position_seconds, duration_seconds, url_expires_at, started_at, last_seen_at, \
                               media_version";

fn session_from(row: &AnyRow) -> anyhow::Result<Session> {
    let status: String = row.try_get("status")?;
    Ok(Session {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        movie_id: uuid(row, "movie_id")?,
        slot: row.try_get("slot")?,
        status: Status::parse(&status).ok_or_else(|| anyhow::anyhow!("unknown session status {status:?}"))?,
        max_streams: row.try_get("max_streams")?,
        entitled_until: row.try_get("entitled_until")?,
        recheck: row.try_get("recheck")?,
        position_seconds: row.try_get("position_seconds")?,
        duration_seconds: row.try_get("duration_seconds")?,
        url_expires_at: row.try_get("url_expires_at")?,
        started_at: from_ms(row.try_get("started_at")?),
        last_seen_at: row.try_get("last_seen_at")?,
        media_version: row.try_get::<Option<String>, _>("media_version")?.and_then(|v| v.parse().ok()),
    })
}

pub async fn session(db: &Db, id: Uuid) -> anyhow::Result<Option<Session>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM playback_sessions WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(session_from).transpose()
}

/// Take this user's turn to start: a row lock held until the transaction ends, so their starts
/// (on any replica) count their running sessions one after the other.
pub async fn take_turn(tx: &mut AnyConnection, user: Uuid) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO playback_users (user_id, starts) VALUES ($1, 1) \
         ON CONFLICT (user_id) DO UPDATE SET starts = playback_users.starts + 1",
    )
    .bind(user.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

/// The slots of the user's running sessions.
pub async fn running_slots(tx: &mut AnyConnection, user: Uuid) -> anyhow::Result<Vec<i64>> {
    Ok(sqlx::query_scalar("SELECT slot FROM playback_sessions WHERE user_id = $1 AND slot IS NOT NULL")
        .bind(user.to_string())
        .fetch_all(tx)
        .await?)
}

/// How many of the user's running sessions started before this one (0 for the first).
pub async fn rank(db: &Db, session: &Session) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM playback_sessions WHERE user_id = $1 AND slot IS NOT NULL \
         AND (started_at < $2 OR (started_at = $2 AND id < $3))",
    )
    .bind(session.user_id.to_string())
    .bind(to_ms(session.started_at))
    .bind(session.id.to_string())
    .fetch_one(&db.pool)
    .await?)
}

/// Insert a new active session in stream slot `session.slot`; false when that slot is taken
/// (the unique index; with [`take_turn`] first, it never is).
pub async fn insert_session(tx: &mut AnyConnection, s: &Session) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO playback_sessions (id, user_id, movie_id, slot, status, max_streams, entitled_until, recheck, \
         position_seconds, duration_seconds, url_expires_at, started_at, last_seen_at, media_version) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, 0, $7, $8, $9, $10, $10, $11) \
         ON CONFLICT (user_id, slot) DO NOTHING",
    )
    .bind(s.id.to_string())
    .bind(s.user_id.to_string())
    .bind(s.movie_id.to_string())
    .bind(s.slot)
    .bind(s.max_streams)
    .bind(s.entitled_until)
    .bind(s.position_seconds)
    .bind(s.duration_seconds)
    .bind(s.url_expires_at)
    .bind(to_ms(s.started_at))
    .bind(s.media_version.map(|v| v.to_string()))
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Running sessions with no heartbeat since `cutoff`: of one user, or anyone's (`None`).
pub async fn idle_sessions(
    conn: &mut AnyConnection,
    user: Option<Uuid>,
    cutoff: i64,
    limit: i64,
) -> anyhow::Result<Vec<Session>> {
    let rows = match user {
        Some(user) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SESSION_COLUMNS} FROM playback_sessions \
                 WHERE user_id = $1 AND slot IS NOT NULL AND last_seen_at < $2 ORDER BY id LIMIT $3"
            )))
            .bind(user.to_string())
            .bind(cutoff)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SESSION_COLUMNS} FROM playback_sessions \
                 WHERE slot IS NOT NULL AND last_seen_at < $1 ORDER BY last_seen_at LIMIT $2"
            )))
            .bind(cutoff)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(session_from).collect()
}

/// A heartbeat: the position and the time, for a session that still runs and has not gone
/// idle (`last_seen_at >= cutoff`); false otherwise.
pub async fn touch(
    tx: &mut AnyConnection,
    id: Uuid,
    position: i64,
    now: i64,
    cutoff: i64,
) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE playback_sessions SET position_seconds = $1, last_seen_at = $2 \
         WHERE id = $3 AND slot IS NOT NULL AND last_seen_at >= $4",
    )
    .bind(position)
    .bind(now)
    .bind(id.to_string())
    .bind(cutoff)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// What payments said, for a running session. The recheck mark is cleared only if it is still
/// the one the heartbeat saw: an event that came while payments was asked keeps it.
pub async fn entitled(
    tx: &mut AnyConnection,
    id: Uuid,
    max_streams: i64,
    until: i64,
    seen_recheck: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE playback_sessions SET max_streams = $1, entitled_until = $2, \
         recheck = CASE WHEN recheck = $3 THEN 0 ELSE recheck END WHERE id = $4 AND slot IS NOT NULL",
    )
    .bind(max_streams)
    .bind(until)
    .bind(seen_recheck)
    .bind(id.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

/// Ask payments again at the next heartbeat of each running session of the user.
pub async fn recheck_user(tx: &mut AnyConnection, user: Uuid) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE playback_sessions SET recheck = recheck + 1 WHERE user_id = $1 AND slot IS NOT NULL",
    )
    .bind(user.to_string())
    .execute(tx)
    .await?
    .rows_affected())
}

/// End a running session, freeing its slot; false when it had ended already. `idle_before`
/// (for expiry) ends it only if it is still idle, so a heartbeat that got in first wins.
pub async fn end_session(
    tx: &mut AnyConnection,
    id: Uuid,
    status: Status,
    position: Option<i64>,
    now: i64,
    idle_before: Option<i64>,
) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE playback_sessions SET slot = NULL, status = $1, position_seconds = COALESCE($2, position_seconds), \
         ended_at = $3, end_reason = $1 WHERE id = $4 AND slot IS NOT NULL AND last_seen_at < $5",
    )
    .bind(status.as_str())
    .bind(position)
    .bind(now)
    .bind(id.to_string())
    .bind(idle_before.unwrap_or(i64::MAX))
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

// ---------------------------------------------------------------------------------------------
// watch progress ("continue watching")

/// Where a user got to in a movie.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub movie_id: Uuid,
    pub position_seconds: i64,
    pub duration_seconds: i64,
    pub completed: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_watched_at: OffsetDateTime,
}

/// Keep where the user got to, unless a later report is kept already (another device, a
/// session that expired after a newer one reported).
pub async fn save_progress(tx: &mut AnyConnection, user: Uuid, p: &Progress) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO watch_progress (user_id, movie_id, position_seconds, duration_seconds, completed, last_watched_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, movie_id) DO UPDATE SET \
         position_seconds = $3, duration_seconds = $4, completed = $5, last_watched_at = $6 \
         WHERE watch_progress.last_watched_at <= $6",
    )
    .bind(user.to_string())
    .bind(p.movie_id.to_string())
    .bind(p.position_seconds)
    .bind(p.duration_seconds)
    .bind(flag(p.completed))
    .bind(to_ms(p.last_watched_at))
    .execute(tx)
    .await?;
    Ok(())
}

fn progress_from(row: &AnyRow) -> anyhow::Result<Progress> {
    Ok(Progress {
        movie_id: uuid(row, "movie_id")?,
        position_seconds: row.try_get("position_seconds")?,
        duration_seconds: row.try_get("duration_seconds")?,
        completed: row.try_get::<i64, _>("completed")? != 0,
        last_watched_at: from_ms(row.try_get("last_watched_at")?),
    })
}

pub async fn progress(db: &Db, user: Uuid, movie: Uuid) -> anyhow::Result<Option<Progress>> {
    let row = sqlx::query(
        "SELECT movie_id, position_seconds, duration_seconds, completed, last_watched_at FROM watch_progress \
         WHERE user_id = $1 AND movie_id = $2",
    )
    .bind(user.to_string())
    .bind(movie.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(progress_from).transpose()
}

/// The user's history: unfinished movies first ("continue watching"), then finished ones, each
/// most recent first.
pub async fn history(db: &Db, user: Uuid, limit: i64) -> anyhow::Result<Vec<Progress>> {
    let rows = sqlx::query(
        "SELECT movie_id, position_seconds, duration_seconds, completed, last_watched_at FROM watch_progress \
         WHERE user_id = $1 ORDER BY completed, last_watched_at DESC, movie_id LIMIT $2",
    )
    .bind(user.to_string())
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(progress_from).collect()
}

// ---------------------------------------------------------------------------------------------
// watchlist

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WatchlistEntry {
    pub movie_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: OffsetDateTime,
}

/// Add a movie to the list; false when it was there already (it keeps its first date).
pub async fn add_to_watchlist(db: &Db, user: Uuid, movie: Uuid, now: i64) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "INSERT INTO watchlist (user_id, movie_id, added_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, movie_id) DO NOTHING",
    )
    .bind(user.to_string())
    .bind(movie.to_string())
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub async fn remove_from_watchlist(db: &Db, user: Uuid, movie: Uuid) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM watchlist WHERE user_id = $1 AND movie_id = $2")
        .bind(user.to_string())
        .bind(movie.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn watchlist(db: &Db, user: Uuid, limit: i64) -> anyhow::Result<Vec<WatchlistEntry>> {
    let rows = sqlx::query(
        "SELECT movie_id, added_at FROM watchlist WHERE user_id = $1 ORDER BY added_at DESC, movie_id LIMIT $2",
    )
    .bind(user.to_string())
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(WatchlistEntry { movie_id: uuid(r, "movie_id")?, added_at: from_ms(r.try_get("added_at")?) })
        })
        .collect()
}
