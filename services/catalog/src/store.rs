//! catalog's SQL, written once for SQLite and PostgreSQL.

use anyhow::Context;
use platform::{
    db::{Db, flag, is_unique_violation},
    pagination::PageRequest,
    time::now_ms,
};
use sqlx::{AnyConnection, Row, any::AnyRow};
use uuid::Uuid;

use crate::domain::{Movie, NewMovie, Sort, format_date};

const COLUMNS: &str = "id, title, synopsis, runtime_minutes, release_date, director, cast_names, genres, \
                       poster_url, featured, streamable, imdb_id, rating_sum, rating_count";

fn movie_from(row: &AnyRow) -> anyhow::Result<Movie> {
    let id: String = row.try_get("id")?;
    let cast: String = row.try_get("cast_names")?;
    let genres: String = row.try_get("genres")?;
    let sum: i64 = row.try_get("rating_sum")?;
    let count: i64 = row.try_get("rating_count")?;
    Ok(Movie {
        id: id.parse().context("stored movie id")?,
        title: row.try_get("title")?,
        synopsis: row.try_get("synopsis")?,
        genres: serde_json::from_str(&genres).context("stored genres")?,
        runtime_minutes: row.try_get("runtime_minutes")?,
        release_date: row.try_get("release_date")?,
        director: row.try_get("director")?,
        cast: serde_json::from_str(&cast).context("stored cast")?,
        // One decimal, as people read ratings.
        rating: (count > 0).then(|| (sum as f64 / count as f64 * 10.0).round() / 10.0),
        rating_count: count,
        poster_url: row.try_get("poster_url")?,
        featured: row.try_get::<i64, _>("featured")? != 0,
        streamable: row.try_get::<i64, _>("streamable")? != 0,
        imdb_id: row.try_get("imdb_id")?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("a movie with this IMDb id exists")]
    ImdbIdTaken,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        if is_unique_violation(&e) { Self::ImdbIdTaken } else { Self::Other(e.into()) }
    }
}

async fn write_genres(tx: &mut AnyConnection, id: &str, genres: &[String]) -> Result<(), WriteError> {
    sqlx::query("DELETE FROM movie_genres WHERE movie_id = $1").bind(id).execute(&mut *tx).await?;
    for g in genres {
        sqlx::query("INSERT INTO movie_genres (movie_id, genre_slug) VALUES ($1, $2)")
            .bind(id)
            .bind(g)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub async fn insert(tx: &mut AnyConnection, m: &NewMovie) -> Result<Movie, WriteError> {
    let id = Uuid::now_v7();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO movies (id, title, title_lower, synopsis, runtime_minutes, release_date, release_year, director, \
         cast_names, genres, poster_url, featured, streamable, imdb_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)",
    )
    .bind(id.to_string())
    .bind(&m.title)
    .bind(m.title.to_lowercase())
    .bind(&m.synopsis)
    .bind(m.runtime_minutes)
    .bind(m.release_date.map(format_date))
    .bind(m.release_date.map(|d| i64::from(d.year())))
    .bind(&m.director)
    .bind(serde_json::to_string(&m.cast).map_err(anyhow::Error::from)?)
    .bind(serde_json::to_string(&m.genres).map_err(anyhow::Error::from)?)
    .bind(&m.poster_url)
    .bind(flag(m.featured))
    .bind(flag(m.streamable))
    .bind(&m.imdb_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    write_genres(tx, &id.to_string(), &m.genres).await?;
    get_in(tx, id).await?.ok_or_else(|| WriteError::Other(anyhow::anyhow!("the new movie vanished")))
}

pub async fn update(tx: &mut AnyConnection, id: Uuid, m: &NewMovie) -> Result<Option<Movie>, WriteError> {
    let n = sqlx::query(
        "UPDATE movies SET title = $1, title_lower = $2, synopsis = $3, runtime_minutes = $4, release_date = $5, \
         release_year = $6, director = $7, cast_names = $8, genres = $9, poster_url = $10, featured = $11, \
         streamable = $12, imdb_id = $13, updated_at = $14 WHERE id = $15 AND deleted_at IS NULL",
    )
    .bind(&m.title)
    .bind(m.title.to_lowercase())
    .bind(&m.synopsis)
    .bind(m.runtime_minutes)
    .bind(m.release_date.map(format_date))
    .bind(m.release_date.map(|d| i64::from(d.year())))
    .bind(&m.director)
    .bind(serde_json::to_string(&m.cast).map_err(anyhow::Error::from)?)
    .bind(serde_json::to_string(&m.genres).map_err(anyhow::Error::from)?)
    .bind(&m.poster_url)
    .bind(flag(m.featured))
    .bind(flag(m.streamable))
    .bind(&m.imdb_id)
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(None);
    }
    write_genres(tx, &id.to_string(), &m.genres).await?;
    Ok(get_in(tx, id).await?)
}

/// Soft-delete: false when there was no such (live) movie.
pub async fn soft_delete(tx: &mut AnyConnection, id: Uuid) -> anyhow::Result<bool> {
    let now = now_ms();
    let n = sqlx::query(
        "UPDATE movies SET deleted_at = $1, updated_at = $1 WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(id.to_string())
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

async fn get_in(conn: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<Movie>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM movies WHERE id = $1 AND deleted_at IS NULL"
    )))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(movie_from).transpose()
}

