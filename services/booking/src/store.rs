//! booking's SQL, written once for SQLite and PostgreSQL. Times are passed in (the service's
//! clock), never read here.
//!
//! Lock order, everywhere: a booking's row first, then its seat claims. Ending, confirming and
//! charging all follow it, and stale holds are ended in id order, so two transactions never
//! wait on each other in a circle (PostgreSQL would abort one with a deadlock).

use platform::{
    db::{Db, is_unique_violation, uuid_column as uuid},
    pagination::PageRequest,
    time::{from_ms, to_ms},
};
use sqlx::{AnyConnection, Row, any::AnyRow};
use uuid::Uuid;

use crate::domain::{Booking, Status, Ticket};

const COLUMNS: &str = "id, user_id, showtime_id, movie_id, seats, status, total_cents, currency, expires_at, payment_id, created_at, charging_at, charge_attempt";

/// A booking as stored, with what only booking itself needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub booking: Booking,
    /// The show's start (epoch ms), for the cancellation rule.
    pub starts_at: i64,
    /// When a pay request last started charging; set once a charge may exist.
    pub charging_at: Option<i64>,
    /// The number of the pay attempt that holds `charging`.
    pub charge_attempt: i64,
}

impl Stored {
    /// A charge may have been made for it (a pay request got as far as asking payments).
    pub fn may_hold_money(&self) -> bool {
        self.charging_at.is_some() || self.booking.status == Status::Confirmed
    }
}

