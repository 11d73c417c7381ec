//! The event delivery loop end to end: outbox → relay → bus → consumer (inbox), in the embedded
//! mode (in-process bus, SQLite) or on RabbitMQ and PostgreSQL with MARQUEE_TEST_* set.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use events::{CloudEvent, Consumer, Delivery, EventHandler, Outbox, Relay, outbox::RelayConfig};
use platform::db::Db;
use sqlx::AnyConnection;
use testkit::{FlakyBus, TestSystem, eventually};

const PROBE_EVENT: &str = "probe.happened";

/// The probe's own tasks: the test's system stops without waiting for them.
fn tasks() -> tokio_util::task::TaskTracker {
    tokio_util::task::TaskTracker::new()
}

/// Counts the events it handled; fails those whose data says `"fail": true` until it is fixed.
#[derive(Default)]
struct Probe {
    handled: AtomicUsize,
    fixed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EventHandler for Probe {
    async fn handle(&self, _tx: &mut AnyConnection, event: &CloudEvent) -> anyhow::Result<()> {
        anyhow::ensure!(
            event.data["fail"] != true || self.fixed.load(Ordering::SeqCst),
            "this event fails until the handler is fixed"
        );
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn probe(sys: &TestSystem, types: &[&str]) -> (Arc<Probe>, Arc<Consumer>, Db) {
    let db = sys.storage.database("probe").await.expect("probe database");
    let handler = Arc::new(Probe::default());
    let consumer = Arc::new(Consumer::new("probe", types, db.clone(), handler.clone()));
    sys.new_bus()
        .subscribe(consumer.clone(), sys.running.as_ref().expect("running").shutdown_token(), &tasks())
        .await
        .expect("subscribed");
    (handler, consumer, db)
}

fn event(fail: bool) -> CloudEvent {
    CloudEvent::new("probe", PROBE_EVENT, "s", &serde_json::json!({"fail": fail})).expect("event")
}

async fn inbox_count(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE consumer = 'probe'")
        .fetch_one(&db.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn an_event_written_with_a_state_change_reaches_a_consumer_in_another_service() {
    let sys = TestSystem::start().await;
    let (_, _, db) = probe(&sys, &["user.registered"]).await;
    let (_, user_id) = sys.user_token().await;
    let arrived = eventually(Duration::from_secs(10), || async { inbox_count(&db).await == 1 }).await;
    assert!(arrived, "user.registered for {user_id} reached the probe service");
}

#[tokio::test]
async fn the_same_event_delivered_twice_has_one_effect() {
    let sys = TestSystem::start().await;
    let (handler, consumer, db) = probe(&sys, &[PROBE_EVENT]).await;
    let e = event(false);
    assert_eq!(consumer.deliver(&e).await.expect("delivered"), Delivery::Handled);
    assert_eq!(consumer.deliver(&e).await.expect("delivered"), Delivery::Duplicate);
    // Through the bus too: published twice, handled once.
    let again = event(false);
    let bus = sys.new_bus();
    bus.publish(&again).await.expect("published");
    bus.publish(&again).await.expect("published");
    assert!(eventually(Duration::from_secs(10), || async { inbox_count(&db).await == 2 }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handler.handled.load(Ordering::SeqCst), 2);
    // The in-process bus's queue lets go of both copies, the duplicate too.
    let queued = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM event_retries WHERE consumer = 'probe'")
            .fetch_one(&db.pool)
            .await
            .expect("count")
    };
    assert!(eventually(Duration::from_secs(5), || async { queued().await == 0 }).await, "queue left");
}

#[tokio::test]
async fn with_the_broker_down_the_change_commits_and_its_event_arrives_later() {
    let sys = TestSystem::start().await;
    let (handler, _, _) = probe(&sys, &[PROBE_EVENT]).await;
    let producer = sys.storage.database("producer").await.expect("database");
    sqlx::query("CREATE TABLE items (id TEXT PRIMARY KEY)").execute(&producer.pool).await.expect("table");
    let flaky = Arc::new(FlakyBus::new(sys.new_bus()));
    let outbox = Outbox::new();
    let relay = Relay::new("producer", producer.clone(), flaky.clone(), outbox.clone())
        .with_config(RelayConfig { max_backoff: Duration::from_millis(50), ..Default::default() });

    flaky.set_down(true);
    let mut tx = producer.pool.begin().await.expect("tx");
    sqlx::query("INSERT INTO items (id) VALUES ('a')").execute(&mut *tx).await.expect("insert");
    outbox.add(&mut tx, event(false)).await.expect("outbox");
    tx.commit().await.expect("commit");

    assert_eq!(relay.relay_once().await.expect("relay step"), 0, "nothing goes out while the broker is down");
    let items: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM items").fetch_one(&producer.pool).await.expect("count");
    assert_eq!(items, 1, "the state change committed");
    assert_eq!(relay.pending().await.expect("pending"), 1);

    flaky.set_down(false);
    let sent =
        eventually(Duration::from_secs(5), || async { relay.relay_once().await.unwrap_or(0) == 1 }).await;
    assert!(sent, "the relay retried once the broker was back");
    assert_eq!(relay.pending().await.expect("pending"), 0);
    assert!(
        eventually(Duration::from_secs(10), || async { handler.handled.load(Ordering::SeqCst) == 1 }).await
    );
}

#[tokio::test]
async fn a_handler_that_keeps_failing_ends_dead_lettered_without_blocking_the_rest() {
    let sys = TestSystem::start().await;
    let (handler, _, _) = probe(&sys, &[PROBE_EVENT]).await;
    let bus = sys.new_bus();
    bus.publish(&event(true)).await.expect("published");
    for _ in 0..3 {
        bus.publish(&event(false)).await.expect("published");
    }
    // The good ones behind the bad one are handled while it is still being retried.
    assert!(
        eventually(Duration::from_secs(10), || async { handler.handled.load(Ordering::SeqCst) == 3 }).await
    );
    let dead = eventually(Duration::from_secs(20), || async {
        bus.dead_letter_count("probe").await.unwrap_or(0) == 1
    })
    .await;
    assert!(dead, "the failing event was dead-lettered");
    // Once the handler is fixed, an operator sends it back (`marquee events redrive`).
    handler.fixed.store(true, Ordering::SeqCst);
    assert_eq!(bus.redrive("probe").await.expect("redriven"), 1);
    assert!(
        eventually(Duration::from_secs(10), || async { handler.handled.load(Ordering::SeqCst) == 4 }).await,
        "the redriven event was handled"
    );
    assert_eq!(bus.dead_letter_count("probe").await.expect("count"), 0);
}

async fn drain(relay: &Relay) {
    while relay.pending().await.expect("pending") > 0 {
        relay.relay_once().await.expect("relay step");
    }
}

#[tokio::test]
async fn two_relays_on_one_outbox_publish_each_event_once() {
    let sys = TestSystem::start().await;
    let (handler, _, _) = probe(&sys, &[PROBE_EVENT]).await;
    let producer = sys.storage.database("producer").await.expect("database");
    let counting = Arc::new(FlakyBus::new(sys.new_bus()));
    let outbox = Outbox::new();
    let mut tx = producer.pool.begin().await.expect("tx");
    for _ in 0..60 {
        outbox.add(&mut tx, event(false)).await.expect("outbox");
    }
    tx.commit().await.expect("commit");

    let config = RelayConfig { batch_size: 7, ..Default::default() };
    let relays: Vec<Relay> = (0..2)
        .map(|_| {
            Relay::new("producer", producer.clone(), counting.clone(), outbox.clone()).with_config(config)
        })
        .collect();
    tokio::join!(drain(&relays[0]), drain(&relays[1]));
    assert_eq!(counting.published(), 60, "no event was claimed by both relays");
    assert!(
        eventually(Duration::from_secs(10), || async { handler.handled.load(Ordering::SeqCst) == 60 }).await
    );
}

/// A consumer that sleeps on each event.
struct Sleepy(Duration);

#[async_trait::async_trait]
impl EventHandler for Sleepy {
    async fn handle(&self, _tx: &mut AnyConnection, _event: &CloudEvent) -> anyhow::Result<()> {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

/// Issue 9, finding 15: the in-process bus ran every consumer inside the producer's relay, so
/// one slow consumer held up the producer's whole outbox (and every other consumer).
#[tokio::test]
async fn a_slow_consumer_holds_up_neither_the_producer_nor_the_other_consumers() {
    let sys = TestSystem::start().await;
    let db = sys.storage.database("probe").await.expect("probe database");
    let sleepy =
        Arc::new(Consumer::new("probe", &["user.registered"], db, Arc::new(Sleepy(Duration::from_secs(4)))));
    sys.new_bus()
        .subscribe(sleepy, sys.running.as_ref().expect("running").shutdown_token(), &tasks())
        .await
        .expect("subscribed");
    let (token, _) = sys.user_token().await;
    let started = std::time::Instant::now();
    // identity's own consumer records the registration in the activity log.
    let recorded = eventually(Duration::from_secs(3), || async {
        let activity = sys.get("/api/v1/users/me/activity", Some(&token)).await.body;
        activity["items"].as_array().is_some_and(|i| i.iter().any(|a| a["kind"] == "registered"))
    })
    .await;
    assert!(recorded, "the activity log did not wait for the slow consumer ({:?})", started.elapsed());
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(&sys.db("identity").pool)
        .await
        .expect("count");
    assert_eq!(pending, 0, "identity's outbox went out while the slow consumer was still busy");
}

/// Fails its first publish, then records the order of what it publishes.
#[derive(Default)]
struct FirstFails {
    calls: AtomicUsize,
    order: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl events::EventBus for FirstFails {
    async fn publish(&self, event: &CloudEvent) -> anyhow::Result<()> {
        anyhow::ensure!(self.calls.fetch_add(1, Ordering::SeqCst) > 0, "the broker blinked");
        self.order.lock().expect("lock").push(event.subject.clone());
        Ok(())
    }
    async fn subscribe(
        &self,
        _: Arc<Consumer>,
        _: tokio_util::sync::CancellationToken,
        _: &tokio_util::task::TaskTracker,
    ) -> anyhow::Result<()> {
        Ok(())
    }
    async fn subscribe_local(
        &self,
        _: &str,
        _: &[&str],
        _: Arc<dyn events::LocalHandler>,
        _: tokio_util::sync::CancellationToken,
        _: &tokio_util::task::TaskTracker,
    ) -> anyhow::Result<()> {
        Ok(())
    }
    async fn dead_letter_count(&self, _: &str) -> anyhow::Result<u64> {
        Ok(0)
    }
    async fn redrive(&self, _: &str) -> anyhow::Result<u64> {
        Ok(0)
    }
    async fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Finding 15: a failed publish handed the rest of its batch back ahead of itself, so events
/// went out of order.
#[tokio::test]
async fn a_failed_publish_keeps_the_events_in_their_order() {
    let sys = TestSystem::start().await;
    let producer = sys.storage.database("producer").await.expect("database");
    let bus = Arc::new(FirstFails::default());
    let outbox = Outbox::new();
    let mut tx = producer.pool.begin().await.expect("tx");
    for n in 0..5 {
        let e =
            CloudEvent::new("producer", PROBE_EVENT, format!("e{n}"), &serde_json::json!({})).expect("event");
        outbox.add(&mut tx, e).await.expect("outbox");
    }
    tx.commit().await.expect("commit");
    let relay = Relay::new("producer", producer.clone(), bus.clone(), outbox)
        .with_config(RelayConfig { max_backoff: Duration::from_millis(50), ..Default::default() });
    let drained = eventually(Duration::from_secs(5), || async {
        relay.relay_once().await.expect("relay step");
        relay.pending().await.expect("pending") == 0
    })
    .await;
    assert!(drained);
    assert_eq!(*bus.order.lock().expect("lock"), ["e0", "e1", "e2", "e3", "e4"]);
}

/// Only where there is a broker to lose: the RabbitMQ bus reconnects, publisher and consumer.
#[tokio::test]
async fn the_rabbitmq_bus_recovers_when_its_connection_is_cut() {
    let sys = TestSystem::start().await;
    let Some((url, namespace)) = sys.amqp() else {
        return; // embedded mode: the in-process bus has no connection to lose
    };
    let broker: std::net::SocketAddr = "127.0.0.1:5672".parse().expect("addr");
    let proxy = testkit::TcpProxy::start(broker).await.expect("proxy");
    let via_proxy = url
        .replace("127.0.0.1:5672", &proxy.addr.to_string())
        .replace("localhost:5672", &proxy.addr.to_string());
    assert_ne!(via_proxy, url, "the test URL points at 127.0.0.1:5672");
    let retry = events::RetryPolicy::default();
    let bus: Arc<dyn events::EventBus> = Arc::new(events::RabbitBus::new(&via_proxy, &namespace, retry));

    let db = sys.storage.database("probe").await.expect("probe database");
    let handler = Arc::new(Probe::default());
    let consumer = Arc::new(Consumer::new("probe", &[PROBE_EVENT], db, handler.clone()));
    bus.subscribe(consumer, sys.running.as_ref().expect("running").shutdown_token(), &tasks())
        .await
        .expect("subscribed");
    bus.publish(&event(false)).await.expect("published while up");
    assert!(
        eventually(Duration::from_secs(10), || async { handler.handled.load(Ordering::SeqCst) == 1 }).await
    );

    proxy.cut();
    let producer = sys.storage.database("producer").await.expect("database");
    let outbox = Outbox::new();
    let relay = Relay::new("producer", producer.clone(), bus.clone(), outbox.clone())
        .with_config(RelayConfig { max_backoff: Duration::from_millis(50), ..Default::default() });
    let mut tx = producer.pool.begin().await.expect("tx");
    outbox.add(&mut tx, event(false)).await.expect("outbox");
    tx.commit().await.expect("commit");
    assert_eq!(relay.relay_once().await.expect("relay step"), 0, "the broker is unreachable");
    assert_eq!(relay.pending().await.expect("pending"), 1, "the event waits in the outbox");

    proxy.restore();
    let sent =
        eventually(Duration::from_secs(10), || async { relay.relay_once().await.unwrap_or(0) == 1 }).await;
    assert!(sent, "the publisher reconnected");
    // The consumer's reconnection backoff is capped at 10 s plus up to 25 % jitter: one whose
    // attempt failed just before the restore waits up to 12.5 s, then connects on a busy machine
    // (CI runs this beside eight other tests, each starting a whole system: 30 s was once short).
    let handled =
        eventually(Duration::from_secs(60), || async { handler.handled.load(Ordering::SeqCst) == 2 }).await;
    assert!(handled, "the consumer reconnected and got the event");
}

/// Issue 10, item 4: idempotency records were kept for ever. The relay's hourly clean-up drops
/// those older than a day.
#[tokio::test]
async fn idempotency_records_older_than_a_day_are_purged() {
    let sys = TestSystem::start().await;
    let db = sys.storage.database("producer").await.expect("database");
    let now = platform::time::now_ms();
    for (key, age) in [("old", 25 * 3600 * 1000), ("fresh", 60_000)] {
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ('s', $1, 'h', $2)",
        )
        .bind(key)
        .bind(now - age)
        .execute(&db.pool)
        .await
        .expect("a record");
    }
    let relay = Relay::new("producer", db.clone(), sys.new_bus(), Outbox::new());
    relay.cleanup().await.expect("cleaned");
    let left: Vec<String> =
        sqlx::query_scalar("SELECT key FROM idempotency_keys").fetch_all(&db.pool).await.expect("keys");
    assert_eq!(left, ["fresh"]);
}

/// A row that can never be published is set aside (kept, with the error), and the events of
/// its batch before and after it still arrive, once each, in one relay step.
#[tokio::test]
async fn a_row_that_does_not_parse_is_set_aside_and_its_batch_goes_on() {
    let sys = TestSystem::start().await;
    let (handler, _consumer, _db) = probe(&sys, &[PROBE_EVENT]).await;
    let producer = sys.storage.database("producer").await.expect("database");
    let outbox = Outbox::new();
    let mut tx = producer.pool.begin().await.expect("tx");
    for n in 0..30 {
        outbox.add(&mut tx, event(false)).await.expect("outbox");
        if n == 10 {
            sqlx::query(
                "INSERT INTO outbox (id, event_type, payload, created_at, next_attempt_at) \
                 VALUES ('00000000-0000-7000-8000-000000000000', 'probe.happened', 'not json', 0, 0)",
            )
            .execute(&mut *tx)
            .await
            .expect("a broken row");
        }
    }
    tx.commit().await.expect("commit");
    let relay = Relay::new("producer", producer.clone(), sys.new_bus(), outbox);
    assert_eq!(relay.relay_once().await.expect("relay step"), 30, "one step sends the batch");
    assert_eq!(relay.pending().await.expect("pending"), 0);
    let set_aside: String = sqlx::query_scalar("SELECT last_error FROM outbox WHERE payload = 'not json'")
        .fetch_one(&producer.pool)
        .await
        .expect("kept");
    assert!(set_aside.starts_with("does not parse"), "{set_aside}");
    let all =
        eventually(Duration::from_secs(10), || async { handler.handled.load(Ordering::SeqCst) >= 30 }).await;
    assert!(all, "{} of 30 handled", handler.handled.load(Ordering::SeqCst));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handler.handled.load(Ordering::SeqCst), 30, "none twice");
}
