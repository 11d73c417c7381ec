//! Every table of a service, read in one transaction, into spool files: what a backup copies.
//!
//! PostgreSQL reads in a `REPEATABLE READ READ ONLY` transaction, so every table is seen at one
//! moment while writers go on. SQLite reads on a connection of its own, outside the service's
//! pool (whose single connection is the writer): under WAL a read transaction sees one moment
//! and does not block the writer either.
//!
//! One moment per service is not one moment for the system: a booking confirmed between the
//! payments snapshot and the booking snapshot would come back with no payment. So a backup asks
//! every service to [`Freeze`] at the same instant: each stops its writers (SQLite's write lock;
//! PostgreSQL's `EXCLUSIVE` table locks, which let reads through), holds them a little while,
//! begins its read transaction, and lets them go. While every service is held at once, nothing
//! changes anywhere, so the snapshots are one cut of the whole system: the state a power cut at
//! that instant would have left, which the system recovers from by design. Each service reports
//! when it held and let go, and the backup checks that the holds overlapped.

use std::{path::Path, time::Duration};

use anyhow::Context;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use super::{Table, object_of, schema_version, select_all, spool};
use crate::db::{Db, Engine};

/// One table's file in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFile {
    pub table: String,
    #[serde(flatten)]
    pub written: spool::Written,
}

/// Where the service's event tables stood when the snapshot was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Events written and not yet published.
    pub outbox_unsent: i64,
    /// When the last published event went out (epoch ms).
    pub outbox_last_sent_at: Option<i64>,
    /// When the last event this service consumed was handled (epoch ms).
    pub inbox_last_handled_at: Option<i64>,
    /// Commands owed to other services and not yet done.
    pub commands_owed: i64,
}

/// When to stop writers, and for how long: the same instant for every service of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// Epoch ms.
    pub at: i64,
    /// How long to hold writers from `at` (long enough to cover the clocks' disagreement).
    pub hold_ms: i64,
}

/// When this service's writers were held, by its clock (epoch ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub from: i64,
    pub until: i64,
}

/// What a service's snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub schema_version: i64,
    /// When the read transaction began (epoch ms).
    pub taken_at: i64,
    /// When writers were held around that moment, if a freeze was asked for.
    pub held: Option<Held>,
    pub position: Position,
    pub tables: Vec<TableFile>,
}

/// How long past its hold a service goes on trying to hold its writers before it gives up.
const LOCK_PATIENCE_MS: i64 = 2_000;

/// PostgreSQL gave up waiting for a lock (`lock_timeout`) or broke a deadlock.
fn is_lock_conflict(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if matches!(e.code().as_deref(), Some("55P03" | "40P01")))
}

/// A connection of the pool (PostgreSQL) or of its own (SQLite, beside the pool's writer).
enum Conn {
    Pooled(sqlx::pool::PoolConnection<sqlx::Any>),
    Own(AnyConnection),
}

impl Conn {
    async fn open(db: &Db) -> anyhow::Result<Self> {
        Ok(match db.engine() {
            Engine::Postgres => Self::Pooled(db.pool.acquire().await?),
            Engine::Sqlite => {
                Self::Own(AnyConnection::connect(db.url()).await.context("opening a connection of its own")?)
            }
        })
    }

    fn get(&mut self) -> &mut AnyConnection {
        match self {
            Self::Pooled(c) => c,
            Self::Own(c) => c,
        }
    }
}