fn stored_from(row: &AnyRow) -> anyhow::Result<Stored> {
    let seats: String = row.try_get("seats")?;
    let payment: Option<String> = row.try_get("payment_id")?;
    let status: String = row.try_get("status")?;
    let booking = Booking {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        showtime_id: uuid(row, "showtime_id")?,
        movie_id: uuid(row, "movie_id")?,
        seats: serde_json::from_str(&seats)?,
        status: Status::parse(&status).ok_or_else(|| anyhow::anyhow!("unknown booking status {status:?}"))?,
        total_cents: row.try_get("total_cents")?,
        currency: row.try_get("currency")?,
        expires_at: from_ms(row.try_get("expires_at")?),
        created_at: from_ms(row.try_get("created_at")?),
        payment_id: payment.and_then(|p| p.parse().ok()),
        tickets: Vec::new(),
    };
    Ok(Stored {
        booking,
        starts_at: row.try_get("starts_at")?,
        charging_at: row.try_get("charging_at")?,
        charge_attempt: row.try_get("charge_attempt")?,
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
/// even before the sweeper has passed), in id order (the lock order).
pub async fn stale_holds(
    tx: &mut AnyConnection,
    showtime: Uuid,
    seats: &[String],
    now: i64,
) -> anyhow::Result<Vec<Uuid>> {
    let sql = format!(
        "SELECT DISTINCT booking_id FROM seat_claims WHERE showtime_id = $1 AND kind = 'hold' AND expires_at <= $2 \
         AND seat IN ({}) ORDER BY booking_id",
        placeholders(3, seats.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(showtime.to_string()).bind(now);
    for seat in seats {
        query = query.bind(seat);
    }
    query.fetch_all(tx).await?.iter().map(|r| uuid(r, "booking_id")).collect()
}

/// Which of these seats are taken now (held and not expired, or sold).
pub async fn taken(db: &Db, showtime: Uuid, seats: &[String], now: i64) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "SELECT seat FROM seat_claims WHERE showtime_id = $1 AND (kind = 'sale' OR expires_at > $2) AND seat IN ({}) \
         ORDER BY seat",
        placeholders(3, seats.len())
    );
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(showtime.to_string()).bind(now);
    for seat in seats {
        query = query.bind(seat);
    }
    Ok(query.fetch_all(db.reader()).await?)
}

/// Every live claim of a showtime: seat -> held or booked.
pub async fn claims(db: &Db, showtime: Uuid, now: i64) -> anyhow::Result<Vec<(String, &'static str)>> {
    let rows = sqlx::query(
        "SELECT seat, kind FROM seat_claims WHERE showtime_id = $1 AND (kind = 'sale' OR expires_at > $2)",
    )
    .bind(showtime.to_string())
    .bind(now)
    .fetch_all(db.replica())
    .await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok((r.try_get("seat")?, if kind == "sale" { "booked" } else { "held" }))
        })
        .collect()
}

/// Move a booking from `from` to `to` (a transition of the state machine); false when it was
/// not in `from` any more: someone else moved it first.
pub async fn transition(
    tx: &mut AnyConnection,
    id: Uuid,
    from: Status,
    to: Status,
    now: i64,
) -> anyhow::Result<bool> {
    anyhow::ensure!(from.can_become(to), "a booking cannot go from {from} to {to}");
    let n = sqlx::query("UPDATE bookings SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
        .bind(to.as_str())
        .bind(now)
        .bind(id.to_string())
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Free a booking's seats (after a transition out of the statuses that claim them).
pub async fn release_seats(tx: &mut AnyConnection, id: Uuid) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM seat_claims WHERE booking_id = $1").bind(id.to_string()).execute(tx).await?;
    Ok(())
}

/// held → charging, while the hold is live; the attempt's number, or `None` when the booking
/// was not a live hold. The seats stay claimed until `claims_until` at least, whatever the hold's
/// end, so no other buyer takes them while the card is being charged.
pub async fn start_charging(
    tx: &mut AnyConnection,
    id: Uuid,
    now: i64,
    claims_until: i64,
) -> anyhow::Result<Option<i64>> {
    let attempt: Option<i64> = sqlx::query_scalar(
        "UPDATE bookings SET status = 'charging', charging_at = $1, charge_attempt = charge_attempt + 1, \
         updated_at = $1 WHERE id = $2 AND status = 'held' AND expires_at > $1 RETURNING charge_attempt",
    )
    .bind(now)
    .bind(id.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    if attempt.is_some() {
        extend_claims(tx, id, claims_until).await?;
    }
    Ok(attempt)
}

/// charging → charging under a new attempt, when the attempt in charge started before
/// `stale_before` (its request died) and the hold is still live.
pub async fn take_over_charging(
    tx: &mut AnyConnection,
    id: Uuid,
    stale_before: i64,
    now: i64,
    claims_until: i64,
) -> anyhow::Result<Option<i64>> {
    let attempt: Option<i64> = sqlx::query_scalar(
        "UPDATE bookings SET charging_at = $1, charge_attempt = charge_attempt + 1, updated_at = $1 \
         WHERE id = $2 AND status = 'charging' AND charging_at <= $3 AND expires_at > $1 RETURNING charge_attempt",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(stale_before)
    .fetch_optional(&mut *tx)
    .await?;
    if attempt.is_some() {
        extend_claims(tx, id, claims_until).await?;
    }
    Ok(attempt)
}

async fn extend_claims(tx: &mut AnyConnection, id: Uuid, until: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE seat_claims SET expires_at = $1 WHERE booking_id = $2 AND kind = 'hold' AND expires_at < $1",
    )
    .bind(until)
    .bind(id.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

/// charging → held for attempt `attempt` (the charge was declined, refused or its outcome is
/// unknown); the seats' claims end with the hold again. False when another attempt or a
/// transition came first.
pub async fn stop_charging(tx: &mut AnyConnection, id: Uuid, attempt: i64, now: i64) -> anyhow::Result<bool> {
    let expires: Option<i64> = sqlx::query_scalar(
        "UPDATE bookings SET status = 'held', updated_at = $1 WHERE id = $2 AND status = 'charging' \
         AND charge_attempt = $3 RETURNING expires_at",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(attempt)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(expires) = expires else { return Ok(false) };
    sqlx::query("UPDATE seat_claims SET expires_at = $1 WHERE booking_id = $2 AND kind = 'hold'")
        .bind(expires)
        .bind(id.to_string())
        .execute(tx)
        .await?;
    Ok(true)
}

/// charging → confirmed for attempt `attempt` with `payment`, turning its holds into sales.
/// False when the booking moved on meanwhile (another attempt, or it ended); an error when the
/// claims do not cover every seat, which the lock order and the charging claims rule out.
pub async fn confirm(
    tx: &mut AnyConnection,
    id: Uuid,
    attempt: i64,
    seats: usize,
    payment: Uuid,
    now: i64,
) -> anyhow::Result<bool> {
    let confirmed = sqlx::query(
        "UPDATE bookings SET status = 'confirmed', payment_id = $1, updated_at = $2 \
         WHERE id = $3 AND status = 'charging' AND charge_attempt = $4",
    )
    .bind(payment.to_string())
    .bind(now)
    .bind(id.to_string())
    .bind(attempt)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if confirmed == 0 {
        return Ok(false);
    }
    let sold = sqlx::query(
        "UPDATE seat_claims SET kind = 'sale', expires_at = 0 WHERE booking_id = $1 AND kind = 'hold'",
    )
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    anyhow::ensure!(sold == seats as u64, "booking {id} held {sold} of its {seats} seats when it was paid");
    Ok(true)
}

pub async fn insert_ticket(
    tx: &mut AnyConnection,
    booking: Uuid,
    t: &Ticket,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO tickets (id, booking_id, seat, code, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(t.id.to_string())
        .bind(booking.to_string())
        .bind(&t.seat)
        .bind(&t.code)
        .bind(now)
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

/// A booking with its tickets.
pub async fn booking(db: &Db, id: Uuid) -> anyhow::Result<Option<Stored>> {
    let mut conn = db.reader().acquire().await?;
    booking_in(&mut conn, id).await
}

/// The same, inside a transaction (SQLite has one connection: no second one may be asked for).
pub async fn booking_in(conn: &mut AnyConnection, id: Uuid) -> anyhow::Result<Option<Stored>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS}, starts_at FROM bookings WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let mut stored = stored_from(&row)?;
    stored.booking.tickets = tickets(conn, id).await?;
    Ok(Some(stored))
}

pub async fn bookings(db: &Db, user: Option<Uuid>, page: PageRequest) -> anyhow::Result<(Vec<Booking>, i64)> {
    let user = user.map(|u| u.to_string()).unwrap_or_default();
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bookings WHERE ($1 = '' OR user_id = $1)")
        .bind(&user)
        .fetch_one(db.reader())
        .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, starts_at FROM bookings WHERE ($1 = '' OR user_id = $1) \
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(&user)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(db.reader())
    .await?;
    let mut items: Vec<Booking> =
        rows.iter().map(|r| stored_from(r).map(|s| s.booking)).collect::<anyhow::Result<_>>()?;
    let mut conn = db.reader().acquire().await?;
    for b in &mut items {
        b.tickets = tickets(&mut conn, b.id).await?;
    }
    Ok((items, total))
}

/// Whether the showtime was cancelled, read under a shared lock (see migration 0103) that holds
/// off the cancellation's consumer until this transaction ends.
pub async fn showtime_cancelled(
    db: &Db,
    tx: &mut AnyConnection,
    showtime: Uuid,
    now: i64,
) -> anyhow::Result<bool> {
    sqlx::query("INSERT INTO showtime_states (showtime_id, updated_at) VALUES ($1, $2) ON CONFLICT (showtime_id) DO NOTHING")
        .bind(showtime.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let cancelled: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT cancelled FROM showtime_states WHERE showtime_id = $1{}",
        db.for_share()
    )))
    .bind(showtime.to_string())
    .fetch_one(&mut *tx)
    .await?;
    Ok(cancelled != 0)
}

/// Record that the showtime was cancelled (waiting for the holds and pays that read it).
pub async fn mark_showtime_cancelled(tx: &mut AnyConnection, showtime: Uuid, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO showtime_states (showtime_id, cancelled, updated_at) VALUES ($1, 1, $2) \
         ON CONFLICT (showtime_id) DO UPDATE SET cancelled = 1, updated_at = excluded.updated_at",
    )
    .bind(showtime.to_string())
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

/// Take the user's turn for holding (see migration 0104) and count the seats they hold now:
/// of this showtime, and in all.
pub async fn held_by(
    tx: &mut AnyConnection,
    user: Uuid,
    showtime: Uuid,
    now: i64,
) -> anyhow::Result<(i64, i64)> {
    sqlx::query(
        "INSERT INTO holders (user_id, updated_at) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(user.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN c.showtime_id = $2 THEN 1 ELSE 0 END), 0) AS here, COUNT(c.seat) AS total \
         FROM seat_claims c JOIN bookings b ON b.id = c.booking_id \
         WHERE b.user_id = $1 AND c.kind = 'hold' AND c.expires_at > $3",
    )
    .bind(user.to_string())
    .bind(showtime.to_string())
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    Ok((row.try_get("here")?, row.try_get("total")?))
}

/// Held bookings whose hold has run out, for the sweeper.
pub async fn expired_holds(db: &Db, now: i64, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT id FROM bookings WHERE status = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    rows.iter().map(|r| uuid(r, "id")).collect()
}

/// Bookings left `charging` by a pay request that died (it started before `stale_before`)
/// whose hold has run out too, for the sweeper.
pub async fn abandoned_charges(
    db: &Db,
    stale_before: i64,
    now: i64,
    limit: i64,
) -> anyhow::Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT id FROM bookings WHERE status = 'charging' AND charging_at <= $1 AND expires_at <= $2 \
         ORDER BY charging_at LIMIT $3",
    )
    .bind(stale_before)
    .bind(now)
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    rows.iter().map(|r| uuid(r, "id")).collect()
}

/// Live bookings of a showtime (their seats are claimed), in id order.
pub async fn live_bookings_of(conn: &mut AnyConnection, showtime: Uuid) -> anyhow::Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT id FROM bookings WHERE showtime_id = $1 AND status IN ('held', 'charging', 'confirmed') ORDER BY id",
    )
    .bind(showtime.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| uuid(r, "id")).collect()
}

/// A ticket by its code: the ticket and its booking's id.
pub async fn ticket_by_code(db: &Db, code: &str) -> anyhow::Result<Option<(Ticket, Uuid)>> {
    let row = sqlx::query("SELECT id, booking_id, seat, code FROM tickets WHERE code = $1")
        .bind(code)
        .fetch_optional(db.reader())
        .await?;
    row.map(|r| {
        Ok((
            Ticket { id: uuid(&r, "id")?, seat: r.try_get("seat")?, code: r.try_get("code")? },
            uuid(&r, "booking_id")?,
        ))
    })
    .transpose()
}
