//! recommendations' SQL, written once for SQLite and PostgreSQL: each change merged in so the
//! stored signals do not depend on the order events came in, and everything read back at start.

use platform::db::{flag, uuid_column as uuid};
use sqlx::{AnyConnection, Row};

use crate::{
    engine::{MovieFacts, Show},
    model::{Movie, Signal},
    reactions::Change,
};

pub async fn apply(tx: &mut AnyConnection, change: &Change) -> anyhow::Result<()> {
    match change {
        Change::Movie(f) => {
            sqlx::query(
                "INSERT INTO movies (movie_id, title, genres, director, cast_names, changed_at, deleted) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, \
                 genres = excluded.genres, director = excluded.director, cast_names = excluded.cast_names, \
                 changed_at = excluded.changed_at WHERE movies.changed_at < excluded.changed_at",
            )
            .bind(f.movie.id.to_string())
            .bind(&f.movie.title)
            .bind(serde_json::to_string(&f.movie.genres)?)
            .bind(&f.movie.director)
            .bind(serde_json::to_string(&f.movie.cast)?)
            .bind(f.changed_at)
            .execute(&mut *tx)
            .await?;
        }
        Change::MovieDeleted(id) => {
            sqlx::query(
                "INSERT INTO movies (movie_id, title, genres, director, cast_names, changed_at, deleted) \
                 VALUES ($1, '', '[]', '', '[]', 0, 1) ON CONFLICT (movie_id) DO UPDATE SET deleted = 1",
            )
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        Change::Show(id, s) => {
            sqlx::query(
                "INSERT INTO showtimes (showtime_id, movie_id, theater_id, starts_at, cancelled) VALUES ($1, $2, $3, $4, 0) \
                 ON CONFLICT (showtime_id) DO UPDATE SET movie_id = excluded.movie_id, theater_id = excluded.theater_id, \
                 starts_at = excluded.starts_at",
            )
            .bind(id.to_string())
            .bind(s.movie.to_string())
            .bind(s.theater.to_string())
            .bind(s.starts_at)
            .execute(&mut *tx)
            .await?;
        }
        Change::ShowCancelled(id) => {
            // Before its schedule (out of order): a placeholder the schedule fills, still cancelled.
            sqlx::query(
                "INSERT INTO showtimes (showtime_id, movie_id, theater_id, starts_at, cancelled) \
                 VALUES ($1, '', '', 0, 1) ON CONFLICT (showtime_id) DO UPDATE SET cancelled = 1",
            )
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        Change::Booked { booking, user, movie, showtime, at } => {
            sqlx::query(
                "INSERT INTO bookings (booking_id, user_id, showtime_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (booking_id) DO NOTHING",
            )
            .bind(booking.to_string())
            .bind(user.to_string())
            .bind(showtime.to_string())
            .execute(&mut *tx)
            .await?;
            let signal = Signal { booked: true, last_at: *at, ..Signal::default() };
            merge_signal(tx, *user, *movie, &signal).await?;
        }
        Change::Signal { user, movie, signal } => merge_signal(tx, *user, *movie, signal).await?,
        Change::BookedAt { .. } => {}
    }
    Ok(())
}

/// The SQL of [`Signal::merge`]: booked stays booked, watched only grows, the later review or
/// version wins (ids are hyphenated lowercase hex of the same length, so the text sorts as the
/// UUIDs do), the latest time is kept. (PostgreSQL reads the old row in every `SET`.)
async fn merge_signal(
    tx: &mut AnyConnection,
    user: uuid::Uuid,
    movie: uuid::Uuid,
    s: &Signal,
) -> anyhow::Result<()> {
    const NEWER_RATING: &str = "(excluded.rating_review > interactions.rating_review OR \
         (excluded.rating_review = interactions.rating_review AND excluded.rating_version > interactions.rating_version))";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO interactions (user_id, movie_id, booked, watched_permille, rating, rating_review, rating_version, last_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id, movie_id) DO UPDATE SET \
         booked = CASE WHEN excluded.booked = 1 THEN 1 ELSE interactions.booked END, \
         watched_permille = CASE WHEN interactions.watched_permille IS NULL OR excluded.watched_permille > interactions.watched_permille \
                            THEN COALESCE(excluded.watched_permille, interactions.watched_permille) ELSE interactions.watched_permille END, \
         rating = CASE WHEN {NEWER_RATING} THEN excluded.rating ELSE interactions.rating END, \
         rating_version = CASE WHEN {NEWER_RATING} THEN excluded.rating_version ELSE interactions.rating_version END, \
         rating_review = CASE WHEN {NEWER_RATING} THEN excluded.rating_review ELSE interactions.rating_review END, \
         last_at = CASE WHEN excluded.last_at > interactions.last_at THEN excluded.last_at ELSE interactions.last_at END"
    )))
    .bind(user.to_string())
    .bind(movie.to_string())
    .bind(flag(s.booked))
    .bind(s.watched.map(|w| (w.clamp(0.0, 1.0) * 1000.0).round() as i64))
    .bind(s.rating)
    .bind(s.rating_review.to_string())
    .bind(s.rating_version)
    .bind(s.last_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Everything stored, as changes to merge into a replica's live state.
pub async fn load(db: &platform::db::Db) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for r in
        sqlx::query("SELECT movie_id, title, genres, director, cast_names, changed_at, deleted FROM movies")
            .fetch_all(&db.pool)
            .await?
    {
        let id = uuid(&r, "movie_id")?;
        if r.try_get::<i64, _>("deleted")? != 0 {
            changes.push(Change::MovieDeleted(id));
        }
        let movie = Movie {
            id,
            title: r.try_get("title")?,
            genres: serde_json::from_str(&r.try_get::<String, _>("genres")?)?,
            director: r.try_get("director")?,
            cast: serde_json::from_str(&r.try_get::<String, _>("cast_names")?)?,
            deleted: false,
        };
        changes.push(Change::Movie(MovieFacts { movie, changed_at: r.try_get("changed_at")? }));
    }
    for r in sqlx::query("SELECT showtime_id, movie_id, theater_id, starts_at, cancelled FROM showtimes")
        .fetch_all(&db.pool)
        .await?
    {
        if r.try_get::<String, _>("movie_id")?.is_empty() {
            // Cancelled before its schedule was heard of.
            changes.push(Change::ShowCancelled(uuid(&r, "showtime_id")?));
            continue;
        }
        let show = Show {
            movie: uuid(&r, "movie_id")?,
            theater: uuid(&r, "theater_id")?,
            starts_at: r.try_get("starts_at")?,
            cancelled: r.try_get::<i64, _>("cancelled")? != 0,
        };
        changes.push(Change::Show(uuid(&r, "showtime_id")?, show));
    }
    for r in sqlx::query(
        "SELECT user_id, movie_id, booked, watched_permille, rating, rating_review, rating_version, last_at FROM interactions",
    )
    .fetch_all(&db.pool)
    .await?
    {
        let signal = Signal {
            booked: r.try_get::<i64, _>("booked")? != 0,
            watched: r.try_get::<Option<i64>, _>("watched_permille")?.map(|p| p as f32 / 1000.0),
            rating: r.try_get("rating")?,
            rating_review: uuid(&r, "rating_review")?,
            rating_version: r.try_get("rating_version")?,
            last_at: r.try_get("last_at")?,
        };
        changes.push(Change::Signal { user: uuid(&r, "user_id")?, movie: uuid(&r, "movie_id")?, signal });
    }
    for r in sqlx::query("SELECT user_id, showtime_id FROM bookings").fetch_all(&db.pool).await? {
        changes.push(Change::BookedAt { user: uuid(&r, "user_id")?, showtime: uuid(&r, "showtime_id")? });
    }
    Ok(changes)
}
