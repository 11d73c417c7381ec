//! The `rush` load scenario: many buyers racing for the seats of a few showtimes, hold then pay.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{Value, json};

use crate::loadtest::{LoadtestArgs, Rng, Stats};

/// Enough showtimes that a 10-second run measures throughput rather than a sell-out.
const SHOWTIMES: usize = 40;
const CARD: &str = "4242424242424242";

struct Show {
    id: String,
    seats: Vec<String>,
}

async fn json_of(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

/// Upcoming showtimes with free seats (the demo week of `marquee up` has plenty).
async fn shows(http: &reqwest::Client, base: &str) -> anyhow::Result<Vec<Show>> {
    let page = json_of(http.get(format!("{base}/api/v1/showtimes?per_page=100")).send().await?).await?;
    let mut shows = Vec::new();
    for s in page["items"].as_array().context("no showtimes")? {
        let id = s["id"].as_str().context("showtime id")?.to_owned();
        let map = json_of(http.get(format!("{base}/api/v1/showtimes/{id}/seats")).send().await?).await?;
        let seats = crate::ledger::seats_with_status(&map, "available");
        if seats.len() >= 20 {
            shows.push(Show { id, seats });
        }
        if shows.len() == SHOWTIMES {
            break;
        }
    }
    anyhow::ensure!(
        !shows.is_empty(),
        "no upcoming showtimes with free seats: start marquee up with its demo data"
    );
    Ok(shows)
}

async fn buyer(http: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<String> {
    let email = format!("rush-{}-{n}@loadtest.invalid", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "rush-password-1", "name": "Rush buyer"});
    let session =
        json_of(http.post(format!("{base}/api/v1/auth/register")).json(&body).send().await?).await?;
    session["access_token"].as_str().map(str::to_owned).context("no token")
}

pub async fn run(args: LoadtestArgs) -> anyhow::Result<BTreeMap<&'static str, Stats>> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let shows = Arc::new(shows(&http, &base).await?);
    let mut tokens = Vec::new();
    for n in 0..args.concurrency {
        tokens.push(buyer(&http, &base, n).await?);
    }
    // showtime -> seats confirmed to our buyers (to find a seat sold twice)
    let sold: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    // When the last booking was confirmed: after a sell-out the rest of the run measures nothing.
    let last_sale: Arc<Mutex<Duration>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let mut workers = Vec::new();
    for (worker, token) in tokens.into_iter().enumerate() {
        let (http, base, shows, sold, last_sale) =
            (http.clone(), base.clone(), shows.clone(), sold.clone(), last_sale.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(worker as u64 + 11);
            let mut stats: BTreeMap<&'static str, Stats> = BTreeMap::new();
            while Instant::now() < deadline {
                let show = &shows[rng.pick() % shows.len()];
                let n = 1 + rng.pick() % 4;
                let seats: HashSet<&String> = (0..n).map(|_| &show.seats[rng.pick() % show.seats.len()]).collect();
                let t = Instant::now();
                let held = http
                    .post(format!("{base}/api/v1/bookings"))
                    .bearer_auth(&token)
                    .json(&json!({"showtime_id": show.id, "seats": seats}))
                    .send()
                    .await;
                let took = t.elapsed();
                let booking: Value = match held {
                    Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                        stats.entry("hold").or_default().latencies.push(took);
                        r.json().await.unwrap_or(Value::Null)
                    }
                    Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {
                        stats.entry("hold, taken").or_default().latencies.push(took);
                        continue;
                    }
                    _ => {
                        let entry = stats.entry("hold").or_default();
                        entry.latencies.push(took);
                        entry.errors += 1;
                        continue;
                    }
                };
                let id = booking["id"].as_str().unwrap_or_default();
                let t = Instant::now();
                let card = json!({"payment_method": {"type": "card", "number": CARD, "exp_month": 12, "exp_year": 2035, "cvc": "123"}});
                let paid = http.post(format!("{base}/api/v1/bookings/{id}/pay")).bearer_auth(&token).json(&card).send().await;
                let entry = stats.entry("pay").or_default();
                entry.latencies.push(t.elapsed());
                match paid {
                    Ok(r) if r.status().is_success() => {
                        let b: Value = r.json().await.unwrap_or(Value::Null);
                        let seats: Vec<String> =
                            b["seats"].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect();
                        if let Ok(mut sold) = sold.lock() {
                            sold.entry(show.id.clone()).or_default().extend(seats);
                        }
                        if let Ok(mut last) = last_sale.lock() {
                            *last = started.elapsed();
                        }
                    }
                    _ => entry.errors += 1,
                }
            }
            stats
        }));
    }
    let mut total: BTreeMap<&'static str, Stats> = BTreeMap::new();
    for worker in workers {
        Stats::absorb_all(&mut total, worker.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sold = sold.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let bookings = total.get("pay").map_or(0, |s| s.latencies.len() as u64 - s.errors);
    let selling = last_sale.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.as_secs_f64().max(0.001);
    println!(
        "rush: {bookings} bookings confirmed in {elapsed:.1} s ({:.0}/s); the last at {selling:.1} s ({:.0}/s while selling)",
        bookings as f64 / elapsed,
        bookings as f64 / selling
    );
    oversell_check(&http, &base, &shows, &sold).await?;
    match (&args.admin_email, &args.admin_password) {
        (Some(email), Some(password)) => ledger_check(&http, &base, email, password).await?,
        _ => println!("ledger check: skipped (give --admin-email and --admin-password)"),
    }
    Ok(total)
}

/// The ledger check once the rush has settled: refunds owed for bookings that ended are carried
/// out within moments, so it is run again for a while until it is clean.
async fn ledger_check(http: &reqwest::Client, base: &str, email: &str, password: &str) -> anyhow::Result<()> {
    let token = crate::ledger::admin_token(http, base, email, password).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = crate::ledger::check(http, base, &token).await?;
        if report.is_clean() || Instant::now() >= deadline {
            for violation in report.violations.iter().take(20) {
                println!("  {violation}");
            }
            println!("{}", report.summary());
            anyhow::ensure!(report.is_clean(), "the ledger check failed");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every seat confirmed to a buyer once, and the seat maps showing exactly those as booked.
async fn oversell_check(
    http: &reqwest::Client,
    base: &str,
    shows: &[Show],
    sold: &HashMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    for show in shows {
        let ours = sold.get(&show.id).cloned().unwrap_or_default();
        let unique: HashSet<&String> = ours.iter().collect();
        anyhow::ensure!(
            unique.len() == ours.len(),
            "OVERSOLD: a seat of showtime {} was sold twice",
            show.id
        );
        let map =
            json_of(http.get(format!("{base}/api/v1/showtimes/{}/seats", show.id)).send().await?).await?;
        let booked: HashSet<String> = crate::ledger::seats_with_status(&map, "booked").into_iter().collect();
        let ours: HashSet<String> = ours.into_iter().collect();
        anyhow::ensure!(ours.is_subset(&booked), "OVERSOLD: showtime {} shows sold seats as free", show.id);
    }
    println!("oversell check: passed (every seat sold once, seat maps agree)");
    Ok(())
}
