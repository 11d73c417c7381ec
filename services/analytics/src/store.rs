//! analytics' queries over its read models, written once for SQLite and PostgreSQL. Sums are
//! cast to BIGINT: PostgreSQL's SUM of BIGINT is NUMERIC, which the Any driver cannot read.
//! Times and days are passed in, never read here.

use std::collections::HashMap;

use platform::{
    db::{Db, uuid_column as uuid},
    pagination::PageRequest,
};
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use uuid::Uuid;

use crate::{domain::rfc3339_opt, projection::TABLES};

/// Keep an event; false when it was archived before (it is not applied again).
pub async fn archive(
    tx: &mut AnyConnection,
    event: &contracts::CloudEvent,
    now: i64,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO archive (event_id, event_type, event_time, payload, received_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event.id.to_string())
    .bind(&event.event_type)
    .bind(platform::time::to_ms(event.time))
    .bind(serde_json::to_string(event)?)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// How a transaction holds the archive (PostgreSQL; on SQLite a write transaction already
/// excludes every other writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveLock {
    /// An event being applied: one at a time across replicas, since a fact is placed by
    /// reading what earlier events left (a payment's theater is its booking's showtime's), and
    /// two transactions that cannot see each other's rows would each leave it unplaced.
    /// Readers are not held up.
    Apply,
    /// A rebuild: no event is applied until it commits.
    Rebuild,
}

pub async fn lock_archive(db: &Db, tx: &mut AnyConnection, lock: ArchiveLock) -> anyhow::Result<()> {
    if db.engine() == platform::db::Engine::Postgres {
        let sql = match lock {
            ArchiveLock::Apply => "LOCK TABLE archive IN SHARE ROW EXCLUSIVE MODE",
            ArchiveLock::Rebuild => "LOCK TABLE archive IN EXCLUSIVE MODE",
        };
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    Ok(())
}

/// A rebuild as `GET /analytics/rebuilds/{id}` shows it.
pub async fn insert_rebuild(db: &Db, id: uuid::Uuid, now: i64) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO rebuilds (id, status, events, took_ms, error, started_at, finished_at) VALUES ($1, 'running', 0, 0, NULL, $2, NULL)")
        .bind(id.to_string())
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn finish_rebuild(
    db: &Db,
    id: uuid::Uuid,
    outcome: Result<(i64, i64), String>,
    now: i64,
) -> anyhow::Result<()> {
    let (status, events, took, error) = match outcome {
        Ok((events, took)) => ("done", events, took, None),
        Err(e) => ("failed", 0, 0, Some(e)),
    };
    sqlx::query("UPDATE rebuilds SET status = $1, events = $2, took_ms = $3, error = $4, finished_at = $5 WHERE id = $6")
        .bind(status)
        .bind(events)
        .bind(took)
        .bind(error)
        .bind(now)
        .bind(id.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A rebuild still running that started after `since`, if any.
pub async fn running_rebuild(db: &Db, since: i64) -> anyhow::Result<Option<uuid::Uuid>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM rebuilds WHERE status = 'running' AND started_at > $1")
            .bind(since)
            .fetch_optional(&db.pool)
            .await?;
    id.map(|s| s.parse().map_err(anyhow::Error::from)).transpose()
}

/// Rebuilds left running by a process that stopped (before `before`): their transaction was
/// rolled back, so nothing of them remains.
pub async fn fail_interrupted_rebuilds(db: &Db, before: i64, now: i64) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE rebuilds SET status = 'failed', error = 'interrupted', finished_at = $1 WHERE status = 'running' AND started_at <= $2",
    )
    .bind(now)
    .bind(before)
    .execute(&db.pool)
    .await?
    .rows_affected())
}

pub async fn rebuild(db: &Db, id: uuid::Uuid) -> anyhow::Result<Option<crate::domain::Rebuild>> {
    let row = sqlx::query(
        "SELECT id, status, events, took_ms, error, started_at, finished_at FROM rebuilds WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(crate::domain::Rebuild {
            id: uuid(&r, "id")?,
            status: r.try_get("status")?,
            events: r.try_get("events")?,
            took_ms: r.try_get("took_ms")?,
            error: r.try_get("error")?,
            started_at: rfc3339_opt(r.try_get("started_at")?).unwrap_or_default(),
            finished_at: rfc3339_opt(r.try_get("finished_at")?),
        })
    })
    .transpose()
}

