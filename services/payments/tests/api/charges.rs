use serde_json::json;
use testkit::TestSystem;

use crate::{DECLINED, GOOD, NO_FUNDS, card, payment};

#[tokio::test]
async fn the_test_cards_succeed_and_decline_as_documented() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let (_, user) = sys.user_token().await;
    let ok = sys.post("/api/v1/payments", payment(&user, 2400, GOOD), Some(&booking)).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(
        (ok.body["status"].as_str(), ok.body["card_last4"].as_str()),
        (Some("succeeded"), Some("4242"))
    );
    assert_eq!((ok.body["amount_cents"].as_i64(), ok.body["refunded_cents"].as_i64()), (Some(2400), Some(0)));
    assert!(!ok.body.to_string().contains(GOOD), "the card number is never returned");
    for (number, code) in [(DECLINED, "card_declined"), (NO_FUNDS, "insufficient_funds")] {
        let a = sys.post("/api/v1/payments", payment(&user, 2400, number), Some(&booking)).await;
        assert_eq!(
            (a.status, a.body["status"].as_str(), a.body["failure_code"].as_str()),
            (201, Some("failed"), Some(code))
        );
    }
    let mut expired = payment(&user, 2400, GOOD);
    expired["payment_method"]["exp_year"] = json!(2020);
    let a = sys.post("/api/v1/payments", expired, Some(&booking)).await;
    assert_eq!(a.body["failure_code"], "expired_card");
    let stored: Vec<String> = sqlx::query_scalar("SELECT card_last4 FROM payments")
        .fetch_all(&sys.db("payments").pool)
        .await
        .expect("rows");
    assert!(stored.iter().all(|l| l.len() == 4), "only the last four digits are stored");
}

#[tokio::test]
async fn bad_cards_and_amounts_are_422_and_only_services_and_admins_charge() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let (customer, user) = sys.user_token().await;
    let luhn = sys.post("/api/v1/payments", payment(&user, 100, "4242424242424241"), Some(&booking)).await;
    assert_eq!((luhn.status, luhn.body["errors"][0]["field"].as_str()), (422, Some("payment_method.number")));
    let zero = sys.post("/api/v1/payments", payment(&user, 0, GOOD), Some(&booking)).await;
    assert_eq!((zero.status, zero.body["errors"][0]["field"].as_str()), (422, Some("amount_cents")));
    let mut bad_cvc = payment(&user, 100, GOOD);
    bad_cvc["payment_method"]["cvc"] = json!("12a");
    assert_eq!(sys.post("/api/v1/payments", bad_cvc, Some(&booking)).await.status, 422);
    assert_eq!(sys.post("/api/v1/payments", payment(&user, 100, GOOD), Some(&customer)).await.status, 403);
    assert_eq!(sys.post("/api/v1/payments", payment(&user, 100, GOOD), None).await.status, 401);
    let admin = sys.admin_token().await;
    assert_eq!(sys.post("/api/v1/payments", payment(&user, 100, GOOD), Some(&admin)).await.status, 201);
    let _ = card(GOOD);
}

#[tokio::test]
async fn users_see_their_own_payments_only() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let (alice, alice_id) = sys.user_token().await;
    let (bob, _) = sys.user_token().await;
    let paid = sys.post("/api/v1/payments", payment(&alice_id, 900, GOOD), Some(&booking)).await;
    let id = paid.body["id"].as_str().expect("id");
    assert_eq!(sys.get(&format!("/api/v1/payments/{id}"), Some(&alice)).await.status, 200);
    assert_eq!(sys.get(&format!("/api/v1/payments/{id}"), Some(&bob)).await.status, 404);
    assert_eq!(sys.get("/api/v1/payments", Some(&alice)).await.body["total"], 1);
    assert_eq!(sys.get("/api/v1/payments", Some(&bob)).await.body["total"], 0);
    let admin = sys.admin_token().await;
    assert_eq!(sys.get(&format!("/api/v1/payments?user_id={alice_id}"), Some(&admin)).await.body["total"], 1);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_charges_once() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let (_, user) = sys.user_token().await;
    let body = payment(&user, 1500, GOOD);
    let key = [("idempotency-key", "booking-42-pay")];
    let first = sys.post_with("/api/v1/payments", body.clone(), Some(&booking), &key).await;
    let again = sys.post_with("/api/v1/payments", body.clone(), Some(&booking), &key).await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body, again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let other = sys.post_with("/api/v1/payments", payment(&user, 1600, GOOD), Some(&booking), &key).await;
    assert_eq!(
        (other.status, other.body["type"].as_str()),
        (422, Some("urn:marquee:problem:idempotency-key-reused"))
    );
    // Ten at once with a new key: one charge.
    let key = [("idempotency-key", "booking-43-pay")];
    let tries: Vec<_> =
        (0..10).map(|_| sys.post_with("/api/v1/payments", body.clone(), Some(&booking), &key)).collect();
    let answers = futures_util::future::join_all(tries).await;
    assert!(
        answers.iter().all(|a| a.status == 201 || a.status == 409),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let charged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments")
        .fetch_one(&sys.db("payments").pool)
        .await
        .expect("count");
    assert_eq!(charged, 2, "one payment per key");
}

