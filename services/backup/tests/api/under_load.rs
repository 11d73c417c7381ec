//! A backup taken while buyers are booking: the restored system's money, seats and tickets
//! agree (`marquee check ledger`), once what was in flight at the cut has settled.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use testkit::{TestSystem, flows};

use crate::{Store, backup, restore, settings};

#[tokio::test]
async fn a_backup_under_load_restores_to_a_clean_ledger() {
    let store = Store::fresh();
    let settings = settings(&store.0).with("MARQUEE_HOLD_SWEEP_MS", "100");
    let source = Arc::new(TestSystem::start_with(settings.clone()).await);
    let admin = source.admin_token().await;
    let show = flows::showtime(&source, &admin, "Rush Hour", "UTC", 48).await;

    // Buyers hold two seats and pay, over and over, on the same 50 seats: most holds fail
    // (taken), some pay, some leave their hold unpaid.
    let running = Arc::new(AtomicBool::new(true));
    let confirmed = Arc::new(AtomicU64::new(0));
    let mut buyers = Vec::new();
    for b in 0..6u64 {
        let (sys, running, confirmed, show) =
            (source.clone(), running.clone(), confirmed.clone(), show.id.clone());
        buyers.push(tokio::spawn(async move {
            let (token, _) = sys.user_token().await;
            let mut n = b;
            while running.load(Ordering::Relaxed) {
                n += 7;
                let row = ["A", "B", "C", "D", "E"][(n % 5) as usize];
                let seats = [format!("{row}{}", n % 10 + 1), format!("{row}{}", (n + 3) % 10 + 1)];
                let held = sys
                    .post("/api/v1/bookings", json!({"showtime_id": show, "seats": seats}), Some(&token))
                    .await;
                if held.status != 201 {
                    continue;
                }
                if n % 3 == 0 {
                    continue; // walks away: the hold runs out
                }
                let id = held.body["id"].as_str().unwrap_or_default().to_owned();
                let paid = sys
                    .post(&format!("/api/v1/bookings/{id}/pay"), flows::card(flows::GOOD_CARD), Some(&token))
                    .await;
                if paid.status == 200 {
                    confirmed.fetch_add(1, Ordering::Relaxed);
                }
                if n % 5 == 0 {
                    // and some change their minds: a refund
                    sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&token)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let done = backup(&source, &admin).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.store(false, Ordering::Relaxed);
    for buyer in buyers {
        buyer.await.expect("a buyer");
    }
    assert_eq!(done["status"], "complete", "{done}");
    assert!(confirmed.load(Ordering::Relaxed) > 0, "some bookings were paid for");
    let id = done["id"].as_str().expect("an id").to_owned();
    if let Ok(mut source) = Arc::try_unwrap(source) {
        source.stop().await;
    }

    let target = TestSystem::start_with(settings).await;
    let admin = target.admin_token().await;
    let restored = restore(&target, &admin, &id).await;
    assert_eq!(restored["restore"]["status"], "complete", "{restored}");
    // Holds open at the cut run out, charges cut mid-way are settled with payments.
    target.clock.advance(Duration::from_secs(11 * 60));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let report = loop {
        let report = target.ledger(Duration::from_secs(5)).await;
        if (report.is_clean() && report.in_flight == 0) || tokio::time::Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(report.is_clean(), "{}:\n{}", report.summary(), report.violations.join("\n"));
    assert_eq!(report.in_flight, 0, "everything in flight at the cut settled: {}", report.summary());
    assert!(report.confirmed > 0, "{}", report.summary());
}
