//! One database type for both engines.
//!
//! Each service owns its database: a SQLite file per service under the data dir in the embedded
//! mode; PostgreSQL in the distributed mode, from `MARQUEE_<SERVICE>_DATABASE_URL`, or from a
//! shared `MARQUEE_DATABASE_URL` with one schema per service. SQL goes through sqlx's Any driver,
//! so one query text runs on both (STACK.md lists what that driver carries: ids are TEXT, times
//! BIGINT epoch milliseconds, flags INTEGER 0/1, money BIGINT cents).

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use sqlx::{
    AnyPool, AssertSqlSafe, Executor,
    any::AnyPoolOptions,
    migrate::{Migration, Migrator},
};

use crate::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Where a service's data lives.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: String,
    /// PostgreSQL schema to use (and create) when databases are shared between services.
    pub schema: Option<String>,
    pub max_connections: u32,
}

impl DbConfig {
    /// The embedded mode: `<data_dir>/<service>.db`.
    pub fn sqlite(data_dir: &Path, service: &str) -> Self {
        let path = data_dir.join(format!("{service}.db"));
        Self { url: format!("sqlite://{}?mode=rwc", path.display()), schema: None, max_connections: 1 }
    }

    /// The distributed mode, from settings: the service's own URL wins over the shared one.
    pub fn from_settings(settings: &Settings, service: &str) -> anyhow::Result<Self> {
        // 10 connections each: 12 services x 10 stays well under PostgreSQL's default 100 per
        // replica pair; raise it with MARQUEE_DATABASE_MAX_CONNECTIONS.
        let max_connections = settings.parse_or("MARQUEE_DATABASE_MAX_CONNECTIONS", 10)?;
        if let Some(url) = settings.get(&Settings::service_key(service, "DATABASE_URL")) {
            return Ok(Self { url: url.to_owned(), schema: None, max_connections });
        }
        let url = settings.get("MARQUEE_DATABASE_URL").with_context(|| {
            format!("set {} or MARQUEE_DATABASE_URL", Settings::service_key(service, "DATABASE_URL"))
        })?;
        let schema = url.starts_with("postgres").then(|| service.to_owned());
        Ok(Self { url: url.to_owned(), schema, max_connections })
    }

    pub fn engine(&self) -> anyhow::Result<Engine> {
        if self.url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            anyhow::bail!("unsupported database URL (want sqlite: or postgres://): {}", redact(&self.url))
        }
    }
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    engine: Engine,
    /// Where it is, for a connection of its own outside the pool (a backup's read snapshot).
    /// Shared, not owned: every request's state clones the `Db`.
    url: Arc<str>,
}

impl Db {
    pub async fn connect(config: &DbConfig) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = config.engine()?;
        if let Some(schema) = &config.schema {
            ensure_schema(&config.url, schema).await?;
        }
        let schema = config.schema.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    match engine {
                        // WAL lets readers go on while one writer commits; NORMAL sync is safe
                        // under WAL and much faster than FULL; the busy timeout covers another
                        // process (a `marquee migrate`) holding the lock for a moment.
                        Engine::Sqlite => {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                            )
                            .await?;
                        }
                        Engine::Postgres => {
                            if let Some(schema) = schema {
                                conn.execute(AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
                                    .await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect(&config.url)
            .await
            .with_context(|| format!("connecting to {}", redact(&config.url)))?;
        Ok(Self { pool, engine, url: config.url.as_str().into() })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// ` FOR UPDATE SKIP LOCKED` on PostgreSQL, where replicas compete for rows; nothing on
    /// SQLite, where one process owns the file and the clause does not exist.
    pub fn skip_locked(&self) -> &'static str {
        match self.engine {
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
            Engine::Sqlite => "",
        }
    }

    /// ` FOR UPDATE` on PostgreSQL (a row lock until the transaction ends); nothing on SQLite,
    /// whose write transactions already exclude each other.
    pub fn for_update(&self) -> &'static str {
        match self.engine {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        }
    }

    /// ` FOR SHARE` on PostgreSQL: read a row and keep writers of it waiting until this
    /// transaction ends (readers share it); nothing on SQLite, where a write transaction already
    /// excludes every other writer.
    pub fn for_share(&self) -> &'static str {
        match self.engine {
            Engine::Postgres => " FOR SHARE",
            Engine::Sqlite => "",
        }
    }

