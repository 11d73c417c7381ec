//! The read models, fed one event at a time. [`apply`] is what the consumer runs on each new
//! event and what a rebuild runs on each archived one, so both reach the same rows.
//!
//! Every event sets only what it knows, keyed by the fact it reports (a payment, a refund, a
//! booking, a session), so the rows do not depend on the order events arrive in, and the inbox
//! plus the archive's key keep a redelivered event from counting twice. Where a fact needs
//! another to be placed (a payment's theater comes from its booking's showtime), it is placed
//! when the second one arrives, whichever that is.

use contracts::{
    CloudEvent,
    booking::{BookingConfirmed, BookingEnded},
    catalog::{MovieChanged, MovieDeleted},
    event_types::*,
    identity::UserRegistered,
    payments::{PaymentRefunded, PaymentSettled, SubscriptionChanged, booking_of_reference},
    showtimes::{ShowtimeCancelled, ShowtimeScheduled},
    streaming::{PlaybackStarted, PlaybackStopped},
};
use platform::{time::to_ms, zones::local_date};
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::domain::utc_day;

/// Apply one event to the read models, inside `tx`.
pub async fn apply(tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
    let at = to_ms(event.time);
    match event.event_type.as_str() {
        USER_REGISTERED => {
            let e: UserRegistered = event.data_as()?;
            registered(tx, e.user_id, to_ms(e.registered_at)).await
        }
        MOVIE_CREATED | MOVIE_UPDATED => movie_changed(tx, &event.data_as()?, at).await,
        MOVIE_DELETED => movie_deleted(tx, &event.data_as()?).await,
        SHOWTIME_SCHEDULED => scheduled(tx, &event.data_as()?).await,
        SHOWTIME_CANCELLED => showtime_cancelled(tx, &event.data_as()?).await,
        BOOKING_CONFIRMED => confirmed(tx, &event.data_as()?).await,
        BOOKING_CANCELLED | BOOKING_EXPIRED => ended(tx, &event.data_as()?, at).await,
        PAYMENT_SUCCEEDED => {
            let e: PaymentSettled = event.data_as()?;
            let money = Money {
                id: e.payment_id,
                kind: "capture",
                payment_id: e.payment_id,
                user_id: e.user_id,
                reference: e.reference,
                amount_cents: e.amount_cents,
                currency: e.currency,
                at,
            };
            moved(tx, &money).await
        }
        PAYMENT_REFUNDED => {
            let e: PaymentRefunded = event.data_as()?;
            let money = Money {
                id: e.refund_id,
                kind: "refund",
                payment_id: e.payment_id,
                user_id: e.user_id,
                reference: e.reference,
                amount_cents: e.amount_cents,
                currency: e.currency,
                at,
            };
            moved(tx, &money).await
        }
        SUBSCRIPTION_ACTIVATED => subscription(tx, event, "activated", &event.data_as()?, at).await,
        SUBSCRIPTION_CANCELLED => subscription(tx, event, "cancelled", &event.data_as()?, at).await,
        PLAYBACK_STARTED => play_started(tx, &event.data_as()?).await,
        PLAYBACK_STOPPED => play_stopped(tx, &event.data_as()?).await,
        other => anyhow::bail!("analytics does not handle {other}"),
    }
}

/// Registering is not activity: someone who signed up and did nothing since is `inactive`.
async fn registered(tx: &mut AnyConnection, user: Uuid, at: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO users (user_id, registered_at, last_active_at) VALUES ($1, $2, NULL) \
         ON CONFLICT (user_id) DO UPDATE SET registered_at = excluded.registered_at",
    )
    .bind(user.to_string())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The user did something at `at`: the latest such moment is kept.
async fn seen(tx: &mut AnyConnection, user: Uuid, at: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO users (user_id, registered_at, last_active_at) VALUES ($1, NULL, $2) \
         ON CONFLICT (user_id) DO UPDATE SET last_active_at = excluded.last_active_at \
         WHERE users.last_active_at IS NULL OR users.last_active_at < excluded.last_active_at",
    )
    .bind(user.to_string())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The newest change wins, whichever arrives last.
