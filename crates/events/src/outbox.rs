//! The transactional outbox and its relay.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use contracts::CloudEvent;
use platform::{db::Db, time::now_ms};
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::EventBus;

/// Writes events into the service's outbox and wakes the relay after the commit.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `event` to the outbox inside the caller's transaction, so the event exists exactly when
    /// the state change it describes does. The current trace context travels with it.
    pub async fn add(&self, tx: &mut AnyConnection, event: CloudEvent) -> anyhow::Result<()> {
        let event = match event.traceparent {
            Some(_) => event,
            None => event.with_traceparent(platform::telemetry::current_traceparent()),
        };
        let now = now_ms();
        sqlx::query(
            "INSERT INTO outbox (id, event_type, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(event.id.to_string())
        .bind(&event.event_type)
        .bind(serde_json::to_string(&event)?)
        .bind(now)
        .execute(tx)
        .await
        .context("writing the event to the outbox")?;
        Ok(())
    }

    /// Tell the relay there is something to publish; call after the transaction committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// How the relay behaves.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// How often to look when nobody woke it (rows written by other replicas, retries).
    pub poll_interval: Duration,
    pub batch_size: i64,
    /// How long a claimed batch stays claimed if this relay dies while publishing it.
    pub lease: Duration,
    pub max_backoff: Duration,
}

