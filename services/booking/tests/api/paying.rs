use serde_json::json;
use testkit::TestSystem;

use crate::{DECLINED, GOOD, card, hold, showtime};

async fn payments_of(sys: &TestSystem, token: &str) -> serde_json::Value {
    sys.get("/api/v1/payments", Some(token)).await.body
}

#[tokio::test]
async fn paying_confirms_sells_the_seats_and_issues_tickets() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 5, 8, 24).await;
    let (token, _) = sys.user_token().await;
    let b = hold(&sys, &token, &show, &["E1", "E2"]).await;
    let id = b.body["id"].as_str().expect("id");
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.body["status"], "confirmed");
    let tickets = paid.body["tickets"].as_array().expect("tickets");
    assert_eq!(tickets.len(), 2);
    assert_ne!(tickets[0]["code"], tickets[1]["code"]);
    assert!(tickets[0]["code"].as_str().is_some_and(|c| c.len() >= 32), "codes carry 128 random bits");
    let payments = payments_of(&sys, &token).await;
    assert_eq!(
        (payments["total"].as_i64(), payments["items"][0]["amount_cents"].as_i64()),
        (Some(1), Some(3000))
    );
    assert_eq!(payments["items"][0]["id"], paid.body["payment_id"]);
    let map = sys.get(&format!("/api/v1/showtimes/{show}/seats"), None).await;
    assert_eq!(map.body["rows"][4]["seats"][0]["status"], "booked");
    // Paying again changes nothing and charges nothing.
    let again = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!((again.status, again.body["status"].as_str()), (200, Some("confirmed")));
    assert_eq!(payments_of(&sys, &token).await["total"], 1);
    let events: Vec<String> = sqlx::query_scalar("SELECT event_type FROM outbox ORDER BY id")
        .fetch_all(&sys.db("booking").pool)
        .await
        .expect("outbox");
    assert_eq!(events, ["booking.held", "booking.confirmed"]);
}

#[tokio::test]
async fn a_declined_card_is_402_and_the_hold_stays_for_another_card() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let id = hold(&sys, &token, &show, &["A1"]).await.body["id"].as_str().expect("id").to_owned();
    let declined = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(DECLINED), Some(&token)).await;
    assert_eq!((declined.status, declined.body["failure_code"].as_str()), (402, Some("card_declined")));
    assert_eq!(sys.get(&format!("/api/v1/bookings/{id}"), Some(&token)).await.body["status"], "held");
    let bad = sys.post(&format!("/api/v1/bookings/{id}/pay"), card("4242424242424241"), Some(&token)).await;
    assert_eq!((bad.status, bad.body["errors"][0]["field"].as_str()), (422, Some("payment_method.number")));
    let ok = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn replaying_a_pay_request_with_its_key_returns_the_first_answer_and_charges_once() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let id = hold(&sys, &token, &show, &["A1"]).await.body["id"].as_str().expect("id").to_owned();
    let key = [("idempotency-key", "pay-once")];
    let path = format!("/api/v1/bookings/{id}/pay");
    let tries: Vec<_> = (0..5).map(|_| sys.post_with(&path, card(GOOD), Some(&token), &key)).collect();
    let answers = futures_util::future::join_all(tries).await;
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status == 409),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let replay = sys.post_with(&path, card(GOOD), Some(&token), &key).await;
    assert_eq!((replay.status, replay.header("idempotent-replayed")), (200, Some("true")));
    assert_eq!(payments_of(&sys, &token).await["total"], 1, "charged once");
}

#[tokio::test]
async fn cancelling_refunds_until_an_hour_before_the_show() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let tomorrow = showtime(&sys, &admin, 2, 6, 24).await;
    let soon = showtime(&sys, &admin, 2, 6, 0).await; // starts in a minute
    let (token, _) = sys.user_token().await;
    let mut ids = Vec::new();
    for show in [&tomorrow, &soon] {
        let id = hold(&sys, &token, show, &["A1", "A2"]).await.body["id"].as_str().expect("id").to_owned();
        assert_eq!(
            sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await.status,
            200
        );
        ids.push(id);
    }
    let early = sys.post(&format!("/api/v1/bookings/{}/cancel", ids[0]), json!({}), Some(&token)).await;
    assert_eq!((early.status, early.body["status"].as_str()), (200, Some("cancelled")), "{}", early.body);
    let late = sys.post(&format!("/api/v1/bookings/{}/cancel", ids[1]), json!({}), Some(&token)).await;
    assert_eq!(
        (late.status, late.body["type"].as_str()),
        (409, Some("urn:marquee:problem:too-late-to-cancel"))
    );
    // The refund is owed by the cancellation and carried out by the command relay right after.
    let refunded = || async {
        let payments = payments_of(&sys, &token).await;
        payments["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|p| p["refunded_cents"].as_i64())
            .collect::<Vec<i64>>()
    };
    let once = testkit::eventually(std::time::Duration::from_secs(10), || async {
        refunded().await.iter().filter(|r| **r == 2000).count() == 1
    })
    .await;
    assert!(once, "the early one was refunded in full: {:?}", refunded().await);
    assert_eq!(hold(&sys, &token, &tomorrow, &["A1"]).await.status, 201, "its seats are free again");
    sys.assert_ledger_clean(std::time::Duration::from_secs(5)).await;
}
