//! The in-process bus of the embedded mode.
//!
//! Each consumer has a queue of its own, as on RabbitMQ: the `event_retries` table in its own
//! database, worked by a task of its own. Publishing writes the event into every subscribed
//! consumer's queue and returns; only then does the relay mark the outbox row sent, so a crash at
//! any point loses nothing (the event is in the producer's outbox or in the consumer's queue),
//! and a slow consumer never holds up the producer or the other consumers. A consumer's worker
//! delivers its queue in order; a failing event is retried with backoff and ends dead-lettered
//! after the [`RetryPolicy`]'s attempts, without holding up the events behind it.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context;
use contracts::CloudEvent;
use platform::time::now_ms;
use sqlx::Row;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{Consumer, EventBus, LocalHandler, RetryPolicy, bus::deliver_local};

type LocalSubscription = (String, Vec<String>, Arc<dyn LocalHandler>);

/// A subscribed consumer and the bell of its worker.
type Queue = (Arc<Consumer>, Arc<Notify>);

pub struct InProcessBus {
    consumers: RwLock<Vec<Queue>>,
    locals: RwLock<Vec<LocalSubscription>>,
    retry: RetryPolicy,
    /// Publishing waits until this is true: see [`InProcessBus::held`].
    open: tokio::sync::watch::Sender<bool>,
}

impl InProcessBus {
    pub fn new(retry: RetryPolicy) -> Self {
        Self {
            consumers: RwLock::default(),
            locals: RwLock::default(),
            retry,
            open: tokio::sync::watch::Sender::new(true),
        }
    }

    /// A bus whose publishers wait until [`InProcessBus::open`]. An event goes only to the
    /// consumers subscribed when it is published; RabbitMQ's queues are declared before anything
    /// is published, and this is the same guarantee for a system whose services start one by
    /// one: a relay that would deliver the first service's seed data before the last service
    /// has subscribed waits instead.
    pub fn held(retry: RetryPolicy) -> Self {
        let bus = Self::new(retry);
        bus.open.send_replace(false);
        bus
    }

    /// Let publishers through (every consumer has subscribed).
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    fn consumers_of(&self, event_type: &str) -> Vec<Queue> {
        let all = self.consumers.read().unwrap_or_else(|p| p.into_inner());
        all.iter().filter(|(c, _)| c.wants(event_type)).cloned().collect()
    }
}

#[async_trait::async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &CloudEvent) -> anyhow::Result<()> {
        let mut open = self.open.subscribe();
        open.wait_for(|open| *open).await.context("the in-process bus is gone")?;
        let locals: Vec<_> = self
            .locals
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, types, _)| types.iter().any(|t| t == &event.event_type))
            .map(|(service, _, handler)| (service.clone(), handler.clone()))
            .collect();
        for (service, handler) in locals {
            deliver_local(&service, handler.as_ref(), event).await;
        }
        // Each consumer's queue is in its own database: write them side by side.
        let queued = self.consumers_of(&event.event_type).into_iter().map(|(consumer, wake)| async move {
            enqueue(&consumer, event)
                .await
                .with_context(|| format!("queueing event {} for {}", event.id, consumer.name))?;
            wake.notify_one();
            anyhow::Ok(())
        });
        futures_util::future::try_join_all(queued).await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        consumer: Arc<Consumer>,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<()> {
        let wake = Arc::new(Notify::new());
        self.consumers.write().unwrap_or_else(|p| p.into_inner()).push((consumer.clone(), wake.clone()));
        let retry = self.retry;
        // Retries come due without a bell: look at least this often.
        let poll = retry.base_delay.clamp(Duration::from_millis(20), Duration::from_millis(250));
        tasks.spawn(async move {
            loop {
                let delivered = match deliver_due(&consumer, &retry).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(consumer = %consumer.name, error = format!("{e:#}"), "delivering queued events failed");
                        0
                    }
                };
                if delivered >= BATCH {
                    continue; // more may be waiting
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = wake.notified() => {},
                    () = tokio::time::sleep(poll) => {},
                }
            }
        });
        Ok(())
    }

    async fn subscribe_local(
        &self,
        service: &str,
        event_types: &[&str],
        handler: Arc<dyn LocalHandler>,
        _shutdown: CancellationToken,
        _tasks: &TaskTracker,
    ) -> anyhow::Result<()> {
        let types = event_types.iter().map(|t| (*t).to_owned()).collect();
        self.locals.write().unwrap_or_else(|p| p.into_inner()).push((service.to_owned(), types, handler));
        Ok(())
    }

    async fn dead_letter_count(&self, consumer: &str) -> anyhow::Result<u64> {
        let consumers: Vec<_> = self.consumers.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some((c, _)) = consumers.iter().find(|(c, _)| c.name == consumer) else {
            return Ok(0);
        };
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM event_retries WHERE consumer = $1 AND dead = 1")
                .bind(consumer)
                .fetch_one(&c.db.pool)
                .await?;
        Ok(n as u64)
    }

    async fn redrive(&self, consumer: &str) -> anyhow::Result<u64> {
        let consumers: Vec<_> = self.consumers.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some((c, wake)) = consumers.iter().find(|(c, _)| c.name == consumer) else {
            return Ok(0);
        };
        let n = redrive(&c.db, consumer).await?;
        wake.notify_one();
        Ok(n)
    }

    async fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Put `consumer`'s dead letters in its database back in its queue, due now. Works on the
