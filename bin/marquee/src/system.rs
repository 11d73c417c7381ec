//! Several services in one process, each on its own port: the embedded mode (`marquee up`:
//! SQLite files, the in-process bus, and calls between services straight into the callee's
//! router) and the tests' distributed mode (PostgreSQL, RabbitMQ and real HTTP between the
//! services, with the same wiring).

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use events::{EventBus, InProcessBus, RabbitBus, RetryPolicy};
use platform::{
    Platform, Settings,
    db::{Db, DbConfig},
    transport::{Http, InProcess},
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::services;

#[derive(Debug, Clone)]
pub enum Storage {
    /// A SQLite file per service in this directory.
    Sqlite { data_dir: PathBuf },
    /// One PostgreSQL database, a schema per service.
    Postgres { url: String },
}

#[derive(Debug, Clone)]
pub enum Broker {
    InProcess,
    RabbitMq { url: String, namespace: String },
}

#[derive(Debug, Clone)]
pub struct SystemConfig {
    pub storage: Storage,
    pub broker: Broker,
    /// Calls from one service (or the gateway) to another go into the callee's router instead
    /// of over loopback TCP ([`platform::transport`]); the listeners still serve outside callers.
    pub in_process_calls: bool,
    /// Everything else (`MARQUEE_*`); service URLs and the service secret are filled in.
    pub settings: Settings,
    /// Where the gateway listens (port 0 for any).
    pub gateway_addr: SocketAddr,
    /// The business rules' time, shared by every service (tests move it forward).
    pub clock: platform::clock::Clock,
    /// Services the others reach at another address than their own (a test's fault proxy in
    /// front of them); empty otherwise.
    pub via: Vec<(&'static str, String)>,
}

pub struct RunningSystem {
    config: SystemConfig,
    in_process: Arc<dyn EventBus>,
    pub gateway_url: String,
    /// Each service's own base URL (the gateway's too).
    pub urls: BTreeMap<&'static str, String>,
    pub settings: Settings,
    pub buses: BTreeMap<&'static str, Arc<dyn EventBus>>,
    pub databases: BTreeMap<&'static str, Db>,
    /// The routers calls reach in-process (empty without `in_process_calls`).
    routers: InProcess,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl RunningSystem {
    /// Stop accepting, let requests in flight and background loops finish, close the pools.
    pub async fn stop(self) {
        self.shutdown.cancel();
        // Calls in-process stop with the listeners (and the routers, which hold every
        // service's state, are let go).
        self.routers.clear();
        self.tasks.close();
        self.tasks.wait().await;
        for db in self.databases.values() {
            db.close().await;
        }
    }

    fn wiring(&self) -> Wiring<'_> {
        Wiring {
            in_process: &self.in_process,
            routers: &self.routers,
            shutdown: &self.shutdown,
            tasks: &self.tasks,
        }
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Start one more replica of `service` on the same database and broker (tests of what
    /// replicas share); returns its base URL. The gateway keeps its configured upstreams.
    pub async fn start_replica(&self, service: &'static str) -> anyhow::Result<String> {
        let (listener, url) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let (app, _db, _bus) = build_one(service, &self.config, &self.settings, self.wiring()).await?;
        if self.config.in_process_calls {
            self.routers.register(&url, app.clone());
        }
        self.tasks.spawn(platform::server::serve(listener, app, self.shutdown.clone()));
        Ok(url)
    }
}

/// What every service of one running system shares.
struct Wiring<'a> {
    in_process: &'a Arc<dyn EventBus>,
    routers: &'a InProcess,
    shutdown: &'a CancellationToken,
    tasks: &'a TaskTracker,
}

/// Build one service of the system: its database, its bus, its application.
async fn build_one(
    service: &'static str,
    config: &SystemConfig,
    settings: &Settings,
    wiring: Wiring<'_>,
) -> anyhow::Result<(axum::Router, Db, Arc<dyn EventBus>)> {
    let Wiring { in_process, routers, shutdown, tasks } = wiring;
    let retry = RetryPolicy::from_settings(settings)?;
    let db_config = match &config.storage {
        Storage::Sqlite { data_dir } => DbConfig::sqlite(data_dir, service),
        Storage::Postgres { url } => DbConfig::at(
            url.clone(),
            Some(service.to_owned()),
            settings.parse_or("MARQUEE_DATABASE_MAX_CONNECTIONS", 10)?,
        ),
    };
    let db = Db::connect(&db_config).await.with_context(|| format!("{service} database"))?;
    // Like separate processes: each service has its own broker connection.
    let bus: Arc<dyn EventBus> = match &config.broker {
        Broker::InProcess => in_process.clone(),
        Broker::RabbitMq { url, namespace } => Arc::new(RabbitBus::new(url, namespace, retry)),
    };
    let http = Http::new(platform::client::http_client()).with_in_process(routers.clone());
    let mut platform = Platform::with_http(service, settings.clone(), shutdown.clone(), http)?;
    platform.clock = config.clock.clone();
    let background = platform.tasks.clone();
    let app = services::build(service, platform, db.clone(), bus.clone())
        .await
        .with_context(|| format!("starting {service}"))?;
    // The system's stop waits for the service's background loops (relay, consumers) too.
    tasks.spawn(async move {
        background.close();
        background.wait().await;
    });
    Ok((app, db, bus))
}

async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    Ok((listener, format!("http://{local}")))
}

pub fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Start every service and the gateway.
pub async fn start(config: SystemConfig) -> anyhow::Result<RunningSystem> {
    platform::install_crypto_provider();
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut settings = config.settings.clone();
    if settings.get("MARQUEE_SERVICE_SECRET").is_none() {
        settings.set("MARQUEE_SERVICE_SECRET", random_secret());
    }
    // Media objects and uploads live under the data dir unless configured elsewhere.
    if let Storage::Sqlite { data_dir } = &config.storage
        && settings.get("MARQUEE_DATA_DIR").is_none()
    {
        settings.set("MARQUEE_DATA_DIR", data_dir.display().to_string());
    }

    // Bind everything first so every service knows every URL before any starts.
    let mut listeners = Vec::new();
    let mut urls = BTreeMap::new();
    for &service in services::SERVICES {
        let (listener, url) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let reached_at = config.via.iter().find(|(s, _)| *s == service).map_or(&url, |(_, via)| via);
        settings.set(Settings::service_key(service, "URL"), reached_at.clone());
        urls.insert(service, url);
        listeners.push((service, listener));
    }
    let (gateway_listener, gateway_url) = bind(config.gateway_addr).await?;
    urls.insert(gateway::SERVICE, gateway_url.clone());

    let retry = RetryPolicy::from_settings(&settings)?;
    let held = Arc::new(InProcessBus::held(retry));
    let in_process: Arc<dyn EventBus> = held.clone();
    if let Broker::RabbitMq { url, namespace } = &config.broker {
        RabbitBus::new(url, namespace, retry).declare_consumers(&services::consumers()).await?;
    }
    let mut buses = BTreeMap::new();
    let mut databases = BTreeMap::new();
    let routers = InProcess::default();
    for (service, listener) in listeners {
        let wiring =
            Wiring { in_process: &in_process, routers: &routers, shutdown: &shutdown, tasks: &tasks };
        let (app, db, bus) = build_one(service, &config, &settings, wiring).await?;
        if config.in_process_calls {
            routers.register(&urls[service], app.clone());
        }
        tasks.spawn(platform::server::serve(listener, app, shutdown.clone()));
        buses.insert(service, bus);
        databases.insert(service, db);
    }
    // Every service has subscribed: the events of their seeding reach all of them.
    held.open();

    let http = Http::new(platform::client::http_client()).with_in_process(routers.clone());
    let platform = Platform::with_http(gateway::SERVICE, settings.clone(), shutdown.clone(), http)?;
    let app = gateway::build(&platform)?;
    tasks.spawn(platform::server::serve(gateway_listener, app, shutdown.clone()));

    Ok(RunningSystem {
        config,
        in_process,
        gateway_url,
        urls,
        settings,
        buses,
        databases,
        routers,
        shutdown,
        tasks,
    })
}
