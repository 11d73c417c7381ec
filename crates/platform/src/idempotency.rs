//! `Idempotency-Key`: the same key with the same body gets the first answer again without the
//! work being done twice; the same key with another body is a 422. Keys are scoped by caller
//! and route, so two users (or two services) cannot collide. The table lives in every service's
//! database (the events crate's migration 0002).

use std::future::Future;

use crate::{Problem, db::Db, time::now_ms};
use aws_lc_rs::digest;
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

fn hash(body: &impl Serialize) -> String {
    // serde_json maps keep their keys sorted, so equal bodies serialize alike.
    let bytes = serde_json::to_value(body).and_then(|v| serde_json::to_vec(&v)).unwrap_or_default();
    digest::digest(&digest::SHA256, &bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
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

/// Run `work` once per key. Its answer (success or a 4xx problem) is stored and replayed; a 5xx
/// is not stored, so the client may try again.
pub async fn once<F>(db: &Db, scope: &str, key: Option<String>, body: &impl Serialize, work: F) -> Response
where
    F: Future<Output = Result<(StatusCode, serde_json::Value), Problem>>,
{
    let Some(key) = key else {
        return match work.await {
            Ok((status, body)) => respond(status, &body, false),
            Err(problem) => problem.into_response(),
        };
    };
    let request_hash = hash(body);
    match claim(db, scope, &key, &request_hash).await {
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
    let (status, body) = match work.await {
        Ok(answer) => answer,
        Err(problem) => (problem.status_code(), serde_json::to_value(&problem).unwrap_or_default()),
    };
    let stored = if status.is_server_error() {
        release(db, scope, &key).await
    } else {
        finish(db, scope, &key, status, &body).await
    };
    if let Err(e) = stored {
        tracing::error!(error = format!("{e:#}"), "recording an idempotent answer failed");
    }
    respond(status, &body, false)
}

enum Claim {
    Fresh,
    Replay(StatusCode, serde_json::Value),
    OtherBody,
    InProgress,
}

async fn claim(db: &Db, scope: &str, key: &str, request_hash: &str) -> anyhow::Result<Claim> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(now_ms())
    .execute(&db.pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row = sqlx::query(
        "SELECT request_hash, status, body, created_at FROM idempotency_keys WHERE scope = $1 AND key = $2",
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
            if created < now_ms() - STALE_AFTER_MS {
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET created_at = $1 \
                     WHERE scope = $2 AND key = $3 AND status IS NULL AND created_at = $4",
                )
                .bind(now_ms())
                .bind(scope)
                .bind(key)
                .bind(created)
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
    status: StatusCode,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE scope = $3 AND key = $4")
        .bind(i64::from(status.as_u16()))
        .bind(body.to_string())
        .bind(scope)
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}

async fn release(db: &Db, scope: &str, key: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}
