//! One database type for both engines.
//!
//! Each service owns its database: a SQLite file per service under the data dir in the embedded
//! mode; PostgreSQL in the distributed mode, from `MARQUEE_<SERVICE>_DATABASE_URL`, or from a
//! shared `MARQUEE_DATABASE_URL` with one schema per service. SQL goes through sqlx's Any driver,
//! so one query text runs on both (STACK.md lists what that driver carries: ids are TEXT, times
//! BIGINT epoch milliseconds, flags INTEGER 0/1, money BIGINT cents).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

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
    /// A PostgreSQL streaming replica for reads that may be a moment behind ([`Db::replica`]).
    pub read_url: Option<String>,
}

/// Reader connections beside a SQLite file's one writer: in WAL mode they read the last commit
/// while the writer goes on, instead of queueing behind its transaction.
const SQLITE_READERS: u32 = 4;

impl DbConfig {
    /// The embedded mode: `<data_dir>/<service>.db`.
    pub fn sqlite(data_dir: &Path, service: &str) -> Self {
        let path = data_dir.join(format!("{service}.db"));
        Self::at(format!("sqlite://{}?mode=rwc", path.display()), None, 1)
    }

    /// `url` (with `schema` when databases are shared), no replica.
    pub fn at(url: String, schema: Option<String>, max_connections: u32) -> Self {
        Self { url, schema, max_connections, read_url: None }
    }

    /// The distributed mode, from settings: the service's own URL wins over the shared one, and
    /// so does its own read URL.
    pub fn from_settings(settings: &Settings, service: &str) -> anyhow::Result<Self> {
        // 10 connections each: 12 services x 10 stays well under PostgreSQL's default 100 per
        // replica pair; raise it with MARQUEE_DATABASE_MAX_CONNECTIONS.
        let max_connections = settings.parse_or("MARQUEE_DATABASE_MAX_CONNECTIONS", 10)?;
        let own_read = settings.get(&Settings::service_key(service, "DATABASE_READ_URL"));
        if let Some(url) = settings.get(&Settings::service_key(service, "DATABASE_URL")) {
            let read_url = own_read.map(str::to_owned);
            return Ok(Self { url: url.to_owned(), schema: None, max_connections, read_url });
        }
        let url = settings.get("MARQUEE_DATABASE_URL").with_context(|| {
            format!("set {} or MARQUEE_DATABASE_URL", Settings::service_key(service, "DATABASE_URL"))
        })?;
        let schema = url.starts_with("postgres").then(|| service.to_owned());
        let read_url = own_read.or(settings.get("MARQUEE_DATABASE_READ_URL")).map(str::to_owned);
        Ok(Self { url: url.to_owned(), schema, max_connections, read_url })
    }

    pub fn engine(&self) -> anyhow::Result<Engine> {
        engine_of(&self.url)
    }
}