    /// Apply pending migrations. On PostgreSQL, sqlx holds an advisory lock, so replicas
    /// starting together take turns. SQLite has no such lock: a process that races another one
    /// over the same file fails, waits, and finds the work done on a later try.
    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a transaction that reads first and writes later would otherwise fail with
    /// "database is locked" when another process (a replica) writes in between, since SQLite
    /// cannot wait out a lock upgrade. On PostgreSQL it is a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
    }

    pub async fn migrate(&self, migrator: &Migrator) -> anyhow::Result<()> {
        let mut attempt = 0u32;
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) if self.engine == Engine::Sqlite && attempt < 10 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "migrating the SQLite database failed; trying again");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => return Err(anyhow::anyhow!("{e}")).context("applying migrations"),
            }
        }
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.context("database ping")?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn ensure_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "invalid schema name {schema:?}"
    );
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    // Two replicas starting together may both try; the loser's error is harmless.
    let created = pool.execute(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))).await;
    if let Err(e) = created {
        let exists: Option<(String,)> = sqlx::query_as(
            "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = $1",
        )
        .bind(schema)
        .fetch_optional(&pool)
        .await?;
        if exists.is_none() {
            return Err(e).context("creating schema");
        }
    }
    pool.close().await;
    Ok(())
}

/// Several migration sets as one, ordered by version: the event tables (versions below 100)
/// and a service's own (100 and up) live in one `_sqlx_migrations` history.
pub fn combine(sets: &[&Migrator]) -> Migrator {
    let mut migrations: Vec<Migration> = sets.iter().flat_map(|m| m.iter().cloned()).collect();
    migrations.sort_by_key(|m| m.version);
    Migrator::with_migrations(migrations)
}

/// True when `error` is a unique-key violation: the database deciding a race for us.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// True when `error` is the database refusing a transaction that raced another one and may
/// simply be run again: a PostgreSQL deadlock (40P01) or serialization failure (40001), or
/// SQLite's "database is locked" that outlasted the busy timeout.
pub fn is_transient(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(e)) => {
            matches!(e.code().as_deref(), Some("40P01" | "40001" | "5" | "6"))
                || e.message().contains("database is locked")
        }
        _ => false,
    })
}

/// Run `work` (a whole transaction: begin, statements, commit) again when the database
/// refused it as a transient conflict ([`is_transient`]), up to five tries with a short, jittered
/// pause. `work` must have no effect outside its transaction before it commits.
pub async fn retry_transient<T, E, F, Fut>(mut work: F, transient: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        match work().await {
            Err(e) if attempt < 4 && transient(&e) => {
                attempt += 1;
                metrics::counter!("db_transaction_retries_total").increment(1);
                let pause = 5 * u64::from(attempt) + fastrand::u64(0..10);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}

/// A UUID stored as TEXT.
pub fn uuid_column(row: &sqlx::any::AnyRow, column: &str) -> anyhow::Result<uuid::Uuid> {
    use sqlx::Row;
    let text: String = row.try_get(column)?;
    text.parse().with_context(|| format!("stored {column} is not a UUID"))
}

/// A flag stored as INTEGER 0/1 (the Any driver carries no SQLite booleans).
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn the_service_url_wins_over_the_shared_one() {
        let s = Settings::default()
            .with("MARQUEE_DATABASE_URL", "postgres://h/all")
            .with("MARQUEE_IDENTITY_DATABASE_URL", "postgres://h/identity");
        let own = DbConfig::from_settings(&s, "identity").expect("configured");
        assert_eq!((own.url.as_str(), own.schema), ("postgres://h/identity", None));
        let shared = DbConfig::from_settings(&s, "catalog").expect("configured");
        assert_eq!(shared.schema.as_deref(), Some("catalog"));
        assert!(DbConfig::from_settings(&Settings::default(), "catalog").is_err());
    }
}
