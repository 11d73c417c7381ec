//! The endpoints a service offers the backup service, and no one else: the gateway forwards
//! only `/api/v1/...`, and each one wants a service token of `backup`.
//!
//! - `POST /internal/snapshots`: read every table at one moment into spool files, then answer
//!   them in one stream: a first line of JSON (the [`export::Snapshot`]: schema version, position, each
//!   table's rows, length and checksum), then each table's gzip JSON Lines, in that order and of
//!   those lengths.
//! - `POST /internal/restores/check` `{schema_version}`: 204, or why a restore would be refused
//!   (422 `schema-version`, 409 `not-empty`).
//! - `POST /internal/restores`: the same framing as a snapshot (a first line naming the schema
//!   version and the tables, then their files); each file is checked against its checksum as it
//!   arrives, and only then is the data replaced, in one transaction.
//! - `POST /internal/outbox/resend` `{since}`: publish again the events sent since then.
//!
//! One request carries a whole snapshot or restore, so a service with several replicas behind
//! one address answers it from the replica that took it. Spool files live under the system's
//! temporary directory (or `MARQUEE_SPOOL_DIR`) only while a request needs them.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use futures_util::{StreamExt, TryStreamExt, future::BoxFuture};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{
    export::{self, TableFile},
    identifier,
    restore::{self, Policy, RestoreError},
    spool::Hasher,
};
use crate::{Platform, Problem, auth::ServiceCaller, cache::Cache, db::Db, extract::ApiJson};

/// Paths under these prefixes move every row of a service: the request timeout does not bound
/// them.
pub const PREFIX: &str = "/internal/snapshots";
pub const RESTORES: &str = "/internal/restores";
/// The one service allowed to call these endpoints.
pub const CALLER: &str = "backup";
/// The media type of the framed stream.
pub const MEDIA_TYPE: &str = "application/x-marquee-snapshot";
/// A first line longer than this is not a header.
const MAX_HEADER: u64 = 1024 * 1024;

/// Work a service does after its data was replaced: rebuild what it keeps in memory.
pub type AfterRestore = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

#[derive(Clone)]
struct Snapshots {
    db: Db,
    policy: Policy,
    spool: PathBuf,
    cache: Arc<dyn Cache>,
    after_restore: Option<AfterRestore>,
}

/// The routes, for a service whose only state is its database (and its cache).
pub fn routes(platform: &Platform, db: &Db, policy: Policy) -> Router {
    routes_with(platform, db, policy, None)
}

/// The routes, with what to rebuild after a restore.
pub fn routes_with(
    platform: &Platform,
    db: &Db,
    policy: Policy,
    after_restore: Option<AfterRestore>,
) -> Router {
    let base = platform.settings.get("MARQUEE_SPOOL_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let state = Snapshots {
        db: db.clone(),
        policy,
        spool: base.join("marquee-spool").join(platform.service),
        cache: platform.cache.clone(),
        after_restore,
    };
    Router::new()
        .route(PREFIX, post(snapshot))
        .route(&format!("{RESTORES}/check"), post(check_restore))
        .route(RESTORES, post(restore_into))
        .route("/internal/outbox/resend", post(resend))
        .with_state(state)
}

fn backup_only(caller: &ServiceCaller) -> Result<(), Problem> {
    if caller.service == CALLER { Ok(()) } else { Err(Problem::forbidden("only the backup service")) }
}

fn failed(context: &str, e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "{context}");
    Problem::internal().detail(format!("{context}: {e}"))
}

/// Removes a spool directory when dropped: when the answer has been sent, or the client left.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let dir = std::mem::take(&mut self.0);
        // Off the async workers: a large spool takes a moment to remove.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || std::fs::remove_dir_all(dir))),
            Err(_) => drop(std::fs::remove_dir_all(dir)),
        }
    }
}

#[derive(Deserialize)]
struct SnapshotRequest {
    /// Stop writers at this instant (see [`export`]), so every service's snapshot is one cut.
    freeze: Option<export::Freeze>,
}

