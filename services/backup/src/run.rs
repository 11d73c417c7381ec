//! A backup, from the cut to the manifest.
//!
//! Every service is asked at once for a snapshot cut at the same instant; each answers with a
//! header and then its tables' files, which are copied into the store one after the other as
//! they stream in: small ones in one PUT, large ones in parts, so no table is ever held whole in
//! memory. Each object's SHA-256 is computed on the way and must be the one the service
//! announced. The manifest is written last: a backup without one never completed, and a failed
//! backup's objects are removed.

use std::time::Duration;

use futures_util::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, path::Path as ObjectPath};
use platform::{
    snapshot::{
        export::{Freeze, Snapshot},
        spool::Hasher,
    },
    time::{from_ms, now_ms},
};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{
    AppState,
    domain::{self, Backup, Manifest, ServiceManifest, ServiceProgress, Status, TableEntry},
    remote::{RemoteError, Stream},
    store,
};

/// A running backup's or restore's lease: renewed every few seconds, so a process that died
/// is noticed within this long.
pub const LEASE_MS: i64 = 60_000;
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// Objects up to this size go in one PUT; larger ones in parts of this size.
const PART: usize = 8 * 1024 * 1024;

/// Do the backup `backup` (its row is in the database, running) to its end, and record it.
pub async fn run(state: AppState, mut backup: Backup) {
    let result = heartbeat(&state, backup.id, copy_all(&state, &mut backup)).await;
    let now = now_ms();
    match result {
        Ok(()) => {
            backup.status = Status::Complete;
            tracing::info!(id = %backup.id, rows = backup.rows, bytes = backup.bytes, "backup complete");
        }
        Err(e) => {
            tracing::error!(id = %backup.id, error = %e, "backup failed");
            backup.status = Status::Failed;
            backup.error = Some(e);
            remove_objects(&state, &domain::prefix(backup.id)).await;
        }
    }
    backup.finished_at = Some(from_ms(now));
    match store::finish_backup(&state.db, &backup, now).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(id = %backup.id, "the backup had been declared dead meanwhile"),
        Err(e) => tracing::error!(id = %backup.id, error = %e, "recording the end of a backup"),
    }
    if backup.status == Status::Complete
        && let Err(e) = crate::schedule::prune(&state).await
    {
        tracing::warn!(error = %e, "removing old backups");
    }
}

/// Run `work`, renewing the lease of backup (or restore) `id` until it ends.
pub async fn heartbeat<T>(state: &AppState, id: uuid::Uuid, work: impl Future<Output = T>) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tick.tick() => {
                for table in ["backups", "restores"] {
                    let sql = format!("UPDATE {table} SET lease_until = $1 WHERE id = $2 AND status = 'running'");
                    let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(now_ms() + LEASE_MS)
                        .bind(id.to_string())
                        .execute(&state.db.pool)
                        .await;
                    if let Err(e) = renewed {
                        tracing::warn!(error = %e, "renewing a lease");
                    }
                }
            }
        }
    }
}

/// How many times a cut is tried before the backup fails.
const CUT_ATTEMPTS: u32 = 5;

/// Ask every service for its snapshot at one cut: the answers and the instant of the cut. A cut
/// at which the services' holds did not overlap (a long write made one late), or that a service
/// failed, is tried again.
async fn cut(state: &AppState) -> Result<(Vec<(Snapshot, Stream)>, i64), String> {
    let mut last = String::new();
    for attempt in 0..CUT_ATTEMPTS {
        let freeze = Freeze { at: now_ms() + state.config.lead_ms, hold_ms: state.config.hold_ms };
        let asked = state.services.iter().map(|service| state.remote.snapshot(service, freeze));
        let answers: Result<Vec<_>, _> = futures_util::future::join_all(asked).await.into_iter().collect();
        // A refusal is the service's decision; anything else (a deadlock broken by PostgreSQL
        // while holding the writers, a replica restarting) may pass.
        let streams = match answers {
            Ok(streams) => streams,
            Err(e @ RemoteError::Refused { .. }) => return Err(e.to_string()),
            Err(e) => {
                last = e.to_string();
                tracing::warn!(attempt, error = %last, "a snapshot failed");
                continue;
            }
        };
        let held = streams
            .iter()
            .map(|(s, _)| s.held)
            .collect::<Option<Vec<_>>>()
            .ok_or("a service did not hold its writers")?;
        let cut = held.iter().map(|h| h.from).max().unwrap_or(freeze.at);
        let released = held.iter().map(|h| h.until).min().unwrap_or(freeze.at);
        if cut <= released {
            return Ok((streams, cut));
        }
        last = format!(
            "the services could not be held at one instant (the last held at {cut}, the first let go at \
             {released}): a write took longer than the hold of {} ms; raise MARQUEE_BACKUP_FREEZE_MS",
            freeze.hold_ms
        );
        tracing::warn!(attempt, "{last}");
    }
    Err(last)
}

