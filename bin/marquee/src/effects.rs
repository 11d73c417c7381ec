//! The `effects` load scenario: how long an event's effect takes to show. Each buyer books one
//! seat (hold, then pay) and then reads its loyalty balance until the points of that booking are
//! there: `booking.confirmed` has gone from booking's outbox through the bus into loyalty's
//! inbox and ledger. The latency counts from the pay's answer (the confirmation has committed)
//! to the first read that shows the points, read every millisecond or so. Needs an admin (it
//! puts its own seats on sale).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{Value, json};

use crate::{
    loadtest::{LoadtestArgs, Stats},
    rush::{CARD, Show, buyer, json_of, own_shows, rooms_for_seats},
};

/// Longer than this and the effect counts as lost (an error), not slow.
const GIVE_UP: Duration = Duration::from_secs(10);
/// Bookings a buyer makes at most per second, to size the rooms (one seat each).
const PER_BUYER_PER_SECOND: u64 = 200;

pub async fn run(args: LoadtestArgs) -> anyhow::Result<BTreeMap<&'static str, Stats>> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency.max(8)).build()?;
    let (Some(email), Some(password)) = (&args.admin_email, &args.admin_password) else {
        anyhow::bail!(
            "the effects scenario puts its own seats on sale: give --admin-email and --admin-password"
        );
    };
    let admin = crate::ledger::admin_token(&http, &base, email, password).await?;
    let buyers = args.concurrency.max(1);
    let rooms = rooms_for_seats((buyers as u64 * args.duration * PER_BUYER_PER_SECOND) as f64);
    let shows = Arc::new(own_shows(&http, &base, &admin, rooms).await?);
    // Every (showtime, seat) once, dealt out to the buyers in turn: no buyer waits on another.
    let seats: Vec<(usize, usize)> =
        (0..shows.len()).flat_map(|s| (0..shows[s].seats.len()).map(move |i| (s, i))).collect();
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for n in 0..buyers {
        let token = buyer(&http, &base, n).await?;
        let mine: Vec<(usize, usize)> = seats.iter().skip(n).step_by(buyers).copied().collect();
        let (http, base, shows) = (http.clone(), base.clone(), shows.clone());
        workers.push(tokio::spawn(async move {
            let mut stats = BTreeMap::new();
            for (show, seat) in mine {
                if Instant::now() >= deadline {
                    break;
                }
                book_and_watch(&http, &base, &token, &shows[show], seat, &mut stats).await;
            }
            stats
        }));
    }
    let mut total = BTreeMap::new();
    for worker in workers {
        Stats::absorb_all(&mut total, worker.await?);
    }
    if let Some(seen) = total.get("points visible") {
        println!(
            "effects: booking.confirmed -> loyalty points visible, {} bookings: p50 {:.1?}, p99 {:.1?}, max {:.1?}; {} not seen within {GIVE_UP:?}",
            seen.latencies.len(),
            seen.percentile(0.5),
            seen.percentile(0.99),
            seen.percentile(1.0),
            seen.errors
        );
    }
    Ok(total)
}

async fn lifetime_points(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<i64> {
    let me = json_of(http.get(format!("{base}/api/v1/loyalty/me")).bearer_auth(token).send().await?).await?;
    me["lifetime_points"].as_i64().context("no lifetime_points")
}

/// One booking, then reads until its points show.
async fn book_and_watch(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    show: &Show,
    seat: usize,
    stats: &mut BTreeMap<&'static str, Stats>,
) {
    let Ok(before) = lifetime_points(http, base, token).await else {
        stats.entry("points visible").or_default().errors += 1;
        return;
    };
    let started = Instant::now();
    let held = http
        .post(format!("{base}/api/v1/bookings"))
        .bearer_auth(token)
        .json(&json!({"showtime_id": show.id, "seats": [show.seats[seat]]}))
        .send()
        .await;
    let booking: Value = match held {
        Ok(r) if r.status() == reqwest::StatusCode::CREATED => r.json().await.unwrap_or(Value::Null),
        _ => {
            let entry = stats.entry("hold").or_default();
            entry.latencies.push(started.elapsed());
            entry.errors += 1;
            return;
        }
    };
    stats.entry("hold").or_default().latencies.push(started.elapsed());
    let id = booking["id"].as_str().unwrap_or_default();
    let card = json!({"payment_method": {"type": "card", "number": CARD, "exp_month": 12, "exp_year": 2035, "cvc": "123"}});
    let paying = Instant::now();
    let paid =
        http.post(format!("{base}/api/v1/bookings/{id}/pay")).bearer_auth(token).json(&card).send().await;
    let entry = stats.entry("pay").or_default();
    entry.latencies.push(paying.elapsed());
    if !paid.is_ok_and(|r| r.status().is_success()) {
        entry.errors += 1;
        return;
    }
    let confirmed = Instant::now();
    loop {
        if lifetime_points(http, base, token).await.is_ok_and(|now| now > before) {
            stats.entry("points visible").or_default().latencies.push(confirmed.elapsed());
            return;
        }
        if confirmed.elapsed() > GIVE_UP {
            stats.entry("points visible").or_default().errors += 1;
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