pub async fn clear_read_models(tx: &mut AnyConnection) -> anyhow::Result<()> {
    for table in TABLES {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Archived events after `after` (an event id), oldest first.
pub async fn archived_after(
    tx: &mut AnyConnection,
    after: &str,
    limit: i64,
) -> anyhow::Result<Vec<(String, String)>> {
    let rows =
        sqlx::query("SELECT event_id, payload FROM archive WHERE event_id > $1 ORDER BY event_id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
    rows.iter().map(|r| Ok((r.try_get("event_id")?, r.try_get("payload")?))).collect()
}

/// `AND theater_id = $n` when a theater is asked for.
fn theater_filter(column: &str, theater: Option<Uuid>, n: usize) -> String {
    theater.map(|_| format!(" AND {column} = ${n}")).unwrap_or_default()
}

/// Per day: captured, refunded.
pub async fn money_by_day(
    db: &Db,
    currency: &str,
    days: (&str, &str),
    theater: Option<Uuid>,
) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let sums = "CAST(COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS a, \
                CAST(COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS b";
    sums_by_day(db, sums, "money", "TRUE", currency, days, theater).await
}

/// Per day: bookings confirmed and their tickets.
pub async fn bookings_by_day(
    db: &Db,
    currency: &str,
    days: (&str, &str),
    theater: Option<Uuid>,
) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let sums = "COUNT(*) AS a, CAST(COALESCE(SUM(tickets), 0) AS BIGINT) AS b";
    sums_by_day(db, sums, "bookings", "confirmed_at IS NOT NULL", currency, days, theater).await
}

/// Two sums (`a`, `b`) of `table`'s rows per local day of the range, in one currency, of one
/// theater when asked.
async fn sums_by_day(
    db: &Db,
    sums: &str,
    table: &str,
    condition: &str,
    currency: &str,
    days: (&str, &str),
    theater: Option<Uuid>,
) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let sql = format!(
        "SELECT local_day, {sums} FROM {table} \
         WHERE {condition} AND currency = $1 AND local_day >= $2 AND local_day <= $3{} GROUP BY local_day",
        theater_filter("theater_id", theater, 4)
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(currency).bind(days.0).bind(days.1);
    if let Some(t) = theater {
        query = query.bind(t.to_string());
    }
    let rows = query.fetch_all(&db.pool).await?;
    rows.iter().map(|r| Ok((r.try_get("local_day")?, r.try_get("a")?, r.try_get("b")?))).collect()
}

/// Per UTC day: sessions and completed sessions.
pub async fn plays_by_day(db: &Db, days: (&str, &str)) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT day, COUNT(*) AS plays, CAST(COALESCE(SUM(completed), 0) AS BIGINT) AS completed \
         FROM plays WHERE day >= $1 AND day <= $2 GROUP BY day",
    )
    .bind(days.0)
    .bind(days.1)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("day")?, r.try_get("plays")?, r.try_get("completed")?))).collect()
}

/// Per movie: tickets still sold of bookings confirmed on the days, and sessions started.
pub async fn popularity(db: &Db, days: (&str, &str)) -> anyhow::Result<HashMap<Uuid, (i64, i64)>> {
    let mut by_movie: HashMap<Uuid, (i64, i64)> = HashMap::new();
    let tickets = sqlx::query(
        "SELECT movie_id, CAST(SUM(tickets) AS BIGINT) AS n FROM bookings \
         WHERE confirmed_at IS NOT NULL AND cancelled_at IS NULL AND local_day >= $1 AND local_day <= $2 \
         GROUP BY movie_id",
    )
    .bind(days.0)
    .bind(days.1)
    .fetch_all(&db.pool)
    .await?;
    for row in tickets {
        by_movie.entry(uuid(&row, "movie_id")?).or_default().0 = row.try_get("n")?;
    }
    let plays = sqlx::query(
        "SELECT movie_id, COUNT(*) AS n FROM plays WHERE day >= $1 AND day <= $2 GROUP BY movie_id",
    )
    .bind(days.0)
    .bind(days.1)
    .fetch_all(&db.pool)
    .await?;
    for row in plays {
        by_movie.entry(uuid(&row, "movie_id")?).or_default().1 = row.try_get("n")?;
    }
    Ok(by_movie)
}

/// Titles of movies (those not seen yet are missing).
pub async fn titles(db: &Db, movies: &[Uuid]) -> anyhow::Result<HashMap<Uuid, String>> {
    let mut titles = HashMap::new();
    for chunk in movies.chunks(100) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT movie_id, title FROM movies WHERE movie_id IN ({})", marks.join(", "));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(&db.pool).await? {
            titles.insert(uuid(&row, "movie_id")?, row.try_get("title")?);
        }
    }
    Ok(titles)
}

