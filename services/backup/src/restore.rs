//! A restore, in three phases:
//! 1. **verifying**: every object is read back from the store and its SHA-256 compared with
//!    the manifest's, before any service is touched: a damaged backup restores nothing;
//! 2. **restoring**: each service gets its tables in one streamed request (it checks them again
//!    as they arrive, then replaces its data in one transaction);
//! 3. **resending**: each service publishes again the events it sent in the minutes before the
//!    cut. A consumer's snapshot may have been cut before such an event reached it (it was in
//!    the broker); sent again, it is applied once, and one the consumer had handled is
//!    recognised by its inbox and skipped.

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, path::Path as ObjectPath};
use platform::{
    snapshot::{
        export::TableFile,
        routes::RestoreHeader,
        spool::{Hasher, Written},
    },
    time::{from_ms, now_ms, to_ms},
};

use crate::{
    AppState,
    domain::{Manifest, Restore, ServiceManifest, Status},
    remote::Service,
    run::{LEASE_MS, heartbeat},
    store,
};

/// Services restored at once.
const RESTORING_AT_ONCE: usize = 3;

pub async fn run(state: AppState, manifest: Manifest, mut restore: Restore) {
    let result = heartbeat(&state, restore.id, phases(&state, &manifest, &mut restore)).await;
    let now = now_ms();
    match result {
        Ok(()) => {
            restore.status = Status::Complete;
            restore.phase = "done".to_owned();
            tracing::info!(backup = %manifest.id, rows = restore.rows, events = restore.events_resent, "restore complete");
        }
        Err(e) => {
            tracing::error!(backup = %manifest.id, error = %e, "restore failed");
            restore.status = Status::Failed;
            restore.error = Some(e);
        }
    }
    restore.finished_at = Some(from_ms(now));
    if let Err(e) = store::save_restore(&state.db, &restore, now, Some(now)).await {
        tracing::error!(error = %e, "recording the end of a restore");
    }
}

async fn save(state: &AppState, restore: &Restore) -> Result<(), String> {
    match store::save_restore(&state.db, restore, now_ms() + LEASE_MS, None).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("the restore was declared dead (its lease ran out)".to_owned()),
        Err(e) => Err(format!("recording progress: {e:#}")),
    }
}

/// The service of this system a part of the backup goes to.
pub fn target<'a>(state: &'a AppState, part: &ServiceManifest) -> Result<&'a Service, String> {
    state
        .services
        .iter()
        .find(|s| s.name == part.service)
        .ok_or_else(|| format!("the backup holds {}, which this system does not have", part.service))
}

async fn phases(state: &AppState, manifest: &Manifest, restore: &mut Restore) -> Result<(), String> {
    // 1. Every object, before anything changes.
    for part in &manifest.services {
        for table in &part.tables {
            let (bytes, sha256) = checksum(state, &table.object)
                .await
                .map_err(|e| format!("{}/{}: reading {}: {e:#}", part.service, table.table, table.object))?;
            if bytes != table.bytes || sha256 != table.sha256 {
                return Err(format!(
                    "{}/{}: the object is damaged (sha256 {sha256}, {bytes} bytes; the manifest says {}, {} bytes); \
                     nothing was restored",
                    part.service, table.table, table.sha256, table.bytes
                ));
            }
            restore.bytes_checked += i64::try_from(bytes).unwrap_or(i64::MAX);
        }
        save(state, restore).await?;
    }
    // 2. Each service, a few at once: they are independent, and one's database work overlaps
    // another's reading and parsing.
    restore.phase = "restoring".to_owned();
    save(state, restore).await?;
    let jobs: Vec<_> = manifest
        .services
        .iter()
        .map(|part| {
            let (state, part) = (state.clone(), part.clone());
            async move {
                let service = target(&state, &part)?;
                state.remote.restore(service, body(&state, &part)?).await.map_err(|e| e.to_string())
            }
        })
        .collect();
    let mut restoring = futures_util::stream::iter(jobs).buffer_unordered(RESTORING_AT_ONCE);
    while let Some(rows) = restoring.next().await {
        restore.rows += i64::try_from(rows?).unwrap_or(i64::MAX);
        restore.services_done += 1;
        save(state, restore).await?;
    }
    drop(restoring);
    // 3. The events near the cut, once every service holds its data (an event sent earlier
    // would reach a consumer that was not restored yet).
    restore.phase = "resending".to_owned();
    save(state, restore).await?;
    let since = to_ms(manifest.cut_at) - state.config.resend_ms;
    for part in &manifest.services {
        let service = target(state, part)?;
        let events = state.remote.resend(service, since).await.map_err(|e| e.to_string())?;
        restore.events_resent += i64::try_from(events).unwrap_or(i64::MAX);
    }
    Ok(())
}

async fn checksum(state: &AppState, key: &str) -> anyhow::Result<(u64, String)> {
    let got = state.objects.store.get(&ObjectPath::from(key)).await?;
    let mut chunks = got.into_stream();
    let mut hasher = Hasher::default();
    let mut bytes = 0u64;
    while let Some(chunk) = chunks.try_next().await? {
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
    }
    Ok((bytes, hasher.hex()))
}

/// A service's restore body: the header line, then each table's object streamed from the store.
fn body(state: &AppState, part: &ServiceManifest) -> Result<reqwest::Body, String> {
    let header = RestoreHeader {
        schema_version: part.schema_version,
        tables: part
            .tables
            .iter()
            .map(|t| TableFile {
                table: t.table.clone(),
                written: Written { rows: t.rows, bytes: t.bytes, sha256: t.sha256.clone() },
            })
            .collect(),
    };
    let mut first = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    first.push(b'\n');
    let store = state.objects.store.clone();
    let keys: Vec<String> = part.tables.iter().map(|t| t.object.clone()).collect();
    let objects = futures_util::stream::iter(keys)
        .then(move |key| {
            let store = store.clone();
            async move { store.get(&ObjectPath::from(key)).await.map(|got| got.into_stream()) }
        })
        .try_flatten()
        .map_err(std::io::Error::other);
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) }).chain(objects);
    Ok(reqwest::Body::wrap_stream(stream))
}
