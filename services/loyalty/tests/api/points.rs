//! Points follow bookings: earned when confirmed, reversed exactly when cancelled or refunded,
//! whatever order and however many times the events arrive.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{TestSystem, flows};
use uuid::Uuid;

use crate::{
    account_when, assert_balanced, cancelled, confirmed, ledger, publish_cancelled, publish_confirmed,
};

#[tokio::test]
async fn a_paid_booking_earns_points_and_cancelling_it_takes_them_back() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = flows::showtime(&sys, &admin, "Heat", "UTC", 48).await;
    let (token, _) = sys.user_token().await;

    let fresh = sys.get("/api/v1/loyalty/me", Some(&token)).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(
        (fresh.body["points"].clone(), fresh.body["tier"].clone(), fresh.body["points_to_next_tier"].clone()),
        (json!(0), json!("bronze"), json!(500))
    );
    assert_eq!(sys.get("/api/v1/loyalty/me", None).await.status, 401);

    // Two standard seats and one premium: 10 + 10 + 15 = 35.00, 35 points at bronze.
    let booking = flows::book(&sys, &token, &show.id, &["A1", "A2", "E1"]).await;
    assert_eq!(booking["total_cents"], 3500, "{booking}");
    let account = account_when(&sys, &token, |a| a["points"] == 35).await;
    assert_eq!(account["lifetime_points"], 35, "{account}");
    let entries = ledger(&sys, &token).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0]["kind"].clone(), entries[0]["points"].clone()), (json!("earned"), json!(35)));
    assert_eq!(entries[0]["booking_id"], booking["id"]);

    let id = booking["id"].as_str().expect("id");
    let cancel = sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&token)).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    let account = account_when(&sys, &token, |a| a["points"] == 0).await;
    assert_eq!(
        (account["points"].clone(), account["lifetime_points"].clone()),
        (json!(0), json!(0)),
        "{account}"
    );
    let entries = ledger(&sys, &token).await;
    assert_eq!(entries[0]["kind"], "reversed", "{entries:?}");
    assert_eq!(entries[0]["points"], -35);
    assert_eq!(entries[0]["balance_after"], 0);
    assert_balanced(&sys).await;
}

#[tokio::test]
async fn an_event_delivered_twice_or_out_of_order_counts_once() {
    let sys = TestSystem::start().await;
    let (token, user) = sys.user_token().await;
    let user: Uuid = user.parse().expect("uuid");

    // Each event arrives twice.
    let first = confirmed(user, 12_345);
    publish_confirmed(&sys, &first).await;
    let account = account_when(&sys, &token, |a| a["points"] == 123).await;
    assert_eq!(account["points"], 123, "{account}");

    // The cancellation of another booking overtakes its confirmation: it earns nothing, ever.
    let second = confirmed(user, 50_000);
    publish_cancelled(&sys, &cancelled(&second)).await;
    publish_confirmed(&sys, &second).await;
    // A marker after both: once it has earned, the two before it were handled.
    let marker = confirmed(user, 100);
    publish_confirmed(&sys, &marker).await;
    let account = account_when(&sys, &token, |a| a["points"] != 123).await;
    assert_eq!(account["points"], 124, "the overtaken confirmation earned nothing: {account}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let entries = ledger(&sys, &token).await;
    assert_eq!(entries.len(), 2, "one entry per booking that earned: {entries:?}");

    // The cancellation of the first, twice: reversed once.
    publish_cancelled(&sys, &cancelled(&first)).await;
    let account = account_when(&sys, &token, |a| a["points"] == 1).await;
    assert_eq!(account["points"], 1, "{account}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ledger(&sys, &token).await.len(), 3);
    assert_balanced(&sys).await;
}

#[tokio::test]
async fn a_refund_after_a_tier_change_reverses_exactly_what_that_booking_earned() {
    let sys = TestSystem::start().await;
    let (token, user) = sys.user_token().await;
    let user: Uuid = user.parse().expect("uuid");

    // 500.00 at bronze: 500 points, which makes silver.
    let big = confirmed(user, 50_000);
    publish_confirmed(&sys, &big).await;
    let account = account_when(&sys, &token, |a| a["tier"] == "silver").await;
    assert_eq!(
        (account["points"].clone(), account["tier"].clone()),
        (json!(500), json!("silver")),
        "{account}"
    );
    assert_eq!(account["next_tier"], "gold");
    assert_eq!(account["points_to_next_tier"], 1500);

    // 100.00 at silver: 125 points.
    let small = confirmed(user, 10_000);
    publish_confirmed(&sys, &small).await;
    let account = account_when(&sys, &token, |a| a["points"] == 625).await;
    assert_eq!(account["points"], 625, "{account}");

    // The first is refunded: its 500 go back, not 625 and not 500 × 1.25; silver is lost.
    publish_cancelled(&sys, &cancelled(&big)).await;
    let account = account_when(&sys, &token, |a| a["points"] == 125).await;
    assert_eq!(
        (account["points"].clone(), account["lifetime_points"].clone(), account["tier"].clone()),
        (json!(125), json!(125), json!("bronze")),
        "{account}"
    );
    publish_cancelled(&sys, &cancelled(&small)).await;
    let account = account_when(&sys, &token, |a| a["points"] == 0).await;
    assert_eq!(account["points"], 0, "{account}");
    let kinds: Vec<Value> = ledger(&sys, &token).await.iter().map(|e| e["points"].clone()).collect();
    assert_eq!(kinds, vec![json!(-125), json!(-500), json!(125), json!(500)]);
    assert_balanced(&sys).await;
}

#[tokio::test]
async fn tier_changes_are_announced() {
    let sys = TestSystem::start().await;
    let (token, user) = sys.user_token().await;
    let user: Uuid = user.parse().expect("uuid");
    let big = confirmed(user, 250_000); // 2,500 points: bronze straight to gold
    publish_confirmed(&sys, &big).await;
    account_when(&sys, &token, |a| a["tier"] == "gold").await;
    let db = sys.db("loyalty");
    let found = testkit::eventually(Duration::from_secs(10), || async {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT event_type, payload FROM outbox WHERE event_type = 'tier.changed'")
                .fetch_all(&db.pool)
                .await
                .unwrap_or_default();
        rows.iter().any(|(_, p)| p.contains("\"from\":\"bronze\"") && p.contains("\"to\":\"gold\""))
    })
    .await;
    assert!(found, "tier.changed bronze → gold in loyalty's outbox");
}
