//! `marquee backup create|list|restore`: the backup service's API from a terminal, with a
//! progress bar while a backup or a restore runs.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use anyhow::Context;
use serde_json::{Value, json};

/// An admin's session with a deployment's gateway.
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    pub async fn sign_in(base: &str, email: &str, password: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let token = crate::ledger::admin_token(&http, base, email, password).await?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.token);
        if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.with_context(|| format!("{method} {url}"))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn expect(&self, method: reqwest::Method, path: &str, want: u16) -> anyhow::Result<Value> {
        let (status, body) = self.call(method.clone(), path).await?;
        if status != want {
            let detail = body["detail"].as_str().or(body["title"].as_str()).unwrap_or("no detail");
            anyhow::bail!("{method} {path}: {status}: {detail}");
        }
        Ok(body)
    }
}

/// Start a backup and, unless `detach`, follow it to its end. The backup as it ended.
pub async fn create(admin: &Admin, detach: bool) -> anyhow::Result<Value> {
    let started = admin.expect(reqwest::Method::POST, "/api/v1/backups", 202).await?;
    let id = started["id"].as_str().context("a backup without an id")?.to_owned();
    eprintln!("backup {id} started");
    if detach {
        return Ok(started);
    }
    follow(
        admin,
        &id,
        |b| (b["status"] != "running").then(|| b.clone()),
        |b| {
            let total = b["services_total"].as_u64().unwrap_or(0);
            let done = b["services_done"].as_u64().unwrap_or(0);
            (
                done,
                total,
                format!(
                    "{} rows, {}",
                    b["rows"].as_u64().unwrap_or(0),
                    size(b["bytes"].as_u64().unwrap_or(0))
                ),
            )
        },
    )
    .await
}

/// Start restoring backup `id` into the deployment and, unless `detach`, follow it to its end.
/// The backup with its restore, as it ended.
pub async fn restore(admin: &Admin, id: &str, detach: bool) -> anyhow::Result<Value> {
    let started = admin.expect(reqwest::Method::POST, &format!("/api/v1/backups/{id}/restore"), 202).await?;
    eprintln!("restore of {id} started");
    if detach {
        return Ok(started);
    }
    follow(
        admin,
        id,
        |b| (b["restore"]["status"].as_str().is_some_and(|s| s != "running")).then(|| b.clone()),
        |b| {
            let r = &b["restore"];
            let total = r["services_total"].as_u64().unwrap_or(0);
            let done = r["services_done"].as_u64().unwrap_or(0);
            let phase = r["phase"].as_str().unwrap_or("?");
            let detail = match phase {
                "verifying" => {
                    format!("verifying checksums, {} read", size(r["bytes_checked"].as_u64().unwrap_or(0)))
                }
                _ => format!("{phase}, {} rows", r["rows"].as_u64().unwrap_or(0)),
            };
            (done, total, detail)
        },
    )
    .await
}

/// Poll `GET /backups/{id}` until `done` gives the answer, drawing `progress` (done, total,
/// words) as a bar on a terminal and as a line per change elsewhere.
async fn follow(
    admin: &Admin,
    id: &str,
    done: impl Fn(&Value) -> Option<Value>,
    progress: impl Fn(&Value) -> (u64, u64, String),
) -> anyhow::Result<Value> {
    let path = format!("/api/v1/backups/{id}");
    let terminal = std::io::stderr().is_terminal();
    let mut last = String::new();
    loop {
        let backup = admin.expect(reqwest::Method::GET, &path, 200).await?;
        let (n, total, words) = progress(&backup);
        let line = format!("{} {n}/{total} services, {words}", bar(n, total, 24));
        if line != last {
            if terminal {
                eprint!("\r\x1b[2K{line}");
                let _ = std::io::stderr().flush();
            } else {
                eprintln!("{line}");
            }
            last = line;
        }
        if let Some(ended) = done(&backup) {
            if terminal {
                eprintln!();
            }
            return Ok(ended);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn bar(done: u64, total: u64, width: u64) -> String {
    let filled = (done.min(total) * width).checked_div(total).unwrap_or(0);
    format!("[{}{}]", "#".repeat(filled as usize), ".".repeat((width - filled) as usize))
}

/// Bytes for people: 1.2 MB.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The backups, newest first, as lines of a table.
pub async fn list(admin: &Admin) -> anyhow::Result<Vec<String>> {
    let mut lines = vec![format!(
        "{:<36}  {:<8}  {:<9}  {:<24}  {:>9}  {:>8}",
        "ID", "STATUS", "TRIGGER", "STARTED", "ROWS", "SIZE"
    )];
    let mut page = 1;
    loop {
        let body = admin
            .expect(reqwest::Method::GET, &format!("/api/v1/backups?page={page}&per_page=100"), 200)
            .await?;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        for b in &items {
            lines.push(format!(
                "{:<36}  {:<8}  {:<9}  {:<24}  {:>9}  {:>8}",
                b["id"].as_str().unwrap_or("?"),
                b["status"].as_str().unwrap_or("?"),
                b["trigger"].as_str().unwrap_or("?"),
                b["started_at"].as_str().unwrap_or("?"),
                b["rows"].as_u64().unwrap_or(0),
                size(b["bytes"].as_u64().unwrap_or(0)),
            ));
        }
        let total = body["total"].as_u64().unwrap_or(0);
        if items.is_empty() || page * 100 >= total {
            return Ok(lines);
        }
        page += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 kB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MB");
        assert_eq!(bar(0, 0, 4), "[....]");
        assert_eq!(bar(2, 4, 4), "[##..]");
        assert_eq!(bar(9, 4, 4), "[####]");
    }
}
