//! Spool files into a service that holds nothing of its own yet, in one transaction: all of
//! the backup or none of it.
//!
//! "Nothing of its own" is the service's [`Policy`]: a fresh system has seeded rows (genres,
//! plans) and the configured administrator with what registering them caused, so only the
//! tables that users fill count. Every other table is emptied and refilled from the backup,
//! except the ones the policy merges (identity's signing keys: tokens the running system signed
//! keep verifying, and so do the backup's).

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, AssertSqlSafe};

use super::{Table, export::TableFile, identifier, spool};
use crate::db::{Db, Engine};

/// What makes a service "in use", and what a restore adds to instead of replacing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// `(table, condition)`: rows of these tables (those matching the SQL condition, when it is
    /// not empty) mean the service holds data of its own, and a restore is refused.
    pub primary: &'static [(&'static str, &'static str)],
    /// Tables whose rows are kept, the backup's added beside them.
    pub merged: &'static [Merged],
}

/// A table a restore adds to, and the integer columns it sets on the rows it adds.
#[derive(Debug, Clone, Copy)]
pub struct Merged {
    pub table: &'static str,
    pub set: &'static [(&'static str, i64)],
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The service holds data of its own: `(table, rows)`.
    #[error("the service is not empty: {}", describe(.0))]
    NotEmpty(Vec<(String, i64)>),
    /// The files do not fit this service (a table it lacks, a row count that differs).
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

fn describe(tables: &[(String, i64)]) -> String {
    tables.iter().map(|(t, n)| format!("{t} has {n} rows")).collect::<Vec<_>>().join(", ")
}

/// The primary tables that hold rows that count.
pub async fn in_use(conn: &mut AnyConnection, policy: &Policy) -> anyhow::Result<Vec<(String, i64)>> {
    let mut found = Vec::new();
    for (table, condition) in policy.primary {
        let filter = if condition.is_empty() { String::new() } else { format!(" WHERE {condition}") };
        let sql = format!("SELECT COUNT(*) FROM {}{filter}", identifier(table)?);
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("counting {table}"))?;
        if n > 0 {
            found.push(((*table).to_owned(), n));
        }
    }
    Ok(found)
}

/// Outbox rows not yet sent and commands not yet done come back parked at this time: nothing
/// restored goes out before every service holds its data (a consumer not yet restored would
/// take it, and its restore would then wipe the effect). [`resend_since`] releases them.
pub const PARKED: i64 = i64::MAX / 2;

/// Replace the service's data with the files in `dir`, in one transaction that holds the
/// service's writers out (SQLite's write lock; PostgreSQL's `EXCLUSIVE` table locks). Returns the
/// rows inserted.
///
/// Whether the service is empty is asked before a restore starts
/// (`/internal/restores/check`), not here: by the time a service's turn comes, services restored
/// before it may already have sent it events of their own (a hold that ran out meanwhile), and
/// what those left is replaced like the rest; their events are sent again at the end.
pub async fn apply(db: &Db, policy: &Policy, dir: &Path, files: &[TableFile]) -> Result<u64, RestoreError> {
    let begin = match db.engine() {
        Engine::Sqlite => "BEGIN IMMEDIATE",
        Engine::Postgres => "BEGIN",
    };
    // A transaction abandoned half-way is rolled back by sqlx.
    let mut tx = db.pool.begin_with(begin).await.map_err(anyhow::Error::from)?;
    let tables = super::tables(db, &mut tx).await?;
    if db.engine() == Engine::Postgres {
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        sqlx::query("SET LOCAL lock_timeout = '10s'").execute(&mut *tx).await.map_err(anyhow::Error::from)?;
        let lock = format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "));
        sqlx::query(AssertSqlSafe(lock)).execute(&mut *tx).await.context("holding the writers")?;
    }
    let rows = replace(&mut tx, &tables, policy, dir, files).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(rows)
}

