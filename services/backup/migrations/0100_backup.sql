-- Backups taken by this deployment and restores into it. The backups themselves (a manifest and
-- one gzip JSON Lines object per table) live in the object store; a backup found there that this
-- database never recorded (a fresh system restoring an old one's) is listed from its manifest.

CREATE TABLE backups (
    id              TEXT PRIMARY KEY,          -- UUID v7
    lane            TEXT NOT NULL,             -- always 'work': one backup or restore at a time
    status          TEXT NOT NULL,             -- running | complete | failed
    trigger         TEXT NOT NULL,             -- manual | scheduled
    requested_by    TEXT,                      -- the admin's user id; null when scheduled
    started_at      BIGINT NOT NULL,           -- epoch ms
    finished_at     BIGINT,
    lease_until     BIGINT NOT NULL,           -- a running backup renews it; past it, it died
    services_total  INTEGER NOT NULL,
    services_done   INTEGER NOT NULL,
    rows_written    BIGINT NOT NULL,
    bytes_written   BIGINT NOT NULL,
    services        TEXT NOT NULL,             -- JSON: each service's progress
    error           TEXT
);
CREATE UNIQUE INDEX backups_one_running ON backups (lane) WHERE status = 'running';
CREATE INDEX backups_started ON backups (started_at);

CREATE TABLE restores (
    id              TEXT PRIMARY KEY,
    backup_id       TEXT NOT NULL,
    lane            TEXT NOT NULL,
    status          TEXT NOT NULL,             -- running | complete | failed
    phase           TEXT NOT NULL,             -- verifying | restoring | resending | done
    requested_by    TEXT,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    lease_until     BIGINT NOT NULL,
    services_total  INTEGER NOT NULL,
    services_done   INTEGER NOT NULL,
    rows_restored   BIGINT NOT NULL,
    bytes_checked   BIGINT NOT NULL,
    events_resent   BIGINT NOT NULL,
    error           TEXT
);
CREATE UNIQUE INDEX restores_one_running ON restores (lane) WHERE status = 'running';
CREATE INDEX restores_backup ON restores (backup_id, started_at);
