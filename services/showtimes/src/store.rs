//! showtimes' SQL, written once for SQLite and PostgreSQL.

use anyhow::Context;
use platform::{
    db::{Db, is_unique_violation},
    pagination::PageRequest,
    time::{from_ms, now_ms, to_ms},
};
use sqlx::{AnyConnection, Row, any::AnyRow};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Room, RoomPlan, Showtime, Status, Theater, TheaterInput};

use platform::db::uuid_column as uuid;

fn json_list(row: &AnyRow, column: &str) -> anyhow::Result<Vec<String>> {
    let s: String = row.try_get(column)?;
    serde_json::from_str(&s).with_context(|| format!("stored {column}"))
}

fn theater_from(row: &AnyRow) -> anyhow::Result<Theater> {
    Ok(Theater {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        city: row.try_get("city")?,
        address: row.try_get("address")?,
        timezone: row.try_get("timezone")?,
    })
}

pub async fn insert_theater(db: &Db, t: &TheaterInput) -> anyhow::Result<Theater> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO theaters (id, name, city, address, timezone, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id.to_string())
        .bind(&t.name)
        .bind(&t.city)
        .bind(&t.address)
        .bind(&t.timezone)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(Theater {
        id,
        name: t.name.clone(),
        city: t.city.clone(),
        address: t.address.clone(),
        timezone: t.timezone.clone(),
    })
}

pub async fn theater(db: &Db, id: Uuid) -> anyhow::Result<Option<Theater>> {
    let row = sqlx::query("SELECT id, name, city, address, timezone FROM theaters WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(db.reader())
        .await?;
    row.as_ref().map(theater_from).transpose()
}

pub async fn theaters(db: &Db, city: Option<&str>, page: PageRequest) -> anyhow::Result<(Vec<Theater>, i64)> {
    let city = city.map(|c| c.trim().to_lowercase()).unwrap_or_default();
    let filter = "($1 = '' OR LOWER(city) = $1)";
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM theaters WHERE {filter}")))
            .bind(&city)
            .fetch_one(db.replica())
            .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, city, address, timezone FROM theaters WHERE {filter} ORDER BY city, name, id LIMIT $2 OFFSET $3"
    )))
    .bind(&city)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db.replica())
    .await?;
    Ok((rows.iter().map(theater_from).collect::<anyhow::Result<_>>()?, total))
}

const ROOM_COLUMNS: &str =
    "id, theater_id, name, row_labels, seats_per_row, premium_rows, accessible_seats, capacity";

fn plan_from(row: &AnyRow) -> anyhow::Result<RoomPlan> {
    Ok(RoomPlan {
        name: row.try_get("name")?,
        rows: json_list(row, "row_labels")?,
        seats_per_row: row.try_get("seats_per_row")?,
        premium_rows: json_list(row, "premium_rows")?,
        accessible_seats: json_list(row, "accessible_seats")?,
    })
}

fn room_from(row: &AnyRow) -> anyhow::Result<Room> {
    let plan = plan_from(row)?;
    Ok(Room {
        id: uuid(row, "id")?,
        theater_id: uuid(row, "theater_id")?,
        name: plan.name.clone(),
        capacity: row.try_get("capacity")?,
        layout: plan.layout(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("the theater has a room with this name")]
    NameTaken,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub async fn insert_room(db: &Db, theater_id: Uuid, plan: &RoomPlan) -> Result<Room, RoomError> {
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO rooms (id, theater_id, name, row_labels, seats_per_row, premium_rows, accessible_seats, capacity, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id.to_string())
    .bind(theater_id.to_string())
    .bind(&plan.name)
    .bind(serde_json::to_string(&plan.rows).map_err(anyhow::Error::from)?)
    .bind(plan.seats_per_row)
    .bind(serde_json::to_string(&plan.premium_rows).map_err(anyhow::Error::from)?)
    .bind(serde_json::to_string(&plan.accessible_seats).map_err(anyhow::Error::from)?)
    .bind(plan.capacity())
    .bind(now_ms())
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok(Room {
            id,
            theater_id,
            name: plan.name.clone(),
            capacity: plan.capacity(),
            layout: plan.layout(),
        }),
        Err(e) if is_unique_violation(&e) => Err(RoomError::NameTaken),
        Err(e) => Err(RoomError::Other(e.into())),
    }
}

pub async fn room(db: &Db, id: Uuid) -> anyhow::Result<Option<Room>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1")))
        .bind(id.to_string())
        .fetch_optional(db.reader())
        .await?;
    row.as_ref().map(room_from).transpose()
}

pub async fn rooms_of(db: &Db, theater_id: Uuid, page: PageRequest) -> anyhow::Result<(Vec<Room>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rooms WHERE theater_id = $1")
        .bind(theater_id.to_string())
        .fetch_one(db.replica())
        .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ROOM_COLUMNS} FROM rooms WHERE theater_id = $1 ORDER BY name, id LIMIT $2 OFFSET $3"
    )))
    .bind(theater_id.to_string())
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db.replica())
    .await?;
    Ok((rows.iter().map(room_from).collect::<anyhow::Result<_>>()?, total))
}

