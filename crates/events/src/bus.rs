//! The bus and the consuming side.

use std::sync::Arc;

use anyhow::Context;
use contracts::CloudEvent;
use platform::{db::Db, telemetry};
use sqlx::AnyConnection;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Carries events from producers' relays to consumers. `Arc<dyn EventBus>` everywhere, so the
/// embedded and distributed modes differ only in which one is built.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    /// Hand an event over. `Ok` means it will reach every consumer even if this process dies
    /// now: the broker confirmed it, or every in-process consumer handled or parked it.
    async fn publish(&self, event: &CloudEvent) -> anyhow::Result<()>;

    /// Deliver the consumer's event types to it until `shutdown`, on tasks of `tasks` (so the
    /// process waits for a delivery in hand before it exits).
    async fn subscribe(
        &self,
        consumer: Arc<Consumer>,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<()>;

    /// Deliver `event_types` to this process itself, whichever replica published them: for
    /// state each replica keeps in memory (a search index). No inbox and no retries: the handler
    /// must be idempotent, and after a lost connection the bus calls its `resync`.
    async fn subscribe_local(
        &self,
        service: &str,
        event_types: &[&str],
        handler: Arc<dyn LocalHandler>,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<()>;

    /// How many events ended dead-lettered for `consumer` (a service name).
    async fn dead_letter_count(&self, consumer: &str) -> anyhow::Result<u64>;

    /// Send `consumer`'s dead-lettered events back to it, with their attempts counted afresh
    /// (once whatever made them fail is fixed); how many went back. `marquee events redrive`.
    async fn redrive(&self, consumer: &str) -> anyhow::Result<u64>;

    /// For `/health/ready`.
    async fn check(&self) -> anyhow::Result<()>;
}

/// Readiness of a bus, as `/health/ready` reports it ("broker").
pub struct BusReadiness(pub Arc<dyn EventBus>);

#[async_trait::async_trait]
impl platform::server::ReadinessCheck for BusReadiness {
    fn name(&self) -> &'static str {
        "broker"
    }
    // Without the broker, events wait in the outbox and consumers resume when it is back.
    fn essential(&self) -> bool {
        false
    }
    async fn check(&self) -> anyhow::Result<()> {
        self.0.check().await
    }
}

/// A service's reaction to events.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    /// Apply the event's effect inside `tx`, the transaction that also records it in the inbox.
    /// An error rolls both back and the event is retried, then dead-lettered.
    async fn handle(&self, tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()>;

    /// After the effect committed: drop cache entries it made stale (doing that before the
    /// commit would let a reader cache the old value again in between).
    async fn after_commit(&self, _event: &CloudEvent) {}
}

/// A replica's reaction to events, for state held in its own memory.
#[async_trait::async_trait]
pub trait LocalHandler: Send + Sync {
    async fn handle(&self, event: &CloudEvent) -> anyhow::Result<()>;
    /// Events may have been missed (a reconnect): rebuild from the source of truth.
    async fn resync(&self) -> anyhow::Result<()>;
}

/// Run a local handler, logging rather than failing: local state is rebuilt on resync.
pub(crate) async fn deliver_local(service: &str, handler: &dyn LocalHandler, event: &CloudEvent) {
    if let Err(e) = handler.handle(event).await {
        tracing::warn!(service, event_type = %event.event_type, event_id = %event.id, error = format!("{e:#}"), "local event handler failed");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Handled,
    /// Handled before: nothing was done.
    Duplicate,
}

/// One service's subscription: the event types it wants, its database and its handler.
pub struct Consumer {
    /// The consuming service; its queue is `marquee.<name>`.
    pub name: String,
    pub event_types: Vec<String>,
    pub db: Db,
    handler: Arc<dyn EventHandler>,
}

impl Consumer {
    pub fn new(name: &str, event_types: &[&str], db: Db, handler: Arc<dyn EventHandler>) -> Self {
        Self {
            name: name.to_owned(),
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
            db,
            handler,
        }
    }

    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == event_type)
    }

    /// Handle one delivery exactly once: the inbox row and the effect commit together.
    pub async fn deliver(&self, event: &CloudEvent) -> anyhow::Result<Delivery> {
        self.deliver_and(event, None).await
    }

    /// [`Consumer::deliver`], also running `finish` (a statement binding the event id and the
    /// consumer's name, as `$1` and `$2`) in the same transaction, handled or duplicate: the
    /// in-process bus takes the event off its queue that way, one commit instead of two.
    pub(crate) async fn deliver_and(
        &self,
        event: &CloudEvent,
        finish: Option<&'static str>,
    ) -> anyhow::Result<Delivery> {
        let ctx = event
            .traceparent
            .as_deref()
            .and_then(telemetry::TraceContext::parse)
            .map(|p| p.child())
            .unwrap_or_else(telemetry::TraceContext::root);
        let span = tracing::info_span!(
            "event",
            consumer = %self.name,
            event_type = %event.event_type,
            event_id = %event.id,
            trace_id = %ctx.trace_id,
        );
        let started = std::time::Instant::now();
        let outcome = telemetry::in_context(
            ctx,
            tracing::Instrument::instrument(self.apply(event, finish), span.clone()),
        )
        .await;
        let result = match &outcome {
            Ok(Delivery::Handled) => "handled",
            Ok(Delivery::Duplicate) => "duplicate",
            Err(_) => "failed",
        };
        metrics::counter!("events_consumed_total", "consumer" => self.name.clone(), "type" => event.event_type.clone(), "result" => result).increment(1);
        metrics::histogram!("event_handle_duration_seconds", "consumer" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            span.in_scope(|| tracing::warn!(error = format!("{e:#}"), "event handler failed"));
        }
        outcome
    }

    async fn apply(&self, event: &CloudEvent, finish: Option<&'static str>) -> anyhow::Result<Delivery> {
        let mut tx = self.db.pool.begin().await.context("beginning the inbox transaction")?;
        let inserted = sqlx::query(
            "INSERT INTO inbox (event_id, consumer, event_type, handled_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_id, consumer) DO NOTHING",
        )
        .bind(event.id.to_string())
        .bind(&self.name)
        .bind(&event.event_type)
        .bind(platform::time::now_ms())
        .execute(&mut *tx)
        .await
        .context("recording the event in the inbox")?
        .rows_affected();
        if let Some(finish) = finish {
            sqlx::query(finish)
                .bind(event.id.to_string())
                .bind(&self.name)
                .execute(&mut *tx)
                .await
                .context("finishing the delivery")?;
        }
        if inserted == 0 {
            match finish {
                Some(_) => tx.commit().await.context("finishing a duplicate delivery")?,
                None => tx.rollback().await.unwrap_or_default(),
            }
            return Ok(Delivery::Duplicate);
        }
        self.handler.handle(&mut tx, event).await?;
        tx.commit().await.context("committing the event's effect")?;
        self.handler.after_commit(event).await;
        Ok(Delivery::Handled)
    }
}
