//! Commands owed to other services, and the relay that carries them out.
//!
//! An effect on another service that must happen (a refund when a paid booking ends) is not
//! an HTTP call made on the spot and hoped for: the use case writes a [`Command`] into its own
//! `commands` table in the transaction that makes it owed, and a [`CommandRelay`] carries it
//! out afterwards, retrying with capped backoff until the other side acknowledges, for as long
//! as that takes. A command's `key` makes owing the same thing twice one row, and the other side
//! is called idempotently (the command's key travels as its `Idempotency-Key`), so a retry after
//! a timeout never does the thing twice. `/metrics` shows how many wait and how old the oldest is.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use futures_util::StreamExt;
use platform::{db::Db, time::now_ms};
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Something owed to another service.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// What to do, e.g. `payments.close-reference`; the handler dispatches on it.
    pub kind: String,
    /// Unique per thing owed (`close:booking:<id>`): owing it again adds nothing.
    pub key: String,
    pub payload: serde_json::Value,
}

impl Command {
    pub fn new<T: Serialize>(kind: &str, key: impl Into<String>, payload: &T) -> anyhow::Result<Self> {
        Ok(Self { kind: kind.to_owned(), key: key.into(), payload: serde_json::to_value(payload)? })
    }
}

/// Carries out a service's commands.
#[async_trait::async_trait]
pub trait CommandHandler: Send + Sync {
    /// Do it. `Ok` once the other side acknowledged it (also when it answers that it was done
    /// already); any error is retried later. `key` is the command's key, to send as the call's
    /// idempotency key.
    async fn execute(&self, kind: &str, key: &str, payload: &serde_json::Value) -> anyhow::Result<()>;
}

/// Writes commands inside a transaction and wakes the relay after the commit.
#[derive(Clone, Default)]
pub struct Commands {
    wake: Arc<Notify>,
}

impl Commands {
    /// Owe `command` inside the caller's transaction; owing one with the same key again is a
    /// no-op. True when it was new.
    pub async fn add(&self, tx: &mut AnyConnection, command: &Command) -> anyhow::Result<bool> {
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO commands (id, kind, key, payload, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (key) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&command.kind)
        .bind(&command.key)
        .bind(command.payload.to_string())
        .bind(now)
        .execute(tx)
        .await
        .context("writing a command")?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Tell the relay there is something to do; call after the transaction committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// How the command relay retries.
#[derive(Debug, Clone, Copy)]
pub struct CommandConfig {
    /// How often to look when nobody woke it (retries, rows written by other replicas).
    pub poll_interval: Duration,
    pub batch_size: i64,
    /// How long a claimed command stays claimed if this replica dies while carrying it out;
    /// well above any call's timeout.
    pub lease: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How many commands run at once (each is a call to another service).
    pub concurrency: usize,
}

impl Default for CommandConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            batch_size: 50,
            lease: Duration::from_secs(30),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            concurrency: 8,
        }
    }
}

impl CommandConfig {
    /// `MARQUEE_RELAY_POLL_MS`, `MARQUEE_COMMAND_RETRY_BASE_MS` and
    /// `MARQUEE_COMMAND_MAX_BACKOFF_MS` over the defaults.
    pub fn from_settings(settings: &platform::Settings) -> anyhow::Result<Self> {
        let d = Self::default();
        let ms = |key: &str, default: Duration| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(settings.parse_or(key, default.as_millis() as u64)?))
        };
        Ok(Self {
            poll_interval: ms("MARQUEE_RELAY_POLL_MS", d.poll_interval)?,
            base_delay: ms("MARQUEE_COMMAND_RETRY_BASE_MS", d.base_delay)?,
            max_delay: ms("MARQUEE_COMMAND_MAX_BACKOFF_MS", d.max_delay)?,
            ..d
        })
    }
}

/// Carries out a service's owed commands. Several replicas may run one each: a batch is claimed
/// with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), like the outbox relay's.
pub struct CommandRelay {
    service: &'static str,
    db: Db,
    handler: Arc<dyn CommandHandler>,
    commands: Commands,
    config: CommandConfig,
}

/// How many commands wait, and the age of the oldest (ms), for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub pending: i64,
    pub oldest_age_ms: i64,
    /// Attempts made so far on the waiting commands (failed ones).
    pub failed_attempts: i64,
}

impl CommandRelay {
    pub fn new(
        service: &'static str,
        db: Db,
        handler: Arc<dyn CommandHandler>,
        commands: Commands,
        config: CommandConfig,
    ) -> Self {
        Self { service, db, handler, commands, config }
    }