/// Issue 9, finding 5: a reference keeps one capture. Ten charges for one booking at once, each
/// with its own key (a retry with another card), leave one capture; the rest are refunded at
/// once and name the kept one.
#[tokio::test]
async fn concurrent_charges_for_one_reference_keep_one_capture() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let (_, user) = sys.user_token().await;
    let reference = format!("booking:{}", uuid::Uuid::now_v7());
    let charges = (0..10).map(|n| {
        let mut body = payment(&user, 1200, GOOD);
        body["reference"] = serde_json::json!(reference);
        let (sys, booking) = (&sys, &booking);
        async move {
            let key = format!("card-{n}");
            sys.post_with("/api/v1/payments", body, Some(booking), &[("idempotency-key", key.as_str())]).await
        }
    });
    let answers = futures_util::future::join_all(charges).await;
    assert!(
        answers.iter().all(|a| a.status == 201),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let kept: Vec<&serde_json::Value> =
        answers.iter().map(|a| &a.body).filter(|b| b["duplicate_of"].is_null()).collect();
    assert_eq!(kept.len(), 1, "one capture is kept");
    let kept_id = kept[0]["id"].clone();
    for a in answers.iter().filter(|a| !a.body["duplicate_of"].is_null()) {
        assert_eq!(a.body["duplicate_of"], kept_id);
        assert_eq!(a.body["refunded_cents"], a.body["amount_cents"], "refunded at once");
    }
    let closed = sys
        .post(
            &format!("/api/v1/payments/references/{reference}/close"),
            serde_json::json!({"reason": "test"}),
            Some(&booking),
        )
        .await;
    assert_eq!((closed.status, closed.body["refunded_cents"].as_i64()), (200, Some(1200)), "{}", closed.body);
    let late = {
        let mut body = payment(&user, 1200, GOOD);
        body["reference"] = serde_json::json!(reference);
        sys.post("/api/v1/payments", body, Some(&booking)).await
    };
    assert_eq!(
        (late.status, late.body["type"].as_str()),
        (409, Some("urn:marquee:problem:reference-closed")),
        "a closed reference takes no charge"
    );
}

/// Closing a reference is for services and admins, wants a reason, and fences a reference that
/// was never charged too (a booking that ended before its pay reached payments).
#[tokio::test]
async fn closing_a_reference_is_checked_and_fences_even_an_unpaid_one() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let (customer, user) = sys.user_token().await;
    let reference = format!("booking:{}", uuid::Uuid::now_v7());
    let path = format!("/api/v1/payments/references/{reference}/close");
    assert_eq!(sys.post(&path, json!({"reason": "mine"}), Some(&customer)).await.status, 403);
    assert_eq!(sys.post(&path, json!({"reason": "x"}), None).await.status, 401);
    let blank = sys.post(&path, json!({"reason": "  "}), Some(&booking)).await;
    assert_eq!(
        (blank.status, blank.body["errors"][0]["field"].as_str()),
        (422, Some("reason")),
        "{}",
        blank.body
    );
    let closed = sys.post(&path, json!({"reason": "booking-expired"}), Some(&booking)).await;
    assert_eq!((closed.status, closed.body["refunded_cents"].as_i64()), (200, Some(0)), "{}", closed.body);
    let mut body = payment(&user, 900, GOOD);
    body["reference"] = json!(reference);
    let late = sys.post("/api/v1/payments", body, Some(&booking)).await;
    assert_eq!(late.body["type"], "urn:marquee:problem:reference-closed", "{}", late.body);
    assert_eq!(sys.get("/api/v1/payments", Some(&customer)).await.body["total"], 0, "nothing was charged");
}
