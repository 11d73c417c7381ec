//! Start Marquee for a test: the whole system in-process on port 0 with temporary storage, or,
//! when `MARQUEE_TEST_DATABASE_URL` and `MARQUEE_TEST_AMQP_URL` are set, on those servers with a
//! fresh database and a fresh RabbitMQ namespace per test, and with `MARQUEE_TEST_REDIS_URL` a
//! fresh Redis key prefix; all removed afterwards.
//!
//! # Layout
//! - [`TestSystem`]: start, talk to (one method per common call), clean up.
//! - [`Storage`]: a fresh database for a test's own consumer services.
//! - [`FlakyBus`]: a bus that can be switched off, to test what happens while the broker is down.
//! - [`TcpProxy`]: a TCP forwarder whose connections can be cut, to take a real server away.
//! - [`flows`]: a showtime to book, a booking paid for.
//! - [`smtp`]: a real SMTP server that keeps what it receives.
//! - [`moto`]: a real S3 API server (moto's), for the object store.
//! - [`FaultProxy`]: an HTTP proxy in front of a service that answers slowly, fails, cuts
//!   connections or is down, on demand.

mod faults;
pub mod flows;
pub mod moto;
mod proxy;
pub mod smtp;
pub use faults::{FaultProxy, Faults};
pub use proxy::TcpProxy;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use events::EventBus;
use marquee::system::{self, Broker, RunningSystem, Storage as SystemStorage, SystemConfig};
use platform::{
    Settings,
    db::{Db, DbConfig},
};
use serde_json::{Value, json};

pub use platform;