async fn replace(
    conn: &mut AnyConnection,
    tables: &[Table],
    policy: &Policy,
    dir: &Path,
    files: &[TableFile],
) -> Result<u64, RestoreError> {
    let merged = |name: &str| policy.merged.iter().find(|m| m.table == name);
    for file in files {
        if !tables.iter().any(|t| t.name == file.table) {
            return Err(RestoreError::Mismatch(format!("this service has no table {}", file.table)));
        }
        if files.iter().filter(|f| f.table == file.table).count() > 1 {
            return Err(RestoreError::Mismatch(format!("{} is named twice", file.table)));
        }
    }
    // Every table is replaced, so every one must be there (merged ones may be left out).
    if let Some(missing) =
        tables.iter().find(|t| merged(&t.name).is_none() && !files.iter().any(|f| f.table == t.name))
    {
        return Err(RestoreError::Mismatch(format!("the backup has no file for {}", missing.name)));
    }
    // Children before parents out, parents before children in.
    for table in tables.iter().rev() {
        if merged(&table.name).is_none() {
            let sql = format!("DELETE FROM {}", identifier(&table.name)?);
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await.map_err(anyhow::Error::from)?;
        }
    }
    let mut total = 0;
    for table in tables {
        let Some(file) = files.iter().find(|f| f.table == table.name) else { continue };
        let path = dir.join(super::export::file_name(&table.name));
        // What does not fit (a wrong type, an unknown column, a broken reference, a damaged
        // file) is the backup's fault: a 422, not a 500.
        let rows = insert_file(conn, table, &path, merged(&table.name))
            .await
            .map_err(|e| RestoreError::Mismatch(format!("{e:#}")))?;
        if rows != file.written.rows {
            return Err(RestoreError::Mismatch(format!(
                "{} holds {rows} rows where the manifest says {}",
                table.name, file.written.rows
            )));
        }
        total += rows;
    }
    park(conn, tables).await?;
    Ok(total)
}