impl RelayConfig {
    /// `MARQUEE_RELAY_POLL_MS` and `MARQUEE_RELAY_MAX_BACKOFF_MS` over the defaults.
    pub fn from_settings(settings: &platform::Settings) -> anyhow::Result<Self> {
        let d = Self::default();
        Ok(Self {
            poll_interval: Duration::from_millis(
                settings.parse_or("MARQUEE_RELAY_POLL_MS", d.poll_interval.as_millis() as u64)?,
            ),
            max_backoff: Duration::from_millis(
                settings.parse_or("MARQUEE_RELAY_MAX_BACKOFF_MS", d.max_backoff.as_millis() as u64)?,
            ),
            ..d
        })
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            batch_size: 100,
            lease: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Publishes a service's outbox. Several replicas may run one each: a batch is claimed with a
/// lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never wait on each other), and a
/// relay that dies mid-batch only delays those rows until the lease runs out. Delivery is at
/// least once; consumers' inboxes make it exactly once in effect.
pub struct Relay {
    service: String,
    db: Db,
    bus: Arc<dyn EventBus>,
    outbox: Outbox,
    config: RelayConfig,
}

impl Relay {
    pub fn new(service: &str, db: Db, bus: Arc<dyn EventBus>, outbox: Outbox) -> Self {
        Self { service: service.to_owned(), db, bus, outbox, config: RelayConfig::default() }
    }

    pub fn with_config(mut self, config: RelayConfig) -> Self {
        self.config = config;
        self
    }

    /// Run until `shutdown`; the batch in hand is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_cleanup = std::time::Instant::now();
        loop {
            let published = match self.relay_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(service = %self.service, error = format!("{e:#}"), "outbox relay step failed");
                    0
                }
            };
            if last_cleanup.elapsed() > Duration::from_secs(3600) {
                last_cleanup = std::time::Instant::now();
                if let Err(e) = self.cleanup().await {
                    tracing::warn!(error = format!("{e:#}"), "outbox cleanup failed");
                }
            }
            if published as i64 >= self.config.batch_size {
                continue; // more may be waiting
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.outbox.wake.notified() => {},
                () = tokio::time::sleep(self.config.poll_interval) => {},
            }
        }
    }

    /// One step: claim due events, publish them in order, mark them. Returns how many were sent.
    /// Public so tests can drain the outbox deterministically.
    pub async fn relay_once(&self) -> anyhow::Result<usize> {
        let now = now_ms();
        let lease_until = now + self.config.lease.as_millis() as i64;
        // Events go out in the order they were written: nothing behind an event whose publish
        // failed (and waits for its retry) is claimed before it.
        let claim = format!(
            "UPDATE outbox SET lease_until = $1 WHERE id IN (\
               SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $2 AND lease_until <= $2 \
               AND NOT EXISTS (SELECT 1 FROM outbox AS waiting WHERE waiting.sent_at IS NULL \
                               AND waiting.next_attempt_at > $2 AND waiting.id < outbox.id) \
               ORDER BY id LIMIT $3{}) \
             RETURNING id, payload, attempts",
            self.db.skip_locked()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(claim))
            .bind(lease_until)
            .bind(now)
            .bind(self.config.batch_size)
            .fetch_all(&self.db.pool)
            .await
            .context("claiming outbox rows")?;
        let mut batch: Vec<(String, String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("payload")?, r.try_get("attempts")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        batch.sort_by(|a, b| a.0.cmp(&b.0));

        let mut sent = 0;
        for (i, (id, payload, attempts)) in batch.iter().enumerate() {
            let published = match serde_json::from_str::<CloudEvent>(payload) {
                Ok(event) => self.bus.publish(&event).await,
                Err(e) => {
                    // It can never be published: set it aside (kept, with the error) rather than
                    // hold up every event behind it.
                    tracing::error!(service = %self.service, event_id = %id, error = %e, "an outbox row that does not parse; set aside");
                    sqlx::query(
                        "UPDATE outbox SET sent_at = $1, lease_until = 0, last_error = $2 WHERE id = $3",
                    )
                    .bind(now_ms())
                    .bind(format!("does not parse: {e}"))
                    .bind(id)
                    .execute(&self.db.pool)
                    .await
                    .context("setting an unparseable event aside")?;
                    continue;
                }
            };
            match published {
                Ok(()) => {
                    sqlx::query("UPDATE outbox SET sent_at = $1, lease_until = 0 WHERE id = $2")
                        .bind(now_ms())
                        .bind(id)
                        .execute(&self.db.pool)
                        .await
                        .context("marking an event sent")?;
                    metrics::counter!("outbox_published_total", "service" => self.service.clone())
                        .increment(1);
                    sent += 1;
                }
                Err(e) => {
                    let attempt = u32::try_from(*attempts).unwrap_or(0);
                    let retry_at = now_ms()
                        + crate::backoff(Duration::from_millis(500), attempt, self.config.max_backoff)
                            .as_millis() as i64;
                    tracing::warn!(service = %self.service, event_id = %id, attempt = attempt + 1, error = format!("{e:#}"), "publishing failed; will retry");
                    metrics::counter!("outbox_publish_failures_total", "service" => self.service.clone())
                        .increment(1);
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, lease_until = 0, last_error = $2 \
                         WHERE id = $3",
                    )
                    .bind(retry_at)
                    .bind(format!("{e:#}"))
                    .bind(id)
                    .execute(&self.db.pool)
                    .await
                    .context("recording a publish failure")?;
                    // The bus is likely down: hand the rest back now rather than at lease end; they
                    // wait behind this one (see the claim), so the order holds.
                    for (rest, _, _) in &batch[i + 1..] {
                        sqlx::query("UPDATE outbox SET lease_until = 0 WHERE id = $1")
                            .bind(rest)
                            .execute(&self.db.pool)
                            .await
                            .context("releasing claimed rows")?;
                    }
                    break;
                }
            }
        }
        Ok(sent)
    }

    /// How many events wait to be published (for tests and metrics).
    pub async fn pending(&self) -> anyhow::Result<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.db.pool)
            .await?;
        Ok(n)
    }

    /// Sent events are kept a week and inbox entries a month (longer than any redelivery);
    /// `Idempotency-Key` records a day (a client retries within minutes, and a key replays its
    /// first answer for 24 hours, as payment APIs commonly promise). Hourly; public for tests.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        let day = 24 * 3600 * 1000;
        sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
            .bind(now_ms() - 7 * day)
            .execute(&self.db.pool)
            .await?;
        sqlx::query("DELETE FROM inbox WHERE handled_at < $1")
            .bind(now_ms() - 30 * day)
            .execute(&self.db.pool)
            .await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now_ms() - day)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}