async fn snapshot(
    caller: ServiceCaller,
    State(state): State<Snapshots>,
    ApiJson(req): ApiJson<SnapshotRequest>,
) -> Result<Response, Problem> {
    backup_only(&caller)?;
    if let Some(freeze) = req.freeze {
        let now = crate::time::now_ms();
        // A freeze is a pause of every write: only a short one, soon.
        if !(0..=5_000).contains(&freeze.hold_ms) || freeze.at > now + 60_000 {
            return Err(Problem::invalid_field("freeze", "hold at most 5 s, within a minute from now"));
        }
    }
    let dir = state.spool.join(format!("snapshot-{}", uuid::Uuid::now_v7()));
    let cleanup = Cleanup(dir.clone());
    let snapshot = export::export(&state.db, &dir, req.freeze)
        .await
        .map_err(|e| failed("taking a snapshot", format!("{e:#}")))?;
    let mut first = serde_json::to_vec(&snapshot).map_err(|e| failed("describing the snapshot", e))?;
    first.push(b'\n');
    // The files are opened now, so a missing one is an error here and not a short stream.
    let mut files = Vec::with_capacity(snapshot.tables.len());
    for table in &snapshot.tables {
        let path = dir.join(export::file_name(&table.table));
        files.push(tokio::fs::File::open(&path).await.map_err(|e| failed("opening a spool file", e))?);
    }
    let length: u64 = first.len() as u64 + snapshot.tables.iter().map(|t| t.written.bytes).sum::<u64>();
    let rest = futures_util::stream::iter(files)
        .flat_map(|file| tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
        // The directory goes when the stream is done with (sent, or dropped with the client).
        .map(move |chunk| {
            let _ = &cleanup;
            chunk
        });
    let stream = futures_util::stream::once(async move { Ok(bytes::Bytes::from(first)) }).chain(rest);
    Ok((
        [(header::CONTENT_TYPE, MEDIA_TYPE.to_owned()), (header::CONTENT_LENGTH, length.to_string())],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize)]
struct CheckRestore {
    schema_version: i64,
}

async fn check_restore(
    caller: ServiceCaller,
    State(state): State<Snapshots>,
    ApiJson(req): ApiJson<CheckRestore>,
) -> Result<StatusCode, Problem> {
    backup_only(&caller)?;
    check(&state, req.schema_version).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Would a restore at `schema_version` be taken: the same schema, and no data of its own?
async fn check(state: &Snapshots, schema_version: i64) -> Result<(), Problem> {
    check_schema(state, schema_version).await?;
    let mut conn = state.db.pool.acquire().await.map_err(|e| failed("checking for data", e))?;
    let used = restore::in_use(&mut conn, &state.policy).await.map_err(|e| failed("checking for data", e))?;
    if used.is_empty() { Ok(()) } else { Err(not_empty(&used)) }
}

async fn check_schema(state: &Snapshots, schema_version: i64) -> Result<(), Problem> {
    let mut conn = state.db.pool.acquire().await.map_err(|e| failed("reading the schema version", e))?;
    let ours = super::schema_version(&mut conn).await.map_err(|e| failed("reading the schema version", e))?;
    if ours != schema_version {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "schema-version", "The schema differs")
            .detail(format!(
                "the backup was taken at schema version {schema_version}, this service is at {ours}"
            )));
    }
    Ok(())
}

fn not_empty(used: &[(String, i64)]) -> Problem {
    let detail = RestoreError::NotEmpty(used.to_vec()).to_string();
    Problem::conflict("not-empty", "The service already holds data").detail(detail)
}

pub fn checksum_mismatch(table: &str, expected: &str, actual: &str) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "checksum-mismatch",
        "A file is not what the manifest says",
    )
    .detail(format!("{table}: the manifest says sha256 {expected}, the file has {actual}"))
}

/// The first line of a restore: what follows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RestoreHeader {
    pub schema_version: i64,
    pub tables: Vec<TableFile>,
}

