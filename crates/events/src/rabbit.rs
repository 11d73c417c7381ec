//! The RabbitMQ bus of the distributed mode.
//!
//! Topology, under a namespace (`marquee` unless configured, so test runs stay apart):
//! - topic exchange `<ns>.events`; the routing key is the event type;
//! - per consuming service, a durable queue `<ns>.<service>` shared by its replicas, bound to the
//!   event types it wants;
//! - `<ns>.<service>.retry`, where a failed delivery waits (per-message TTL, growing with each
//!   attempt) before dead-lettering back into the service's queue;
//! - `<ns>.<service>.dead`, where an event lands after the retry policy's last attempt.
//!
//! Publishing waits for the broker's confirm. A delivery is acked only after its handler's
//! transaction committed, or after it was moved to the retry or dead queue (also confirmed), so
//! one failing event never blocks the ones behind it. Connections that drop are made again with
//! backoff; the relay keeps unpublished events in the outbox meanwhile.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use contracts::CloudEvent;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::sync::Mutex;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{Consumer, EventBus, LocalHandler, RetryPolicy, bus::deliver_local};

const ATTEMPTS_HEADER: &str = "x-marquee-attempts";
const ERROR_HEADER: &str = "x-marquee-error";

pub struct RabbitBus {
    url: String,
    namespace: String,
    retry: RetryPolicy,
    publisher: Mutex<Option<(Connection, Channel)>>,
}

impl RabbitBus {
    pub fn new(url: &str, namespace: &str, retry: RetryPolicy) -> Self {
        Self { url: url.to_owned(), namespace: namespace.to_owned(), retry, publisher: Mutex::new(None) }
    }

    pub fn exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    pub fn queue(&self, service: &str) -> String {
        format!("{}.{service}", self.namespace)
    }

    async fn connect(&self) -> anyhow::Result<(Connection, Channel)> {
        let conn = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .with_context(|| format!("connecting to RabbitMQ at {}", platform::db::redact(&self.url)))?;
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        channel
            .exchange_declare(
                self.exchange().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .context("declaring the events exchange")?;
        Ok((conn, channel))
    }

    /// Publish on the shared channel, connecting first if needed; any failure drops the
    /// connection so the next call starts clean.
    async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> anyhow::Result<()> {
        let mut guard = self.publisher.lock().await;
        if guard.as_ref().is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected()) {
            *guard = Some(self.connect().await?);
        }
        let Some((_, channel)) = guard.as_ref() else { anyhow::bail!("no channel") };
        let result = confirm(channel, exchange, routing_key, body, props).await;
        if result.is_err()
            && let Some((conn, _)) = guard.take()
        {
            let _ = conn.close(0, "reconnecting".into()).await;
        }
        result
    }

    /// Declare every consuming service's queues and bindings (from the registry of services)
    /// before anything is published: an event published while a consumer has not started yet
    /// waits in its queue instead of being routed nowhere.
    pub async fn declare_consumers(&self, consumers: &[(&str, &[&str])]) -> anyhow::Result<()> {
        let (conn, channel) = self.connect().await?;
        for (service, types) in consumers {
            let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
            self.declare(&channel, service, &types)
                .await
                .with_context(|| format!("declaring {service}'s queues"))?;
        }
        let _ = conn.close(0, "declared".into()).await;
        Ok(())
    }

    /// Remove this namespace's exchange and the given services' queues (test clean-up).
    pub async fn delete_topology(&self, services: &[&str]) -> anyhow::Result<()> {
        let (conn, channel) = self.connect().await?;
        for service in services {
            let q = self.queue(service);
            for name in [q.clone(), format!("{q}.retry"), format!("{q}.dead")] {
                let _ = channel.queue_delete(name.into(), Default::default()).await;
            }
        }
        let _ = channel.exchange_delete(self.exchange().into(), Default::default()).await;
        let _ = conn.close(0, "done".into()).await;
        Ok(())
    }

