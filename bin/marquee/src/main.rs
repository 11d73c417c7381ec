//! `marquee`: every service of the platform in one binary.
//!
//! - `marquee up` — the whole system in one process on SQLite (what `cargo run --release` does);
//! - `marquee serve SERVICE` — one service, configured from `MARQUEE_*` variables;
//! - `marquee migrate SERVICE` — apply a service's migrations and exit.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use events::{EventBus, RabbitBus, RetryPolicy};
use marquee::{
    services,
    system::{self, Broker, Storage, SystemConfig},
};
use platform::{
    Platform, Settings,
    db::{Db, DbConfig},
};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "marquee", version, about = "A cinema chain and streaming service backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Every service in one process, on SQLite, with the in-process event bus.
    Up {
        /// Default: MARQUEE_DATA_DIR, else ./data.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Default: MARQUEE_PORT, else 8080.
        #[arg(long)]
        port: Option<u16>,
        /// Start without demo data.
        #[arg(long)]
        no_demo: bool,
    },
    /// One service, configured from MARQUEE_* variables.
    Serve {
        service: String,
        /// Default: MARQUEE_PORT, else the service's port in docs/architecture.md (gateway 8080,
        /// identity 8081, ...).
        #[arg(long)]
        port: Option<u16>,
        /// Default: MARQUEE_BIND, else 0.0.0.0.
        #[arg(long)]
        bind: Option<std::net::IpAddr>,
    },
    /// Drive a running deployment and print throughput and latency percentiles.
    Loadtest(marquee::loadtest::LoadtestArgs),
    /// Verify a running deployment (exit status 1 when something is wrong).
    Check {
        #[command(subcommand)]
        what: Check,
    },
    /// Operate on the event delivery.
    Events {
        #[command(subcommand)]
        what: Events,
    },
    /// Back up every service, list the backups, restore one (through the backup service's API,
    /// as an admin), with a progress bar.
    Backup {
        #[command(subcommand)]
        what: Backup,
    },
    /// Manage identity's signing keys.
    Keys {
        #[command(subcommand)]
        what: Keys,
    },
    /// Apply a service's migrations and exit.
    Migrate {
        service: String,
        /// For the embedded mode: migrate `<DIR>/<service>.db` when no database URL is set
        /// (default: MARQUEE_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Events {
    /// Send dead-lettered events back to their consumers (once what made them fail is fixed):
    /// on RabbitMQ when MARQUEE_AMQP_URL is set, else in the embedded mode's data dir.
    Redrive {
        /// Only this consuming service (default: every one).
        #[arg(long)]
        service: Option<String>,
        /// The embedded mode's data dir (default: MARQUEE_DATA_DIR, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Keys {
    /// Print SERVICE's own credential, derived from MARQUEE_SERVICE_SECRET: give it to that
    /// service as MARQUEE_SERVICE_CREDENTIAL, and the secret to identity alone.
    ServiceCredential { service: String },
    /// Make a new signing key: published at once, signing everywhere after the activation delay
    /// (MARQUEE_KEY_ACTIVATION_SECONDS), while the old keys stay published until their tokens
    /// have expired. On identity's database (MARQUEE_IDENTITY_DATABASE_URL or
    /// MARQUEE_DATABASE_URL), else `<DIR>/identity.db`.
    Rotate {
        /// The embedded mode's data dir (default: MARQUEE_DATA_DIR, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// A deployment's gateway and an admin's credentials.
#[derive(clap::Args)]
struct AdminArgs {
    /// The gateway, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "MARQUEE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An admin's email (default: MARQUEE_ADMIN_EMAIL).
    #[arg(long, env = "MARQUEE_ADMIN_EMAIL")]
    email: String,
    /// The admin's password (default: MARQUEE_ADMIN_PASSWORD).
    #[arg(long, env = "MARQUEE_ADMIN_PASSWORD", hide_env_values = true)]
    password: String,
}

#[derive(Subcommand)]
enum Check {
    /// Money, seats and tickets agree: every booking holds what it should, every sold seat is
    /// one confirmed booking's, no ticket of an ended booking is valid, every subscription
    /// period is charged once.
    Ledger {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
enum Backup {
    /// Back up every service now, to the object store; follows it to its end (exit status 1
    /// when it fails).
    Create {
        #[command(flatten)]
        admin: AdminArgs,
        /// Print the backup's id and return at once.
        #[arg(long)]
        detach: bool,
    },
    /// The backups, newest first (those in the object store from before, too).
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Restore a backup into this deployment, whose services must be empty (a fresh one, e.g.
    /// `marquee up --no-demo` on a new data dir); follows it to its end.
    Restore {
        /// The backup's id (`marquee backup list`).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        detach: bool,
    },
}

async fn backup(what: Backup) -> anyhow::Result<()> {
    use marquee::backups;
    let sign_in = |a: AdminArgs| async move { backups::Admin::sign_in(&a.url, &a.email, &a.password).await };
    let (ended, status) = match what {
        Backup::List { admin } => {
            for line in backups::list(&sign_in(admin).await?).await? {
                say(&line);
            }
            return Ok(());
        }
        Backup::Create { admin, detach } => {
            let ended = backups::create(&sign_in(admin).await?, detach).await?;
            let status = ended["status"].as_str().unwrap_or("?").to_owned();
            (ended, status)
        }
        Backup::Restore { id, admin, detach } => {
            let ended = backups::restore(&sign_in(admin).await?, &id, detach).await?;
            let status =
                ended["restore"]["status"].as_str().or(ended["status"].as_str()).unwrap_or("?").to_owned();
            (ended, status)
        }
    };
    say(&serde_json::to_string_pretty(&ended)?);
    if status == "failed" {
        platform::telemetry::flush_logs();
        std::process::exit(1);
    }
    Ok(())
}

/// Print a line for the person at the terminal; a closed stdout is no reason to fail.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// mimalloc instead of the system allocator: HTTP handling allocates and frees many small
/// buffers across threads, where glibc's malloc spent a quarter of the gateway's CPU (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::telemetry::init_logging();
    let outcome = run().await;
    platform::telemetry::flush_logs();
    outcome
}

async fn run() -> anyhow::Result<()> {
    platform::install_crypto_provider();
    let cli = Cli::parse();
    // Flags win over MARQUEE_* variables, which win over marquee.toml.
    let settings = Settings::load()?;
    let command = cli.command.unwrap_or(Command::Up { data_dir: None, port: None, no_demo: false });
    let data_dir =
        |flag: Option<PathBuf>| flag.or_else(|| settings.get("MARQUEE_DATA_DIR").map(PathBuf::from));
    match command {
        Command::Up { data_dir: dir, port, no_demo } => {
            let port = port.map_or_else(|| settings.parse_or("MARQUEE_PORT", 8080), Ok)?;
            let dir = data_dir(dir).unwrap_or_else(|| "./data".into());
            up(settings, dir, port, no_demo).await
        }
        Command::Serve { service, port, bind } => {
            let port =
                port.map_or_else(|| settings.parse_or("MARQUEE_PORT", services::default_port(&service)), Ok)?;
            let bind = bind.map_or_else(|| settings.parse_or("MARQUEE_BIND", [0, 0, 0, 0].into()), Ok)?;
            serve(settings, &service, SocketAddr::new(bind, port)).await
        }
        Command::Loadtest(args) => {
            let results = marquee::loadtest::run(args.clone()).await?;
            marquee::loadtest::print(&args, &results);
            Ok(())
        }
        Command::Check { what: Check::Ledger { admin: AdminArgs { url, email, password } } } => {
            let http = reqwest::Client::new();
            let token = marquee::ledger::admin_token(&http, &url, &email, &password).await?;
            let report = marquee::ledger::check(&http, &url, &token).await?;
            for violation in &report.violations {
                say(&format!("  {violation}"));
            }
            say(&report.summary());
            if !report.is_clean() {
                platform::telemetry::flush_logs();
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Backup { what } => backup(what).await,
        Command::Events { what: Events::Redrive { service, data_dir: dir } } => {
            let dir = data_dir(dir).unwrap_or_else(|| "./data".into());
            redrive(&settings, service.as_deref(), &dir).await
        }
        Command::Keys { what: Keys::ServiceCredential { service } } => {
            let service = services::static_name(&service)?;
            anyhow::ensure!(service != gateway::SERVICE, "the gateway calls no service as itself");
            let secret = settings.get("MARQUEE_SERVICE_SECRET").unwrap_or_default().trim();
            anyhow::ensure!(
                !secret.is_empty(),
                "set MARQUEE_SERVICE_SECRET to the deployment's service secret"
            );
            say(&platform::auth::service_credential(secret, service));
            Ok(())
        }
        Command::Keys { what: Keys::Rotate { data_dir: dir } } => {
            let dir = data_dir(dir).unwrap_or_else(|| "./data".into());
            rotate_keys(&settings, &dir).await
        }
        Command::Migrate { service, data_dir: dir } => {
            let dir = data_dir(dir);
            migrate(settings, &service, dir).await
        }
    }
}

async fn up(mut settings: Settings, data_dir: PathBuf, port: u16, no_demo: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let stop = platform::server::shutdown_signal();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    // First start: make an admin unless one is configured, and say its password once.
    let first_start = !data_dir.join("identity.db").exists();
    let mut made_admin = None;
    if first_start && settings.get("MARQUEE_ADMIN_EMAIL").is_none() {
        let password = system::random_secret()[..20].to_owned();
        settings.set("MARQUEE_ADMIN_EMAIL", "admin@marquee.local");
        settings.set("MARQUEE_ADMIN_PASSWORD", password.clone());
        made_admin = Some(("admin@marquee.local", password));
    }
    if !no_demo && settings.get("MARQUEE_DEMO").is_none() {
        // Loaded only into an empty catalog, so later starts keep what the admin changed.
        settings.set("MARQUEE_DEMO", "1");
    }
    let mail_line = match settings.get("MARQUEE_SMTP_URL").filter(|u| !u.is_empty()) {
        Some(_) => "Emails go out through MARQUEE_SMTP_URL".to_owned(),
        None => {
            let mail = settings.get("MARQUEE_MAIL_DIR").map_or_else(|| data_dir.join("mail"), PathBuf::from);
            format!(
                "Emails are written to {} as .eml files (set MARQUEE_SMTP_URL to send them)",
                mail.display()
            )
        }
    };
    let in_process_calls = settings.parse_or("MARQUEE_IN_PROCESS_CALLS", true)?;
    let running = system::start(SystemConfig {
        storage: Storage::Sqlite { data_dir: data_dir.clone() },
        broker: Broker::InProcess,
        in_process_calls,
        settings,
        gateway_addr: SocketAddr::from(([0, 0, 0, 0], port)),
        clock: platform::clock::Clock::system(),
        via: Vec::new(),
    })
    .await?;
    let url = format!("http://127.0.0.1:{port}");
    say(&mail_line);
    say(&format!(
        "Marquee is up at {url} (data in {}, ready in {} ms)",
        data_dir.display(),
        started.elapsed().as_millis()
    ));
    if let Some((email, password)) = made_admin {
        say(&format!("Admin login (shown once): {email} / {password}"));
    }
    stop.await;
    say("Shutting down...");
    running.stop().await;
    Ok(())
}

/// Secrets that ship in examples and must never guard a deployment.
const PLACEHOLDER_SECRETS: &[&str] =
    &["change-me-to-a-long-random-string", "change-me", "changeme", "secret"];

/// The service secret lets identity check every service's credential (and so its holder mint
/// any of them); a service's credential lets it get service tokens as itself (and keys its
/// idempotency hashes). Outside `marquee up` (which makes a random secret), a missing, short or
/// placeholder one is refused at start rather than discovered by an attacker: identity needs the
/// secret, every other service its own credential or the secret to derive it from.
fn check_service_secret(settings: &Settings, service: &str) -> anyhow::Result<()> {
    let strong = |value: &str| {
        let value = value.trim();
        value.len() >= 32 && !PLACEHOLDER_SECRETS.iter().any(|p| value.eq_ignore_ascii_case(p))
    };
    let secret = settings.get("MARQUEE_SERVICE_SECRET").unwrap_or_default();
    if service == identity::SERVICE {
        anyhow::ensure!(
            strong(secret),
            "MARQUEE_SERVICE_SECRET must be set to a random string of at least 32 characters for \
             identity (e.g. `openssl rand -hex 32`); the example placeholder is refused"
        );
        return Ok(());
    }
    let credential = settings.get("MARQUEE_SERVICE_CREDENTIAL").unwrap_or_default();
    anyhow::ensure!(
        strong(credential) || (credential.trim().is_empty() && strong(secret)),
        "{service} needs MARQUEE_SERVICE_CREDENTIAL, its own credential (`marquee keys \
         service-credential {service}` where MARQUEE_SERVICE_SECRET is set), or the service secret \
         itself (MARQUEE_SERVICE_SECRET, at least 32 random characters; not the example placeholder)"
    );
    Ok(())
}

async fn serve(settings: Settings, service: &str, addr: SocketAddr) -> anyhow::Result<()> {
    let stop = platform::server::shutdown_signal();
    let service = services::static_name(service)?;
    if service != gateway::SERVICE {
        check_service_secret(&settings, service)?;
    }
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let platform = Platform::new(service, settings.clone(), shutdown.clone())?;
    let tasks = platform.tasks.clone();
    let mut db = None;
    let app = if service == gateway::SERVICE {
        gateway::build(&platform)?
    } else {
        let pool = Db::connect(&DbConfig::from_settings(&settings, service)?).await?;
        let retry = RetryPolicy::from_settings(&settings)?;
        let bus: Arc<dyn EventBus> = match settings.get("MARQUEE_AMQP_URL") {
            Some(url) => {
                let rabbit =
                    RabbitBus::new(url, settings.get("MARQUEE_AMQP_NAMESPACE").unwrap_or("marquee"), retry);
                rabbit.declare_consumers(&services::consumers()).await?;
                Arc::new(rabbit)
            }
            // An in-process bus would accept every event with nobody in this process to hear
            // it: the relay would mark them sent and they would be lost. Only `marquee up`,
            // which runs every consumer in the same process, may use one.
            None => anyhow::bail!(
                "MARQUEE_AMQP_URL is not set: `marquee serve` needs RabbitMQ to carry {service}'s events \
                 (use `marquee up` to run every service in one process without a broker)"
            ),
        };
        db = Some(pool.clone());
        services::build(service, platform, pool, bus).await?
    };
    tracing::info!(service, %addr, "serving");
    let server = tokio::spawn(platform::server::serve(listener, app, shutdown.clone()));
    stop.await;
    tracing::info!(service, "shutting down");
    shutdown.cancel();
    server.await??;
    tasks.close();
    tasks.wait().await;
    if let Some(db) = db {
        db.close().await;
    }
    Ok(())
}

/// `marquee events redrive`: every consuming service's dead letters (or one's) back in its queue.
async fn redrive(settings: &Settings, only: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let consumers: Vec<&str> = services::consumers()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| only.is_none_or(|o| o == *name))
        .collect();
    anyhow::ensure!(!consumers.is_empty(), "no consuming service is called {}", only.unwrap_or_default());
    for service in consumers {
        let n = match settings.get("MARQUEE_AMQP_URL") {
            Some(url) => {
                let namespace = settings.get("MARQUEE_AMQP_NAMESPACE").unwrap_or("marquee");
                RabbitBus::new(url, namespace, RetryPolicy::from_settings(settings)?).redrive(service).await?
            }
            None => {
                let file = data_dir.join(format!("{service}.db"));
                if !file.exists() {
                    continue;
                }
                let db = Db::connect(&DbConfig::sqlite(data_dir, service)).await?;
                let n = events::memory::redrive(&db, service).await?;
                db.close().await;
                n
            }
        };
        say(&format!("{service}: {n} dead-lettered events sent back"));
    }
    Ok(())
}

/// `marquee keys rotate`: a new signing key in identity's database.
async fn rotate_keys(settings: &Settings, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let config = match DbConfig::from_settings(settings, "identity") {
        Ok(config) => config,
        Err(_) => {
            anyhow::ensure!(
                data_dir.join("identity.db").exists(),
                "no identity database: set MARQUEE_IDENTITY_DATABASE_URL (or MARQUEE_DATABASE_URL), or pass --data-dir"
            );
            DbConfig::sqlite(data_dir, "identity")
        }
    };
    let db = Db::connect(&config).await?;
    db.migrate(&services::migrator("identity")?).await?;
    let kid = identity::keys::add_key(&db, platform::time::now_ms()).await?;
    let delay: u64 = settings.parse_or("MARQUEE_KEY_ACTIVATION_SECONDS", 60)?;
    say(&format!("made signing key {kid}: published now, signing within {} s", delay + 60));
    db.close().await;
    Ok(())
}

async fn migrate(settings: Settings, service: &str, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let migrator = services::migrator(service)?;
    let config = match (DbConfig::from_settings(&settings, service), data_dir) {
        (Ok(config), _) => config,
        (Err(_), Some(dir)) => {
            std::fs::create_dir_all(&dir)?;
            DbConfig::sqlite(&dir, service)
        }
        (Err(e), None) => return Err(e.context("or pass --data-dir for the embedded mode")),
    };
    let db = Db::connect(&config).await?;
    db.migrate(&migrator).await?;
    say(&format!("{service}: migrations applied"));
    db.close().await;
    Ok(())
}
