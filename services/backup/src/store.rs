//! The SQL: backups and restores as they run. Every change of state is conditional on the state
//! it leaves (`WHERE status = 'running'`), so a backup declared dead cannot later claim success.

use platform::{db::Db, time::from_ms};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::{Backup, Restore, ServiceProgress, Status, Trigger};

/// Both kinds of work share one lane: a backup and a restore never run at once.
const LANE: &str = "work";

const BACKUP_COLUMNS: &str = "id, status, trigger, started_at, finished_at, services_total, services_done, \
     rows_written, bytes_written, services, error";

fn backup_of(row: &sqlx::any::AnyRow) -> anyhow::Result<Backup> {
    let id: String = row.try_get("id")?;
    let services: String = row.try_get("services")?;
    Ok(Backup {
        id: id.parse()?,
        status: Status::parse(&row.try_get::<String, _>("status")?),
        trigger: Trigger::parse(&row.try_get::<String, _>("trigger")?),
        started_at: from_ms(row.try_get("started_at")?),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_ms),
        cut_at: None,
        services_total: row.try_get("services_total")?,
        services_done: row.try_get("services_done")?,
        rows: row.try_get("rows_written")?,
        bytes: row.try_get("bytes_written")?,
        services: serde_json::from_str::<Vec<ServiceProgress>>(&services)?,
        error: row.try_get("error")?,
        restore: None,
    })
}

/// Whether a conditional insert made its row: `false` when its condition or the one-running index
/// (another one is running) kept it out.
fn inserted(result: Result<sqlx::any::AnyQueryResult, sqlx::Error>) -> anyhow::Result<bool> {
    match result {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(e) if platform::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Start a backup unless one (or a restore) is running. `false`: one is.
pub async fn insert_backup(
    db: &Db,
    backup: &Backup,
    requested_by: Option<Uuid>,
    lease_until: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO backups (id, lane, status, trigger, requested_by, started_at, lease_until, services_total, \
         services_done, rows_written, bytes_written, services) \
         SELECT $1, $2, 'running', $3, $4, $5, $6, $7, 0, 0, 0, $8 \
         WHERE NOT EXISTS (SELECT 1 FROM restores WHERE status = 'running')",
    )
    .bind(backup.id.to_string())
    .bind(LANE)
    .bind(backup.trigger.as_str())
    .bind(requested_by.map(|u| u.to_string()))
    .bind(platform::time::to_ms(backup.started_at))
    .bind(lease_until)
    .bind(backup.services_total)
    .bind(serde_json::to_string(&backup.services)?)
    .execute(&db.pool)
    .await;
    inserted(result)
}

/// Record progress (and renew the lease) of a backup that is still running. `false`: it is not
/// (declared dead meanwhile), and its work must stop.
pub async fn backup_progress(db: &Db, backup: &Backup, lease_until: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE backups SET services_done = $1, rows_written = $2, bytes_written = $3, services = $4, \
         lease_until = $5 WHERE id = $6 AND status = 'running'",
    )
    .bind(backup.services_done)
    .bind(backup.rows)
    .bind(backup.bytes)
    .bind(serde_json::to_string(&backup.services)?)
    .bind(lease_until)
    .bind(backup.id.to_string())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// End a running backup as `complete` or `failed`. `false`: it was not running.
pub async fn finish_backup(db: &Db, backup: &Backup, now: i64) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE backups SET status = $1, error = $2, finished_at = $3, services_done = $4, rows_written = $5, \
         bytes_written = $6, services = $7 WHERE id = $8 AND status = 'running'",
    )
    .bind(backup.status.as_str())
    .bind(&backup.error)
    .bind(now)
    .bind(backup.services_done)
    .bind(backup.rows)
    .bind(backup.bytes)
    .bind(serde_json::to_string(&backup.services)?)
    .bind(backup.id.to_string())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Work whose process died (its lease ran out) is failed, so it is never reported running