async fn restore_into(
    caller: ServiceCaller,
    State(state): State<Snapshots>,
    body: Body,
) -> Result<Json<serde_json::Value>, Problem> {
    backup_only(&caller)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut reader = BufReader::new(tokio_util::io::StreamReader::new(stream));
    let header: RestoreHeader = read_header(&mut reader).await?;
    // Emptiness was asked before the restore began (`/check`); see restore::apply.
    check_schema(&state, header.schema_version).await?;
    let dir = state.spool.join(format!("restore-{}", uuid::Uuid::now_v7()));
    let _cleanup = Cleanup(dir.clone());
    tokio::fs::create_dir_all(&dir).await.map_err(|e| failed("making the spool directory", e))?;
    // Every file is in and checked before a row is touched.
    for table in &header.tables {
        let name = identifier(&table.table).map_err(|e| Problem::bad_request(e.to_string()))?;
        receive(&mut reader, &dir.join(export::file_name(name)), table).await?;
    }
    let rows = restore::apply(&state.db, &state.policy, &dir, &header.tables).await.map_err(|e| match e {
        RestoreError::NotEmpty(used) => not_empty(&used),
        RestoreError::Mismatch(m) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "backup-mismatch",
            "The backup does not fit this service",
        )
        .detail(m),
        RestoreError::Failed(e) => failed("restoring", format!("{e:#}")),
    })?;
    // What was cached was read from the data just replaced.
    if let Err(e) = state.cache.clear().await {
        tracing::warn!(error = %e, "clearing the cache after a restore");
    }
    if let Some(after) = &state.after_restore {
        after().await.map_err(|e| failed("rebuilding after the restore", format!("{e:#}")))?;
    }
    tracing::info!(rows, tables = header.tables.len(), "restored from a backup");
    Ok(Json(json!({"rows": rows})))
}

/// The first line of a framed stream, as JSON.
pub async fn read_header<T: serde::de::DeserializeOwned, R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<T, Problem> {
    let mut line = Vec::new();
    (&mut *reader)
        .take(MAX_HEADER)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| Problem::bad_request(format!("reading the first line: {e}")))?;
    if line.last() != Some(&b'\n') {
        return Err(Problem::bad_request("the first line (a JSON header) is missing or too long"));
    }
    serde_json::from_slice(&line)
        .map_err(|e| Problem::bad_request(format!("the first line is not a header: {e}")))
}

/// One table's file off the stream into `path`, checked against its length and checksum.
async fn receive<R: AsyncRead + Unpin>(
    reader: &mut R,
    path: &Path,
    table: &TableFile,
) -> Result<(), Problem> {
    let mut file = tokio::fs::File::create(path).await.map_err(|e| failed("spooling a file", e))?;
    let mut hasher = Hasher::default();
    let mut part = reader.take(table.written.bytes);
    let mut buf = vec![0; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = part
            .read(&mut buf)
            .await
            .map_err(|e| Problem::bad_request(format!("the upload was cut off: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).await.map_err(|e| failed("spooling a file", e))?;
        got += n as u64;
    }
    if got != table.written.bytes {
        return Err(Problem::bad_request(format!(
            "{}: the stream ended after {got} of {} bytes",
            table.table, table.written.bytes
        )));
    }
    file.flush().await.map_err(|e| failed("spooling a file", e))?;
    let actual = hasher.hex();
    if actual != table.written.sha256 {
        return Err(checksum_mismatch(&table.table, &table.written.sha256, &actual));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Resend {
    /// Epoch ms.
    since: i64,
}

async fn resend(
    caller: ServiceCaller,
    State(state): State<Snapshots>,
    ApiJson(req): ApiJson<Resend>,
) -> Result<Json<serde_json::Value>, Problem> {
    backup_only(&caller)?;
    let events =
        restore::resend_since(&state.db, req.since).await.map_err(|e| failed("resending events", e))?;
    Ok(Json(json!({"events": events})))
}