/// database of a running `marquee up` too: its worker finds them at its next look.
pub async fn redrive(db: &platform::db::Db, consumer: &str) -> anyhow::Result<u64> {
    let n = sqlx::query(
        "UPDATE event_retries SET dead = 0, attempts = 0, next_attempt_at = $1 WHERE consumer = $2 AND dead = 1",
    )
    .bind(now_ms())
    .bind(consumer)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(n)
}

const DEQUEUE: &str = "DELETE FROM event_retries WHERE event_id = $1 AND consumer = $2";

/// How many queued events a worker takes at a time.
const BATCH: usize = 100;

/// Put the event into the consumer's queue (once: its id is the key).
async fn enqueue(consumer: &Consumer, event: &CloudEvent) -> anyhow::Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO event_retries (event_id, consumer, event_type, payload, attempts, next_attempt_at, last_error, created_at) \
         VALUES ($1, $2, $3, $4, 0, $5, '', $5) ON CONFLICT (event_id, consumer) DO NOTHING",
    )
    .bind(event.id.to_string())
    .bind(&consumer.name)
    .bind(&event.event_type)
    .bind(serde_json::to_string(event)?)
    .bind(now)
    .execute(&consumer.db.pool)
    .await?;
    Ok(())
}

/// Deliver the consumer's queued events that are due, oldest first; each failure pushes that
/// one event back (or dead-letters it). How many were taken.
async fn deliver_due(consumer: &Consumer, retry: &RetryPolicy) -> anyhow::Result<usize> {
    let rows = sqlx::query(
        "SELECT event_id, payload, attempts FROM event_retries \
         WHERE consumer = $1 AND dead = 0 AND next_attempt_at <= $2 ORDER BY next_attempt_at, event_id LIMIT $3",
    )
    .bind(&consumer.name)
    .bind(now_ms())
    .bind(BATCH as i64)
    .fetch_all(&consumer.db.pool)
    .await?;
    let taken = rows.len();
    for row in rows {
        let event_id: String = row.try_get("event_id")?;
        let payload: String = row.try_get("payload")?;
        let attempts: i64 = row.try_get("attempts")?;
        let outcome = match serde_json::from_str::<CloudEvent>(&payload) {
            // Off the queue in the delivery's own transaction: one commit per event, not two.
            Ok(event) => consumer.deliver_and(&event, Some(DEQUEUE)).await.map(|_| ()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = outcome {
            let attempts = attempts + 1;
            let dead = attempts >= i64::from(retry.max_attempts);
            if dead {
                tracing::error!(consumer = %consumer.name, event_id, error = format!("{e:#}"), "event dead-lettered");
                metrics::counter!("events_dead_lettered_total", "consumer" => consumer.name.clone())
                    .increment(1);
            }
            let next = now_ms() + retry.delay(u32::try_from(attempts - 1).unwrap_or(16)).as_millis() as i64;
            sqlx::query(
                "UPDATE event_retries SET attempts = $1, next_attempt_at = $2, last_error = $3, dead = $4 \
                 WHERE event_id = $5 AND consumer = $6",
            )
            .bind(attempts)
            .bind(next)
            .bind(format!("{e:#}"))
            .bind(platform::db::flag(dead))
            .bind(&event_id)
            .bind(&consumer.name)
            .execute(&consumer.db.pool)
            .await?;
        }
    }
    Ok(taken)
}