/// Take the room's scheduling turn inside `tx`: a write to the room row, which PostgreSQL locks
/// until the transaction ends (SQLite locks the whole file). Returns the room's theater and
/// capacity, or `None` for an unknown room.
pub async fn lock_room(tx: &mut AnyConnection, room_id: Uuid) -> anyhow::Result<Option<LockedRoom>> {
    let row = sqlx::query(
        "UPDATE rooms SET schedule_version = schedule_version + 1 WHERE id = $1 RETURNING theater_id, capacity",
    )
    .bind(room_id.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let theater_id = uuid(&row, "theater_id")?;
    let timezone: String = sqlx::query_scalar("SELECT timezone FROM theaters WHERE id = $1")
        .bind(theater_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
    Ok(Some(LockedRoom { theater_id, capacity: row.try_get("capacity")?, timezone }))
}

/// A room whose schedule is ours until commit, and what a showtime in it needs to know.
pub struct LockedRoom {
    pub theater_id: Uuid,
    pub capacity: i64,
    pub timezone: String,
}

/// Fill in the local day of showtimes from before it was kept (migration 0101), in batches.
pub async fn fill_local_dates(db: &Db) -> anyhow::Result<u64> {
    let mut filled = 0;
    loop {
        let rows = sqlx::query(
            "SELECT id, starts_at, COALESCE(timezone, 'UTC') AS timezone FROM showtimes WHERE local_date IS NULL LIMIT 500",
        )
        .fetch_all(&db.pool)
        .await?;
        if rows.is_empty() {
            return Ok(filled);
        }
        for row in &rows {
            let id: String = row.try_get("id")?;
            let timezone: String = row.try_get("timezone")?;
            let day = crate::domain::local_date(from_ms(row.try_get("starts_at")?), &timezone);
            sqlx::query("UPDATE showtimes SET local_date = $1, timezone = $2 WHERE id = $3")
                .bind(day)
                .bind(&timezone)
                .bind(&id)
                .execute(&db.pool)
                .await?;
            filled += 1;
        }
    }
}

/// A scheduled showtime in the room overlapping `[starts, ends)`, if any.
pub async fn overlapping(
    tx: &mut AnyConnection,
    room_id: Uuid,
    starts: OffsetDateTime,
    ends: OffsetDateTime,
) -> anyhow::Result<Option<Uuid>> {
    let row = sqlx::query(
        "SELECT id FROM showtimes WHERE room_id = $1 AND status = 'scheduled' AND starts_at < $3 AND ends_at > $2 \
         ORDER BY starts_at LIMIT 1",
    )
    .bind(room_id.to_string())
    .bind(to_ms(starts))
    .bind(to_ms(ends))
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| uuid(&r, "id")).transpose()
}

pub async fn insert_showtime(tx: &mut AnyConnection, s: &Showtime) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO showtimes (id, movie_id, movie_title, room_id, theater_id, starts_at, ends_at, price_cents, currency, \
         status, created_at, timezone, local_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'scheduled', $10, $11, $12)",
    )
    .bind(s.id.to_string())
    .bind(s.movie_id.to_string())
    .bind(&s.movie_title)
    .bind(s.room_id.to_string())
    .bind(s.theater_id.to_string())
    .bind(to_ms(s.starts_at))
    .bind(to_ms(s.ends_at))
    .bind(s.price_cents)
    .bind(&s.currency)
    .bind(now_ms())
    .bind(&s.timezone)
    .bind(crate::domain::local_date(s.starts_at, &s.timezone))
    .execute(tx)
    .await?;
    Ok(())
}

