//! booking's SQL, written once for SQLite and PostgreSQL.

use platform::{
    db::{Db, is_unique_violation, uuid_column as uuid},
    pagination::PageRequest,
    time::{from_ms, now_ms, to_ms},
};
use sqlx::{AnyConnection, Row, any::AnyRow};
use uuid::Uuid;

use crate::domain::{Booking, Ticket};

const COLUMNS: &str = "id, user_id, showtime_id, movie_id, seats, status, total_cents, currency, expires_at, payment_id, created_at";

fn booking_from(row: &AnyRow) -> anyhow::Result<Booking> {
    let seats: String = row.try_get("seats")?;
    let payment: Option<String> = row.try_get("payment_id")?;
    Ok(Booking {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        showtime_id: uuid(row, "showtime_id")?,
        movie_id: uuid(row, "movie_id")?,
        seats: serde_json::from_str(&seats)?,
        status: row.try_get("status")?,
        total_cents: row.try_get("total_cents")?,
        currency: row.try_get("currency")?,
        expires_at: from_ms(row.try_get("expires_at")?),
        created_at: from_ms(row.try_get("created_at")?),
        payment_id: payment.and_then(|p| p.parse().ok()),
        tickets: Vec::new(),
    })
}

/// A seat list as `$first, $first+1, ...` placeholders.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub async fn insert_booking(tx: &mut AnyConnection, b: &Booking, starts_at: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO bookings (id, user_id, showtime_id, movie_id, seats, status, total_cents, currency, expires_at, \
         starts_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'held', $6, $7, $8, $9, $10, $10)",
    )
    .bind(b.id.to_string())
    .bind(b.user_id.to_string())
    .bind(b.showtime_id.to_string())
    .bind(b.movie_id.to_string())
    .bind(serde_json::to_string(&b.seats)?)
    .bind(b.total_cents)
    .bind(&b.currency)
    .bind(to_ms(b.expires_at))
    .bind(starts_at)
    .bind(to_ms(b.created_at))
    .execute(tx)
    .await?;
    Ok(())
}

