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

/// Replace the service's data with the files in `dir`. Returns the rows inserted.
pub async fn apply(db: &Db, policy: &Policy, dir: &Path, files: &[TableFile]) -> Result<u64, RestoreError> {
    // SQLite: take the write lock now rather than at the first write, so the check below and
    // the writes are one moment. A transaction abandoned half-way is rolled back by sqlx.
    let begin = match db.engine() {
        Engine::Sqlite => "BEGIN IMMEDIATE",
        Engine::Postgres => "BEGIN",
    };
    let mut tx = db.pool.begin_with(begin).await.map_err(anyhow::Error::from)?;
    let rows = replace(db, &mut tx, policy, dir, files).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(rows)
}

async fn replace(
    db: &Db,
    conn: &mut AnyConnection,
    policy: &Policy,
    dir: &Path,
    files: &[TableFile],
) -> Result<u64, RestoreError> {
    let used = in_use(conn, policy).await?;
    if !used.is_empty() {
        return Err(RestoreError::NotEmpty(used));
    }
    let tables = super::tables(db, conn).await?;
    for file in files {
        if !tables.iter().any(|t| t.name == file.table) {
            return Err(RestoreError::Mismatch(format!("this service has no table {}", file.table)));
        }
    }
    // Children before parents out, parents before children in.
    let merged = |name: &str| policy.merged.iter().find(|m| m.table == name);
    for table in tables.iter().rev() {
        if merged(&table.name).is_none() {
            let sql = format!("DELETE FROM {}", identifier(&table.name)?);
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await.map_err(anyhow::Error::from)?;
        }
    }
    let mut total = 0;
    for table in &tables {
        let Some(file) = files.iter().find(|f| f.table == table.name) else { continue };
        let path = dir.join(super::export::file_name(&table.name));
        let rows = insert_file(conn, table, &path, merged(&table.name)).await?;
        if rows != file.written.rows {
            return Err(RestoreError::Mismatch(format!(
                "{} holds {rows} rows where the manifest says {}",
                table.name, file.written.rows
            )));
        }
        total += rows;
    }
    Ok(total)
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

/// Publish again every event sent at or after `since` (epoch ms). A restored system takes its
/// services' snapshots at slightly different moments, so an event one service had sent may not
/// yet have reached a consumer's snapshot; sending it again lets the consumer's inbox decide,
/// and one it had handled is recognised and skipped. Returns how many.
pub async fn resend_since(db: &Db, since: i64) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE outbox SET sent_at = NULL, attempts = 0, lease_until = 0, next_attempt_at = $1 \
         WHERE sent_at IS NOT NULL AND sent_at >= $2",
    )
    .bind(crate::time::now_ms())
    .bind(since)
    .execute(&db.pool)
    .await
    .context("marking events to send again")?;
    Ok(done.rows_affected())
}
