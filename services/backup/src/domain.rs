//! What a backup is: its manifest in the object store, and the answers of the API.

use platform::snapshot::export::{Held, Position};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The manifest's format; a restore refuses one it does not know.
pub const FORMAT: u32 = 1;

/// Where a backup's objects live in the store: `backups/{id}/...`.
pub fn prefix(id: Uuid) -> String {
    format!("backups/{id}")
}

pub fn manifest_key(id: Uuid) -> String {
    format!("{}/manifest.json", prefix(id))
}

pub fn table_key(id: Uuid, service: &str, table: &str) -> String {
    format!("{}/{service}/{table}.jsonl.gz", prefix(id))
}

/// `backups/{id}/manifest.json`: written last, so a backup without one never completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: Uuid,
    pub trigger: Trigger,
    /// The version of Marquee that wrote it.
    pub marquee_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// The instant every service's writers were held at once: the backup is the system as it
    /// stood then.
    #[serde(with = "time::serde::rfc3339")]
    pub cut_at: OffsetDateTime,
    pub rows: u64,
    pub bytes: u64,
    pub services: Vec<ServiceManifest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceManifest {
    pub service: String,
    pub schema_version: i64,
    /// Epoch ms, by the service's clock.
    pub taken_at: i64,
    pub held: Option<Held>,
    pub position: Position,
    pub tables: Vec<TableEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    pub table: String,
    pub rows: u64,
    /// Compressed bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the object.
    pub sha256: String,
    /// Its key in the store.
    pub object: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Manual,
    Scheduled,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "scheduled" { Self::Scheduled } else { Self::Manual }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Complete,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "complete" => Self::Complete,
            _ => Self::Failed,
        }
    }
}

/// One service's part of a backup, as it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceProgress {
    pub service: String,
    /// `waiting`, `copying`, `done` or `failed`.
    pub status: String,
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// A backup, as `GET /backups/{id}` answers it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Backup {
    pub id: Uuid,
    pub status: Status,
    pub trigger: Trigger,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
    /// When the system was cut (complete backups).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cut_at: Option<OffsetDateTime>,
    pub services_total: i64,
    pub services_done: i64,
    /// Rows and compressed bytes written so far.
    pub rows: i64,
    pub bytes: i64,
    pub services: Vec<ServiceProgress>,
    /// Why it failed.
    pub error: Option<String>,
    /// The latest restore from it into this system, if any.
    pub restore: Option<Restore>,
}

/// A restore, as it goes.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Restore {
    pub id: Uuid,
    pub status: Status,
    /// `verifying` (every object's checksum, before anything is touched), `restoring`,
    /// `resending` (the events of the last minutes before the cut, for consumers to dedupe),
    /// then `done`.
    pub phase: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
    pub services_total: i64,
    pub services_done: i64,
    pub rows: i64,
    pub bytes_checked: i64,
    pub events_resent: i64,
    pub error: Option<String>,
}

impl Backup {
    /// A backup this system never recorded, from its manifest.
    pub fn from_manifest(m: &Manifest) -> Self {
        Self {
            id: m.id,
            status: Status::Complete,
            trigger: m.trigger,
            started_at: m.started_at,
            finished_at: Some(m.finished_at),
            cut_at: Some(m.cut_at),
            services_total: m.services.len() as i64,
            services_done: m.services.len() as i64,
            rows: i64::try_from(m.rows).unwrap_or(i64::MAX),
            bytes: i64::try_from(m.bytes).unwrap_or(i64::MAX),
            services: m
                .services
                .iter()
                .map(|s| ServiceProgress {
                    service: s.service.clone(),
                    status: "done".to_owned(),
                    tables: s.tables.len() as u64,
                    rows: s.tables.iter().map(|t| t.rows).sum(),
                    bytes: s.tables.iter().map(|t| t.bytes).sum(),
                })
                .collect(),
            error: None,
            restore: None,
        }
    }
}

/// How often scheduled backups run: `MARQUEE_BACKUP_SCHEDULE` = `off`, `hourly`, `daily`,
/// `weekly`, or a period such as `30m`, `6h`, `2d`.
pub fn parse_schedule(value: &str) -> Result<Option<std::time::Duration>, String> {
    let v = value.trim().to_ascii_lowercase();
    let hour = 3600;
    let secs = match v.as_str() {
        "" | "off" | "none" => return Ok(None),
        "hourly" => hour,
        "daily" => 24 * hour,
        "weekly" => 7 * 24 * hour,
        other => {
            let (number, unit) = other.split_at(other.len().saturating_sub(1));
            let n: u64 = number
                .parse()
                .map_err(|_| format!("{value:?}: want off, hourly, daily, weekly or e.g. 6h"))?;
            let per = match unit {
                "m" => 60,
                "h" => hour,
                "d" => 24 * hour,
                _ => return Err(format!("{value:?}: the unit is m, h or d")),
            };
            n.checked_mul(per).filter(|s| *s >= 60).ok_or_else(|| format!("{value:?}: at least 1m"))?
        }
    };
    Ok(Some(std::time::Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_words_or_periods() {
        let h = |n: u64| Some(std::time::Duration::from_secs(n * 3600));
        assert_eq!(parse_schedule("off"), Ok(None));
        assert_eq!(parse_schedule(""), Ok(None));
        assert_eq!(parse_schedule("daily"), Ok(h(24)));
        assert_eq!(parse_schedule("Hourly"), Ok(h(1)));
        assert_eq!(parse_schedule("6h"), Ok(h(6)));
        assert_eq!(parse_schedule("2d"), Ok(h(48)));
        assert_eq!(parse_schedule("30m"), Ok(Some(std::time::Duration::from_secs(1800))));
        for bad in ["0m", "10s", "h", "-1h", "daily please", "99999999999999999999d"] {
            assert!(parse_schedule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let m = Manifest {
            format: FORMAT,
            id: Uuid::now_v7(),
            trigger: Trigger::Scheduled,
            marquee_version: "0.1.0".into(),
            started_at: platform::time::from_ms(1_767_225_600_000),
            finished_at: platform::time::from_ms(1_767_225_601_000),
            cut_at: platform::time::from_ms(1_767_225_600_500),
            rows: 3,
            bytes: 120,
            services: vec![ServiceManifest {
                service: "catalog".into(),
                schema_version: 101,
                taken_at: 1_767_225_600_500,
                held: Some(Held { from: 1_767_225_600_400, until: 1_767_225_600_500 }),
                position: Position::default(),
                tables: vec![TableEntry {
                    table: "movies".into(),
                    rows: 3,
                    bytes: 120,
                    sha256: "ab".repeat(32),
                    object: "backups/x/catalog/movies.jsonl.gz".into(),
                }],
            }],
        };
        let json = serde_json::to_string(&m).expect("a step of the test");
        assert_eq!(serde_json::from_str::<Manifest>(&json).expect("a step of the test"), m);
        assert_eq!(Backup::from_manifest(&m).services[0].rows, 3);
    }
}