/// A live movie.
/// Mark a movie streamable (its media arrived); the movie when this changed it, `None` when it
/// was streamable already or does not exist.
pub async fn mark_streamable(tx: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<Movie>> {
    let changed = sqlx::query(
        "UPDATE movies SET streamable = 1, updated_at = $1 WHERE id = $2 AND deleted_at IS NULL AND streamable = 0",
    )
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    get_in(tx, id).await
}

pub async fn get(db: &Db, id: Uuid) -> anyhow::Result<Option<Movie>> {
    let mut conn = db.reader().acquire().await?;
    get_in(&mut conn, id).await
}

/// Live movies by id, in the order asked (search results).
pub async fn get_many(db: &Db, ids: &[Uuid]) -> anyhow::Result<Vec<Movie>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM movies WHERE deleted_at IS NULL AND id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.to_string());
    }
    let rows = query.fetch_all(db.replica()).await?;
    let mut movies: Vec<Movie> = rows.iter().map(movie_from).collect::<anyhow::Result<_>>()?;
    movies.sort_by_key(|m| ids.iter().position(|id| *id == m.id));
    Ok(movies)
}

pub async fn exists_with_imdb_id(db: &Db, imdb_id: &str) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM movies WHERE imdb_id = $1")
        .bind(imdb_id)
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

pub async fn count_all(db: &Db) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM movies").fetch_one(db.reader()).await?)
}

/// Every live movie, for building the search index.
pub async fn all(db: &Db) -> anyhow::Result<Vec<Movie>> {
    let rows =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM movies WHERE deleted_at IS NULL")))
            .fetch_all(db.reader())
            .await?;
    rows.iter().map(movie_from).collect()
}

pub struct ListFilter<'a> {
    pub q: Option<&'a str>,
    pub genre: Option<&'a str>,
    pub year: Option<i64>,
    pub featured_only: bool,
    pub sort: Sort,
}

