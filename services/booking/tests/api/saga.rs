//! The gaps between charging and confirming: a booking ends confirmed or refunded, never
//! charged and unconfirmed; showtime cancellation refunds everyone; tickets at the door.

use std::time::Duration;

use serde_json::json;
use testkit::{TestSystem, eventually, test_settings};

use crate::{GOOD, card, charge_and_crash, hold, showtime};

#[tokio::test]
async fn a_retry_after_a_crash_uses_the_charge_already_made() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let booking = hold(&sys, &token, &show, &["A1"]).await.body;
    let payment = charge_and_crash(&sys, &booking).await;
    let id = booking["id"].as_str().expect("id");
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!(
        (paid.status, paid.body["payment_id"].as_str()),
        (200, Some(payment.as_str())),
        "{}",
        paid.body
    );
    assert_eq!(sys.get("/api/v1/payments", Some(&token)).await.body["total"], 1, "no second charge");
}

#[tokio::test]
async fn a_charged_hold_that_expires_is_refunded_by_the_sweeper() {
    let settings = test_settings().with("MARQUEE_HOLD_TTL_SECONDS", "1").with("MARQUEE_HOLD_SWEEP_MS", "100");
    let sys = TestSystem::start_with(settings).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let booking = hold(&sys, &token, &show, &["A1", "A2"]).await.body;
    charge_and_crash(&sys, &booking).await;
    let id = booking["id"].as_str().expect("id").to_owned();
    let expired = eventually(Duration::from_secs(10), || async {
        sys.get(&format!("/api/v1/bookings/{id}"), Some(&token)).await.body["status"] == "expired"
    })
    .await;
    assert!(expired, "the sweeper ended the hold");
    sys.assert_ledger_clean(Duration::from_secs(10)).await;
    let payments = sys.get("/api/v1/payments", Some(&token)).await.body;
    assert_eq!(
        payments["items"][0]["refunded_cents"], payments["items"][0]["amount_cents"],
        "refunded in full"
    );
}

#[tokio::test]
async fn cancelling_a_showtime_cancels_and_refunds_every_booking() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 0).await; // inside the hour: the cinema refunds anyway
    let (alice, _) = sys.user_token().await;
    let (bob, _) = sys.user_token().await;
    let paid = hold(&sys, &alice, &show, &["A1", "A2"]).await.body["id"].as_str().expect("id").to_owned();
    assert_eq!(sys.post(&format!("/api/v1/bookings/{paid}/pay"), card(GOOD), Some(&alice)).await.status, 200);
    let held = hold(&sys, &bob, &show, &["B1"]).await.body["id"].as_str().expect("id").to_owned();
    assert_eq!(sys.delete(&format!("/api/v1/showtimes/{show}"), Some(&admin)).await.status, 204);
    let done = eventually(Duration::from_secs(15), || async {
        sys.get(&format!("/api/v1/bookings/{paid}"), Some(&alice)).await.body["status"] == "cancelled"
            && sys.get(&format!("/api/v1/bookings/{held}"), Some(&bob)).await.body["status"] == "cancelled"
    })
    .await;
    assert!(done, "both bookings were cancelled");
    sys.assert_ledger_clean(Duration::from_secs(10)).await;
    let payment = &sys.get("/api/v1/payments", Some(&alice)).await.body["items"][0];
    assert_eq!(
        (payment["refunded_cents"].as_i64(), payment["amount_cents"].as_i64()),
        (Some(2000), Some(2000))
    );
}

#[tokio::test]
async fn a_ticket_is_checked_at_the_door() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let id = hold(&sys, &token, &show, &["A3"]).await.body["id"].as_str().expect("id").to_owned();
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await.body;
    let code = paid["tickets"][0]["code"].as_str().expect("code").to_owned();
    let check = sys.get(&format!("/api/v1/tickets/{code}"), Some(&admin)).await;
    assert_eq!(check.status, 200, "{}", check.body);
    assert_eq!(
        (check.body["valid"].as_bool(), check.body["ticket"]["seat"].as_str()),
        (Some(true), Some("A3"))
    );
    assert_eq!(sys.get(&format!("/api/v1/tickets/{code}"), Some(&token)).await.status, 403);
    assert_eq!(sys.get("/api/v1/tickets/NOT-A-CODE", Some(&admin)).await.status, 404);
    sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&token)).await;
    assert_eq!(sys.get(&format!("/api/v1/tickets/{code}"), Some(&admin)).await.body["valid"], false);
}