pub const ADMIN_EMAIL: &str = "admin@marquee.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// True when the tests run against PostgreSQL and RabbitMQ.
pub fn distributed() -> bool {
    std::env::var("MARQUEE_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty())
        && std::env::var("MARQUEE_TEST_AMQP_URL").is_ok_and(|v| !v.is_empty())
}

/// Settings for tests: fast retries, the test admin.
pub fn test_settings() -> Settings {
    Settings::default()
        .with("MARQUEE_ADMIN_EMAIL", ADMIN_EMAIL)
        .with("MARQUEE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .with("MARQUEE_EVENT_RETRY_BASE_MS", "50")
        .with("MARQUEE_EVENT_MAX_ATTEMPTS", "3")
        .with("MARQUEE_RELAY_POLL_MS", "100")
        .with("MARQUEE_RELAY_MAX_BACKOFF_MS", "300")
        // The race and chaos tests hold many seats per buyer; the hold-limit test sets its own.
        .with("MARQUEE_MAX_HELD_SEATS_PER_SHOWTIME", "1000")
        .with("MARQUEE_MAX_HELD_SEATS", "1000")
        .with("MARQUEE_COMMAND_RETRY_BASE_MS", "50")
        .with("MARQUEE_COMMAND_MAX_BACKOFF_MS", "1000")
        // The suites sign up hundreds of users from this host, far past the per-address limit on
        // /auth; the gateway's own tests check the limits.
        .with("MARQUEE_RATE_LIMIT_EXEMPT", "127.0.0.1, ::1")
}

/// Where a test's data lives; removed on drop.
pub struct Storage {
    kind: StorageKind,
}

enum StorageKind {
    Dir(PathBuf),
    /// `dir` holds what is not in the database (media objects, uploads).
    Postgres {
        admin_url: String,
        database: String,
        url: String,
        dir: PathBuf,
    },
}

impl Storage {
    pub async fn fresh() -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(admin_url) = std::env::var("MARQUEE_TEST_DATABASE_URL").map(|u| u.trim().to_owned())
            && !admin_url.is_empty()
        {
            sqlx::any::install_default_drivers();
            let database = format!("marquee_test_{}", &id[..16]);
            let pool = sqlx::AnyPool::connect(&admin_url)
                .await
                .context("connecting to MARQUEE_TEST_DATABASE_URL")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&pool).await?;
            pool.close().await;
            let url = with_database(&admin_url, &database);
            let dir = std::env::temp_dir().join(format!("marquee-test-{id}"));
            std::fs::create_dir_all(&dir)?;
            return Ok(Self { kind: StorageKind::Postgres { admin_url, database, url, dir } });
        }
        let dir = std::env::temp_dir().join(format!("marquee-test-{id}"));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { kind: StorageKind::Dir(dir) })
    }

    /// The test's data dir: the SQLite files, media objects and uploads (only the last two on
    /// PostgreSQL).
    pub fn dir(&self) -> &std::path::Path {
        match &self.kind {
            StorageKind::Dir(dir) | StorageKind::Postgres { dir, .. } => dir,
        }
    }

    fn system_storage(&self) -> SystemStorage {
        match &self.kind {
            StorageKind::Dir(dir) => SystemStorage::Sqlite { data_dir: dir.clone() },
            StorageKind::Postgres { url, .. } => SystemStorage::Postgres { url: url.clone() },
        }
    }

    /// Environment for a `marquee serve` process of `service` on this storage: its own SQLite
    /// file, or the test's PostgreSQL database with a schema per service.
    pub fn serve_env(&self, service: &str) -> Vec<(String, String)> {
        match &self.kind {
            StorageKind::Dir(dir) => vec![(
                Settings::service_key(service, "DATABASE_URL"),
                format!("sqlite://{}?mode=rwc", dir.join(format!("{service}.db")).display()),
            )],
            StorageKind::Postgres { url, .. } => vec![("MARQUEE_DATABASE_URL".to_owned(), url.clone())],
        }
    }

    /// A database for a test's own service `name`, with the event tables migrated.
    pub async fn database(&self, name: &str) -> anyhow::Result<Db> {
        let config = match &self.kind {
            StorageKind::Dir(dir) => DbConfig::sqlite(dir, name),
            StorageKind::Postgres { url, .. } => DbConfig::at(url.clone(), Some(name.to_owned()), 5),
        };
        let db = Db::connect(&config).await?;
        db.migrate(&events::migrations()).await?;
        Ok(db)
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        match &self.kind {
            StorageKind::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            StorageKind::Postgres { admin_url, database, dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
                let (admin_url, database) = (admin_url.clone(), database.clone());
                // Drop runs outside async; a thread of its own with its own runtime does the SQL.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(async {
                        let pool = sqlx::AnyPool::connect(&admin_url).await?;
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                        )))
                        .execute(&pool)
                        .await?;
                        pool.close().await;
                        anyhow::Ok(())
                    })
                })
                .join();
            }
        }
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let root = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |s| s + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

