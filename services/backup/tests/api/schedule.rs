//! Scheduled backups and retention: a backup each period, the newest `MARQUEE_BACKUP_KEEP`
//! scheduled ones kept, and the ones an admin asked for never removed.

use std::time::Duration;

use testkit::TestSystem;

use crate::{Store, backup, settings, until};

#[tokio::test]
async fn scheduled_backups_come_each_period_and_only_the_newest_are_kept() {
    let store = Store::fresh();
    let settings = settings(&store.0)
        .with("MARQUEE_BACKUP_SCHEDULE", "daily")
        .with("MARQUEE_BACKUP_KEEP", "2")
        .with("MARQUEE_BACKUP_CHECK_MS", "100");
    let sys = TestSystem::start_with(settings).await;
    let admin = sys.admin_token().await;
    let manual = backup(&sys, &admin).await;
    assert_eq!(manual["status"], "complete", "{manual}");
    let scheduled = |b: &serde_json::Value| {
        b["items"].as_array().map_or(0, |i| {
            i.iter().filter(|b| b["trigger"] == "scheduled" && b["status"] == "complete").count()
        })
    };
    // Nothing is due before a day has passed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(scheduled(&sys.get("/api/v1/backups", Some(&admin)).await.body), 0);
    let mut seen = std::collections::HashSet::new();
    for _day in 1..=3 {
        sys.clock.advance(Duration::from_secs(24 * 3600 + 60));
        let listed = until(&sys, "/api/v1/backups", &admin, Duration::from_secs(30), |b| {
            let items = b["items"].as_array().cloned().unwrap_or_default();
            items.iter().all(|b| b["status"] != "running")
                && items.iter().any(|b| {
                    b["trigger"] == "scheduled"
                        && b["status"] == "complete"
                        && !seen.contains(&b["id"].to_string())
                })
        })
        .await;
        seen.extend(listed["items"].as_array().expect("items").iter().map(|b| b["id"].to_string()));
    }
    assert!(seen.len() >= 4, "three scheduled backups and the manual one: {seen:?}");
    let listed = until(&sys, "/api/v1/backups", &admin, Duration::from_secs(10), |b| scheduled(b) == 2).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(scheduled(&listed), 2, "the oldest scheduled one was removed: {listed}");
    assert!(items.iter().any(|b| b["id"] == manual["id"]), "the manual one stays: {listed}");
    // Its objects went with it: three backups are left in the store, and no file of the fourth
    // (a directory store keeps the empty directories).
    let mut manifests = 0;
    for dir in std::fs::read_dir(store.0.join("backups")).expect("the store").flatten() {
        if dir.path().join("manifest.json").exists() {
            manifests += 1;
        } else {
            assert_eq!(files_under(&dir.path()), 0, "{} was emptied", dir.path().display());
        }
    }
    assert_eq!(manifests, 3, "{listed}");
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| if e.path().is_dir() { files_under(&e.path()) } else { 1 })
        .sum()
}
