//! The sign-in throttle: counters of attempts per key in `login_attempts`, reserved before a
//! password is checked, so that many guesses sent at once cannot each get a check.
//!
//! The policy (README, "Sign-in limits"):
//! - **An account** (`account:<email>`) is locked for `MARQUEE_LOGIN_LOCKOUT_SECONDS` after
//!   `MARQUEE_LOGIN_MAX_FAILURES` failures within the window, for sign-ins from places it has
//!   not signed in from before.
//! - **A known place** (`place:<email>|<address>`, an address the account signed in from
//!   successfully within 90 days) has its own counter with the same limits, and is exempt from
//!   the two others: guessing from elsewhere does not lock the owner out where they usually are.
//! - **An address** (`address:<ip>`) may fail `MARQUEE_LOGIN_MAX_FAILURES_PER_ADDRESS` times
//!   within the window; beyond that it is slowed, not locked: one attempt per
//!   `MARQUEE_LOGIN_SLOW_SECONDS` for accounts not known there, and successes give their
//!   attempt back. People behind the same address (NAT, an office) who have signed in from it
//!   before are never slowed.
//! - **Registrations** (`register:<ip>`): `MARQUEE_REGISTRATIONS_PER_ADDRESS` per window.

use platform::db::Db;

/// How one kind of key is limited.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    /// Attempts counted within the window before the key is locked or slowed.
    pub limit: i64,
    pub window_ms: i64,
    pub beyond: Beyond,
}

/// What happens past the limit.
#[derive(Debug, Clone, Copy)]
pub enum Beyond {
    /// Locked for this long once the limit-th attempt has failed.
    Lock { ms: i64 },
    /// One attempt per this many ms.
    Slow { ms: i64 },
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Admitted,
    /// Try again in this many seconds.
    Refused {
        retry_after_secs: u64,
    },
}

/// Reserve an attempt for `key` at `now`: it counts as failed until [`succeeded`] says
/// otherwise. One conditional upsert, so of many sent at once no more than the limit are
/// admitted.
pub async fn reserve(db: &Db, key: &str, throttle: Throttle, now: i64) -> anyhow::Result<Reservation> {
    let slow_ms = match throttle.beyond {
        Beyond::Slow { ms } => ms,
        Beyond::Lock { .. } => 0,
    };
    // In a fresh window the count starts again. Locking keys admit below the limit only;
    // slowed keys admit whenever the spacing has passed, and past the limit set the next wait.
    let admitted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO login_attempts (key, failures, window_start, blocked_until) VALUES ($1, 1, $2, 0) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_attempts.window_start < $3 THEN 1 ELSE login_attempts.failures + 1 END, \
           window_start = CASE WHEN login_attempts.window_start < $3 THEN $2 ELSE login_attempts.window_start END, \
           blocked_until = CASE WHEN $5 > 0 AND login_attempts.window_start >= $3 \
                                 AND login_attempts.failures + 1 > $4 \
                            THEN $2 + $5 ELSE login_attempts.blocked_until END \
         WHERE login_attempts.blocked_until <= $2 \
           AND ($5 > 0 OR login_attempts.window_start < $3 OR login_attempts.failures < $4) \
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(now - throttle.window_ms)
    .bind(throttle.limit)
    .bind(slow_ms)
    .fetch_optional(&db.pool)
    .await?;
    if admitted.is_some() {
        return Ok(Reservation::Admitted);
    }
    let until: i64 = sqlx::query_scalar("SELECT blocked_until FROM login_attempts WHERE key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await?
        .unwrap_or(0);
    // Not locked yet, only full of attempts still being checked: soon one way or the other.
    let retry_after_secs = if until > now { ((until - now) as u64).div_ceil(1000) } else { 1 };
    Ok(Reservation::Refused { retry_after_secs })
}

/// The reserved attempt failed: a locking key that has reached its limit is locked now.
pub async fn failed(db: &Db, key: &str, throttle: Throttle, now: i64) -> anyhow::Result<()> {
    let Beyond::Lock { ms } = throttle.beyond else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE login_attempts SET blocked_until = $1, failures = 0, window_start = $2 \
         WHERE key = $3 AND failures >= $4 AND blocked_until <= $2",
    )
    .bind(now + ms)
    .bind(now)
    .bind(key)
    .bind(throttle.limit)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The reserved attempt succeeded (or was never made): it gives its count back.
pub async fn succeeded(db: &Db, key: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE login_attempts SET failures = failures - 1 WHERE key = $1 AND failures > 0")
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forget `key`'s count: the account's owner proved who they are.
pub async fn clear(db: &Db, key: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM login_attempts WHERE key = $1").bind(key).execute(&db.pool).await?;
    Ok(())
}

/// Has `account` signed in from `address` before?
pub async fn is_known_place(db: &Db, account: &str, address: &str) -> anyhow::Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT last_signed_in FROM sign_in_places WHERE account = $1 AND address = $2")
            .bind(account)
            .bind(address)
            .fetch_optional(&db.pool)
            .await?;
    Ok(found.is_some())
}

pub async fn remember_place(db: &Db, account: &str, address: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO sign_in_places (account, address, last_signed_in) VALUES ($1, $2, $3) \
         ON CONFLICT (account, address) DO UPDATE SET last_signed_in = $3",
    )
    .bind(account)
    .bind(address)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}
