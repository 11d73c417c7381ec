//! Scheduled backups (`MARQUEE_BACKUP_SCHEDULE`) and retention (`MARQUEE_BACKUP_KEEP`).
//!
//! Every replica looks each minute (`MARQUEE_BACKUP_CHECK_MS`); the first to find a period gone since the last scheduled
//! backup starts one, and the others find it running (one backup runs at a time, decided by the
//! database). Only scheduled backups are removed by retention: one an admin asked for is kept.

use platform::time::{now_ms, to_ms};

use crate::{AppState, domain::Trigger, error::BackupError, ops, run, store};

pub async fn run(state: AppState) {
    let started = state.clock.now_ms();
    let mut tick = tokio::time::interval(state.config.check_every);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = pass(&state, started).await {
            tracing::warn!(error = %e, "the backup schedule");
        }
    }
}

async fn pass(state: &AppState, started: i64) -> anyhow::Result<()> {
    store::expire(&state.db, now_ms()).await?;
    let now = state.clock.now_ms();
    let Some(every) = state.config.every else { return Ok(()) };
    let every = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    // Counted from this process's start when there is no scheduled backup yet, so a restart
    // does not take one at once.
    let last = store::last_scheduled(&state.db).await?.unwrap_or(started);
    if now - last < every {
        return Ok(());
    }
    match ops::start_backup(state, Trigger::Scheduled, None).await {
        Ok(_) | Err(BackupError::Busy) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

/// Remove scheduled backups beyond the newest `keep` complete ones.
pub async fn prune(state: &AppState) -> anyhow::Result<usize> {
    if state.config.keep == 0 {
        return Ok(0);
    }
    let scheduled: Vec<_> = ops::manifests(state)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|m| m.trigger == Trigger::Scheduled)
        .collect();
    let mut removed = 0;
    for old in scheduled.iter().skip(state.config.keep) {
        // The manifest first: a half-removed backup is then one that never completed.
        let manifest = object_store::path::Path::from(crate::domain::manifest_key(old.id));
        object_store::ObjectStoreExt::delete(state.objects.store.as_ref(), &manifest).await?;
        run::remove_objects(state, &crate::domain::prefix(old.id)).await;
        store::delete_backup(&state.db, old.id).await?;
        tracing::info!(id = %old.id, started_at = to_ms(old.started_at), "removed a backup past retention");
        removed += 1;
    }
    Ok(removed)
}