fn engine_of(url: &str) -> anyhow::Result<Engine> {
    if url.starts_with("sqlite:") {
        Ok(Engine::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Engine::Postgres)
    } else {
        anyhow::bail!("unsupported database URL (want sqlite: or postgres://): {}", redact(url))
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
    /// The primary: every write, and reads inside a write's transaction.
    pub pool: AnyPool,
    /// Reads that see every committed write: SQLite's reader connections, else the primary.
    reader: AnyPool,
    /// Reads that may be a moment behind: the PostgreSQL replica while it answers, else `reader`.
    replica: Option<Arc<Replica>>,
    engine: Engine,
    /// Where it is, for a connection of its own outside the pool (a backup's read snapshot).
    /// Shared, not owned: every request's state clones the `Db`.
    url: Arc<str>,
}

/// A read replica, and whether it answered its last check.
#[derive(Debug)]
struct Replica {
    pool: AnyPool,
    up: AtomicBool,
}

/// How often a replica is checked. Reads that may lag go to it only while it answers: one that
/// is down (at start, or later) costs those reads at most this long of errors, then they go to
/// the primary until it is back.
const REPLICA_CHECK: Duration = Duration::from_secs(2);

impl Replica {
    /// Connects lazily, so a replica that is down does not keep the service from starting.
    async fn start(url: &str, options: AnyPoolOptions) -> anyhow::Result<Arc<Self>> {
        let pool = options
            .acquire_timeout(REPLICA_CHECK / 2)
            .connect_lazy(url)
            .with_context(|| format!("the read replica {}", redact(url)))?;
        let replica = Arc::new(Self { pool, up: AtomicBool::new(false) });
        replica.check().await;
        // The checks end with the last clone of the `Db` (or when it is closed).
        let watched = Arc::downgrade(&replica);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(REPLICA_CHECK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                match watched.upgrade() {
                    Some(replica) if !replica.pool.is_closed() => replica.check().await,
                    _ => return,
                }
            }
        });
        Ok(replica)
    }

    async fn check(&self) {
        let answered = tokio::time::timeout(REPLICA_CHECK / 2, sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .is_ok_and(|r| r.is_ok());
        let was = self.up.swap(answered, Ordering::Relaxed);
        match (was, answered) {
            (true, false) => tracing::warn!("the read replica does not answer; reads go to the primary"),
            (false, true) => tracing::info!("the read replica answers; reads that may lag go to it"),
            _ => {}
        }
    }
}

/// What a pool's connections are for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Primary,
    Reader,
}

/// A pool of `max` connections to `url`, each set up for `engine` and `role`.
async fn pool(
    url: &str,
    engine: Engine,
    schema: Option<String>,
    max: u32,
    role: Role,
) -> anyhow::Result<AnyPool> {
    pool_options(engine, schema, max, role)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))
}

fn pool_options(engine: Engine, schema: Option<String>, max: u32, role: Role) -> AnyPoolOptions {
    let mut options = AnyPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(10));
    if role == Role::Reader {
        // Readers are for busy moments: idle ones close, so an idle system stays small.
        options = options.min_connections(0).idle_timeout(Duration::from_secs(30));
    }
    options.after_connect(move |conn, _meta| {
        let schema = schema.clone();
        Box::pin(async move {
            match (engine, role) {
                // WAL lets readers go on while one writer commits; NORMAL sync is safe
                // under WAL and much faster than FULL; the busy timeout covers another
                // process (a `marquee migrate`) holding the lock for a moment.
                (Engine::Sqlite, Role::Primary) => {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .await?;
                }
                // The file is in WAL mode already (the writer connected first); a reader
                // that tried to write would be refused rather than take the write lock.
                (Engine::Sqlite, Role::Reader) => {
                    conn.execute("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;").await?;
                }
                (Engine::Postgres, _) => {
                    if let Some(schema) = schema {
                        conn.execute(AssertSqlSafe(format!("SET search_path TO \"{schema}\""))).await?;
                    }
                }
            }
            Ok(())
        })
    })
}