/// The broker for a test: a fresh RabbitMQ namespace, or the in-process bus.
pub fn test_broker() -> (Broker, Option<(String, String)>) {
    match std::env::var("MARQUEE_TEST_AMQP_URL") {
        Ok(url) if !url.trim().is_empty() && distributed() => {
            let namespace = format!("marquee-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            (Broker::RabbitMq { url: url.clone(), namespace: namespace.clone() }, Some((url, namespace)))
        }
        _ => (Broker::InProcess, None),
    }
}

/// An HTTP answer: status and JSON body (Null when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The running system of one test. Dropping it removes its database and broker namespace.
pub struct TestSystem {
    pub running: Option<RunningSystem>,
    /// Every service's clock: `sys.clock.advance(..)` moves holds and renewals along.
    pub clock: platform::clock::Clock,
    pub gateway: String,
    pub http: reqwest::Client,
    pub storage: Storage,
    pub settings: Settings,
    rabbit: Option<(String, String)>,
    redis: Option<(String, String)>,
}

impl TestSystem {
    pub async fn start() -> Self {
        Self::start_with(test_settings()).await
    }

    pub async fn start_with(settings: Settings) -> Self {
        Self::try_start(settings, &[], None).await.expect("starting the test system")
    }

    /// In the distributed mode, start with every service reaching RabbitMQ through a
    /// [`TcpProxy`], which the test can cut to take the broker away (for this system only). In
    /// the embedded mode there is no broker to lose: `None`.
    pub async fn start_with_broker_proxy(settings: Settings) -> (Self, Option<TcpProxy>) {
        let Some(url) =
            std::env::var("MARQUEE_TEST_AMQP_URL").ok().filter(|u| !u.trim().is_empty() && distributed())
        else {
            return (Self::start_with(settings).await, None);
        };
        let broker: std::net::SocketAddr = "127.0.0.1:5672".parse().expect("address");
        let proxy = TcpProxy::start(broker).await.expect("broker proxy");
        let via = url.replace("127.0.0.1:5672", &proxy.addr.to_string());
        assert_ne!(via, url, "MARQUEE_TEST_AMQP_URL points at 127.0.0.1:5672");
        let sys = Self::try_start(settings, &[], Some(via)).await.expect("starting the test system");
        (sys, Some(proxy))
    }

    /// Start with the other services reaching `service` through `proxy` (which is pointed at
    /// the real one here), to make that service slow, failing or absent for its callers.
    pub async fn start_routed(settings: Settings, routes: &[(&'static str, &FaultProxy)]) -> Self {
        let sys = Self::try_start(settings, routes, None).await.expect("starting the test system");
        for (service, proxy) in routes {
            proxy.set_target(&sys.service_url(service));
        }
        sys
    }

    async fn try_start(
        settings: Settings,
        routes: &[(&'static str, &FaultProxy)],
        broker_via: Option<String>,
    ) -> anyhow::Result<Self> {
        if std::env::var("MARQUEE_TEST_LOG").is_ok() {
            platform::telemetry::init_logging();
        }
        let storage = Storage::fresh().await?;
        let clock = platform::clock::Clock::system();
        let (mut broker, rabbit) = test_broker();
        if let (Broker::RabbitMq { url, .. }, Some(via)) = (&mut broker, broker_via) {
            *url = via;
        }
        let mut settings = settings;
        if settings.get("MARQUEE_DATA_DIR").is_none() {
            settings.set("MARQUEE_DATA_DIR", storage.dir().display().to_string());
        }
        let redis = match std::env::var("MARQUEE_TEST_REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let namespace = format!("marquee-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                settings.set("MARQUEE_REDIS_URL", url.trim());
                settings.set("MARQUEE_REDIS_NAMESPACE", namespace.clone());
                Some((url.trim().to_owned(), namespace))
            }
            _ => None,
        };
        // The embedded mode's services call each other in-process, the distributed mode's over
        // HTTP, as `marquee up` and separate processes do.
        let in_process_calls = matches!(broker, Broker::InProcess)
            && settings.parse_or("MARQUEE_IN_PROCESS_CALLS", true).unwrap_or(true);
        let running = system::start(SystemConfig {
            storage: storage.system_storage(),
            broker,
            in_process_calls,
            settings: settings.clone(),
            gateway_addr: "127.0.0.1:0".parse()?,
            clock: clock.clone(),
            via: routes.iter().map(|(service, proxy)| (*service, proxy.url.clone())).collect(),
        })
        .await?;
        Ok(Self {
            clock,
            gateway: running.gateway_url.clone(),
            settings: running.settings.clone(),
            running: Some(running),
            http: reqwest::Client::new(),
            storage,
            rabbit,
            redis,
        })
    }

    fn running(&self) -> &RunningSystem {
        self.running.as_ref().expect("the system is running")
    }

    /// A service's own base URL, to call it without the gateway.
    pub fn service_url(&self, service: &str) -> String {
        self.running().urls.get(service).cloned().unwrap_or_else(|| panic!("no service {service}"))
    }

    /// Start another replica of `service` on the same database and broker; its base URL.
    pub async fn start_replica(&self, service: &'static str) -> String {
        self.running().start_replica(service).await.expect("starting a replica")
    }

    pub fn bus(&self, service: &str) -> Arc<dyn EventBus> {
        self.running().buses.get(service).cloned().unwrap_or_else(|| panic!("no bus for {service}"))
    }

    pub fn db(&self, service: &str) -> Db {
        self.running().databases.get(service).cloned().unwrap_or_else(|| panic!("no database for {service}"))
    }

    /// A bus for a test's own consumer: the shared in-process bus, or a new RabbitMQ connection
    /// in this test's namespace.
    pub fn new_bus(&self) -> Arc<dyn EventBus> {
        match &self.rabbit {
            Some((url, ns)) => Arc::new(events::RabbitBus::new(
                url,
                ns,
                events::RetryPolicy::from_settings(&self.settings).expect("retry settings"),
            )),
            None => self.bus("identity"),
        }
    }

    /// The RabbitMQ URL and namespace of this test, in the distributed mode.
    pub fn amqp(&self) -> Option<(String, String)> {
        self.rabbit.clone()
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Answer {
        let mut req = self.http.request(method, url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, headers, body }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(reqwest::Method::GET, &self.url(path), None, token).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        self.request(reqwest::Method::POST, &self.url(path), Some(body), token).await
    }

    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> Answer {
        self.request(reqwest::Method::PATCH, &self.url(path), Some(body), token).await
    }

    /// POST a raw body with a content type (malformed JSON and the like).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &'static str) -> Answer {
        let res = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = serde_json::from_slice(&res.bytes().await.expect("body")).unwrap_or(Value::Null);
        Answer { status, headers, body }
    }

    /// PUT/DELETE and friends to any URL (a service directly, or `self.gateway` + path).
    pub async fn send(&self, method: &str, url: &str, body: Option<Value>, token: Option<&str>) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        self.request(method, url, body, token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(reqwest::Method::DELETE, &self.url(path), None, token).await
    }

    /// Register a user; panics unless it is a 201. Returns the session.
    pub async fn register(&self, email: &str) -> Value {
        let a = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": "correct-horse-1", "name": "Test User"}),
                None,
            )
            .await;
        assert_eq!(a.status, 201, "register {email}: {}", a.body);
        a.body
    }

    /// A new user's access token.
    pub async fn user_token(&self) -> (String, String) {
        let session = self.register(&format!("user-{}@example.com", uuid::Uuid::new_v4().simple())).await;
        let token = session["access_token"].as_str().expect("access token").to_owned();
        let id = session["user"]["id"].as_str().expect("user id").to_owned();
        (token, id)
    }

    /// A service token for `service`, as that service would get one from identity.
    pub async fn service_token(&self, service: &str) -> String {
        let url = format!("{}/internal/service-token", self.service_url("identity"));
        let secret = self.settings.get("MARQUEE_SERVICE_SECRET").expect("a service secret");
        let credential = platform::auth::service_credential(secret, service);
        let a = self
            .request(
                reqwest::Method::POST,
                &url,
                Some(json!({"service": service, "secret": credential})),
                None,
            )
            .await;
        assert_eq!(a.status, 200, "service token: {}", a.body);
        a.body["access_token"].as_str().expect("access token").to_owned()
    }

    /// POST with extra headers (an Idempotency-Key).
    pub async fn post_with(
        &self,
        path: &str,
        body: Value,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = serde_json::from_slice(&res.bytes().await.expect("body")).unwrap_or(Value::Null);
        Answer { status, headers, body }
    }

    pub async fn admin_token(&self) -> String {
        let a = self
            .post("/api/v1/auth/login", json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}), None)
            .await;
        assert_eq!(a.status, 200, "admin login: {}", a.body);
        a.body["access_token"].as_str().expect("access token").to_owned()
    }

    /// The ledger check (`marquee check ledger`) once the system has settled: it is run again
    /// until it is clean or `settle` has passed (refunds owed are carried out by the command
    /// relays meanwhile), and the last report is returned.
    pub async fn ledger(&self, settle: Duration) -> marquee::ledger::LedgerReport {
        let admin = self.admin_token().await;
        let deadline = tokio::time::Instant::now() + settle;
        loop {
            let report = marquee::ledger::check(&self.http, &self.gateway, &admin)
                .await
                .expect("the ledger check runs");
            if report.is_clean() || tokio::time::Instant::now() >= deadline {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Panic with every violation unless the ledger is clean within `settle`.
    pub async fn assert_ledger_clean(&self, settle: Duration) -> marquee::ledger::LedgerReport {
        let report = self.ledger(settle).await;
        assert!(report.is_clean(), "{}:\n{}", report.summary(), report.violations.join("\n"));
        report
    }

    /// Stop the services (graceful), keeping the storage until drop.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

/// Remove a RabbitMQ namespace's exchange and the named services' queues.
pub fn delete_rabbit_namespace(url: &str, namespace: &str, services: &[&str]) {
    let (url, namespace) = (url.to_owned(), namespace.to_owned());
    let services: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let names: Vec<&str> = services.iter().map(String::as_str).collect();
        rt.block_on(events::RabbitBus::new(&url, &namespace, Default::default()).delete_topology(&names))
    })
    .join();
}

impl Drop for TestSystem {
    fn drop(&mut self) {
        if let Some((url, namespace)) = self.redis.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                // The client is made inside the runtime: it needs a reactor.
                rt.block_on(async {
                    let cache = platform::cache::RedisCache::new(&url, &namespace)?;
                    platform::cache::Cache::clear(&cache).await
                })
            })
            .join();
        }
        if let Some((url, ns)) = self.rabbit.take() {
            let mut services: Vec<&str> = contracts::services::SERVICES.iter().map(|s| s.name).collect();
            services.push("probe");
            delete_rabbit_namespace(&url, &ns, &services);
        }
    }
}

