//! The streaming load scenarios.
//!
//! - `stream`: viewers fetch a large file through their playback sessions. Setup (as an admin)
//!   uploads a movie whose MP4 is a real 60 s demo clip padded with a `free` box to
//!   `--media-mib` (200 by default; players skip `free` boxes, so it stays a valid MP4), then each
//!   of the `--concurrency` viewers subscribes, starts a session and, until the end, fetches
//!   random `--range-mib` ranges (1 MiB by default; 0 for the whole file each time) and sends a
//!   heartbeat every 20 s. Prints ranges/s and MiB/s. With `--direct-url` (streaming's own URL)
//!   the same URLs are fetched from the service itself instead of the gateway.
//! - `playback`: viewers start and stop sessions as fast as they can: playback starts per second.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{Value, json};

use crate::loadtest::{LoadtestArgs, Rng, Stats};

const CARD: &str = "4242424242424242";
const HEARTBEAT: Duration = Duration::from_secs(20);

async fn json_of(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

/// A viewer with a premium subscription: its token.
async fn viewer(http: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<String> {
    let email = format!("viewer-{}-{n}@loadtest.invalid", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "viewer-password-1", "name": "Load viewer"});
    let session =
        json_of(http.post(format!("{base}/api/v1/auth/register")).json(&body).send().await?).await?;
    let token = session["access_token"].as_str().context("no token")?.to_owned();
    let card = json!({"type": "card", "number": CARD, "exp_month": 12, "exp_year": 2035, "cvc": "123"});
    let subscribe = json!({"plan_id": "premium", "payment_method": card});
    json_of(
        http.post(format!("{base}/api/v1/subscriptions")).bearer_auth(&token).json(&subscribe).send().await?,
    )
    .await
    .context("subscribing a viewer")?;
    Ok(token)
}

async fn admin(http: &reqwest::Client, base: &str, args: &LoadtestArgs) -> anyhow::Result<String> {
    let (Some(email), Some(password)) = (&args.admin_email, &args.admin_password) else {
        anyhow::bail!(
            "the streaming scenarios upload a movie's media: give --admin-email and --admin-password"
        );
    };
    crate::ledger::admin_token(http, base, email, password).await
}

/// A new movie with `mib` MiB of media; its id and the size in bytes.
async fn big_movie(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    mib: u64,
) -> anyhow::Result<(String, u64)> {
    let movie = json!({"title": "Loadtest stream", "genres": ["documentary"], "runtime_minutes": 60});
    let created =
        json_of(http.post(format!("{base}/api/v1/movies")).bearer_auth(admin).json(&movie).send().await?)
            .await?;
    let id = created["id"].as_str().context("movie id")?.to_owned();
    let mut file = streaming::clip::mp4("Loadtest stream", 60);
    let total = (mib << 20).max(file.len() as u64 + 8);
    let pad = total - file.len() as u64;
    // A `free` box: a 32-bit size when it fits, else size 1 and a 64-bit size.
    if pad <= u32::MAX as u64 {
        file.extend_from_slice(&(pad as u32).to_be_bytes());
        file.extend_from_slice(b"free");
        file.resize(total as usize, 0);
    } else {
        anyhow::bail!("--media-mib too large");
    }
    let size = file.len() as u64;
    json_of(
        http.put(format!("{base}/api/v1/media/{id}"))
            .bearer_auth(admin)
            .header("content-type", "video/mp4")
            .body(file)
            .send()
            .await?,
    )
    .await
    .context("uploading the media")?;
    Ok((id, size))
}

/// Start a session, waiting for the catalog to have heard of the media.
async fn start(http: &reqwest::Client, base: &str, token: &str, movie: &str) -> anyhow::Result<Value> {
    for _ in 0..50 {
        let r = http
            .post(format!("{base}/api/v1/playback/start"))
            .bearer_auth(token)
            .json(&json!({"movie_id": movie}))
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        return json_of(r).await;
    }
    anyhow::bail!("the movie never became streamable")
}

pub async fn stream(args: LoadtestArgs) -> anyhow::Result<BTreeMap<&'static str, Stats>> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let admin = admin(&http, &base, &args).await?;
    let (movie, size) = big_movie(&http, &base, &admin, args.media_mib).await?;
    let media_base = args.direct_url.as_deref().unwrap_or(&base).trim_end_matches('/').to_owned();
    let mut sessions = Vec::new();
    for n in 0..args.concurrency {
        let token = viewer(&http, &base, n).await?;
        let session = start(&http, &base, &token, &movie).await?;
        sessions.push((token, session));
    }
    let range = args.range_mib << 20;
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for (n, (token, session)) in sessions.into_iter().enumerate() {
        let (http, base, media_base, bytes) = (http.clone(), base.clone(), media_base.clone(), bytes.clone());
        workers.push(tokio::spawn(async move {
            let url = format!("{media_base}{}", session["stream_url"].as_str().unwrap_or_default());
            let id = session["session_id"].as_str().unwrap_or_default().to_owned();
            let kind = if range == 0 { "whole file" } else { "range" };
            let mut rng = Rng(n as u64 + 7);
            let mut stats: BTreeMap<&'static str, Stats> = BTreeMap::new();
            let mut beat_at = Instant::now() + HEARTBEAT;
            while Instant::now() < deadline {
                let mut request = http.get(&url);
                if range > 0 {
                    let start = (rng.pick() as u64 % size.saturating_sub(range).max(1)) & !0xFFF;
                    request = request.header("range", format!("bytes={start}-{}", start + range - 1));
                }
                let t = Instant::now();
                let ok = match request.send().await {
                    Ok(mut r) if r.status().is_success() => {
                        let mut ok = true;
                        loop {
                            match r.chunk().await {
                                Ok(Some(chunk)) => {
                                    bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                                }
                                Ok(None) => break,
                                Err(_) => {
                                    ok = false;
                                    break;
                                }
                            }
                        }
                        ok
                    }
                    _ => false,
                };
                let entry = stats.entry(kind).or_default();
                entry.latencies.push(t.elapsed());
                if !ok {
                    entry.errors += 1;
                }
                if Instant::now() >= beat_at {
                    beat_at += HEARTBEAT;
                    let t = Instant::now();
                    let beat = http
                        .post(format!("{base}/api/v1/playback/{id}/heartbeat"))
                        .bearer_auth(&token)
                        .json(&json!({"position_seconds": 1}))
                        .send()
                        .await;
                    let entry = stats.entry("heartbeat").or_default();
                    entry.latencies.push(t.elapsed());
                    if !beat.is_ok_and(|r| r.status().is_success()) {
                        entry.errors += 1;
                    }
                }
            }
            stats
        }));
    }
    let mut total: BTreeMap<&'static str, Stats> = BTreeMap::new();
    for worker in workers {
        Stats::absorb_all(&mut total, worker.await?);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "media of {} MiB; {:.1} MiB/s delivered from {}",
        size >> 20,
        bytes.load(Ordering::Relaxed) as f64 / secs / 1048576.0,
        if args.direct_url.is_some() { "streaming directly" } else { "the gateway" }
    );
    Ok(total)
}