/// Claim every seat for the booking in one statement; false when any is taken (the primary key
/// on showtime and seat decides, whatever the number of replicas).
pub async fn claim_seats(
    tx: &mut AnyConnection,
    showtime: Uuid,
    seats: &[String],
    booking: Uuid,
    expires_at: i64,
) -> anyhow::Result<bool> {
    let values: Vec<String> = (0..seats.len()).map(|i| format!("($1, ${}, $2, 'hold', $3)", i + 4)).collect();
    let sql = format!(
        "INSERT INTO seat_claims (showtime_id, seat, booking_id, kind, expires_at) VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(showtime.to_string())
        .bind(booking.to_string())
        .bind(expires_at);
    for seat in seats {
        query = query.bind(seat);
    }
    match query.execute(tx).await {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Bookings whose holds on these seats have run out (an expired hold never blocks a buyer,
/// even before the sweeper has passed).
pub async fn stale_holds(
    tx: &mut AnyConnection,
    showtime: Uuid,
    seats: &[String],
) -> anyhow::Result<Vec<Uuid>> {
    let sql = format!(
        "SELECT DISTINCT booking_id FROM seat_claims WHERE showtime_id = $1 AND kind = 'hold' AND expires_at <= $2 \
         AND seat IN ({})",
        placeholders(3, seats.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(showtime.to_string()).bind(now_ms());
    for seat in seats {
        query = query.bind(seat);
    }
    query.fetch_all(tx).await?.iter().map(|r| uuid(r, "booking_id")).collect()
}

/// Which of these seats are taken now (held and not expired, or sold).
pub async fn taken(db: &Db, showtime: Uuid, seats: &[String]) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "SELECT seat FROM seat_claims WHERE showtime_id = $1 AND (kind = 'sale' OR expires_at > $2) AND seat IN ({}) \
         ORDER BY seat",
        placeholders(3, seats.len())
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(showtime.to_string()).bind(now_ms());
    for seat in seats {
        query = query.bind(seat);
    }
    Ok(query.fetch_all(&db.pool).await?)
}

/// Every live claim of a showtime: seat -> held or booked.
pub async fn claims(db: &Db, showtime: Uuid) -> anyhow::Result<Vec<(String, &'static str)>> {
    let rows = sqlx::query(
        "SELECT seat, kind FROM seat_claims WHERE showtime_id = $1 AND (kind = 'sale' OR expires_at > $2)",
    )
    .bind(showtime.to_string())
    .bind(now_ms())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok((r.try_get("seat")?, if kind == "sale" { "booked" } else { "held" }))
        })
        .collect()
}

/// Move a booking out of `from` into `to`, releasing its seats; false when it was not in `from`.
pub async fn end_booking(tx: &mut AnyConnection, id: Uuid, from: &[&str], to: &str) -> anyhow::Result<bool> {
    let sql = format!(
        "UPDATE bookings SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ({})",
        placeholders(4, from.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to).bind(now_ms()).bind(id.to_string());
    for f in from {
        query = query.bind(*f);
    }
    if query.execute(&mut *tx).await?.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM seat_claims WHERE booking_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(true)
}

/// Turn a live hold into a sale. False when the hold is gone or no longer covers every seat.
pub async fn confirm(tx: &mut AnyConnection, id: Uuid, seats: usize, payment: Uuid) -> anyhow::Result<bool> {
    let sold = sqlx::query(
        "UPDATE seat_claims SET kind = 'sale', expires_at = 0 WHERE booking_id = $1 AND kind = 'hold'",
    )
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let confirmed = sqlx::query(
        "UPDATE bookings SET status = 'confirmed', payment_id = $1, updated_at = $2 WHERE id = $3 AND status = 'held'",
    )
    .bind(payment.to_string())
    .bind(now_ms())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(sold == seats as u64 && confirmed == 1)
}

pub async fn insert_ticket(tx: &mut AnyConnection, booking: Uuid, t: &Ticket) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO tickets (id, booking_id, seat, code, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(t.id.to_string())
        .bind(booking.to_string())
        .bind(&t.seat)
        .bind(&t.code)
        .bind(now_ms())
        .execute(tx)
        .await?;
    Ok(())
}

async fn tickets(conn: &mut AnyConnection, booking: Uuid) -> anyhow::Result<Vec<Ticket>> {
    let rows = sqlx::query("SELECT id, seat, code FROM tickets WHERE booking_id = $1 ORDER BY seat")
        .bind(booking.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok(Ticket { id: uuid(r, "id")?, seat: r.try_get("seat")?, code: r.try_get("code")? }))
        .collect()
}

/// A booking with its tickets, and the show's start (epoch ms).
pub async fn booking(db: &Db, id: Uuid) -> anyhow::Result<Option<(Booking, i64)>> {
    let mut conn = db.pool.acquire().await?;
    booking_in(&mut conn, id).await
}

/// The same, inside a transaction (SQLite has one connection: no second one may be asked for).
pub async fn booking_in(conn: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<(Booking, i64)>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS}, starts_at FROM bookings WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let mut b = booking_from(&row)?;
    b.tickets = tickets(conn, id).await?;
    Ok(Some((b, row.try_get("starts_at")?)))
}

pub async fn bookings(db: &Db, user: Option<Uuid>, page: PageRequest) -> anyhow::Result<(Vec<Booking>, i64)> {
    let user = user.map(|u| u.to_string()).unwrap_or_default();
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bookings WHERE ($1 = '' OR user_id = $1)")
        .bind(&user)
        .fetch_one(&db.pool)
        .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM bookings WHERE ($1 = '' OR user_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(&user)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&db.pool)
    .await?;
    let mut items: Vec<Booking> = rows.iter().map(booking_from).collect::<anyhow::Result<_>>()?;
    let mut conn = db.pool.acquire().await?;
    for b in &mut items {
        b.tickets = tickets(&mut conn, b.id).await?;
    }
    Ok((items, total))
}

/// Held bookings whose hold has run out, for the sweeper.
pub async fn expired_holds(db: &Db, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT id FROM bookings WHERE status = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind(now_ms())
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| uuid(r, "id")).collect()
}

/// Note that a charge is about to be made for the booking (see migration 0101).
pub async fn mark_charging(db: &Db, id: Uuid) -> anyhow::Result<()> {
    sqlx::query("UPDATE bookings SET charging_at = $1 WHERE id = $2 AND charging_at IS NULL")
        .bind(now_ms())
        .bind(id.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Whether a charge may have been made for the booking.
pub async fn was_charging(db: &Db, id: Uuid) -> anyhow::Result<bool> {
    let at: Option<Option<i64>> = sqlx::query_scalar("SELECT charging_at FROM bookings WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    Ok(at.flatten().is_some())
}

/// Live bookings of a showtime (held or confirmed).
pub async fn live_bookings_of(conn: &mut AnyConnection, showtime: Uuid) -> anyhow::Result<Vec<Uuid>> {
    let rows =
        sqlx::query("SELECT id FROM bookings WHERE showtime_id = $1 AND status IN ('held', 'confirmed')")
            .bind(showtime.to_string())
            .fetch_all(conn)
            .await?;
    rows.iter().map(|r| uuid(r, "id")).collect()
}

/// A ticket by its code: the ticket and its booking's id.
pub async fn ticket_by_code(db: &Db, code: &str) -> anyhow::Result<Option<(Ticket, Uuid)>> {
    let row = sqlx::query("SELECT id, booking_id, seat, code FROM tickets WHERE code = $1")
        .bind(code)
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| {
        Ok((
            Ticket { id: uuid(&r, "id")?, seat: r.try_get("seat")?, code: r.try_get("code")? },
            uuid(&r, "booking_id")?,
        ))
    })
    .transpose()
}
