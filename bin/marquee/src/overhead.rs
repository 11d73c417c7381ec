//! The `overhead` load scenario: what the gateway and the service framework cost. The same
//! `GET /api/v1/movies/{id}` (one movie, so every answer is the same bytes) is driven for the
//! same time, in turns of a second each, against
//! 1. a bare axum handler in this process returning those bytes (the floor: HTTP alone),
//! 2. the catalog service directly (its middleware, cache and JSON),
//! 3. the gateway (auth check, rate limit, forwarding) in front of the catalog,
//!
//! and the throughput of each is put as a share of the bare handler's.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{Router, http::header, routing::get};
use serde_json::Value;

use crate::loadtest::{LoadtestArgs, Stats};

pub const BARE: &str = "1 bare axum";
pub const DIRECT: &str = "2 catalog";
pub const GATEWAY: &str = "3 gateway";

pub async fn run(args: LoadtestArgs) -> anyhow::Result<BTreeMap<&'static str, Stats>> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let movies = crate::loadtest::movies(&http, &base, 1).await?;
    let id = movies[0]["id"].as_str().context("a movie without an id")?.to_owned();
    let direct = match &args.direct_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => catalog_url(&http, &base, &args).await?,
    };
    let path = format!("/api/v1/movies/{id}");
    let movie = http.get(format!("{direct}{path}")).send().await?.error_for_status()?.bytes().await?;

    let bare = Router::new().route(
        "/api/v1/movies/{id}",
        get(move || {
            let movie = movie.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], movie) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bare_url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, bare).await });

    // The targets take turns, a second each, for `duration` rounds: a machine whose speed drifts
    // during the run (a shared VM's does) then slows all three alike instead of the last one.
    let targets = [
        (BARE, format!("{bare_url}{path}")),
        (DIRECT, format!("{direct}{path}")),
        (GATEWAY, format!("{base}{path}")),
    ];
    let mut results: BTreeMap<&'static str, Stats> = BTreeMap::new();
    for _ in 0..args.duration {
        for (name, url) in &targets {
            let slice = drive(&http, url, args.concurrency, Duration::from_secs(1)).await;
            results.entry(name).or_default().absorb(slice);
        }
    }
    Ok(results)
}

/// The catalog's own URL, from the gateway's `/health`, which names every replica it checks to
/// an admin (`--admin-email` / `--admin-password`).
async fn catalog_url(http: &reqwest::Client, gateway: &str, args: &LoadtestArgs) -> anyhow::Result<String> {
    let (Some(email), Some(password)) = (&args.admin_email, &args.admin_password) else {
        anyhow::bail!(
            "pass --direct-url, or an admin's --admin-email and --admin-password to find the catalog"
        );
    };
    let token = crate::ledger::admin_token(http, gateway, email, password).await?;
    let health: Value = http.get(format!("{gateway}/health")).bearer_auth(token).send().await?.json().await?;
    health["services"]["catalog"]
        .as_object()
        .and_then(|replicas| replicas.keys().next().cloned())
        .context("the gateway names no catalog replica; pass --direct-url")
}

/// `concurrency` loops sending GET `url` for `duration`.
async fn drive(http: &reqwest::Client, url: &str, concurrency: usize, duration: Duration) -> Stats {
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url) = (http.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut stats = Stats::default();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let ok = match http.get(&url).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    stats.latencies.push(started.elapsed());
                    stats.errors += u64::from(!ok);
                }
                stats
            })
        })
        .collect();
    let mut total = Stats::default();
    for worker in workers {
        if let Ok(stats) = worker.await {
            total.absorb(stats);
        }
    }
    total
}

/// The shares of the bare handler's throughput, for the report.
pub fn ratios(results: &BTreeMap<&'static str, Stats>) -> Option<(f64, f64)> {
    let rate = |name| results.get(name).map(|s: &Stats| s.latencies.len() as f64);
    let bare = rate(BARE).filter(|r| *r > 0.0)?;
    Some((rate(DIRECT)? / bare, rate(GATEWAY)? / bare))
}
