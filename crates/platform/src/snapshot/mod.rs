//! A service's tables as rows of JSON, and back: what the backup service asks every service
//! for, through endpoints the gateway never forwards.
//!
//! Every column in Marquee's schemas is TEXT, INTEGER or BIGINT (see `db`), so a row is a JSON
//! object of strings, integers and nulls on both engines, and one restore path serves both.
//! Tables are listed parents first (by their foreign keys), so inserting in that order never
//! breaks a reference; `_sqlx_migrations` is left out (the schema version is recorded apart).
//!
//! - [`spool`]: a table as a gzip JSON Lines file on local disk, with its checksum.
//! - [`export`]: every table of a service from one read transaction, into spool files.
//! - [`restore`]: spool files into a service that holds nothing yet, in one transaction.
//! - [`routes`]: `/internal/snapshots`, `/internal/restores` and `/internal/outbox/resend`,
//!   for the backup service only.

pub mod export;
pub mod restore;
pub mod routes;
pub mod spool;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use futures_util::TryStreamExt;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::db::{Db, Engine};

/// A table and its columns, in the order the schema declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    /// `(name, integer?)`: an integer column's values are JSON numbers, a text column's strings.
    pub columns: Vec<(String, bool)>,
}

fn identifier(name: &str) -> anyhow::Result<&str> {
    // Names come from the catalog of our own schema, but they are pasted into SQL: refuse
    // anything but plain identifiers rather than quote them.
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "unexpected table or column name {name:?}"
    );
    Ok(name)
}

/// The service's tables, parents before children.
pub async fn tables(db: &Db, conn: &mut AnyConnection) -> anyhow::Result<Vec<Table>> {
    let (names, edges): (Vec<String>, Vec<(String, String)>) = match db.engine() {
        Engine::Sqlite => {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> '_sqlx_migrations' ORDER BY name",
            )
            .fetch_all(&mut *conn)
            .await?;
            let mut edges = Vec::new();
            for name in &names {
                let sql = format!("SELECT \"table\" FROM pragma_foreign_key_list('{}')", identifier(name)?);
                for parent in
                    sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?
                {
                    edges.push((parent, name.clone()));
                }
            }
            (names, edges)
        }
        Engine::Postgres => {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' ORDER BY table_name",
            )
            .fetch_all(&mut *conn)
            .await?;
            let edges: Vec<(String, String)> = sqlx::query_as(
                "SELECT p.relname::text, c.relname::text FROM pg_constraint k \
                 JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
                 WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace",
            )
            .fetch_all(&mut *conn)
            .await?;
            (names, edges)
        }
    };
    let mut out = Vec::new();
    for name in parents_first(&names, &edges)? {
        let columns = columns(db, conn, &name).await?;
        out.push(Table { name, columns });
    }
    Ok(out)
}

async fn columns(db: &Db, conn: &mut AnyConnection, table: &str) -> anyhow::Result<Vec<(String, bool)>> {
    let rows: Vec<(String, String)> = match db.engine() {
        Engine::Sqlite => {
            let sql =
                format!("SELECT name, type FROM pragma_table_info('{}') ORDER BY cid", identifier(table)?);
            sqlx::query_as(AssertSqlSafe(sql)).fetch_all(&mut *conn).await?
        }
        Engine::Postgres => {
            sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.into_iter()
        .map(|(name, kind)| {
            let kind = kind.to_ascii_lowercase();
            let integer = kind.contains("int");
            anyhow::ensure!(
                integer || kind == "text",
                "{table}.{name} is {kind}: only TEXT and integers are carried"
            );
            Ok((identifier(&name)?.to_owned(), integer))
        })
        .collect()
}

/// A topological order of `names` under `(parent, child)` edges; ties by name, so the order is
/// the same on every run.
fn parents_first(names: &[String], edges: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let mut parents: BTreeMap<&str, BTreeSet<&str>> =
        names.iter().map(|n| (n.as_str(), BTreeSet::new())).collect();
    for (parent, child) in edges {
        if parent != child
            && parents.contains_key(parent.as_str())
            && let Some(set) = parents.get_mut(child.as_str())
        {
            set.insert(parent.as_str());
        }
    }
    let mut done: Vec<String> = Vec::new();
    while done.len() < names.len() {
        let ready: Vec<&str> = parents
            .iter()
            .filter(|(n, ps)| !done.iter().any(|d| d == *n) && ps.iter().all(|p| done.iter().any(|d| d == p)))
            .map(|(n, _)| *n)
            .collect();
        anyhow::ensure!(!ready.is_empty(), "the foreign keys form a cycle");
        done.extend(ready.into_iter().map(str::to_owned));
    }
    Ok(done)
}

/// Every row of `table`, ordered by its columns (so two dumps of the same data are the same
/// bytes), handed one at a time to `each`.
pub async fn rows<F>(conn: &mut AnyConnection, table: &Table, mut each: F) -> anyhow::Result<u64>
where
    F: FnMut(Map<String, Value>) -> anyhow::Result<()>,
{
    let sql = select_all(table)?;
    let mut stream = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *conn);
    let mut n = 0;
    while let Some(row) = stream.try_next().await? {
        each(object_of(table, &row)?)?;
        n += 1;
    }
    Ok(n)
}

/// `SELECT` every column of `table`, in a stable order.
pub(crate) fn select_all(table: &Table) -> anyhow::Result<String> {
    let names: Vec<&str> = table.columns.iter().map(|(n, _)| n.as_str()).collect();
    Ok(format!("SELECT {} FROM {} ORDER BY {}", names.join(", "), identifier(&table.name)?, names.join(", ")))
}

/// One row as a JSON object of the table's columns.
pub(crate) fn object_of(table: &Table, row: &sqlx::any::AnyRow) -> anyhow::Result<Map<String, Value>> {
    let mut object = Map::new();
    for (i, (name, integer)) in table.columns.iter().enumerate() {
        let value = if *integer {
            row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::from)
        } else {
            row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::from)
        };
        object.insert(name.clone(), value);
    }
    Ok(object)
}