/// A showtime with what it sold.
pub struct ShowtimeSales {
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
    pub title: Option<String>,
    pub theater_id: Uuid,
    pub starts_at: i64,
    pub cancelled: bool,
    pub capacity: i64,
    pub sold: i64,
}

const SOLD: &str = "COALESCE((SELECT CAST(SUM(b.tickets) AS BIGINT) FROM bookings b WHERE b.showtime_id = s.showtime_id \
     AND b.confirmed_at IS NOT NULL AND b.cancelled_at IS NULL), 0)";

/// The showtimes starting on the days (on their theater's clock), soonest first, and how many.
pub async fn occupancy(
    db: &Db,
    days: (&str, &str),
    theater: Option<Uuid>,
    page: PageRequest,
) -> anyhow::Result<(Vec<ShowtimeSales>, i64)> {
    let filter = format!(
        "s.theater_id <> '' AND s.local_day >= $1 AND s.local_day <= $2{}",
        theater_filter("s.theater_id", theater, 3)
    );
    let n = if theater.is_some() { 4 } else { 3 };
    let sql = format!(
        "SELECT s.showtime_id, s.movie_id, m.title, s.theater_id, s.starts_at, s.cancelled, s.capacity, {SOLD} AS sold \
         FROM showtimes s LEFT JOIN movies m ON m.movie_id = s.movie_id WHERE {filter} \
         ORDER BY s.starts_at, s.showtime_id LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(days.0).bind(days.1);
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM showtimes s WHERE {filter}"
    )))
    .bind(days.0)
    .bind(days.1);
    if let Some(t) = theater {
        query = query.bind(t.to_string());
        count = count.bind(t.to_string());
    }
    let rows = query.bind(page.limit()).bind(page.offset()).fetch_all(&db.pool).await?;
    let total = count.fetch_one(&db.pool).await?;
    let items = rows.iter().map(sales_from).collect::<anyhow::Result<_>>()?;
    Ok((items, total))
}

fn sales_from(r: &sqlx::any::AnyRow) -> anyhow::Result<ShowtimeSales> {
    Ok(ShowtimeSales {
        showtime_id: uuid(r, "showtime_id")?,
        movie_id: uuid(r, "movie_id")?,
        title: r.try_get("title")?,
        theater_id: uuid(r, "theater_id")?,
        starts_at: r.try_get("starts_at")?,
        cancelled: r.try_get::<i64, _>("cancelled")? != 0,
        capacity: r.try_get("capacity")?,
        sold: r.try_get("sold")?,
    })
}

/// Mean occupancy of the showtimes starting in `[from, to)` (ms) that were not cancelled.
pub async fn average_occupancy(
    db: &Db,
    from: i64,
    to: i64,
    movie: Option<Uuid>,
) -> anyhow::Result<Option<f64>> {
    let movie_filter = if movie.is_some() { " AND s.movie_id = $3" } else { "" };
    let sql = format!(
        "SELECT s.capacity, {SOLD} AS sold FROM showtimes s \
         WHERE s.cancelled = 0 AND s.capacity > 0 AND s.theater_id <> '' AND s.starts_at >= $1 AND s.starts_at < $2{movie_filter}"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to);
    if let Some(m) = movie {
        query = query.bind(m.to_string());
    }
    let rows = query.fetch_all(&db.pool).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut sum = 0.0;
    for r in &rows {
        sum += crate::domain::ratio(r.try_get("sold")?, r.try_get("capacity")?);
    }
    Ok(Some(sum / rows.len() as f64))
}

/// The dashboard's sums over `[since, until)` (ms).
pub struct Window {
    pub captured: i64,
    pub refunded: i64,
    pub bookings: i64,
    pub tickets: i64,
    pub plays: i64,
}

pub async fn window(db: &Db, currency: &str, since: i64, until: i64) -> anyhow::Result<Window> {
    let money = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS captured, \
         CAST(COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS refunded \
         FROM money WHERE currency = $1 AND at >= $2 AND at < $3",
    )
    .bind(currency)
    .bind(since)
    .bind(until)
    .fetch_one(&db.pool)
    .await?;
    let bookings = sqlx::query(
        "SELECT COUNT(*) AS bookings, \
         CAST(COALESCE(SUM(CASE WHEN cancelled_at IS NULL THEN tickets ELSE 0 END), 0) AS BIGINT) AS tickets \
         FROM bookings WHERE confirmed_at >= $1 AND confirmed_at < $2",
    )
    .bind(since)
    .bind(until)
    .fetch_one(&db.pool)
    .await?;
    let plays: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM plays WHERE COALESCE(started_at, stopped_at) >= $1 AND COALESCE(started_at, stopped_at) < $2",
    )
    .bind(since)
    .bind(until)
    .fetch_one(&db.pool)
    .await?;
    Ok(Window {
        captured: money.try_get("captured")?,
        refunded: money.try_get("refunded")?,
        bookings: bookings.try_get("bookings")?,
        tickets: bookings.try_get("tickets")?,
        plays,
    })
}

