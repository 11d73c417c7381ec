//! Backups in S3: the same round trip against a real S3 API (moto's server, started here).

use serde_json::Value;
use testkit::{TestSystem, flows};

use crate::{backup, restore, settled};

#[tokio::test]
async fn a_backup_in_s3_restores_like_one_in_a_directory() {
    let Some(moto) = testkit::moto::start("marquee-backups").await else {
        eprintln!(
            "SKIPPED a_backup_in_s3_restores_like_one_in_a_directory: no moto (pip install 'moto[server]')"
        );
        return;
    };
    let settings = moto.settings(crate::base(), "MARQUEE_BACKUP_STORE", "marquee-backups", "nightly");
    let mut source = TestSystem::start_with(settings.clone()).await;
    let admin = source.admin_token().await;
    let show = flows::showtime(&source, &admin, "Cloud Copy", "America/New_York", 30).await;
    let (token, _) = source.user_token().await;
    let booked = flows::book(&source, &token, &show.id, &["B1", "B2", "B3"]).await;
    let booking = format!("/api/v1/bookings/{}", booked["id"].as_str().expect("an id"));
    let seats = format!("/api/v1/showtimes/{}/seats", show.id);
    settled(&source).await;
    let before: Vec<Value> =
        vec![source.get(&booking, Some(&token)).await.body, source.get(&seats, None).await.body];
    let done = backup(&source, &admin).await;
    assert_eq!(done["status"], "complete", "{done}");
    let id = done["id"].as_str().expect("an id").to_owned();
    source.stop().await;

    // The objects are in the bucket, under the prefix, and not in the data dir.
    let listing =
        reqwest::get(format!("{}/marquee-backups?list-type=2&prefix=nightly/backups/{id}/", moto.url))
            .await
            .expect("list")
            .text()
            .await
            .expect("xml");
    assert!(listing.contains(&format!("nightly/backups/{id}/manifest.json")), "{listing}");
    assert!(listing.contains(&format!("nightly/backups/{id}/booking/bookings.jsonl.gz")), "{listing}");

    let target = TestSystem::start_with(settings).await;
    let admin = target.admin_token().await;
    let restored = restore(&target, &admin, &id).await;
    assert_eq!(restored["restore"]["status"], "complete", "{restored}");
    settled(&target).await;
    let after: Vec<Value> =
        vec![target.get(&booking, Some(&token)).await.body, target.get(&seats, None).await.body];
    assert_eq!(before, after);
}