/// The newest migration applied: what a backup records and a restore must match.
pub async fn schema_version(conn: &mut AnyConnection) -> anyhow::Result<i64> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&mut *conn)
            .await
            .context("reading the schema version")?;
    version.context("no migration has been applied")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Dumped = (String, Map<String, Value>);

    #[test]
    fn parents_come_before_their_children() {
        let names: Vec<String> = ["tickets", "bookings", "rooms", "theaters"].map(String::from).to_vec();
        let edges = [("bookings", "tickets"), ("theaters", "rooms"), ("rooms", "bookings")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert_eq!(
            parents_first(&names, &edges).expect("a step of the test"),
            ["theaters", "rooms", "bookings", "tickets"]
        );
        let cycle = [("a", "b"), ("b", "a")].map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert!(parents_first(&["a".to_owned(), "b".to_owned()], &cycle).is_err());
    }

    /// Dump a small schema with a foreign key and nulls, restore it into a second database, and
    /// get the same rows back.
    #[tokio::test]
    async fn a_dump_restored_elsewhere_gives_the_same_rows() {
        let dir = std::env::temp_dir().join(format!("marquee-snapshot-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a step of the test");
        round_trip(["from", "to"].map(|name| crate::db::DbConfig::sqlite(&dir, name))).await;
        std::fs::remove_dir_all(&dir).ok();
        // The same on PostgreSQL, in two fresh schemas, when the tests have a server.
        if let Ok(url) = std::env::var("MARQUEE_TEST_DATABASE_URL") {
            let tag = uuid::Uuid::new_v4().simple().to_string();
            round_trip(
                ["from", "to"].map(|name| {
                    crate::db::DbConfig::at(url.clone(), Some(format!("snapshot_{name}_{tag}")), 2)
                }),
            )
            .await;
        }
    }

    async fn round_trip(configs: [crate::db::DbConfig; 2]) {
        let schema = "CREATE TABLE rooms (id TEXT PRIMARY KEY, seats INTEGER NOT NULL);
                      CREATE TABLE shows (id TEXT PRIMARY KEY, room_id TEXT NOT NULL REFERENCES rooms (id),
                                          starts_at BIGINT NOT NULL, note TEXT)";
        let mut dumps: Vec<(Vec<Table>, Vec<Dumped>)> = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let db = Db::connect(config).await.expect("a step of the test");
            let mut conn = db.pool.acquire().await.expect("a step of the test");
            for statement in schema.split(';') {
                sqlx::query(AssertSqlSafe(statement.to_owned()))
                    .execute(&mut *conn)
                    .await
                    .expect("a step of the test");
            }
            if i == 0 {
                sqlx::query("INSERT INTO rooms VALUES ('r1', 80), ('r2', 40)")
                    .execute(&mut *conn)
                    .await
                    .expect("a step of the test");
                sqlx::query("INSERT INTO shows VALUES ('s1', 'r1', 1767225600000, NULL), ('s2', 'r2', 5, 'ünïcode \"quoted\"')")
                    .execute(&mut *conn)
                    .await
                    .expect("a step of the test");
            } else {
                let (tables, rows_of) = dumps.pop().expect("a step of the test");
                for table in &tables {
                    for row in rows_of.iter().filter(|(t, _)| t == &table.name) {
                        restore::insert_many(&mut conn, table, std::slice::from_ref(&row.1), None)
                            .await
                            .expect("a step of the test");
                    }
                }
            }
            let tables = super::tables(&db, &mut conn).await.expect("a step of the test");
            assert_eq!(tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["rooms", "shows"]);
            let mut all = Vec::new();
            for table in &tables {
                rows(&mut conn, table, |row| {
                    all.push((table.name.clone(), row));
                    Ok(())
                })
                .await
                .expect("a step of the test");
            }
            dumps.push((tables, all));
        }
        let (_, restored) = dumps.pop().expect("a step of the test");
        assert_eq!(restored.len(), 4);
        assert_eq!(restored[2].1["starts_at"], Value::from(1767225600000i64));
        assert_eq!(restored[2].1["note"], Value::Null);
        assert_eq!(restored[3].1["note"], Value::from("ünïcode \"quoted\""));
        if let Some(schema) = &configs[0].schema {
            let db = Db::connect(&configs[0]).await.expect("a step of the test");
            for config in &configs {
                let schema_name = config.schema.as_deref().unwrap_or(schema);
                let sql = format!("DROP SCHEMA IF EXISTS {schema_name} CASCADE");
                sqlx::query(AssertSqlSafe(sql)).execute(&db.pool).await.ok();
            }
        }
    }

    #[test]
    fn only_plain_names_reach_the_sql() {
        assert!(identifier("movie_genres").is_ok());
        for bad in ["", "Movies", "a;drop", "a b", "x\"y"] {
            assert!(identifier(bad).is_err(), "{bad}");
        }
    }
}
