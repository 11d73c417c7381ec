//! backup through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis: a
//! system is backed up, and a second, fresh one restored from it answers the same.

mod refusals;
mod round_trip;
mod s3;
mod schedule;
mod under_load;

use std::{path::Path, time::Duration};

use serde_json::{Value, json};
use testkit::TestSystem;

/// Test settings with the object store (media and backups) in `store`, shared by the systems.
pub fn settings(store: &Path) -> platform::Settings {
    base().with("MARQUEE_OBJECT_STORE", store.display().to_string())
}

/// Each test runs two systems, and a snapshot takes two connections of each service's pool on
/// top of its traffic: small pools keep two tests at once within PostgreSQL's 100 connections.
pub fn base() -> platform::Settings {
    testkit::test_settings().with("MARQUEE_DATABASE_MAX_CONNECTIONS", "4").with("MARQUEE_FFMPEG", "off")
}

/// A directory for a test's object store, removed on drop.
pub struct Store(pub std::path::PathBuf);

impl Store {
    pub fn fresh() -> Self {
        let dir = std::env::temp_dir().join(format!("marquee-backups-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a store directory");
        Self(dir)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `GET path` until `done` holds of the answer, or panic after `timeout`.
pub async fn until(
    sys: &TestSystem,
    path: &str,
    token: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let a = sys.get(path, Some(token)).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        if done(&a.body) {
            return a.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} did not get there: {}", a.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Take a backup and wait for it to end; the finished backup.
pub async fn backup(sys: &TestSystem, admin: &str) -> Value {
    let started = sys.post("/api/v1/backups", json!({}), Some(admin)).await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.body["status"], "running");
    let id = started.body["id"].as_str().expect("an id").to_owned();
    assert_eq!(started.header("location"), Some(format!("/api/v1/backups/{id}").as_str()));
    until(sys, &format!("/api/v1/backups/{id}"), admin, Duration::from_secs(60), |b| b["status"] != "running")
        .await
}

/// Start a restore of backup `id`; the answer to the request.
pub async fn start_restore(sys: &TestSystem, admin: &str, id: &str) -> testkit::Answer {
    sys.post(&format!("/api/v1/backups/{id}/restore"), json!({}), Some(admin)).await
}

/// Restore backup `id` and wait for the restore to end; the backup with its restore.
pub async fn restore(sys: &TestSystem, admin: &str, id: &str) -> Value {
    let started = start_restore(sys, admin, id).await;
    assert_eq!(started.status, 202, "{}", started.body);
    until(sys, &format!("/api/v1/backups/{id}"), admin, Duration::from_secs(60), |b| {
        b["restore"]["status"].as_str().is_some_and(|s| s != "running")
    })
    .await
}

/// Wait until no service has an event left to publish: what the restore sent again has been
/// delivered (and, in the embedded mode, handled).
pub async fn settled(sys: &TestSystem) {
    let quiet = testkit::eventually(Duration::from_secs(20), || async {
        // Every service but this one has an outbox.
        for service in contracts::services::SERVICES.iter().map(|s| s.name).filter(|s| *s != "backup") {
            let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
                .fetch_one(&sys.db(service).pool)
                .await
                .expect("counting the outbox");
            if pending > 0 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(quiet, "every outbox drained");
    // Delivery over the broker and handling take a moment more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
}