/// A subscription's events up to `until`, oldest first: (subscription, kind, at, period_end).
pub async fn subscription_history(db: &Db, until: i64) -> anyhow::Result<Vec<(String, String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT subscription_id, kind, at, period_end FROM subscription_events WHERE at < $1 \
         ORDER BY subscription_id, at, event_id",
    )
    .bind(until)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("subscription_id")?,
                r.try_get("kind")?,
                r.try_get("at")?,
                r.try_get("period_end")?,
            ))
        })
        .collect()
}

/// Subscriptions active at `t`: their latest event at or before `t` is paid beyond it.
pub async fn active_subscriptions(db: &Db, t: i64) -> anyhow::Result<i64> {
    let n = sqlx::query_scalar(
        "SELECT COUNT(*) FROM subscription_events e WHERE e.at <= $1 AND e.period_end > $1 AND NOT EXISTS \
         (SELECT 1 FROM subscription_events l WHERE l.subscription_id = e.subscription_id AND l.at <= $1 \
          AND (l.at > e.at OR (l.at = e.at AND l.event_id > e.event_id)))",
    )
    .bind(t)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// A movie's bookings, plays and showtimes, or None when analytics has never heard of it.
pub struct MovieFacts {
    pub title: Option<String>,
    pub bookings: i64,
    pub tickets: i64,
    pub revenue_cents: i64,
    pub refunds_cents: i64,
    pub showtimes: i64,
    pub plays: i64,
    pub completed: i64,
    pub ended: i64,
    pub viewers: i64,
}

pub async fn movie(db: &Db, movie: Uuid) -> anyhow::Result<Option<MovieFacts>> {
    let id = movie.to_string();
    let title: Option<String> = sqlx::query_scalar("SELECT title FROM movies WHERE movie_id = $1")
        .bind(&id)
        .fetch_optional(&db.pool)
        .await?;
    let b = sqlx::query(
        "SELECT COUNT(*) AS bookings, \
         CAST(COALESCE(SUM(CASE WHEN cancelled_at IS NULL THEN tickets ELSE 0 END), 0) AS BIGINT) AS tickets, \
         CAST(COALESCE(SUM(total_cents), 0) AS BIGINT) AS revenue, CAST(COALESCE(SUM(refunded_cents), 0) AS BIGINT) AS refunds \
         FROM bookings WHERE movie_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await?;
    let showtimes: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM showtimes WHERE movie_id = $1 AND theater_id <> ''")
            .bind(&id)
            .fetch_one(&db.pool)
            .await?;
    let p = sqlx::query(
        "SELECT COUNT(*) AS plays, CAST(COALESCE(SUM(completed), 0) AS BIGINT) AS completed, \
         CAST(COALESCE(SUM(CASE WHEN stopped_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS ended, \
         COUNT(DISTINCT user_id) AS viewers FROM plays WHERE movie_id = $1",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await?;
    let facts = MovieFacts {
        title,
        bookings: b.try_get("bookings")?,
        tickets: b.try_get("tickets")?,
        revenue_cents: b.try_get("revenue")?,
        refunds_cents: b.try_get("refunds")?,
        showtimes,
        plays: p.try_get("plays")?,
        completed: p.try_get("completed")?,
        ended: p.try_get("ended")?,
        viewers: p.try_get("viewers")?,
    };
    let known = facts.title.is_some() || facts.bookings > 0 || facts.showtimes > 0 || facts.plays > 0;
    Ok(known.then_some(facts))
}

/// A user's activity, or None when analytics has never heard of them.
pub struct UserFacts {
    pub registered_at: Option<i64>,
    pub last_active_at: Option<i64>,
    pub bookings: i64,
    pub cancelled: i64,
    pub tickets: i64,
    pub spent: i64,
    pub refunded: i64,
    pub net_spend: i64,
    pub plays: i64,
    pub completed: i64,
}

pub async fn user(db: &Db, user: Uuid, currency: &str) -> anyhow::Result<Option<UserFacts>> {
    let id = user.to_string();
    let Some(u) = sqlx::query("SELECT registered_at, last_active_at FROM users WHERE user_id = $1")
        .bind(&id)
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    let b = sqlx::query(
        "SELECT COUNT(*) AS bookings, \
         CAST(COALESCE(SUM(CASE WHEN cancelled_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS cancelled, \
         CAST(COALESCE(SUM(CASE WHEN cancelled_at IS NULL THEN tickets ELSE 0 END), 0) AS BIGINT) AS tickets \
         FROM bookings WHERE user_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await?;
    let m = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS spent, \
         CAST(COALESCE(SUM(CASE WHEN kind = 'refund' THEN amount_cents ELSE 0 END), 0) AS BIGINT) AS refunded \
         FROM money WHERE user_id = $1 AND currency = $2",
    )
    .bind(&id)
    .bind(currency)
    .fetch_one(&db.pool)
    .await?;
    let net: Option<i64> =
        sqlx::query_scalar("SELECT net_cents FROM spend WHERE user_id = $1 AND currency = $2")
            .bind(&id)
            .bind(currency)
            .fetch_optional(&db.pool)
            .await?;
    let p = sqlx::query(
        "SELECT COUNT(*) AS plays, CAST(COALESCE(SUM(completed), 0) AS BIGINT) AS completed FROM plays WHERE user_id = $1",
    )
    .bind(&id)
    .fetch_one(&db.pool)
    .await?;
    Ok(Some(UserFacts {
        registered_at: u.try_get("registered_at")?,
        last_active_at: u.try_get("last_active_at")?,
        bookings: b.try_get("bookings")?,
        cancelled: b.try_get("cancelled")?,
        tickets: b.try_get("tickets")?,
        spent: m.try_get("spent")?,
        refunded: m.try_get("refunded")?,
        net_spend: net.unwrap_or(0),
        plays: p.try_get("plays")?,
        completed: p.try_get("completed")?,
    }))
}

/// The segment of each user as SQL, from `u` (users) and `s` (spend): $1 is the inactivity
/// cutoff (ms).
fn segment_case() -> String {
    use crate::domain::{REGULAR_CENTS, VIP_CENTS};
    format!(
        "CASE WHEN u.last_active_at IS NULL OR u.last_active_at < $1 THEN 'inactive' \
         WHEN COALESCE(s.net_cents, 0) >= {VIP_CENTS} THEN 'vip' \
         WHEN COALESCE(s.net_cents, 0) >= {REGULAR_CENTS} THEN 'regular' ELSE 'casual' END"
    )
}

/// How many users are in each segment.
pub async fn segment_counts(db: &Db, currency: &str, cutoff: i64) -> anyhow::Result<HashMap<String, i64>> {
    let sql = format!(
        "SELECT segment, COUNT(*) AS n FROM (SELECT {} AS segment FROM users u \
         LEFT JOIN spend s ON s.user_id = u.user_id AND s.currency = $2) t GROUP BY segment",
        segment_case()
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).bind(cutoff).bind(currency).fetch_all(&db.pool).await?;
    rows.iter().map(|r| Ok((r.try_get("segment")?, r.try_get("n")?))).collect()
}

/// A segment's users (all when none is named), biggest spenders first.
pub async fn segment_members(
    db: &Db,
    currency: &str,
    cutoff: i64,
    segment: Option<&str>,
    page: PageRequest,
) -> anyhow::Result<(Vec<(Uuid, String, i64, Option<String>)>, i64)> {
    let inner = format!(
        "SELECT u.user_id, {} AS segment, COALESCE(s.net_cents, 0) AS net, u.last_active_at FROM users u \
         LEFT JOIN spend s ON s.user_id = u.user_id AND s.currency = $2",
        segment_case()
    );
    let filter = if segment.is_some() { " WHERE t.segment = $3" } else { "" };
    let n = if segment.is_some() { 4 } else { 3 };
    let sql = format!(
        "SELECT * FROM ({inner}) t{filter} ORDER BY t.net DESC, t.user_id LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(cutoff).bind(currency);
    let mut count =
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!("SELECT COUNT(*) FROM ({inner}) t{filter}")))
            .bind(cutoff)
            .bind(currency);
    if let Some(s) = segment {
        query = query.bind(s.to_owned());
        count = count.bind(s.to_owned());
    }
    let rows = query.bind(page.limit()).bind(page.offset()).fetch_all(&db.pool).await?;
    let total = count.fetch_one(&db.pool).await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok((
                uuid(r, "user_id")?,
                r.try_get("segment")?,
                r.try_get("net")?,
                rfc3339_opt(r.try_get("last_active_at")?),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((items, total))
}
