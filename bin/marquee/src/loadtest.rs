//! `marquee loadtest`: drive a running deployment with realistic traffic and print throughput
//! and latency percentiles. Traffic goes only where `--url` points (a local deployment).
//!
//! Scenarios:
//! - `catalog`: browsing: 80 % `GET /movies/{id}`, 20 % `GET /movies/search?q=` with words taken
//!   from real titles (some with a typo), over the movies the deployment has.
//! - `overhead`: the same movie read from a bare axum handler, the catalog, the gateway and
//!   nginx (when installed) in front of the catalog; see
//!   [`crate::overhead`].
//! - `rush`: buyers race for seats: hold 1-4 random seats, then pay, closed loop or at a fixed
//!   `--rate`; with an admin it puts its own showtimes on sale, sized to the run; ends with an
//!   oversell check that fails the run if any seat was sold twice or the seat maps disagree with
//!   what was sold, and the ledger check; see [`crate::rush`].
//! - `effects`: how long `booking.confirmed` takes to show as loyalty points; see
//!   [`crate::effects`].
//! - `stream`, `playback`: viewers fetching a large file through their sessions, and playback
//!   starts per second; see [`crate::watch`].

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::Value;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// The gateway (or a service) to drive.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, default_value = "catalog")]
    pub scenario: String,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Requests in flight at once (`rush`: buyers; with `--rate`, the buyers taking turns).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// `rush` only: open loop, this many bookings started per second whatever the answers, with
    /// latency counted from when each was due (default: closed loop, `--concurrency` buyers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// `overhead` only: the catalog's own URL (default: taken from the gateway's /health, which
    /// names replicas to an admin: give --admin-email and --admin-password).
    #[arg(long)]
    pub direct_url: Option<String>,
    /// An admin's email: `rush` runs the ledger check after the rush with it, `overhead` finds
    /// the catalog's replicas with it.
    #[arg(long, env = "MARQUEE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// That admin's password.
    #[arg(long, env = "MARQUEE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// `stream` only: the size of the media file it uploads, in MiB.
    #[arg(long, default_value_t = 200)]
    pub media_mib: u64,
    /// `stream` only: the size of each range fetched, in MiB (0: the whole file each time).
    #[arg(long, default_value_t = 1)]
    pub range_mib: u64,
}

/// What one kind of request measured.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub latencies: Vec<Duration>,
    pub errors: u64,
}

impl Stats {
    /// Add another worker's (or another slice's) measurements to these.
    pub fn absorb(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }

    /// Add every kind of request's measurements in `other` to `total`.
    pub fn absorb_all(total: &mut BTreeMap<&'static str, Stats>, other: BTreeMap<&'static str, Stats>) {
        for (kind, stats) in other {
            total.entry(kind).or_default().absorb(stats);
        }
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }
}

/// A small deterministic generator: load runs are comparable run to run.
pub struct Rng(pub u64);

impl Rng {
    pub fn pick(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

/// Drop one letter from a word: what a hurried user types.
fn typo(word: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 5 {
        return word.to_owned();
    }
    let skip = 1 + rng.pick() % (chars.len() - 2);
    chars.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, c)| c).collect()
}

pub async fn run(args: LoadtestArgs) -> anyhow::Result<BTreeMap<&'static str, Stats>> {
    match args.scenario.as_str() {
        "catalog" => catalog(args).await,
        "rush" => crate::rush::run(args).await,
        "effects" => crate::effects::run(args).await,
        "overhead" => crate::overhead::run(args).await,
        "stream" => crate::watch::stream(args).await,
        "playback" => crate::watch::playback(args).await,
        other => {
            anyhow::bail!(
                "unknown scenario {other:?} (known: catalog, rush, effects, overhead, stream, playback)"
            )
        }
    }
}