/// Park what the restored rows owe (see [`PARKED`]).
async fn park(conn: &mut AnyConnection, tables: &[Table]) -> anyhow::Result<()> {
    let has = |name: &str| tables.iter().any(|t| t.name == name);
    if has("outbox") {
        sqlx::query("UPDATE outbox SET next_attempt_at = $1, lease_until = 0 WHERE sent_at IS NULL")
            .bind(PARKED)
            .execute(&mut *conn)
            .await?;
    }
    if has("commands") {
        sqlx::query("UPDATE commands SET next_attempt_at = $1, lease_until = 0 WHERE done_at IS NULL")
            .bind(PARKED)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_file(
    conn: &mut AnyConnection,
    table: &Table,
    path: &Path,
    merged: Option<&Merged>,
) -> anyhow::Result<u64> {
    // Up to 30,000 values per statement: far fewer round trips than a row at a time, and under
    // either engine's limit on bound parameters (SQLite 32,766, PostgreSQL 65,535).
    let per_statement = (30_000 / table.columns.len().max(1)).max(1);
    let mut batches = spool::read_rows(path.to_owned(), per_statement);
    let mut rows = 0;
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        insert_many(conn, table, &batch, merged).await?;
        rows += batch.len() as u64;
    }
    Ok(rows)
}

/// Insert dumped rows in one statement; a column a row lacks is NULL, a key the table lacks is
/// an error. `merged`: a row whose key exists already is skipped, and the ones added get its
/// column values.
pub async fn insert_many(
    conn: &mut AnyConnection,
    table: &Table,
    rows: &[Map<String, Value>],
    merged: Option<&Merged>,
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = table.columns.iter().map(|(n, _)| n.as_str()).collect();
    let width = names.len();
    let tuples: Vec<String> = (0..rows.len())
        .map(|r| {
            let marks: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}{}",
        identifier(&table.name)?,
        names.join(", "),
        tuples.join(", "),
        if merged.is_some() { " ON CONFLICT DO NOTHING" } else { "" }
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for row in rows {
        for key in row.keys() {
            anyhow::ensure!(
                table.columns.iter().any(|(n, _)| n == key),
                "{} has no column {key}",
                table.name
            );
        }
        for (name, integer) in &table.columns {
            let set = merged.and_then(|m| m.set.iter().find(|(column, _)| column == name));
            let value = match set {
                Some((_, v)) => &Value::from(*v),
                None => row.get(name).unwrap_or(&Value::Null),
            };
            query = match (value, integer) {
                (Value::Null, true) => query.bind(None::<i64>),
                (Value::Null, false) => query.bind(None::<String>),
                (Value::Number(n), true) => {
                    query.bind(n.as_i64().with_context(|| format!("{}.{name}: {n}", table.name))?)
                }
                (Value::String(s), false) => query.bind(s.clone()),
                (other, _) => anyhow::bail!("{}.{name}: unexpected value {other}", table.name),
            };
        }
    }
    query.execute(&mut *conn).await.with_context(|| format!("restoring rows of {}", table.name))?;
    Ok(())
}

/// Publish again every event sent at or after `since` (epoch ms), and release what the restore
/// parked (events not yet sent, commands not yet done). A restored system takes its services'
/// snapshots at one cut, but an event sent before it may still have been on its way (in the
/// broker) to a consumer; sending it again lets the consumer's inbox decide, and one it had
/// handled is recognised and skipped. Returns how many events go out.
pub async fn resend_since(db: &Db, since: i64) -> anyhow::Result<u64> {
    let now = crate::time::now_ms();
    let mut tx = db.pool.begin().await?;
    let again = sqlx::query(
        "UPDATE outbox SET sent_at = NULL, attempts = 0, lease_until = 0, next_attempt_at = $1 \
         WHERE sent_at IS NOT NULL AND sent_at >= $2",
    )
    .bind(now)
    .bind(since)
    .execute(&mut *tx)
    .await
    .context("marking events to send again")?
    .rows_affected();
    let parked =
        sqlx::query("UPDATE outbox SET next_attempt_at = $1 WHERE sent_at IS NULL AND next_attempt_at >= $2")
            .bind(now)
            .bind(PARKED)
            .execute(&mut *tx)
            .await
            .context("releasing parked events")?
            .rows_affected();
    // Every service with these endpoints has the event tables (events::migrations).
    sqlx::query("UPDATE commands SET next_attempt_at = $1 WHERE done_at IS NULL AND next_attempt_at >= $2")
        .bind(now)
        .bind(PARKED)
        .execute(&mut *tx)
        .await
        .context("releasing parked commands")?;
    tx.commit().await?;
    Ok(again + parked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbConfig;

    async fn file(dir: &Path, table: &str, rows: &[Value]) -> TableFile {
        let mut writer = spool::TableWriter::create(&dir.join(super::super::export::file_name(table)))
            .expect("a step of the test");
        for row in rows {
            writer.row(row.as_object().expect("an object")).await.expect("a step of the test");
        }
        TableFile { table: table.to_owned(), written: writer.finish().await.expect("a step of the test") }
    }

    /// Review of issue 15: restored events not yet sent went out as soon as their service was
    /// restored, to consumers not yet restored (whose restore then wiped, or refused, the effect).
    #[tokio::test]
    async fn what_a_restore_owes_waits_for_the_resend_and_every_table_must_be_there() {
        let dir = std::env::temp_dir().join(format!("marquee-restore-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a step of the test");
        let db = Db::connect(&DbConfig::sqlite(&dir, "svc")).await.expect("a step of the test");
        for ddl in [
            "CREATE TABLE outbox (id TEXT PRIMARY KEY, sent_at BIGINT, next_attempt_at BIGINT NOT NULL, \
             lease_until BIGINT NOT NULL, attempts INTEGER NOT NULL)",
            "CREATE TABLE commands (id TEXT PRIMARY KEY, done_at BIGINT, next_attempt_at BIGINT NOT NULL, \
             lease_until BIGINT NOT NULL)",
        ] {
            sqlx::query(AssertSqlSafe(ddl)).execute(&db.pool).await.expect("a step of the test");
        }
        let now = crate::time::now_ms();
        let outbox = file(&dir, "outbox", &[
            serde_json::json!({"id": "old", "sent_at": now - 3_600_000, "next_attempt_at": 0, "lease_until": 0, "attempts": 1}),
            serde_json::json!({"id": "recent", "sent_at": now - 1_000, "next_attempt_at": 0, "lease_until": 0, "attempts": 1}),
            serde_json::json!({"id": "unsent", "sent_at": null, "next_attempt_at": 0, "lease_until": 0, "attempts": 0}),
        ])
        .await;
        let commands = file(
            &dir,
            "commands",
            &[serde_json::json!({"id": "owed", "done_at": null, "next_attempt_at": 0, "lease_until": 0})],
        )
        .await;
        let policy = Policy::default();

        // A backup without one of the tables is refused, and nothing changes.
        let short = apply(&db, &policy, &dir, std::slice::from_ref(&outbox)).await;
        assert!(matches!(&short, Err(RestoreError::Mismatch(m)) if m.contains("commands")), "{short:?}");

        let rows = apply(&db, &policy, &dir, &[outbox, commands]).await.expect("a step of the test");
        assert_eq!(rows, 4);
        let due = |table: &'static str| {
            let db = db.clone();
            async move {
                let sql = format!("SELECT COUNT(*) FROM {table} WHERE next_attempt_at <= $1");
                sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
                    .bind(now + 60_000)
                    .fetch_one(&db.pool)
                    .await
                    .expect("a step of the test")
            }
        };
        assert_eq!(
            (due("outbox").await, due("commands").await),
            (2, 0),
            "the unsent event and the command are parked"
        );
        let going = resend_since(&db, now - 60_000).await.expect("a step of the test");
        assert_eq!(going, 2, "the recent one again, and the parked one");
        assert_eq!((due("outbox").await, due("commands").await), (3, 1), "released");
        let unsent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&db.pool)
            .await
            .expect("a step of the test");
        assert_eq!(unsent, 2, "the old one stays sent");
        db.close().await;
        std::fs::remove_dir_all(&dir).ok();
    }
}
