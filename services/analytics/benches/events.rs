//! `cargo bench -p analytics`: how many events a second analytics takes, through the
//! consumer exactly as in production (inbox, archive, read models, one transaction each), on
//! SQLite and, when `MARQUEE_TEST_DATABASE_URL` names one, on PostgreSQL; then how fast a
//! rebuild replays the archive.

use std::{sync::Arc, time::Instant};

use analytics::{AppState, reactions};
use contracts::{
    CloudEvent,
    booking::BookingConfirmed,
    event_types::{BOOKING_CONFIRMED, PAYMENT_SUCCEEDED, SHOWTIME_SCHEDULED},
    payments::{PaymentSettled, booking_reference},
    showtimes::ShowtimeScheduled,
};
use events::Consumer;
use platform::db::{Db, DbConfig};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Showtimes, then per booking its payment and its confirmation.
fn events(bookings: usize) -> Vec<CloudEvent> {
    let start = OffsetDateTime::now_utc() - Duration::days(20);
    let shows: Vec<(Uuid, Uuid)> = (0..100).map(|_| (Uuid::now_v7(), Uuid::now_v7())).collect();
    let mut out = Vec::new();
    for (show, movie) in &shows {
        let data = ShowtimeScheduled {
            showtime_id: *show,
            movie_id: *movie,
            room_id: Uuid::now_v7(),
            theater_id: Uuid::from_u64_pair(0, (show.as_u128() % 4) as u64),
            starts_at: start + Duration::days(25),
            ends_at: start + Duration::days(25) + Duration::hours(2),
            price_cents: 1000,
            currency: "USD".into(),
            capacity: 500,
            timezone: Some("America/Los_Angeles".into()),
        };
        out.push(CloudEvent::new("showtimes", SHOWTIME_SCHEDULED, show.to_string(), &data).expect("event"));
    }
    for i in 0..bookings {
        let (show, movie) = shows[i % shows.len()];
        let (booking, user) = (Uuid::now_v7(), Uuid::now_v7());
        let at = start + Duration::minutes(i as i64);
        let paid = PaymentSettled {
            payment_id: Uuid::now_v7(),
            user_id: user,
            reference: booking_reference(booking),
            amount_cents: 2000,
            currency: "USD".into(),
            failure_code: None,
        };
        let confirmed = BookingConfirmed {
            booking_id: booking,
            user_id: user,
            showtime_id: show,
            movie_id: movie,
            seats: vec!["A1".into(), "A2".into()],
            total_cents: 2000,
            currency: "USD".into(),
            confirmed_at: at,
            starts_at: None,
            tickets: Vec::new(),
        };
        out.push(CloudEvent::new("payments", PAYMENT_SUCCEEDED, booking.to_string(), &paid).expect("event"));
        out.push(
            CloudEvent::new("booking", BOOKING_CONFIRMED, booking.to_string(), &confirmed).expect("event"),
        );
    }
    out
}

async fn run(label: &str, config: DbConfig, events: &[CloudEvent]) -> anyhow::Result<()> {
    let db = Db::connect(&config).await?;
    db.migrate(&analytics::migrator()).await?;
    let state = AppState { db: db.clone(), clock: platform::clock::Clock::system() };
    let consumer = Consumer::new(
        analytics::SERVICE,
        reactions::EVENTS,
        db.clone(),
        Arc::new(reactions::Reactions { state: state.clone() }),
    );
    let started = Instant::now();
    for e in events {
        consumer.deliver(e).await?;
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{label}: {} events in {:.2} s: {:.0} events/s (one at a time)",
        events.len(),
        took,
        events.len() as f64 / took
    );
    let (events, took_ms) = analytics::ops::replay(&state).await?;
    println!(
        "{label}: rebuild replayed {events} events in {:.2} s: {:.0} events/s",
        took_ms as f64 / 1000.0,
        events as f64 / (took_ms.max(1) as f64 / 1000.0)
    );
    db.close().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let events = events(10_000);
    let dir = std::env::temp_dir().join(format!("marquee-analytics-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run("SQLite", DbConfig::sqlite(&dir, "analytics"), &events).await;
    std::fs::remove_dir_all(&dir).ok();
    result?;
    if let Ok(url) = std::env::var("MARQUEE_TEST_DATABASE_URL") {
        let schema = format!("bench_analytics_{}", std::process::id());
        let config = DbConfig::at(url.clone(), Some(schema.clone()), 4);
        let result = run("PostgreSQL", config, &events).await;
        let pool = sqlx::AnyPool::connect(&url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE"))).execute(&pool).await?;
        result?;
    }
    Ok(())
}