pub async fn playback(args: LoadtestArgs) -> anyhow::Result<BTreeMap<&'static str, Stats>> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let admin = admin(&http, &base, &args).await?;
    let (movie, _) = big_movie(&http, &base, &admin, 1).await?;
    let mut viewers = Vec::new();
    for n in 0..args.concurrency {
        viewers.push(viewer(&http, &base, n).await?);
    }
    // Once the catalog has heard of the media, starts succeed; this one waits for that.
    let first = start(&http, &base, &viewers[0], &movie).await?;
    let id = first["session_id"].as_str().context("a session")?;
    let stop = json!({"position_seconds": 0});
    http.post(format!("{base}/api/v1/playback/{id}/stop"))
        .bearer_auth(&viewers[0])
        .json(&stop)
        .send()
        .await?;
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for token in viewers {
        let (http, base, movie) = (http.clone(), base.clone(), movie.clone());
        workers.push(tokio::spawn(async move {
            let mut stats: BTreeMap<&'static str, Stats> = BTreeMap::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let started = http
                    .post(format!("{base}/api/v1/playback/start"))
                    .bearer_auth(&token)
                    .json(&json!({"movie_id": movie}))
                    .send()
                    .await;
                let session = match started {
                    Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                    _ => None,
                };
                let entry = stats.entry("start").or_default();
                entry.latencies.push(t.elapsed());
                let Some(id) = session.as_ref().and_then(|s| s["session_id"].as_str()) else {
                    entry.errors += 1;
                    continue;
                };
                let t = Instant::now();
                let stopped = http
                    .post(format!("{base}/api/v1/playback/{id}/stop"))
                    .bearer_auth(&token)
                    .json(&json!({"position_seconds": 1}))
                    .send()
                    .await;
                let entry = stats.entry("stop").or_default();
                entry.latencies.push(t.elapsed());
                if !stopped.is_ok_and(|r| r.status().is_success()) {
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