/// Up to `n` of the deployment's movies; an error when it has none.
pub async fn movies(http: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<Vec<Value>> {
    let page: Value = http
        .get(format!("{base}/api/v1/movies?per_page={n}"))
        .send()
        .await
        .context("reaching the deployment")?
        .error_for_status()?
        .json()
        .await?;
    let movies = page["items"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(!movies.is_empty(), "the deployment has no movies: start it with its demo data");
    Ok(movies)
}

async fn catalog(args: LoadtestArgs) -> anyhow::Result<BTreeMap<&'static str, Stats>> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let movies = movies(&http, &base, 100).await?;
    let ids: Arc<Vec<String>> =
        Arc::new(movies.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect());
    let words: Arc<Vec<String>> = Arc::new(
        movies
            .iter()
            .filter_map(|m| m["title"].as_str())
            .flat_map(|t| t.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
            .filter(|w| w.chars().count() >= 4 && w.chars().all(char::is_alphabetic))
            .collect(),
    );
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (http, base, ids, words) = (http.clone(), base.clone(), ids.clone(), words.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng(worker as u64 + 1);
            let mut stats: BTreeMap<&'static str, Stats> = BTreeMap::new();
            while Instant::now() < deadline {
                let (kind, url) = if rng.pick().is_multiple_of(5) && !words.is_empty() {
                    let word = &words[rng.pick() % words.len()];
                    let q = if rng.pick().is_multiple_of(2) { typo(word, &mut rng) } else { word.clone() };
                    ("search", format!("{base}/api/v1/movies/search?q={q}"))
                } else {
                    ("movie by id", format!("{base}/api/v1/movies/{}", ids[rng.pick() % ids.len()]))
                };
                let started = Instant::now();
                let ok = match http.get(&url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let entry = stats.entry(kind).or_default();
                entry.latencies.push(started.elapsed());
                if !ok {
                    entry.errors += 1;
                }
            }
            stats
        }));
    }
    let mut total: BTreeMap<&'static str, Stats> = BTreeMap::new();
    for worker in workers {
        Stats::absorb_all(&mut total, worker.await?);
    }
    Ok(total)
}

pub fn print(args: &LoadtestArgs, results: &BTreeMap<&'static str, Stats>) {
    let secs = args.duration as f64;
    println!(
        "scenario {} against {} for {} s, {} in flight",
        args.scenario, args.url, args.duration, args.concurrency
    );
    println!("{:<14} {:>9} {:>10} {:>9} {:>9} {:>7}", "request", "count", "req/s", "p50", "p99", "errors");
    let mut all = 0usize;
    for (kind, s) in results {
        all += s.latencies.len();
        println!(
            "{kind:<14} {:>9} {:>10.0} {:>9.2?} {:>9.2?} {:>7}",
            s.latencies.len(),
            s.latencies.len() as f64 / secs,
            s.percentile(0.5),
            s.percentile(0.99),
            s.errors
        );
    }
    println!("{:<14} {:>9} {:>10.0}", "all", all, all as f64 / secs);
    let refused: u64 = results.values().map(|s| s.errors).sum();
    if refused > 0 {
        println!(
            "{refused} requests failed; if the gateway answered 429, start the deployment with \
             MARQUEE_RATE_LIMIT_EXEMPT=127.0.0.1 (or MARQUEE_RATE_LIMIT=off) for load tests"
        );
    }
    if let Some((direct, gateway)) = crate::overhead::ratios(results) {
        println!("throughput as a share of the bare axum handler: catalog {direct:.2}, gateway {gateway:.2}");
    }
    if let Some(share) = crate::overhead::gateway_to_nginx(results) {
        println!("the gateway's throughput as a share of nginx's, in front of the same catalog: {share:.2}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_typos() {
        let s = Stats { latencies: (1..=100).map(Duration::from_millis).collect(), errors: 0 };
        assert_eq!(s.percentile(0.5), Duration::from_millis(51));
        assert_eq!(s.percentile(0.99), Duration::from_millis(99));
        let mut rng = Rng(1);
        let t = typo("godfather", &mut rng);
        assert_eq!(t.chars().count(), 8);
        assert_eq!(typo("heat", &mut rng), "heat");
    }
}