impl Db {
    pub async fn connect(config: &DbConfig) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = config.engine()?;
        // Checked before anything is connected: a service told to read from something that
        // cannot be a replica of its database does not start.
        if let Some(url) = &config.read_url {
            anyhow::ensure!(
                engine == Engine::Postgres && engine_of(url)? == Engine::Postgres,
                "a read URL is for a PostgreSQL replica of a PostgreSQL primary: {}",
                redact(url)
            );
        }
        if let Some(schema) = &config.schema {
            ensure_schema(&config.url, schema).await?;
        }
        let schema = config.schema.clone();
        let primary =
            pool(&config.url, engine, schema.clone(), config.max_connections, Role::Primary).await?;
        let reader = match engine {
            Engine::Sqlite => pool(&config.url, engine, None, SQLITE_READERS, Role::Reader).await?,
            Engine::Postgres => primary.clone(),
        };
        let replica = match &config.read_url {
            Some(url) => {
                let options = pool_options(engine, schema, config.max_connections, Role::Reader);
                Some(Replica::start(url, options).await?)
            }
            None => None,
        };
        Ok(Self { pool: primary, reader, replica, engine, url: config.url.as_str().into() })
    }

    /// For reads that must see every write committed before they began (a booking just made,
    /// by the same buyer): SQLite's reader connections, which do not wait for the writer, or
    /// PostgreSQL's primary.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// For reads that may be a moment behind (lists, catalogue pages, seat maps): the read
    /// replica when `MARQUEE_<SERVICE>_DATABASE_READ_URL` names one and it answers, else
    /// [`Db::reader`].
    pub fn replica(&self) -> &AnyPool {
        match &self.replica {
            Some(replica) if replica.up.load(Ordering::Relaxed) => &replica.pool,
            _ => &self.reader,
        }
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

    /// Apply pending migrations. On PostgreSQL, sqlx holds an advisory lock, so replicas
    /// starting together take turns. SQLite has no such lock: a process that races another one
    /// over the same file fails, waits, and finds the work done on a later try.
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
        if let Some(replica) = &self.replica {
            replica.pool.close().await;
        }
        self.reader.close().await;
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

    /// Issue 16: SQLite had one connection, so every read queued behind whatever write
    /// transaction held it. Readers now see the last commit while a write is open, and cannot
    /// write themselves.
    #[tokio::test]
    async fn sqlite_readers_read_the_last_commit_while_the_writer_works() {
        let dir = std::env::temp_dir().join(format!("marquee-readers-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a step of the test");
        let db = Db::connect(&DbConfig::sqlite(&dir, "svc")).await.expect("a step of the test");
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&db.pool).await.expect("a step of the test");
        sqlx::query("INSERT INTO t VALUES (1)").execute(&db.pool).await.expect("a step of the test");
        let mut open = db.begin_write().await.expect("a step of the test");
        sqlx::query("INSERT INTO t VALUES (2)").execute(&mut *open).await.expect("a step of the test");
        let count = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM t").fetch_one(db.reader());
        let seen = tokio::time::timeout(Duration::from_secs(2), count).await;
        assert_eq!(seen.expect("not queued behind the writer").expect("counted"), 1, "the last commit");
        open.commit().await.expect("a step of the test");
        let count = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM t").fetch_one(db.replica()).await;
        assert_eq!(count.expect("counted"), 2, "a commit is seen at once");
        let refused = sqlx::query("INSERT INTO t VALUES (3)").execute(db.reader()).await;
        assert!(refused.is_err(), "a reader does not write");
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A read URL beside a SQLite file, or one that is not PostgreSQL's, is refused with the
    /// setting's value named (password hidden), before any connection is made.
    #[tokio::test]
    async fn a_read_url_must_name_a_postgres_replica_of_a_postgres_primary() {
        let dir = std::env::temp_dir().join(format!("marquee-read-url-{}", uuid::Uuid::new_v4()));
        let mut sqlite = DbConfig::sqlite(&dir, "svc");
        sqlite.read_url = Some("postgres://u:secret@replica/db".into());
        let refused = Db::connect(&sqlite).await.expect_err("a SQLite primary has no replica");
        let said = format!("{refused:#}");
        assert!(said.contains("PostgreSQL replica") && !said.contains("secret"), "{said}");
        assert!(!dir.exists(), "nothing was opened");
        let mut postgres = DbConfig::at("postgres://u@127.0.0.1:1/db".into(), None, 1);
        postgres.read_url = Some("mysql://u@replica/db".into());
        let refused = Db::connect(&postgres).await.expect_err("not a PostgreSQL replica");
        assert!(format!("{refused:#}").contains("unsupported database URL"), "{refused:#}");
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
        let read = s
            .with("MARQUEE_DATABASE_READ_URL", "postgres://replica/all")
            .with("MARQUEE_IDENTITY_DATABASE_READ_URL", "postgres://replica/identity");
        let own = DbConfig::from_settings(&read, "identity").expect("configured");
        assert_eq!(own.read_url.as_deref(), Some("postgres://replica/identity"));
        let shared = DbConfig::from_settings(&read, "catalog").expect("configured");
        assert_eq!(shared.read_url.as_deref(), Some("postgres://replica/all"));
    }
}