/// Poll `check` until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A bus that can be switched off: publishing fails while it is down, as with a stopped broker.
/// It also counts what it published, to catch an event sent twice.
pub struct FlakyBus {
    pub inner: Arc<dyn EventBus>,
    pub down: std::sync::atomic::AtomicBool,
    pub published: std::sync::atomic::AtomicUsize,
}

impl FlakyBus {
    pub fn new(inner: Arc<dyn EventBus>) -> Self {
        Self { inner, down: Default::default(), published: Default::default() }
    }

    pub fn published(&self) -> usize {
        self.published.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl EventBus for FlakyBus {
    async fn publish(&self, event: &events::CloudEvent) -> anyhow::Result<()> {
        anyhow::ensure!(!self.down.load(std::sync::atomic::Ordering::SeqCst), "broker unreachable");
        self.inner.publish(event).await?;
        self.published.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn subscribe(
        &self,
        consumer: Arc<events::Consumer>,
        shutdown: tokio_util::sync::CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> anyhow::Result<()> {
        self.inner.subscribe(consumer, shutdown, tasks).await
    }
    async fn subscribe_local(
        &self,
        service: &str,
        event_types: &[&str],
        handler: Arc<dyn events::LocalHandler>,
        shutdown: tokio_util::sync::CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> anyhow::Result<()> {
        self.inner.subscribe_local(service, event_types, handler, shutdown, tasks).await
    }
    async fn dead_letter_count(&self, consumer: &str) -> anyhow::Result<u64> {
        self.inner.dead_letter_count(consumer).await
    }
    async fn redrive(&self, consumer: &str) -> anyhow::Result<u64> {
        self.inner.redrive(consumer).await
    }
    async fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.down.load(std::sync::atomic::Ordering::SeqCst), "broker unreachable");
        self.inner.check().await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(super::with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(
            super::with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
