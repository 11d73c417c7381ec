//! The use cases: start a backup, start a restore, and read them back. What this database
//! recorded is merged with the manifests in the store, so a fresh system sees (and restores) the
//! backups an earlier one wrote.

use object_store::{ObjectStoreExt, path::Path as ObjectPath};
use platform::{
    pagination::{Page, PageRequest},
    time::{from_ms, now_ms},
};
use uuid::Uuid;

use crate::{
    AppState,
    domain::{self, Backup, Manifest, Restore, Status, Trigger},
    error::BackupError,
    remote::RemoteError,
    run::{self, LEASE_MS},
    store,
};

/// Start a backup in the background; it is `running` when this returns.
pub async fn start_backup(
    state: &AppState,
    trigger: Trigger,
    by: Option<Uuid>,
) -> Result<Backup, BackupError> {
    let now = now_ms();
    store::expire(&state.db, now).await?;
    let backup = Backup {
        id: Uuid::now_v7(),
        status: Status::Running,
        trigger,
        // On the schedule's clock, which the schedule compares it with.
        started_at: from_ms(state.clock.now_ms()),
        finished_at: None,
        cut_at: None,
        services_total: state.services.len() as i64,
        services_done: 0,
        rows: 0,
        bytes: 0,
        services: run::waiting(state),
        error: None,
        restore: None,
    };
    if !store::insert_backup(&state.db, &backup, by, now + LEASE_MS).await? {
        return Err(BackupError::Busy);
    }
    tracing::info!(id = %backup.id, trigger = trigger.as_str(), "backup started");
    state.tasks.spawn(run::run(state.clone(), backup.clone()));
    Ok(backup)
}

/// The manifest of backup `id`, if the store has one.
pub async fn manifest(state: &AppState, id: Uuid) -> Result<Option<Manifest>, BackupError> {
    let path = ObjectPath::from(domain::manifest_key(id));
    match state.objects.store.get(&path).await {
        Ok(got) => {
            let bytes = got.bytes().await.map_err(anyhow::Error::from)?;
            let manifest: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| BackupError::Unrestorable {
                    code: "bad-manifest",
                    detail: format!("{} is not a manifest: {e}", path),
                })?;
            Ok(Some(manifest))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(BackupError::Internal(e.into())),
    }
}

/// Every manifest in the store, newest first.
pub async fn manifests(state: &AppState) -> Result<Vec<Manifest>, BackupError> {
    let listed = state
        .objects
        .store
        .list_with_delimiter(Some(&ObjectPath::from("backups")))
        .await
        .map_err(anyhow::Error::from)?;
    let mut found = Vec::new();
    for dir in listed.common_prefixes {
        let Some(id) = dir.filename().and_then(|name| name.parse::<Uuid>().ok()) else { continue };
        match manifest(state, id).await {
            Ok(Some(m)) => found.push(m),
            Ok(None) => {} // running, or failed and not yet removed
            Err(e) => tracing::warn!(%id, error = %e, "skipping a backup whose manifest does not read"),
        }
    }
    found.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    Ok(found)
}

/// A backup with its latest restore; from the store's manifest when this system never
/// recorded it.
pub async fn backup(state: &AppState, id: Uuid) -> Result<Backup, BackupError> {
    store::expire(&state.db, now_ms()).await?;
    let mut found = match store::backup(&state.db, id).await? {
        Some(mut b) => {
            if b.status == Status::Complete
                && let Some(m) = manifest(state, id).await?
            {
                b.cut_at = Some(m.cut_at);
            }
            b
        }
        None => Backup::from_manifest(&manifest(state, id).await?.ok_or(BackupError::NotFound("backup"))?),
    };
    found.restore = store::latest_restore(&state.db, id).await?;
    Ok(found)
}

/// Backups, newest first: those recorded here and those found in the store.
pub async fn list(state: &AppState, page: PageRequest) -> Result<Page<Backup>, BackupError> {
    store::expire(&state.db, now_ms()).await?;
    let mut all = store::backups(&state.db).await?;
    for m in manifests(state).await? {
        match all.iter_mut().find(|b| b.id == m.id) {
            Some(recorded) => recorded.cut_at = Some(m.cut_at),
            None => all.push(Backup::from_manifest(&m)),
        }
    }
    all.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    let total = all.len() as i64;
    let items = all
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(0))
        .take(usize::try_from(page.limit()).unwrap_or(0))
        .collect();
    Ok(Page::new(items, page, total))
}

/// Check that backup `id` can be restored here (every service empty and at its schema
/// version), then restore it in the background.
pub async fn start_restore(state: &AppState, id: Uuid, by: Option<Uuid>) -> Result<Restore, BackupError> {
    let manifest = manifest(state, id).await?.ok_or(BackupError::NotFound("backup"))?;
    if manifest.format != domain::FORMAT {
        return Err(BackupError::Unrestorable {
            code: "unknown-format",
            detail: format!("manifest format {} (this version reads {})", manifest.format, domain::FORMAT),
        });
    }
    let mut targets = Vec::new();
    for part in &manifest.services {
        let service = crate::restore::target(state, part)
            .map_err(|detail| BackupError::Unrestorable { code: "unknown-service", detail })?;
        targets.push((service, part.schema_version));
    }
    let checks = targets.iter().map(|(service, version)| state.remote.check(service, *version));
    let mut not_empty = Vec::new();
    for answer in futures_util::future::join_all(checks).await {
        match answer {
            Ok(()) => {}
            Err(RemoteError::Refused { service, code, detail, .. }) if code == "not-empty" => {
                not_empty.push(format!("{service}: {detail}"))
            }
            Err(RemoteError::Refused { service, code, detail, .. }) if code == "schema-version" => {
                return Err(BackupError::Unrestorable {
                    code: "schema-version",
                    detail: format!("{service}: {detail}"),
                });
            }
            Err(e) => return Err(BackupError::Unavailable(e.to_string())),
        }
    }
    if !not_empty.is_empty() {
        return Err(BackupError::NotEmpty(not_empty.join("; ")));
    }
    let now = now_ms();
    store::expire(&state.db, now).await?;
    let restore = Restore {
        id: Uuid::now_v7(),
        status: Status::Running,
        phase: "verifying".to_owned(),
        started_at: from_ms(now),
        finished_at: None,
        services_total: manifest.services.len() as i64,
        services_done: 0,
        rows: 0,
        bytes_checked: 0,
        events_resent: 0,
        error: None,
    };
    if !store::insert_restore(&state.db, id, &restore, by, now + LEASE_MS).await? {
        return Err(BackupError::Busy);
    }
    tracing::info!(backup = %id, restore = %restore.id, "restore started");
    state.tasks.spawn(crate::restore::run(state.clone(), manifest, restore.clone()));
    Ok(restore)
}
