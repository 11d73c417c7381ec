//! `Idempotency-Key`: the same key with the same body gets the first answer again without the
//! work being done twice; the same key with another body is a 422. Keys are scoped by caller
//! and route, so two users (or two services) cannot collide. The table lives in every service's
//! database (the events crate's migrations 0002 and 0004).
//!
//! - Bodies are compared by a keyed hash (HMAC-SHA-256 with the service's credential): a request
//!   body can hold a card number, and a plain hash of one is easy to reverse by trying numbers.
//! - A request that is dropped before it answers (its client went away) gives its key back.
//! - A key whose request died (a crash) is taken over after a minute; each claim has an owner,
//!   and only the owner records the answer, so the stalled first request cannot overwrite it.

use std::{future::Future, sync::Arc};

use crate::{Problem, db::Db, time::now_ms};
use aws_lc_rs::hmac;
use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use sqlx::Row;

pub const HEADER: &str = "idempotency-key";

/// The key of a request, if it sent one; a malformed key is a 400.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(HEADER) else { return Ok(None) };
    let key =
        value.to_str().map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII"))?.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::bad_request("Idempotency-Key must be 1 to 255 visible characters"));
    }
    Ok(Some(key.to_owned()))
}

/// Idempotency for one service: its database and the key its body hashes are made with.
#[derive(Clone)]
pub struct Idempotency {
    db: Db,
    key: Arc<hmac::Key>,
}

impl Idempotency {
    /// `secret` is the service's credential (`Platform::credential`): its replicas share it.
    pub fn new(db: Db, secret: &str) -> Self {
        let material = format!("marquee idempotency v1\0{secret}");
        Self { db, key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, material.as_bytes())) }
    }

    fn hash(&self, scope: &str, body: &impl Serialize) -> String {
        // serde_json maps keep their keys sorted, so equal bodies serialize alike.
        let bytes = serde_json::to_value(body).and_then(|v| serde_json::to_vec(&v)).unwrap_or_default();
        let mut context = hmac::Context::with_key(&self.key);
        context.update(scope.as_bytes());
        context.update(b"\0");
        context.update(&bytes);
        context.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Run `work` once per key. Its answer (success or a 4xx problem) is stored and replayed; a
    /// 5xx is not stored, so the client may try again.
    pub async fn once<F>(&self, scope: &str, key: Option<String>, body: &impl Serialize, work: F) -> Response
    where
        F: Future<Output = Result<(StatusCode, serde_json::Value), Problem>>,
    {
        let Some(key) = key else {
            return match work.await {
                Ok((status, body)) => respond(status, &body, false),
                Err(problem) => problem.into_response(),
            };
        };
        let request_hash = self.hash(scope, body);
        let owner = uuid::Uuid::new_v4().to_string();
        match claim(&self.db, scope, &key, &request_hash, &owner).await {
            Ok(Claim::Fresh) => {}
            Ok(Claim::Replay(status, body)) => return respond(status, &body, true),
            Ok(Claim::OtherBody) => {
                return Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                )
                .detail("this Idempotency-Key was used with a different body")
                .into_response();
            }
            Ok(Claim::InProgress) => {
                return Problem::conflict("idempotency-in-progress", "Request in progress")
                    .detail("a request with this Idempotency-Key is still being processed")
                    .retry_after(1)
                    .into_response();
            }
            Err(e) => return Problem::from(e).into_response(),
        }
        // If this future is dropped before the answer is recorded, the guard gives the key back.
        let mut pending = Pending { db: self.db.clone(), scope: scope.to_owned(), key, owner, open: true };
        let (status, body) = match work.await {
            Ok(answer) => answer,
            Err(problem) => (problem.status_code(), serde_json::to_value(&problem).unwrap_or_default()),
        };
        let stored = if status.is_server_error() {
            release(&self.db, &pending.scope, &pending.key, &pending.owner).await
        } else {
            finish(&self.db, &pending.scope, &pending.key, &pending.owner, status, &body).await
        };
        pending.open = false;
        if let Err(e) = stored {
            tracing::error!(error = format!("{e:#}"), "recording an idempotent answer failed");
        }
        respond(status, &body, false)
    }
}

/// A claimed key whose answer is not recorded yet.
struct Pending {
    db: Db,
    scope: String,
    key: String,
    owner: String,
    open: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (db, scope, key, owner) = (
            self.db.clone(),
            std::mem::take(&mut self.scope),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.owner),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = release(&db, &scope, &key, &owner).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "giving back an abandoned idempotency key failed"
                    );
                }
            });
        }
    }
}

fn respond(status: StatusCode, body: &serde_json::Value, replayed: bool) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if status.is_client_error() || status.is_server_error() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::problem::CONTENT_TYPE));
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

enum Claim {
    Fresh,
    Replay(StatusCode, serde_json::Value),
    OtherBody,
    InProgress,
}

async fn claim(db: &Db, scope: &str, key: &str, request_hash: &str, owner: &str) -> anyhow::Result<Claim> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, owner) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now_ms())
    .bind(owner)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row = sqlx::query(
        "SELECT request_hash, status, body, created_at, owner FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&db.pool)
    .await?;
    let stored_hash: String = row.try_get("request_hash")?;
    if stored_hash != request_hash {
        return Ok(Claim::OtherBody);
    }
    let status: Option<i64> = row.try_get("status")?;
    let body: Option<String> = row.try_get("body")?;
    match (status, body) {
        (Some(status), Some(body)) => {
            Ok(Claim::Replay(StatusCode::from_u16(u16::try_from(status)?)?, serde_json::from_str(&body)?))
        }
        _ => {
            // A first attempt that died mid-way (a crash) must not block the key for ever: after
            // a minute without an answer, the next attempt takes the key over.
            let created: i64 = row.try_get("created_at")?;
            let previous: String = row.try_get("owner")?;
            if created < now_ms() - STALE_AFTER_MS {
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET created_at = $1, owner = $2 \
                     WHERE scope = $3 AND key = $4 AND status IS NULL AND owner = $5",
                )
                .bind(now_ms())
                .bind(owner)
                .bind(scope)
                .bind(key)
                .bind(previous)
                .execute(&db.pool)
                .await?
                .rows_affected();
                if taken == 1 {
                    return Ok(Claim::Fresh);
                }
            }
            Ok(Claim::InProgress)
        }
    }
}

const STALE_AFTER_MS: i64 = 60_000;

async fn finish(
    db: &Db,
    scope: &str,
    key: &str,
    owner: &str,
    status: StatusCode,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $1, body = $2 WHERE scope = $3 AND key = $4 AND owner = $5",
    )
    .bind(i64::from(status.as_u16()))
    .bind(body.to_string())
    .bind(scope)
    .bind(key)
    .bind(owner)
    .execute(&db.pool)
    .await?;
    Ok(())
}

async fn release(db: &Db, scope: &str, key: &str, owner: &str) -> anyhow::Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL",
    )
    .bind(scope)
    .bind(key)
    .bind(owner)
    .execute(&db.pool)
    .await?;
    Ok(())
}