    /// Run until `shutdown`; the batch in hand is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_report = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            let done = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(
                        service = self.service,
                        error = format!("{e:#}"),
                        "command relay step failed"
                    );
                    0
                }
            };
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = std::time::Instant::now();
                match backlog(&self.db).await {
                    Ok(b) => {
                        metrics::gauge!("commands_pending", "service" => self.service).set(b.pending as f64);
                        metrics::gauge!("commands_oldest_pending_seconds", "service" => self.service)
                            .set(b.oldest_age_ms as f64 / 1000.0);
                    }
                    Err(e) => tracing::warn!(error = format!("{e:#}"), "reading the command backlog failed"),
                }
            }
            if done as i64 >= self.config.batch_size {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.commands.wake.notified() => {},
                () = tokio::time::sleep(self.config.poll_interval) => {},
            }
        }
    }

    /// One step: claim the due commands and carry them out; how many were acknowledged.
    /// Public so tests can drain the queue deterministically.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = now_ms();
        let claim = format!(
            "UPDATE commands SET lease_until = $1 WHERE id IN (\
               SELECT id FROM commands WHERE done_at IS NULL AND next_attempt_at <= $2 AND lease_until <= $2 \
               ORDER BY id LIMIT $3{}) \
             RETURNING id, kind, key, payload, attempts",
            self.db.skip_locked()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(claim))
            .bind(now + self.config.lease.as_millis() as i64)
            .bind(now)
            .bind(self.config.batch_size)
            .fetch_all(&self.db.pool)
            .await
            .context("claiming commands")?;
        let claimed: Vec<(String, String, String, String, i64)> = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("kind")?,
                    r.try_get("key")?,
                    r.try_get("payload")?,
                    r.try_get("attempts")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let outcomes: Vec<anyhow::Result<bool>> = futures_util::stream::iter(claimed)
            .map(|(id, kind, key, payload, attempts)| async move {
                let outcome = match serde_json::from_str::<serde_json::Value>(&payload) {
                    Ok(payload) => self.handler.execute(&kind, &key, &payload).await,
                    Err(e) => Err(anyhow::Error::from(e).context("stored command does not parse")),
                };
                self.settle(&id, &kind, attempts, outcome).await
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut done = 0;
        for outcome in outcomes {
            if outcome? {
                done += 1;
            }
        }
        Ok(done)
    }

    async fn settle(
        &self,
        id: &str,
        kind: &str,
        attempts: i64,
        outcome: anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        match outcome {
            Ok(()) => {
                sqlx::query("UPDATE commands SET done_at = $1, lease_until = 0 WHERE id = $2")
                    .bind(now_ms())
                    .bind(id)
                    .execute(&self.db.pool)
                    .await
                    .context("marking a command done")?;
                metrics::counter!("commands_executed_total", "service" => self.service, "kind" => kind.to_owned())
                    .increment(1);
                Ok(true)
            }
            Err(e) => {
                let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
                let retry_at = now_ms()
                    + crate::backoff(self.config.base_delay, attempt, self.config.max_delay).as_millis()
                        as i64;
                tracing::warn!(
                    service = self.service,
                    command_id = id,
                    kind,
                    attempt = attempt.saturating_add(1),
                    error = format!("{e:#}"),
                    "command failed; will retry"
                );
                metrics::counter!("commands_failed_total", "service" => self.service, "kind" => kind.to_owned())
                    .increment(1);
                sqlx::query(
                    "UPDATE commands SET attempts = attempts + 1, next_attempt_at = $1, lease_until = 0, last_error = $2 \
                     WHERE id = $3",
                )
                .bind(retry_at)
                .bind(format!("{e:#}"))
                .bind(id)
                .execute(&self.db.pool)
                .await
                .context("recording a command failure")?;
                Ok(false)
            }
        }
    }
}

/// The commands that wait in `db`.
pub async fn backlog(db: &Db) -> anyhow::Result<Backlog> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(MIN(created_at), 0) AS oldest, COALESCE(SUM(attempts), 0) AS attempts \
         FROM commands WHERE done_at IS NULL",
    )
    .fetch_one(&db.pool)
    .await?;
    let pending: i64 = row.try_get("n")?;
    let oldest: i64 = row.try_get("oldest")?;
    let failed_attempts: i64 = row.try_get("attempts")?;
    Ok(Backlog { pending, oldest_age_ms: if pending > 0 { now_ms() - oldest } else { 0 }, failed_attempts })
}
