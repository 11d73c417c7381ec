use serde_json::json;
use testkit::TestSystem;

use crate::{DECLINED, GOOD, payment};

async fn paid(sys: &TestSystem, token: &str, amount: i64, number: &str) -> String {
    let (_, user) = sys.user_token().await;
    let p = sys.post("/api/v1/payments", payment(&user, amount, number), Some(token)).await;
    assert_eq!(p.status, 201);
    p.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn partial_refunds_add_up_and_never_exceed_the_payment() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let id = paid(&sys, &booking, 1000, GOOD).await;
    let first = sys
        .post(&format!("/api/v1/payments/{id}/refund"), json!({"amount_cents": 300}), Some(&booking))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(
        (first.body["amount_cents"].as_i64(), first.body["payment"]["refunded_cents"].as_i64()),
        (Some(300), Some(300))
    );
    let too_much = sys
        .post(&format!("/api/v1/payments/{id}/refund"), json!({"amount_cents": 800}), Some(&booking))
        .await;
    assert_eq!((too_much.status, too_much.body["refundable_cents"].as_i64()), (409, Some(700)));
    let rest =
        sys.post(&format!("/api/v1/payments/{id}/refund"), serde_json::Value::Null, Some(&booking)).await; // null: no body
    assert_eq!((rest.status, rest.body["amount_cents"].as_i64()), (201, Some(700)));
    let nothing = sys.post(&format!("/api/v1/payments/{id}/refund"), json!({}), Some(&booking)).await;
    assert_eq!(nothing.status, 409);
    let negative =
        sys.post(&format!("/api/v1/payments/{id}/refund"), json!({"amount_cents": -5}), Some(&booking)).await;
    assert_eq!(negative.status, 422);
}

#[tokio::test]
async fn concurrent_refunds_cannot_refund_more_than_was_captured() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let id = paid(&sys, &admin, 1000, GOOD).await;
    let path = format!("/api/v1/payments/{id}/refund");
    let tries: Vec<_> =
        (0..10).map(|_| sys.post(&path, json!({"amount_cents": 300}), Some(&admin))).collect();
    let answers = futures_util::future::join_all(tries).await;
    let ok = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(
        ok,
        3,
        "three refunds of 300 fit in 1000: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|a| a.status == 201 || a.status == 409));
    let total: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM refunds")
        .fetch_one(&sys.db("payments").pool)
        .await
        .expect("sum");
    assert_eq!(total, 900);
}

#[tokio::test]
async fn failed_payments_refund_nothing_and_customers_cannot_refund() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let failed = paid(&sys, &booking, 1000, DECLINED).await;
    assert_eq!(
        sys.post(&format!("/api/v1/payments/{failed}/refund"), json!({}), Some(&booking)).await.status,
        409
    );
    let (customer, _) = sys.user_token().await;
    let good = paid(&sys, &booking, 1000, GOOD).await;
    assert_eq!(
        sys.post(&format!("/api/v1/payments/{good}/refund"), json!({}), Some(&customer)).await.status,
        403
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        sys.post(&format!("/api/v1/payments/{unknown}/refund"), json!({}), Some(&booking)).await.status,
        404
    );
}