async fn movie_changed(tx: &mut AnyConnection, e: &MovieChanged, at: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO movies (movie_id, title, genres, changed_at, deleted) VALUES ($1, $2, $3, $4, 0) \
         ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, genres = excluded.genres, \
         changed_at = excluded.changed_at WHERE movies.changed_at < excluded.changed_at",
    )
    .bind(e.movie_id.to_string())
    .bind(&e.title)
    .bind(serde_json::to_string(&e.genres)?)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn movie_deleted(tx: &mut AnyConnection, e: &MovieDeleted) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO movies (movie_id, title, genres, changed_at, deleted) VALUES ($1, '', '[]', 0, 1) \
         ON CONFLICT (movie_id) DO UPDATE SET deleted = 1",
    )
    .bind(e.movie_id.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn scheduled(tx: &mut AnyConnection, e: &ShowtimeScheduled) -> anyhow::Result<()> {
    let timezone = e.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
    sqlx::query(
        "INSERT INTO showtimes (showtime_id, movie_id, theater_id, timezone, starts_at, local_day, capacity, \
         price_cents, currency, cancelled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0) \
         ON CONFLICT (showtime_id) DO UPDATE SET movie_id = excluded.movie_id, theater_id = excluded.theater_id, \
         timezone = excluded.timezone, starts_at = excluded.starts_at, local_day = excluded.local_day, \
         capacity = excluded.capacity, price_cents = excluded.price_cents, currency = excluded.currency",
    )
    .bind(e.showtime_id.to_string())
    .bind(e.movie_id.to_string())
    .bind(e.theater_id.to_string())
    .bind(&timezone)
    .bind(to_ms(e.starts_at))
    .bind(local_date(e.starts_at, &timezone))
    .bind(e.capacity)
    .bind(e.price_cents)
    .bind(&e.currency)
    .execute(&mut *tx)
    .await?;
    // Bookings seen before their showtime (events out of order, a rebuild) are placed now.
    let unplaced: Vec<String> =
        sqlx::query_scalar("SELECT booking_id FROM bookings WHERE showtime_id = $1 AND theater_id IS NULL")
            .bind(e.showtime_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
    let zone = Zone { theater_id: e.theater_id.to_string(), timezone };
    for booking in unplaced {
        place_booking(tx, &booking, &zone).await?;
    }
    Ok(())
}

/// A cancelled showtime is kept with a flag: a showtime scheduled again under the same id is
/// not a thing, so no later event clears it. The row may not exist yet (events out of order):
/// then the flag waits in a placeholder that the schedule fills.
async fn showtime_cancelled(tx: &mut AnyConnection, e: &ShowtimeCancelled) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO showtimes (showtime_id, movie_id, theater_id, timezone, starts_at, local_day, capacity, \
         price_cents, currency, cancelled) VALUES ($1, $2, '', 'UTC', 0, '', 0, 0, '', 1) \
         ON CONFLICT (showtime_id) DO UPDATE SET cancelled = 1",
    )
    .bind(e.showtime_id.to_string())
    .bind(e.movie_id.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Where a showtime is: its theater and that theater's clock.
struct Zone {
    theater_id: String,
    timezone: String,
}

async fn zone_of_showtime(tx: &mut AnyConnection, showtime: Uuid) -> anyhow::Result<Option<Zone>> {
    let row =
        sqlx::query("SELECT theater_id, timezone FROM showtimes WHERE showtime_id = $1 AND theater_id <> ''")
            .bind(showtime.to_string())
            .fetch_optional(&mut *tx)
            .await?;
    row.map(|r| Ok(Zone { theater_id: r.try_get("theater_id")?, timezone: r.try_get("timezone")? }))
        .transpose()
}

async fn zone_of_booking(tx: &mut AnyConnection, booking: &str) -> anyhow::Result<Option<Zone>> {
    let row = sqlx::query(
        "SELECT s.theater_id, s.timezone FROM bookings b JOIN showtimes s ON s.showtime_id = b.showtime_id \
         WHERE b.booking_id = $1 AND s.theater_id <> ''",
    )
    .bind(booking)
    .fetch_optional(&mut *tx)
    .await?;
    row.map(|r| Ok(Zone { theater_id: r.try_get("theater_id")?, timezone: r.try_get("timezone")? }))
        .transpose()
}

fn day_in(ms: i64, zone: Option<&Zone>) -> String {
    match zone {
        Some(z) => local_date(platform::time::from_ms(ms), &z.timezone),
        None => utc_day(ms),
    }
}

/// Put a booking, and the money filed under it, in its showtime's theater and on its clock.
async fn place_booking(tx: &mut AnyConnection, booking: &str, zone: &Zone) -> anyhow::Result<()> {
    let confirmed_at: Option<i64> =
        sqlx::query_scalar("SELECT confirmed_at FROM bookings WHERE booking_id = $1")
            .bind(booking)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
    sqlx::query("UPDATE bookings SET theater_id = $1, local_day = $2 WHERE booking_id = $3")
        .bind(&zone.theater_id)
        .bind(confirmed_at.map(|at| day_in(at, Some(zone))))
        .bind(booking)
        .execute(&mut *tx)
        .await?;
    place_money(tx, booking, zone).await
}

async fn place_money(tx: &mut AnyConnection, booking: &str, zone: &Zone) -> anyhow::Result<()> {
    let rows = sqlx::query("SELECT id, at FROM money WHERE booking_id = $1 AND theater_id IS NULL")
        .bind(booking)
        .fetch_all(&mut *tx)
        .await?;
    for row in rows {
        let (id, at): (String, i64) = (row.try_get("id")?, row.try_get("at")?);
        sqlx::query("UPDATE money SET theater_id = $1, local_day = $2 WHERE id = $3")
            .bind(&zone.theater_id)
            .bind(day_in(at, Some(zone)))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

async fn confirmed(tx: &mut AnyConnection, e: &BookingConfirmed) -> anyhow::Result<()> {
    let zone = zone_of_showtime(tx, e.showtime_id).await?;
    let at = to_ms(e.confirmed_at);
    sqlx::query(
        "INSERT INTO bookings (booking_id, user_id, showtime_id, movie_id, tickets, total_cents, currency, \
         confirmed_at, cancelled_at, refunded_cents, end_reason, theater_id, local_day) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, NULL, $9, $10) \
         ON CONFLICT (booking_id) DO UPDATE SET tickets = excluded.tickets, total_cents = excluded.total_cents, \
         confirmed_at = excluded.confirmed_at, \
         theater_id = COALESCE(excluded.theater_id, bookings.theater_id), local_day = excluded.local_day",
    )
    .bind(e.booking_id.to_string())
    .bind(e.user_id.to_string())
    .bind(e.showtime_id.to_string())
    .bind(e.movie_id.to_string())
    .bind(e.seats.len() as i64)
    .bind(e.total_cents)
    .bind(&e.currency)
    .bind(at)
    .bind(zone.as_ref().map(|z| z.theater_id.clone()))
    .bind(day_in(at, zone.as_ref()))
    .execute(&mut *tx)
    .await?;
    seen(tx, e.user_id, at).await?;
    if let Some(zone) = zone {
        place_money(tx, &e.booking_id.to_string(), &zone).await?;
    }
    Ok(())
}

/// Cancelled, refunded or expired. The booking's row may not exist yet (a hold that expired was
/// never confirmed; events out of order): it is made, without a confirmation.
async fn ended(tx: &mut AnyConnection, e: &BookingEnded, at: i64) -> anyhow::Result<()> {
    let zone = zone_of_showtime(tx, e.showtime_id).await?;
    sqlx::query(
        "INSERT INTO bookings (booking_id, user_id, showtime_id, movie_id, tickets, total_cents, currency, \
         confirmed_at, cancelled_at, refunded_cents, end_reason, theater_id, local_day) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, NULL, $7, $8, $9, $10, NULL) \
         ON CONFLICT (booking_id) DO UPDATE SET cancelled_at = excluded.cancelled_at, \
         refunded_cents = excluded.refunded_cents, end_reason = excluded.end_reason, \
         theater_id = COALESCE(bookings.theater_id, excluded.theater_id)",
    )
    .bind(e.booking_id.to_string())
    .bind(e.user_id.to_string())
    .bind(e.showtime_id.to_string())
    .bind(e.movie_id.to_string())
    .bind(e.seats.len() as i64)
    .bind(&e.currency)
    .bind(at)
    .bind(e.refunded_cents)
    .bind(e.reason.as_deref())
    .bind(zone.as_ref().map(|z| z.theater_id.clone()))
    .execute(&mut *tx)
    .await?;
    if let Some(zone) = zone {
        place_money(tx, &e.booking_id.to_string(), &zone).await?;
    }
    Ok(())
}

struct Money {
    id: Uuid,
    kind: &'static str,
    payment_id: Uuid,
    user_id: Uuid,
    reference: String,
    amount_cents: i64,
    currency: String,
    at: i64,
}

/// A capture or a refund: once (its id is the key), then the user's net spend moves with it.
async fn moved(tx: &mut AnyConnection, m: &Money) -> anyhow::Result<()> {
    let booking = booking_of_reference(&m.reference).map(|b| b.to_string());
    let zone = match &booking {
        Some(b) => zone_of_booking(tx, b).await?,
        None => None,
    };
    let inserted = sqlx::query(
        "INSERT INTO money (id, kind, payment_id, user_id, reference, booking_id, amount_cents, currency, at, \
         theater_id, local_day) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(m.id.to_string())
    .bind(m.kind)
    .bind(m.payment_id.to_string())
    .bind(m.user_id.to_string())
    .bind(&m.reference)
    .bind(booking)
    .bind(m.amount_cents)
    .bind(&m.currency)
    .bind(m.at)
    .bind(zone.as_ref().map(|z| z.theater_id.clone()))
    .bind(day_in(m.at, zone.as_ref()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    let signed = if m.kind == "refund" { -m.amount_cents } else { m.amount_cents };
    sqlx::query(
        "INSERT INTO spend (user_id, currency, net_cents) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, currency) DO UPDATE SET net_cents = spend.net_cents + excluded.net_cents",
    )
    .bind(m.user_id.to_string())
    .bind(&m.currency)
    .bind(signed)
    .execute(&mut *tx)
    .await?;
    if m.kind == "capture" {
        seen(tx, m.user_id, m.at).await?;
    }
    Ok(())
}

async fn subscription(
    tx: &mut AnyConnection,
    event: &CloudEvent,
    kind: &str,
    e: &SubscriptionChanged,
    at: i64,
) -> anyhow::Result<()> {
    let period_end =
        time::OffsetDateTime::parse(&e.current_period_end, &time::format_description::well_known::Rfc3339)
            .map(to_ms)
            .unwrap_or(at);
    sqlx::query(
        "INSERT INTO subscription_events (event_id, subscription_id, user_id, plan_id, kind, at, period_end) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event.id.to_string())
    .bind(e.subscription_id.to_string())
    .bind(e.user_id.to_string())
    .bind(&e.plan_id)
    .bind(kind)
    .bind(at)
    .bind(period_end)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn play_started(tx: &mut AnyConnection, e: &PlaybackStarted) -> anyhow::Result<()> {
    let at = to_ms(e.started_at);
    sqlx::query(
        "INSERT INTO plays (session_id, user_id, movie_id, started_at, stopped_at, position_seconds, \
         duration_seconds, completed, day) VALUES ($1, $2, $3, $4, NULL, $5, 0, 0, $6) \
         ON CONFLICT (session_id) DO UPDATE SET started_at = excluded.started_at, day = excluded.day",
    )
    .bind(e.session_id.to_string())
    .bind(e.user_id.to_string())
    .bind(e.movie_id.to_string())
    .bind(at)
    .bind(e.position_seconds)
    .bind(utc_day(at))
    .execute(&mut *tx)
    .await?;
    seen(tx, e.user_id, at).await
}

async fn play_stopped(tx: &mut AnyConnection, e: &PlaybackStopped) -> anyhow::Result<()> {
    let at = to_ms(e.stopped_at);
    sqlx::query(
        "INSERT INTO plays (session_id, user_id, movie_id, started_at, stopped_at, position_seconds, \
         duration_seconds, completed, day) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8) \
         ON CONFLICT (session_id) DO UPDATE SET stopped_at = excluded.stopped_at, \
         position_seconds = excluded.position_seconds, duration_seconds = excluded.duration_seconds, \
         completed = excluded.completed",
    )
    .bind(e.session_id.to_string())
    .bind(e.user_id.to_string())
    .bind(e.movie_id.to_string())
    .bind(at)
    .bind(e.position_seconds)
    .bind(e.duration_seconds)
    .bind(platform::db::flag(e.completed))
    .bind(utc_day(at))
    .execute(&mut *tx)
    .await?;
    seen(tx, e.user_id, at).await
}

/// The read models a rebuild empties before it replays the archive.
pub const TABLES: &[&str] =
    &["movies", "showtimes", "bookings", "money", "plays", "subscription_events", "users", "spend"];
