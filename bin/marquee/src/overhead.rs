//! The `overhead` load scenario: what the gateway and the service framework cost. The same
//! `GET /api/v1/movies/{id}` (one movie, so every answer is the same bytes) is driven for the
//! same time, in turns of a second each, against
//! 1. a bare axum handler in this process returning those bytes (the floor: HTTP alone),
//! 2. the catalog service directly (its middleware, cache and JSON),
//! 3. the gateway (auth check, rate limit, forwarding) in front of the catalog,
//! 4. nginx in front of the same catalog, when it is installed (Debian's `nginx`): one worker,
//!    keepalive connections upstream, an access log, as a plain reverse proxy is run,
//!
//! and the throughput of each is put as a share of the bare handler's; the gateway's also as a
//! share of nginx's. Against `marquee up` the gateway reaches the catalog in-process (no
//! socket); with `MARQUEE_IN_PROCESS_CALLS=false`, or against `deploy/run-distributed.sh`, over
//! HTTP as nginx does.

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
pub const NGINX: &str = "4 nginx";

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
    let mut targets = vec![
        (BARE, format!("{bare_url}{path}")),
        (DIRECT, format!("{direct}{path}")),
        (GATEWAY, format!("{base}{path}")),
    ];
    // Kept until the end of the run: dropping it stops nginx.
    let nginx = Nginx::start(&direct).await?;
    match &nginx {
        Some(nginx) => targets.push((NGINX, format!("{}{path}", nginx.url))),
        None => eprintln!("nginx is not installed: the run has no nginx to compare the gateway with"),
    }
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
    let bare = rate(results, BARE).filter(|r| *r > 0.0)?;
    Some((rate(results, DIRECT)? / bare, rate(results, GATEWAY)? / bare))
}

/// The gateway's throughput as a share of nginx's, when nginx ran.
pub fn gateway_to_nginx(results: &BTreeMap<&'static str, Stats>) -> Option<f64> {
    Some(rate(results, GATEWAY)? / rate(results, NGINX).filter(|r| *r > 0.0)?)
}

fn rate(results: &BTreeMap<&'static str, Stats>, name: &str) -> Option<f64> {
    results.get(name).map(|s| s.latencies.len() as f64)
}

/// An nginx of our own, proxying to the catalog, in a directory of its own; stopped on drop.
struct Nginx {
    url: String,
    _process: tokio::process::Child,
    _dir: TempDir,
}

impl Nginx {
    /// `None` when nginx is not installed.
    async fn start(upstream: &str) -> anyhow::Result<Option<Nginx>> {
        let Some(binary) = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            return Ok(None);
        };
        let upstream = upstream.strip_prefix("http://").context("nginx proxies to an http:// catalog")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = TempDir::new()?;
        let d = dir.0.display();
        let config = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log {d}/access.log;\n\
             client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
             upstream catalog {{ server {upstream}; keepalive 64; }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
             proxy_pass http://catalog;\n      proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n\
             proxy_set_header X-Forwarded-For $remote_addr;\n    }}\n  }}\n}}\n"
        );
        let config_path = dir.0.join("nginx.conf");
        std::fs::write(&config_path, config)?;
        let process = tokio::process::Command::new(binary)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&config_path)
            .args(["-g", "daemon off;"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nginx did not start listening on {url}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(Nginx { url, _process: process, _dir: dir }))
    }
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("marquee-nginx-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
