//! Demo data for `marquee up`: two theaters, four rooms, and a week of showtimes of the catalog's
//! featured movies, made once into an empty database. It runs in the background because it needs
//! the catalog, which may start after us in the distributed mode.

use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{RoomInput, ShowtimeInput, TheaterInput},
    ops, store,
};

#[derive(Deserialize)]
struct Featured {
    items: Vec<FeaturedMovie>,
}

#[derive(Deserialize)]
struct FeaturedMovie {
    id: Uuid,
}

async fn featured_movies(catalog: &[String], http: &platform::transport::Http) -> anyhow::Result<Vec<Uuid>> {
    let base = catalog.first().ok_or_else(|| anyhow::anyhow!("no catalog URL"))?;
    let request =
        http.get(format!("{base}/api/v1/movies/featured?per_page=20")).timeout(Duration::from_secs(3));
    let page: Featured = http.send(request).await?.error_for_status()?.json().await?;
    Ok(page.items.into_iter().map(|m| m.id).collect())
}

/// Seed once; retried for a minute while the catalog is not up yet.
pub async fn seed(state: AppState, catalog: Vec<String>, http: platform::transport::Http) {
    for attempt in 0..30 {
        match seed_once(&state, &catalog, &http).await {
            Ok(()) => return,
            Err(e) if attempt < 29 => {
                tracing::debug!(error = format!("{e:#}"), "demo showtimes not ready yet");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "gave up on the demo showtimes"),
        }
    }
}

async fn seed_once(
    state: &AppState,
    catalog: &[String],
    http: &platform::transport::Http,
) -> anyhow::Result<()> {
    let page = platform::pagination::PageRequest::default();
    if store::theaters(&state.db, None, page).await?.1 > 0 {
        return Ok(());
    }
    let movies = featured_movies(catalog, http).await?;
    anyhow::ensure!(!movies.is_empty(), "the catalog has no featured movies yet");
    let mut rooms = Vec::new();
    for (name, city, address) in [
        ("Marquee Riverside", "Portland", "120 NW Water Street"),
        ("Marquee Old Town", "Portland", "8 SW Ankeny Street"),
    ] {
        let input = TheaterInput {
            name: name.into(),
            city: city.into(),
            address: address.into(),
            timezone: "America/Los_Angeles".into(),
        }
        .parse()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let theater = store::insert_theater(&state.db, &input).await?;
        for (room, rows, seats) in [("Screen 1", 10, 14), ("Screen 2", 6, 10)] {
            let plan = RoomInput {
                name: room.into(),
                rows: (0..rows).map(|i| char::from(b'A' + i as u8).to_string()).collect(),
                seats_per_row: seats,
                premium_rows: vec![char::from(b'A' + (rows - 2) as u8).to_string()],
                accessible_seats: vec!["A1".into(), "A2".into()],
            }
            .parse()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let room =
                store::insert_room(&state.db, theater.id, &plan).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            rooms.push(room.id);
        }
    }
    // Three shows a day at 14:00, 17:30 and 21:00 on the theaters' clock for the next seven
    // days: each slot leaves room for a movie of up to 3 h 15 min plus cleaning.
    let today = state.clock.now().date();
    let mut n = 0usize;
    for day in 1..=7 {
        let date = today + time::Duration::days(day);
        for (i, room) in rooms.iter().enumerate() {
            for (hour, minute) in [(14, 0), (17, 30), (21, 0)] {
                let movie = movies[(n + i) % movies.len()];
                n += 1;
                let starts_at = crate::domain::at_local(date, hour, minute, "America/Los_Angeles")
                    .ok_or_else(|| anyhow::anyhow!("no such local time"))?;
                let input = ShowtimeInput {
                    movie_id: movie,
                    room_id: *room,
                    starts_at,
                    price_cents: if hour == 21 { 1400 } else { 1100 },
                    currency: "USD".into(),
                };
                if let Err(e) = ops::schedule(state, input).await {
                    tracing::debug!(error = %e, "skipped a demo showtime");
                }
            }
        }
    }
    tracing::info!(showtimes = n, "demo theaters and a week of showtimes made");
    Ok(())
}