    /// Declare the consumer's queues and bindings. Done before `subscribe` returns, so no event
    /// published after start-up can find the exchange without the service's queue bound to it.
    async fn declare(&self, channel: &Channel, service: &str, event_types: &[String]) -> anyhow::Result<()> {
        let queue = self.queue(service);
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        channel.queue_declare(queue.clone().into(), durable, FieldTable::default()).await?;
        let mut retry_args = FieldTable::default();
        retry_args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        retry_args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(queue.clone().into()));
        channel.queue_declare(format!("{queue}.retry").into(), durable, retry_args).await?;
        channel.queue_declare(format!("{queue}.dead").into(), durable, FieldTable::default()).await?;
        for event_type in event_types {
            channel
                .queue_bind(
                    queue.clone().into(),
                    self.exchange().into(),
                    event_type.clone().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    async fn consume(&self, consumer: &Consumer, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let (conn, channel) = self.connect().await?;
        self.declare(&channel, &consumer.name, &consumer.event_types).await?;
        let queue = self.queue(&consumer.name);
        let retry_queue = format!("{queue}.retry");
        let dead_queue = format!("{queue}.dead");
        // Enough in flight to hide the round trip, few enough that a crash redelivers little.
        channel.basic_qos(32, BasicQosOptions::default()).await?;
        let tag = format!("{}-{}", consumer.name, uuid::Uuid::new_v4());
        let mut deliveries = channel
            .basic_consume(
                queue.clone().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue, "consuming");
        loop {
            let delivery = tokio::select! {
                () = shutdown.cancelled() => break,
                next = deliveries.next() => match next {
                    Some(d) => d.context("receiving a delivery")?,
                    None => anyhow::bail!("the consumer was cancelled by the broker"),
                },
            };
            let attempts = attempts_of(&delivery.properties);
            let outcome = match serde_json::from_slice::<CloudEvent>(&delivery.data) {
                Ok(event) => consumer.deliver(&event).await.map(|_| ()),
                Err(e) => Err(anyhow::Error::from(e).context("the message is not a CloudEvent")),
            };
            if let Err(error) = outcome {
                let attempts = attempts + 1;
                let mut headers = delivery.properties.headers().clone().unwrap_or_default();
                headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(i64::from(attempts)));
                headers.insert(ERROR_HEADER.into(), AMQPValue::LongString(format!("{error:#}").into()));
                let props = delivery.properties.clone().with_headers(headers).with_delivery_mode(2);
                if attempts >= self.retry.max_attempts {
                    tracing::error!(queue, error = format!("{error:#}"), "event dead-lettered");
                    metrics::counter!("events_dead_lettered_total", "consumer" => consumer.name.clone())
                        .increment(1);
                    confirm(&channel, "", &dead_queue, &delivery.data, props).await?;
                } else {
                    let delay = self.retry.delay(attempts - 1).as_millis().to_string();
                    confirm(&channel, "", &retry_queue, &delivery.data, props.with_expiration(delay.into()))
                        .await?;
                }
            }
            delivery.acker.ack(BasicAckOptions::default()).await.context("acking")?;
        }
        let _ = conn.close(0, "shutting down".into()).await;
        Ok(())
    }
}

async fn confirm(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> anyhow::Result<()> {
    let confirmation = channel
        .basic_publish(
            ShortString::from(exchange),
            ShortString::from(routing_key),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .context("publishing")?
        .await
        .context("waiting for the broker's confirm")?;
    anyhow::ensure!(confirmation.is_ack(), "the broker refused the message (nack)");
    Ok(())
}

fn attempts_of(props: &BasicProperties) -> u32 {
    let value = props.headers().as_ref().and_then(|h| h.inner().get(ATTEMPTS_HEADER).cloned());
    match value {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(n).unwrap_or(0),
        Some(AMQPValue::LongInt(n)) => u32::try_from(n).unwrap_or(0),
        Some(AMQPValue::LongUInt(n)) => n,
        _ => 0,
    }
}

impl RabbitBus {
    /// A queue of this process's own (exclusive, deleted with the connection), bound to the
    /// types: every replica gets every event.
    async fn declare_local(
        &self,
        channel: &Channel,
        service: &str,
        event_types: &[String],
    ) -> anyhow::Result<String> {
        let queue = format!("{}.{service}.replica.{}", self.namespace, uuid::Uuid::new_v4().simple());
        let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
        channel.queue_declare(queue.clone().into(), options, FieldTable::default()).await?;
        for event_type in event_types {
            channel
                .queue_bind(
                    queue.clone().into(),
                    self.exchange().into(),
                    event_type.clone().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(queue)
    }

    async fn consume_local(
        &self,
        conn: Connection,
        channel: Channel,
        queue: String,
        service: &str,
        handler: &dyn LocalHandler,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let options = BasicConsumeOptions { no_ack: true, ..Default::default() };
        let tag = format!("{service}-local-{}", uuid::Uuid::new_v4().simple());
        let mut deliveries =
            channel.basic_consume(queue.into(), tag.into(), options, FieldTable::default()).await?;
        loop {
            let delivery = tokio::select! {
                () = shutdown.cancelled() => break,
                next = deliveries.next() => match next {
                    Some(d) => d.context("receiving a delivery")?,
                    None => anyhow::bail!("the local consumer was cancelled by the broker"),
                },
            };
            match serde_json::from_slice::<CloudEvent>(&delivery.data) {
                Ok(event) => deliver_local(service, handler, &event).await,
                Err(e) => tracing::warn!(service, error = %e, "a message that is not a CloudEvent"),
            }
        }
        let _ = conn.close(0, "shutting down".into()).await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventBus for RabbitBus {
    async fn publish(&self, event: &CloudEvent) -> anyhow::Result<()> {
        let body = serde_json::to_vec(event)?;
        let props = BasicProperties::default()
            .with_content_type("application/cloudevents+json".into())
            .with_message_id(event.id.to_string().into())
            .with_type(event.event_type.clone().into())
            .with_delivery_mode(2); // persistent
        self.publish_raw(&self.exchange(), &event.event_type, &body, props).await
    }

    async fn subscribe(
        &self,
        consumer: Arc<Consumer>,
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<()> {
        let bus = Self::new(&self.url, &self.namespace, self.retry);
        let (conn, channel) = bus.connect().await?;
        bus.declare(&channel, &consumer.name, &consumer.event_types)
            .await
            .context("declaring the consumer's queues")?;
        let _ = conn.close(0, "declared".into()).await;
        tasks.spawn(async move {
            let mut failures = 0;
            while !shutdown.is_cancelled() {
                match bus.consume(&consumer, &shutdown).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(consumer = %consumer.name, error = format!("{e:#}"), "consumer lost its connection; reconnecting");
                        let wait =
                            crate::backoff(Duration::from_millis(200), failures, Duration::from_secs(10));
                        failures = (failures + 1).min(16);
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(wait) => {},
                        }
                    }
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
        shutdown: CancellationToken,
        tasks: &TaskTracker,
    ) -> anyhow::Result<()> {
        let bus = Self::new(&self.url, &self.namespace, self.retry);
        let types: Vec<String> = event_types.iter().map(|t| (*t).to_owned()).collect();
        let service = service.to_owned();
        // Bound before returning, like `subscribe`: nothing published after start-up is missed.
        let (conn, channel) = bus.connect().await?;
        let queue = bus.declare_local(&channel, &service, &types).await?;
        tasks.spawn(async move {
            let mut session = Some((conn, channel, queue));
            let mut failures = 0;
            while !shutdown.is_cancelled() {
                let (conn, channel, queue) = match session.take() {
                    Some(s) => s,
                    None => {
                        let fresh = async {
                            let (conn, channel) = bus.connect().await?;
                            let queue = bus.declare_local(&channel, &service, &types).await?;
                            anyhow::Ok((conn, channel, queue))
                        };
                        match fresh.await {
                            Ok(s) => {
                                // Events published while we were away went to a queue that is gone.
                                if let Err(e) = handler.resync().await {
                                    tracing::warn!(
                                        service,
                                        error = format!("{e:#}"),
                                        "resync after reconnecting failed"
                                    );
                                }
                                s
                            }
                            Err(e) => {
                                tracing::warn!(
                                    service,
                                    error = format!("{e:#}"),
                                    "local consumer cannot reconnect yet"
                                );
                                let wait = crate::backoff(
                                    Duration::from_millis(200),
                                    failures,
                                    Duration::from_secs(10),
                                );
                                failures = (failures + 1).min(16);
                                tokio::select! {
                                    () = shutdown.cancelled() => break,
                                    () = tokio::time::sleep(wait) => {},
                                }
                                continue;
                            }
                        }
                    }
                };
                failures = 0;
                match bus.consume_local(conn, channel, queue, &service, handler.as_ref(), &shutdown).await {
                    Ok(()) => break,
                    Err(e) => tracing::warn!(
                        service,
                        error = format!("{e:#}"),
                        "local consumer lost its connection"
                    ),
                }
            }
        });
        Ok(())
    }

    async fn dead_letter_count(&self, consumer: &str) -> anyhow::Result<u64> {
        let (conn, channel) = self.connect().await?;
        let queue = channel
            .queue_declare(
                format!("{}.dead", self.queue(consumer)).into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await;
        let _ = conn.close(0, "done".into()).await;
        match queue {
            Ok(q) => Ok(u64::from(q.message_count())),
            Err(_) => Ok(0), // never declared: nothing dead
        }
    }

    async fn redrive(&self, consumer: &str) -> anyhow::Result<u64> {
        let (conn, channel) = self.connect().await?;
        let queue = self.queue(consumer);
        let dead = format!("{queue}.dead");
        let mut n = 0;
        // One at a time: each is published back (confirmed) before it is acked off the dead
        // queue, so a failure half-way loses nothing (at worst one goes back twice, and the
        // consumer's inbox makes that a no-op).
        while let Some(message) = channel.basic_get(dead.clone().into(), BasicGetOptions::default()).await? {
            let delivery = message.delivery;
            let mut headers = delivery.properties.headers().clone().unwrap_or_default();
            headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(0));
            let props = delivery.properties.clone().with_headers(headers);
            confirm(&channel, "", &queue, &delivery.data, props).await?;
            delivery.acker.ack(BasicAckOptions::default()).await.context("acking a redriven message")?;
            n += 1;
        }
        let _ = conn.close(0, "redriven".into()).await;
        Ok(n)
    }

    async fn check(&self) -> anyhow::Result<()> {
        let mut guard = self.publisher.lock().await;
        if guard.as_ref().is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected()) {
            *guard = Some(self.connect().await?);
        }
        Ok(())
    }
}