async fn copy_all(state: &AppState, backup: &mut Backup) -> Result<(), String> {
    let (streams, cut) = cut(state).await?;
    let mut services = Vec::with_capacity(streams.len());
    for (i, (snapshot, mut stream)) in streams.into_iter().enumerate() {
        let service = state.services[i].name;
        backup.services[i].status = "copying".to_owned();
        let mut tables = Vec::with_capacity(snapshot.tables.len());
        for table in &snapshot.tables {
            let key = domain::table_key(backup.id, service, &table.table);
            let sha256 = copy(state.objects.store.as_ref(), &key, &mut stream, table.written.bytes)
                .await
                .map_err(|e| format!("{service}: copying {}: {e:#}", table.table))?;
            if sha256 != table.written.sha256 {
                return Err(format!(
                    "{service}: {} arrived damaged (sha256 {sha256}, announced {})",
                    table.table, table.written.sha256
                ));
            }
            tables.push(TableEntry {
                table: table.table.clone(),
                rows: table.written.rows,
                bytes: table.written.bytes,
                sha256,
                object: key,
            });
            let progress = &mut backup.services[i];
            progress.tables += 1;
            progress.rows += table.written.rows;
            progress.bytes += table.written.bytes;
            backup.rows += i64::try_from(table.written.rows).unwrap_or(i64::MAX);
            backup.bytes += i64::try_from(table.written.bytes).unwrap_or(i64::MAX);
            save(state, backup).await?;
        }
        backup.services[i].status = "done".to_owned();
        backup.services_done += 1;
        save(state, backup).await?;
        services.push(ServiceManifest {
            service: service.to_owned(),
            schema_version: snapshot.schema_version,
            taken_at: snapshot.taken_at,
            held: snapshot.held,
            position: snapshot.position,
            tables,
        });
    }
    let manifest = Manifest {
        format: domain::FORMAT,
        id: backup.id,
        trigger: backup.trigger,
        marquee_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: backup.started_at,
        finished_at: from_ms(now_ms()),
        cut_at: from_ms(cut),
        rows: services.iter().flat_map(|s| &s.tables).map(|t| t.rows).sum(),
        bytes: services.iter().flat_map(|s| &s.tables).map(|t| t.bytes).sum(),
        services,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    state
        .objects
        .store
        .put(&ObjectPath::from(domain::manifest_key(backup.id)), PutPayload::from(json))
        .await
        .map_err(|e| format!("writing the manifest: {e}"))?;
    backup.cut_at = Some(manifest.cut_at);
    Ok(())
}

async fn save(state: &AppState, backup: &Backup) -> Result<(), String> {
    match store::backup_progress(&state.db, backup, now_ms() + LEASE_MS).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("the backup was declared dead (its lease ran out)".to_owned()),
        Err(e) => Err(format!("recording progress: {e:#}")),
    }
}

/// Copy exactly `length` bytes of `from` into the object `key`; their SHA-256.
pub async fn copy<R: AsyncRead + Unpin>(
    store: &dyn ObjectStore,
    key: &str,
    from: &mut R,
    length: u64,
) -> anyhow::Result<String> {
    let path = ObjectPath::from(key);
    let mut from = from.take(length);
    let mut hasher = Hasher::default();
    let mut buf = vec![0; 64 * 1024];
    let mut first = Vec::new();
    // Up to one part: a single PUT.
    while first.len() < PART {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        first.extend_from_slice(&buf[..n]);
    }
    let mut copied = first.len() as u64;
    if first.len() < PART {
        anyhow::ensure!(copied == length, "the stream ended after {copied} of {length} bytes");
        store.put(&path, PutPayload::from(first)).await?;
        return Ok(hasher.hex());
    }
    let upload = store.put_multipart(&path).await?;
    let mut parts = WriteMultipart::new_with_chunk_size(upload, PART);
    parts.write(&first);
    drop(first);
    let rest = async {
        loop {
            // At most two parts in flight, so memory stays a few parts whatever the size.
            parts.wait_for_capacity(2).await?;
            let n = from.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            parts.write(&buf[..n]);
            copied += n as u64;
        }
        anyhow::ensure!(copied == length, "the stream ended after {copied} of {length} bytes");
        Ok(())
    }
    .await;
    // An upload left open is invisible to listing, and billed: abort it on every failure.
    if let Err(e) = rest {
        let _ = parts.abort().await;
        return Err(e);
    }
    parts.finish().await?;
    Ok(hasher.hex())
}

/// Remove every object under `prefix` (a failed backup's, or one past retention).
pub async fn remove_objects(state: &AppState, prefix: &str) {
    let store = state.objects.store.clone();
    let listed: Vec<_> = store.list(Some(&ObjectPath::from(prefix))).collect().await;
    for meta in listed.into_iter().flatten() {
        if let Err(e) = store.delete(&meta.location).await {
            tracing::warn!(object = %meta.location, error = %e, "removing a backup object");
        }
    }
}

/// The progress of a backup that is just starting.
pub fn waiting(state: &AppState) -> Vec<ServiceProgress> {
    state
        .services
        .iter()
        .map(|s| ServiceProgress {
            service: s.name.to_owned(),
            status: "waiting".to_owned(),
            ..Default::default()
        })
        .collect()
}