/// forever, nor complete.
pub async fn expire(db: &Db, now: i64) -> anyhow::Result<()> {
    for table in ["backups", "restores"] {
        let sql = format!(
            "UPDATE {table} SET status = 'failed', finished_at = $1, \
             error = 'interrupted: the process doing it stopped' WHERE status = 'running' AND lease_until < $1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).execute(&db.pool).await?;
    }
    Ok(())
}

pub async fn backup(db: &Db, id: Uuid) -> anyhow::Result<Option<Backup>> {
    let sql = format!("SELECT {BACKUP_COLUMNS} FROM backups WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(&db.pool).await?;
    row.as_ref().map(backup_of).transpose()
}

pub async fn backups(db: &Db) -> anyhow::Result<Vec<Backup>> {
    let sql = format!("SELECT {BACKUP_COLUMNS} FROM backups ORDER BY started_at DESC, id DESC");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?;
    rows.iter().map(backup_of).collect()
}

pub async fn delete_backup(db: &Db, id: Uuid) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM backups WHERE id = $1 AND status <> 'running'")
        .bind(id.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// When the last scheduled backup started (epoch ms), whatever became of it.
pub async fn last_scheduled(db: &Db) -> anyhow::Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT MAX(started_at) FROM backups WHERE trigger = 'scheduled'")
        .fetch_one(&db.pool)
        .await?)
}

const RESTORE_COLUMNS: &str = "id, status, phase, started_at, finished_at, services_total, services_done, \
     rows_restored, bytes_checked, events_resent, error";

fn restore_of(row: &sqlx::any::AnyRow) -> anyhow::Result<Restore> {
    let id: String = row.try_get("id")?;
    Ok(Restore {
        id: id.parse()?,
        status: Status::parse(&row.try_get::<String, _>("status")?),
        phase: row.try_get("phase")?,
        started_at: from_ms(row.try_get("started_at")?),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_ms),
        services_total: row.try_get("services_total")?,
        services_done: row.try_get("services_done")?,
        rows: row.try_get("rows_restored")?,
        bytes_checked: row.try_get("bytes_checked")?,
        events_resent: row.try_get("events_resent")?,
        error: row.try_get("error")?,
    })
}

/// Start a restore unless one (or a backup) is running. `false`: one is.
pub async fn insert_restore(
    db: &Db,
    backup_id: Uuid,
    restore: &Restore,
    requested_by: Option<Uuid>,
    lease_until: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO restores (id, backup_id, lane, status, phase, requested_by, started_at, lease_until, \
         services_total, services_done, rows_restored, bytes_checked, events_resent) \
         SELECT $1, $2, $3, 'running', $4, $5, $6, $7, $8, 0, 0, 0, 0 \
         WHERE NOT EXISTS (SELECT 1 FROM backups WHERE status = 'running')",
    )
    .bind(restore.id.to_string())
    .bind(backup_id.to_string())
    .bind(LANE)
    .bind(&restore.phase)
    .bind(requested_by.map(|u| u.to_string()))
    .bind(platform::time::to_ms(restore.started_at))
    .bind(lease_until)
    .bind(restore.services_total)
    .execute(&db.pool)
    .await;
    inserted(result)
}

/// Record a running restore's progress and renew its lease; with `finished_at`, end it with
/// its status. `false`: it was not running.
pub async fn save_restore(
    db: &Db,
    restore: &Restore,
    lease_until: i64,
    finished_at: Option<i64>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE restores SET status = $1, phase = $2, services_done = $3, rows_restored = $4, bytes_checked = $5, \
         events_resent = $6, error = $7, lease_until = $8, finished_at = $9 WHERE id = $10 AND status = 'running'",
    )
    .bind(restore.status.as_str())
    .bind(&restore.phase)
    .bind(restore.services_done)
    .bind(restore.rows)
    .bind(restore.bytes_checked)
    .bind(restore.events_resent)
    .bind(&restore.error)
    .bind(lease_until)
    .bind(finished_at)
    .bind(restore.id.to_string())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The latest restore from a backup.
pub async fn latest_restore(db: &Db, backup_id: Uuid) -> anyhow::Result<Option<Restore>> {
    let sql = format!(
        "SELECT {RESTORE_COLUMNS} FROM restores WHERE backup_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1"
    );
    let row =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(backup_id.to_string()).fetch_optional(&db.pool).await?;
    row.as_ref().map(restore_of).transpose()
}