/// Read every table of `db` at one moment into `{dir}/{table}.jsonl.gz`.
///
/// Transactions go through sqlx's `Transaction`, so one abandoned half-way (the caller went away
/// during a hold) is rolled back before its connection is used again, and no lock outlives it.
pub async fn export(db: &Db, dir: &Path, freeze: Option<Freeze>) -> anyhow::Result<Snapshot> {
    tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    let (begin, first) = match db.engine() {
        Engine::Postgres => ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "SELECT 1"),
        // A read of the file: SQLite begins the read transaction at the first one.
        Engine::Sqlite => ("BEGIN", "SELECT COUNT(*) FROM sqlite_master"),
    };
    let mut reader = Conn::open(db).await?;
    let Some(freeze) = freeze else {
        let mut tx = reader.get().begin_with(begin).await?;
        let taken_at = crate::time::now_ms();
        sqlx::query(first).execute(&mut *tx).await?;
        let result = read_all(db, &mut tx, dir, taken_at, None).await;
        let _ = tx.rollback().await;
        return result;
    };
    // Everything slow (a connection, the catalog of tables) is done before the instant, so the
    // hold begins on time.
    let mut lock = Conn::open(db).await?;
    let (lock_begin, then): (&str, Option<String>) = match db.engine() {
        // The write lock: the service's writer waits (its busy timeout) until we let go.
        Engine::Sqlite => {
            sqlx::query("PRAGMA busy_timeout = 5000").execute(lock.get()).await?;
            ("BEGIN IMMEDIATE", None)
        }
        // EXCLUSIVE: writes wait; reads, the snapshot's own among them, go on. Each attempt
        // waits at most 50 ms for a table: a writer that holds one table and wants another we
        // hold would otherwise deadlock with us, and PostgreSQL would break the tie only after
        // a second, often by killing the snapshot.
        Engine::Postgres => {
            let tables = super::tables(db, lock.get()).await?;
            let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
            ("BEGIN", Some(format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "))))
        }
    };
    sleep_until(freeze.at).await;
    let give_up = freeze.at + freeze.hold_ms + LOCK_PATIENCE_MS;
    let held_tx = loop {
        let mut tx = lock.get().begin_with(lock_begin).await.context("holding the writers")?;
        let Some(statement) = &then else { break tx };
        sqlx::query("SET LOCAL lock_timeout = '50ms'").execute(&mut *tx).await?;
        match sqlx::query(AssertSqlSafe(statement.clone())).execute(&mut *tx).await {
            Ok(_) => break tx,
            Err(e) if is_lock_conflict(&e) && crate::time::now_ms() < give_up => {
                tx.rollback().await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err(e) => return Err(anyhow::Error::from(e).context("holding the writers")),
        }
    };
    let from = crate::time::now_ms();
    sleep_until(freeze.at + freeze.hold_ms).await;
    let mut tx = reader.get().begin_with(begin).await?;
    let taken_at = crate::time::now_ms();
    sqlx::query(first).execute(&mut *tx).await?;
    let until = crate::time::now_ms();
    held_tx.rollback().await.context("letting the writers go")?;
    drop(lock);
    let result = read_all(db, &mut tx, dir, taken_at, Some(Held { from, until })).await;
    let _ = tx.rollback().await;
    result
}

async fn sleep_until(at: i64) {
    let wait = at - crate::time::now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    }
}

async fn read_all(
    db: &Db,
    conn: &mut AnyConnection,
    dir: &Path,
    taken_at: i64,
    held: Option<Held>,
) -> anyhow::Result<Snapshot> {
    let schema_version = schema_version(conn).await?;
    let tables = super::tables(db, conn).await?;
    let position = position(conn, &tables).await?;
    let mut files = Vec::with_capacity(tables.len());
    for table in &tables {
        let written = dump(conn, table, &dir.join(file_name(&table.name))).await?;
        files.push(TableFile { table: table.name.clone(), written });
    }
    Ok(Snapshot { schema_version, taken_at, held, position, tables: files })
}

/// The spool file of a table.
pub fn file_name(table: &str) -> String {
    format!("{table}.jsonl.gz")
}

async fn dump(conn: &mut AnyConnection, table: &Table, path: &Path) -> anyhow::Result<spool::Written> {
    let mut writer = spool::TableWriter::create(path)?;
    let sql = select_all(table)?;
    let mut stream = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *conn);
    while let Some(row) = stream.try_next().await.with_context(|| format!("reading {}", table.name))? {
        writer.row(&object_of(table, &row)?).await?;
    }
    drop(stream);
    writer.finish().await.with_context(|| format!("writing {}", table.name))
}

async fn position(conn: &mut AnyConnection, tables: &[Table]) -> anyhow::Result<Position> {
    let has = |name: &str| tables.iter().any(|t| t.name == name);
    let mut position = Position::default();
    if has("outbox") {
        (position.outbox_unsent, position.outbox_last_sent_at) =
            sqlx::query_as("SELECT COUNT(*) - COUNT(sent_at), MAX(sent_at) FROM outbox")
                .fetch_one(&mut *conn)
                .await?;
    }
    if has("inbox") {
        position.inbox_last_handled_at =
            sqlx::query_scalar("SELECT MAX(handled_at) FROM inbox").fetch_one(&mut *conn).await?;
    }
    if has("commands") {
        position.commands_owed = sqlx::query_scalar("SELECT COUNT(*) FROM commands WHERE done_at IS NULL")
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(position)
}
