//! Purging what has no more use: refresh tokens a day past their expiry (an expired token is
//! refused either way; the day keeps a late reuse visible in the logs of its family),
//! login-failure counters whose window and lockout are both over, and places an account has
//! not signed in from for 90 days. Hourly, on every replica (the
//! deletes are idempotent).

use std::time::Duration;

use platform::db::Db;
use platform::periodic;
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// One pass at time `now` (epoch ms); how many rows went. `window_ms` is the login-failure
/// window. Public so tests can run it.
pub async fn purge_expired(db: &Db, now: i64, window_ms: i64) -> anyhow::Result<usize> {
    let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(now - DAY_MS)
        .execute(&db.pool)
        .await?
        .rows_affected();
    let attempts = sqlx::query("DELETE FROM login_attempts WHERE blocked_until < $1 AND window_start < $2")
        .bind(now)
        .bind(now - window_ms)
        .execute(&db.pool)
        .await?
        .rows_affected();
    let places = sqlx::query("DELETE FROM sign_in_places WHERE last_signed_in < $1")
        .bind(now - 90 * DAY_MS)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok((tokens + attempts + places) as usize)
}

pub async fn run(db: Db, window_ms: i64, shutdown: CancellationToken) {
    periodic::every("purge identity", Duration::from_secs(3600), shutdown, || {
        purge_expired(&db, platform::time::now_ms(), window_ms)
    })
    .await;
}