const SHOWTIME_COLUMNS: &str = "id, movie_id, movie_title, room_id, theater_id, starts_at, ends_at, price_cents, currency, status, timezone";

fn showtime_from(row: &AnyRow) -> anyhow::Result<Showtime> {
    let status: String = row.try_get("status")?;
    let starts_at = from_ms(row.try_get("starts_at")?);
    let timezone: String = row.try_get::<Option<String>, _>("timezone")?.unwrap_or_else(|| "UTC".into());
    Ok(Showtime {
        id: uuid(row, "id")?,
        movie_id: uuid(row, "movie_id")?,
        movie_title: row.try_get("movie_title")?,
        room_id: uuid(row, "room_id")?,
        theater_id: uuid(row, "theater_id")?,
        starts_at,
        ends_at: from_ms(row.try_get("ends_at")?),
        price_cents: row.try_get("price_cents")?,
        currency: row.try_get("currency")?,
        status: if status == "cancelled" { Status::Cancelled } else { Status::Scheduled },
        local_starts_at: crate::domain::local_time(starts_at, &timezone),
        timezone,
    })
}

pub async fn showtime(db: &Db, id: Uuid) -> anyhow::Result<Option<Showtime>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SHOWTIME_COLUMNS} FROM showtimes WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(db.reader())
            .await?;
    row.as_ref().map(showtime_from).transpose()
}

/// Cancel a scheduled showtime; false when it was not scheduled (unknown or already cancelled).
pub async fn cancel(tx: &mut AnyConnection, id: Uuid) -> anyhow::Result<bool> {
    let n = sqlx::query(
        "UPDATE showtimes SET status = 'cancelled', cancelled_at = $1 WHERE id = $2 AND status = 'scheduled'",
    )
    .bind(now_ms())
    .bind(id.to_string())
    .execute(tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

pub struct ShowtimeFilter {
    pub movie_id: Option<Uuid>,
    pub theater_id: Option<Uuid>,
    pub from: OffsetDateTime,
    pub to: Option<OffsetDateTime>,
    /// `YYYY-MM-DD`: starting that day on the theater's clock.
    pub local_date: Option<String>,
}

/// Scheduled showtimes starting in `[from, to)`, soonest first.
pub async fn showtimes(
    db: &Db,
    f: &ShowtimeFilter,
    page: PageRequest,
) -> anyhow::Result<(Vec<Showtime>, i64)> {
    let filter = "status = 'scheduled' AND ($1 = '' OR movie_id = $1) AND ($2 = '' OR theater_id = $2) \
                  AND starts_at >= $3 AND ($4 = 0 OR starts_at < $4) AND ($5 = '' OR local_date = $5)";
    let movie = f.movie_id.map(|m| m.to_string()).unwrap_or_default();
    let theater = f.theater_id.map(|t| t.to_string()).unwrap_or_default();
    let to = f.to.map_or(0, to_ms);
    let day = f.local_date.clone().unwrap_or_default();
    let total: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM showtimes WHERE {filter}")))
            .bind(&movie)
            .bind(&theater)
            .bind(to_ms(f.from))
            .bind(to)
            .bind(&day)
            .fetch_one(db.replica())
            .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SHOWTIME_COLUMNS} FROM showtimes WHERE {filter} ORDER BY starts_at, id LIMIT $6 OFFSET $7"
    )))
    .bind(&movie)
    .bind(&theater)
    .bind(to_ms(f.from))
    .bind(to)
    .bind(&day)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db.replica())
    .await?;
    Ok((rows.iter().map(showtime_from).collect::<anyhow::Result<_>>()?, total))
}
