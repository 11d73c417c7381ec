//! reviews' SQL, written once for SQLite and PostgreSQL. Times are passed in, never read here.

use platform::{
    db::{Db, flag, is_unique_violation, uuid_column as uuid},
    pagination::PageRequest,
    time::{from_ms, to_ms},
};
use sqlx::{AnyConnection, Row, any::AnyRow};
use uuid::Uuid;

use crate::domain::Review;

const COLUMNS: &str = "id, user_id, movie_id, rating, title, body, verified, version, created_at, updated_at";

fn review_from(row: &AnyRow) -> anyhow::Result<Review> {
    Ok(Review {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        movie_id: uuid(row, "movie_id")?,
        rating: row.try_get("rating")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        verified: row.try_get::<i64, _>("verified")? != 0,
        version: row.try_get("version")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

/// Insert a review; false when the user has a live review of the movie (the unique index).
pub async fn insert(tx: &mut AnyConnection, r: &Review) -> anyhow::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO reviews (id, user_id, movie_id, rating, title, body, verified, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(r.id.to_string())
    .bind(r.user_id.to_string())
    .bind(r.movie_id.to_string())
    .bind(r.rating)
    .bind(&r.title)
    .bind(&r.body)
    .bind(flag(r.verified))
    .bind(r.version)
    .bind(to_ms(r.created_at))
    .execute(tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A live review.
pub async fn get(conn: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<Review>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE id = $1 AND deleted_at IS NULL"
    )))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(review_from).transpose()
}

/// The user's live review of a movie.
pub async fn of_user(db: &Db, user: Uuid, movie: Uuid) -> anyhow::Result<Option<Uuid>> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM reviews WHERE user_id = $1 AND movie_id = $2 AND deleted_at IS NULL",
    )
    .bind(user.to_string())
    .bind(movie.to_string())
    .fetch_optional(&db.pool)
    .await?;
    Ok(id.and_then(|id| id.parse().ok()))
}

/// Write a changed review if it is still at `version - 1`; false when another change came first.
pub async fn update(tx: &mut AnyConnection, r: &Review) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE reviews SET rating = $1, title = $2, body = $3, version = $4, updated_at = $5 \
         WHERE id = $6 AND version = $7 AND deleted_at IS NULL",
    )
    .bind(r.rating)
    .bind(&r.title)
    .bind(&r.body)
    .bind(r.version)
    .bind(to_ms(r.updated_at))
    .bind(r.id.to_string())
    .bind(r.version - 1)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Delete a live review at `version`, bumping it; false when it changed or went meanwhile.
pub async fn delete(tx: &mut AnyConnection, id: Uuid, version: i64, now: i64) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE reviews SET deleted_at = $1, version = $2, updated_at = $1 \
         WHERE id = $3 AND version = $4 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(version + 1)
    .bind(id.to_string())
    .bind(version)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Live reviews, newest first, of a movie and/or by a user.
pub async fn list(
    db: &Db,
    movie: Option<Uuid>,
    user: Option<Uuid>,
    page: PageRequest,
) -> anyhow::Result<(Vec<Review>, i64)> {
    let filter = "deleted_at IS NULL AND ($1 = '' OR movie_id = $1) AND ($2 = '' OR user_id = $2)";
    let (movie, user) =
        (movie.map(|m| m.to_string()).unwrap_or_default(), user.map(|u| u.to_string()).unwrap_or_default());
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reviews WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    )))
    .bind(&movie)
    .bind(&user)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM reviews WHERE {filter}")))
            .bind(&movie)
            .bind(&user)
            .fetch_one(&db.pool)
            .await?;
    Ok((rows.iter().map(review_from).collect::<anyhow::Result<_>>()?, total))
}

/// How many live reviews of the movie gave each rating.
pub async fn rating_counts(db: &Db, movie: Uuid) -> anyhow::Result<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT rating, COUNT(*) AS n FROM reviews WHERE movie_id = $1 AND deleted_at IS NULL GROUP BY rating",
    )
    .bind(movie.to_string())
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("rating")?, r.try_get("n")?))).collect()
}

/// Whether the user booked or played the movie.
pub async fn has_watched(conn: &mut AnyConnection, user: Uuid, movie: Uuid) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM watched WHERE user_id = $1 AND movie_id = $2")
        .bind(user.to_string())
        .bind(movie.to_string())
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Record that the user saw the movie, and verify their reviews of it (a review can come before
/// the event that verifies it).
pub async fn watched(
    tx: &mut AnyConnection,
    user: Uuid,
    movie: Uuid,
    how: &str,
    at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO watched (user_id, movie_id, how, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, movie_id) DO NOTHING",
    )
    .bind(user.to_string())
    .bind(movie.to_string())
    .bind(how)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE reviews SET verified = 1 WHERE user_id = $1 AND movie_id = $2 AND verified = 0")
        .bind(user.to_string())
        .bind(movie.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(())
}
