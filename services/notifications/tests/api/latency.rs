//! How long an email takes from `booking.confirmed` to the SMTP server, over 200 bookings: a
//! measurement, not a check (`cargo test -p notifications --test api -- --ignored --nocapture
//! email_latency`, in either mode). Each email is matched to its booking by the booking id in
//! its text; the start is the event's own time.

use std::time::{Duration, SystemTime};

use contracts::CloudEvent;
use futures_util::StreamExt;
use testkit::flows;

use crate::{system_with_smtp, user};

const BOOKINGS: usize = 200;

#[tokio::test]
#[ignore = "a measurement: run it with --ignored --nocapture"]
async fn email_latency() {
    let (sys, smtp) = system_with_smtp().await;
    let admin = sys.admin_token().await;
    let mut shows = Vec::new();
    for i in 0..(BOOKINGS / 50 + 1) {
        shows.push(
            flows::showtime(&sys, &admin, &format!("Film {i}"), "Europe/Paris", 30 + i as i64 * 4).await,
        );
    }
    let mut buyers = Vec::new();
    for _ in 0..20 {
        buyers.push(user(&sys).await.0);
    }
    // Buyers at once (MARQUEE_LATENCY_BUYERS, default 8; 1 is one booking at a time).
    let concurrency: usize =
        std::env::var("MARQUEE_LATENCY_BUYERS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let started = std::time::Instant::now();
    let rows = ["A", "B", "C", "D", "E"];
    let seats: Vec<(usize, String)> =
        (0..BOOKINGS).map(|i| (i / 50, format!("{}{}", rows[(i % 50) / 10], i % 10 + 1))).collect();
    let booked: Vec<serde_json::Value> = futures_util::stream::iter(seats.iter().enumerate())
        .map(|(i, (show, seat))| {
            let (sys, token, show) = (&sys, &buyers[i % buyers.len()], &shows[*show]);
            async move { flows::book(sys, token, &show.id, &[seat.as_str()]).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    assert_eq!(booked.len(), BOOKINGS);
    let rate = BOOKINGS as f64 / started.elapsed().as_secs_f64();
    let arrived = testkit::eventually(Duration::from_secs(60), || async {
        smtp.received()
            .iter()
            .filter(|m| m.header("Subject").is_some_and(|s| s.starts_with("Your tickets")))
            .count()
            >= BOOKINGS
    })
    .await;
    assert!(arrived, "every booking's email arrived");

    // When each booking.confirmed happened, from booking's outbox.
    let events: Vec<(String,)> =
        sqlx::query_as("SELECT payload FROM outbox WHERE event_type = 'booking.confirmed'")
            .fetch_all(&sys.db("booking").pool)
            .await
            .expect("booking's outbox");
    let confirmed: std::collections::HashMap<String, SystemTime> = events
        .iter()
        .filter_map(|(p,)| serde_json::from_str::<CloudEvent>(p).ok())
        .map(|e| (e.subject.clone(), SystemTime::from(e.time)))
        .collect();
    let mut millis: Vec<f64> = smtp
        .received()
        .iter()
        .filter_map(|m| {
            let text = m.parts("text/plain").concat();
            let id = text.split("Booking ").nth(1)?.split('.').next()?.trim().to_owned();
            let at = confirmed.get(&id)?;
            Some(m.at.duration_since(*at).ok()?.as_secs_f64() * 1000.0)
        })
        .collect();
    assert_eq!(millis.len(), BOOKINGS, "each email matched to its booking");
    millis.sort_by(f64::total_cmp);
    // Where the time went: the event reaching notifications, then the worker sending it.
    let split: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT created_at - event_at, sent_at - created_at FROM deliveries WHERE kind = 'booking_confirmed' AND sent_at IS NOT NULL",
    )
    .fetch_all(&sys.db("notifications").pool)
    .await
    .expect("deliveries");
    let mean =
        |f: fn(&(i64, i64)) -> i64| split.iter().map(f).sum::<i64>() as f64 / split.len().max(1) as f64;
    println!(
        "mean: event → notifications {:.0} ms, notifications → SMTP accepted {:.0} ms",
        mean(|s| s.0),
        mean(|s| s.1)
    );
    let at = |q: f64| millis[((millis.len() as f64 * q).ceil() as usize).clamp(1, millis.len()) - 1];
    println!(
        "email latency, booking.confirmed → SMTP server, {} bookings by {concurrency} buyers at {rate:.0}/s ({} mode): \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        millis.len(),
        if testkit::distributed() { "distributed" } else { "embedded" },
        at(0.50),
        at(0.99),
        at(1.0)
    );
}