/// A page of live movies. `q` is a plain substring filter on title and director; typo-tolerant
/// ranked search is `/movies/search`.
pub async fn list(db: &Db, f: &ListFilter<'_>, page: PageRequest) -> anyhow::Result<(Vec<Movie>, i64)> {
    let q =
        f.q.map(|q| format!("%{}%", q.trim().to_lowercase().replace(['\\', '%', '_'], "")))
            .unwrap_or_default();
    let filter = "deleted_at IS NULL \
        AND ($1 = '' OR title_lower LIKE $1 OR LOWER(director) LIKE $1) \
        AND ($2 = '' OR EXISTS (SELECT 1 FROM movie_genres mg WHERE mg.movie_id = movies.id AND mg.genre_slug = $2)) \
        AND ($3 = 0 OR release_year = $3) \
        AND ($4 = 0 OR featured = 1)";
    let order = match f.sort {
        Sort::Title => "title_lower, id",
        Sort::NewestFirst => "release_date DESC NULLS LAST, title_lower, id",
        Sort::BestRated => {
            "CASE WHEN rating_count = 0 THEN NULL ELSE rating_sum * 1.0 / rating_count END DESC NULLS LAST, \
             rating_count DESC, title_lower, id"
        }
    };
    let genre = f.genre.unwrap_or_default();
    let year = f.year.unwrap_or(0);
    let featured = flag(f.featured_only);
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM movies WHERE {filter}")))
            .bind(&q)
            .bind(genre)
            .bind(year)
            .bind(featured)
            .fetch_one(db.replica())
            .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM movies WHERE {filter} ORDER BY {order} LIMIT $5 OFFSET $6"
    )))
    .bind(&q)
    .bind(genre)
    .bind(year)
    .bind(featured)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db.replica())
    .await?;
    Ok((rows.iter().map(movie_from).collect::<anyhow::Result<_>>()?, total))
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Genre {
    pub slug: String,
    pub name: String,
    /// Live movies in the genre.
    pub movie_count: i64,
}

pub async fn genres(db: &Db) -> anyhow::Result<Vec<Genre>> {
    let rows = sqlx::query(
        "SELECT g.slug, g.name, COUNT(m.id) AS movie_count FROM genres g \
         LEFT JOIN movie_genres mg ON mg.genre_slug = g.slug \
         LEFT JOIN movies m ON m.id = mg.movie_id AND m.deleted_at IS NULL \
         GROUP BY g.slug, g.name ORDER BY g.slug",
    )
    .fetch_all(db.replica())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Genre {
                slug: r.try_get("slug")?,
                name: r.try_get("name")?,
                movie_count: r.try_get("movie_count")?,
            })
        })
        .collect()
}

/// Record a review's rating (posted or updated) and refresh the movie's totals. A review
/// already deleted stays deleted: its late "posted" changes nothing.
/// A review's rating at `version`; an older or equal version than the one kept changes nothing
/// (a late `review.posted` after its `review.updated`, or after its delete).
pub async fn rate(
    tx: &mut AnyConnection,
    review_id: Uuid,
    movie_id: Uuid,
    rating: i64,
    version: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO movie_ratings (review_id, movie_id, rating, version) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (review_id) DO UPDATE SET rating = $3, version = $4 WHERE movie_ratings.version < $4",
    )
    .bind(review_id.to_string())
    .bind(movie_id.to_string())
    .bind(rating)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    refresh_rating(tx, movie_id).await
}

/// A review deleted at `version`; a delete that comes before the review's other events keeps
/// them from bringing it back.
pub async fn unrate(
    tx: &mut AnyConnection,
    review_id: Uuid,
    movie_id: Uuid,
    version: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO movie_ratings (review_id, movie_id, rating, deleted, version) VALUES ($1, $2, 0, 1, $3) \
         ON CONFLICT (review_id) DO UPDATE SET deleted = 1, version = $3 WHERE movie_ratings.version < $3",
    )
    .bind(review_id.to_string())
    .bind(movie_id.to_string())
    .bind(version)
    .execute(&mut *tx)
    .await?;
    refresh_rating(tx, movie_id).await
}

async fn refresh_rating(tx: &mut AnyConnection, movie_id: Uuid) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE movies SET \
           rating_sum = (SELECT COALESCE(SUM(rating), 0) FROM movie_ratings WHERE movie_id = $1 AND deleted = 0), \
           rating_count = (SELECT COUNT(*) FROM movie_ratings WHERE movie_id = $1 AND deleted = 0) \
         WHERE id = $1",
    )
    .bind(movie_id.to_string())
    .execute(tx)
    .await?;
    Ok(())
}
