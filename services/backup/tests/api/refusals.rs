//! What a restore refuses: services that hold data, a damaged object, a backup that is not
//! there; and who may ask.

use serde_json::json;
use testkit::{TestSystem, flows};

use crate::{Store, backup, settings, start_restore, until};

#[tokio::test]
async fn a_restore_into_a_system_in_use_is_refused_and_changes_nothing() {
    let store = Store::fresh();
    let sys = TestSystem::start_with(settings(&store.0)).await;
    let admin = sys.admin_token().await;
    let show = flows::showtime(&sys, &admin, "Already Here", "UTC", 24).await;
    let done = backup(&sys, &admin).await;
    assert_eq!(done["status"], "complete", "{done}");
    let id = done["id"].as_str().expect("an id");

    // Into itself: the catalog has a movie, showtimes a theater.
    let refused = start_restore(&sys, &admin, id).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["type"], "urn:marquee:problem:not-empty");
    let detail = refused.body["detail"].as_str().expect("a detail");
    assert!(detail.contains("catalog") && detail.contains("movies has 1 rows"), "{detail}");
    assert!(detail.contains("showtimes") && detail.contains("theaters"), "{detail}");
    let after = sys.get(&format!("/api/v1/backups/{id}"), Some(&admin)).await;
    assert_eq!(after.body["restore"], serde_json::Value::Null, "no restore was started");
    assert_eq!(sys.get(&format!("/api/v1/showtimes/{}", show.id), None).await.status, 200);

    // Customers may not back up, restore or look.
    let (customer, _) = sys.user_token().await;
    assert_eq!(sys.post("/api/v1/backups", json!({}), Some(&customer)).await.status, 403);
    assert_eq!(sys.get("/api/v1/backups", Some(&customer)).await.status, 403);
    assert_eq!(start_restore(&sys, &customer, id).await.status, 403);
    assert_eq!(sys.get("/api/v1/backups", None).await.status, 401);
    // A backup that is not there, and one that is not an id.
    let missing = start_restore(&sys, &admin, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert_eq!(sys.get("/api/v1/backups/not-an-id", Some(&admin)).await.status, 400);
}

#[tokio::test]
async fn a_damaged_object_fails_the_restore_before_anything_is_touched() {
    let store = Store::fresh();
    let mut source = TestSystem::start_with(settings(&store.0)).await;
    let admin = source.admin_token().await;
    flows::showtime(&source, &admin, "Bit Rot", "UTC", 24).await;
    let done = backup(&source, &admin).await;
    let id = done["id"].as_str().expect("an id").to_owned();
    source.stop().await;

    // One byte of the catalog's movies flipped, in the store.
    let object = store.0.join(format!("backups/{id}/catalog/movies.jsonl.gz"));
    let mut bytes = std::fs::read(&object).expect("the object is a file in the store");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&object, bytes).expect("damaging it");

    let target = TestSystem::start_with(settings(&store.0)).await;
    let admin = target.admin_token().await;
    let started = start_restore(&target, &admin, &id).await;
    assert_eq!(started.status, 202, "{}", started.body);
    let ended =
        until(&target, &format!("/api/v1/backups/{id}"), &admin, std::time::Duration::from_secs(30), |b| {
            b["restore"]["status"] != "running"
        })
        .await;
    assert_eq!(ended["restore"]["status"], "failed", "{ended}");
    let error = ended["restore"]["error"].as_str().expect("an error");
    assert!(error.contains("catalog/movies") && error.contains("damaged"), "{error}");
    assert_eq!(ended["restore"]["services_done"], 0, "{ended}");
    // Nothing was restored: the identity service still holds only its own administrator.
    assert_eq!(target.get("/api/v1/movies", None).await.body["total"], 0);
    assert_eq!(target.get("/api/v1/theaters", None).await.body["total"], 0);
}

/// A service that is down during a backup fails it, by name; it is never reported complete,
/// and no manifest is left for a restore to find.
#[tokio::test]
async fn a_service_that_is_down_fails_the_backup_clearly() {
    let store = Store::fresh();
    let proxy = testkit::FaultProxy::start().await.expect("a proxy");
    let sys = TestSystem::start_routed(settings(&store.0), &[("loyalty", &proxy)]).await;
    let admin = sys.admin_token().await;
    proxy.faults.set_down(true);
    let failed = backup(&sys, &admin).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().expect("an error");
    assert!(error.contains("loyalty is unavailable"), "{error}");
    let id = failed["id"].as_str().expect("an id");
    assert!(!store.0.join(format!("backups/{id}/manifest.json")).exists(), "no manifest");
    let restore = start_restore(&sys, &admin, id).await;
    assert_eq!(restore.status, 404, "a failed backup cannot be restored: {}", restore.body);
    // Once loyalty is back, the next backup completes.
    proxy.faults.heal();
    let done = backup(&sys, &admin).await;
    assert_eq!(done["status"], "complete", "{done}");
}
