//! Issue 9, finding 11: Idempotency-Key records that outlive their request, that a stalled
//! request overwrites, or that hold an easily reversed hash of a card number.

use std::{sync::Arc, time::Duration};

use axum::http::StatusCode;
use platform::idempotency::Idempotency;
use serde_json::json;
use testkit::TestSystem;

use crate::{GOOD, payment};

#[tokio::test]
async fn a_request_dropped_before_it_answered_gives_its_key_back() {
    let sys = TestSystem::start().await;
    let idem = Idempotency::new(sys.db("payments"), "secret");
    let body = json!({"n": 1});
    let never = idem.once("t:drop", Some("k".into()), &body, std::future::pending());
    assert!(tokio::time::timeout(Duration::from_millis(50), never).await.is_err(), "the client went away");
    let freed = testkit::eventually(Duration::from_secs(2), || async {
        let answer = idem
            .once("t:drop", Some("k".into()), &body, async { Ok((StatusCode::CREATED, json!({}))) })
            .await;
        answer.status() == StatusCode::CREATED
    })
    .await;
    assert!(freed, "the key was given back, not held 'in progress' for a minute");
}

#[tokio::test]
async fn a_request_that_was_taken_over_cannot_overwrite_the_answer() {
    let sys = TestSystem::start().await;
    let db = sys.db("payments");
    let idem = Idempotency::new(db.clone(), "secret");
    let body = json!({"n": 2});
    let release = Arc::new(tokio::sync::Notify::new());
    let stalled = {
        let (idem, body, release) = (idem.clone(), body.clone(), release.clone());
        tokio::spawn(async move {
            idem.once("t:fence", Some("k".into()), &body, async move {
                release.notified().await;
                Ok((StatusCode::OK, json!({"by": "stalled"})))
            })
            .await
            .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A minute passes without an answer: the next request takes the key over.
    sqlx::query("UPDATE idempotency_keys SET created_at = created_at - 120000 WHERE scope = 't:fence'")
        .execute(&db.pool)
        .await
        .expect("aged");
    let next = idem
        .once("t:fence", Some("k".into()), &body, async { Ok((StatusCode::OK, json!({"by": "next"}))) })
        .await;
    assert_eq!(next.status(), StatusCode::OK);
    release.notify_one();
    stalled.await.expect("the stalled request ends");
    let stored: String = sqlx::query_scalar("SELECT body FROM idempotency_keys WHERE scope = 't:fence'")
        .fetch_one(&db.pool)
        .await
        .expect("row");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stored).expect("json")["by"], "next");
}

#[tokio::test]
async fn stored_request_hashes_are_keyed_and_hold_no_card_number() {
    let sys = TestSystem::start().await;
    let booking = sys.service_token("booking").await;
    let (_, user) = sys.user_token().await;
    let body = payment(&user, 700, GOOD);
    let paid =
        sys.post_with("/api/v1/payments", body.clone(), Some(&booking), &[("idempotency-key", "h-1")]).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let row: (String, String) =
        sqlx::query_as("SELECT request_hash, COALESCE(body, '') FROM idempotency_keys WHERE key = 'h-1'")
            .fetch_one(&sys.db("payments").pool)
            .await
            .expect("row");
    assert!(!row.0.contains(GOOD) && !row.1.contains(GOOD), "no card number is stored");
    let plain =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &serde_json::to_vec(&body).expect("json"));
    let plain: String = plain.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(row.0, plain, "not a plain SHA-256 of the body, which a card number could be guessed from");
}
