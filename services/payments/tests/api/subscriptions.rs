use events::{Commands, Effects, Outbox};
use payments::{AppState, ops, renewals::renew_due, store};
use serde_json::json;
use testkit::TestSystem;

use crate::{DECLINED, GOOD, NO_FUNDS, card};

fn subscribe(plan: &str, number: &str) -> serde_json::Value {
    json!({"plan_id": plan, "payment_method": card(number)})
}

async fn end_period_now(sys: &TestSystem, user: &str) {
    sqlx::query("UPDATE subscriptions SET current_period_end = $1 WHERE user_id = $2")
        .bind(platform::time::now_ms() - 1000)
        .bind(user)
        .execute(&sys.db("payments").pool)
        .await
        .expect("moved");
}

fn state(sys: &TestSystem) -> AppState {
    // The running relay polls the outbox, so this state's own (unwatched) outbox is enough.
    AppState {
        db: sys.db("payments"),
        idempotency: platform::idempotency::Idempotency::new(sys.db("payments"), "test"),
        effects: Effects::new("payments", Outbox::new(), Commands::default()),
        clock: sys.clock.clone(),
    }
}

#[tokio::test]
async fn plans_are_listed_with_their_stream_limits() {
    let sys = TestSystem::start().await;
    let plans = sys.get("/api/v1/plans", None).await;
    let limits: Vec<(String, i64)> = plans
        .body
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            (p["id"].as_str().unwrap_or_default().to_owned(), p["max_streams"].as_i64().unwrap_or_default())
        })
        .collect();
    assert_eq!(limits, [("basic".to_owned(), 1), ("standard".to_owned(), 2), ("premium".to_owned(), 4)]);
}

#[tokio::test]
async fn subscribing_charges_the_first_month_once_and_one_subscription_is_live() {
    let sys = TestSystem::start().await;
    let (token, _) = sys.user_token().await;
    let s = sys.post("/api/v1/subscriptions", subscribe("standard", GOOD), Some(&token)).await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!((s.body["status"].as_str(), s.body["plan_id"].as_str()), (Some("active"), Some("standard")));
    let end = time::OffsetDateTime::parse(
        s.body["current_period_end"].as_str().expect("end"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("time");
    let days = (end - time::OffsetDateTime::now_utc()).whole_days();
    assert!((27..=31).contains(&days), "a month: {days} days");
    assert_eq!(sys.post("/api/v1/subscriptions", subscribe("premium", GOOD), Some(&token)).await.status, 409);
    assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&token)).await.body["id"], s.body["id"]);
    let charged = sys.get("/api/v1/payments", Some(&token)).await;
    assert_eq!(
        (charged.body["total"].as_i64(), charged.body["items"][0]["amount_cents"].as_i64()),
        (Some(1), Some(1299))
    );
}

#[tokio::test]
async fn a_declined_card_is_402_and_makes_no_subscription() {
    let sys = TestSystem::start().await;
    let (token, _) = sys.user_token().await;
    let a = sys.post("/api/v1/subscriptions", subscribe("basic", NO_FUNDS), Some(&token)).await;
    assert_eq!((a.status, a.body["failure_code"].as_str()), (402, Some("insufficient_funds")));
    assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&token)).await.status, 404);
    assert_eq!(sys.post("/api/v1/subscriptions", subscribe("gold", GOOD), Some(&token)).await.status, 422);
    assert_eq!(sys.post("/api/v1/subscriptions", subscribe("basic", GOOD), Some(&token)).await.status, 201);
}

#[tokio::test]
async fn renewals_charge_the_next_month_and_cancelled_ones_end() {
    let sys = TestSystem::start().await;
    let (renewing, renewing_id) = sys.user_token().await;
    let (leaving, leaving_id) = sys.user_token().await;
    let first = sys.post("/api/v1/subscriptions", subscribe("basic", GOOD), Some(&renewing)).await.body;
    sys.post("/api/v1/subscriptions", subscribe("basic", GOOD), Some(&leaving)).await;
    let cancelled =
        sys.send("DELETE", &format!("{}/api/v1/subscriptions/me", sys.gateway), None, Some(&leaving)).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(
        (cancelled.body["status"].as_str(), cancelled.body["cancel_at_period_end"].as_bool()),
        (Some("active"), Some(true))
    );

    end_period_now(&sys, &renewing_id).await;
    end_period_now(&sys, &leaving_id).await;
    assert_eq!(renew_due(&state(&sys)).await.expect("renewed"), 2);
    assert_eq!(renew_due(&state(&sys)).await.expect("nothing due"), 0, "nobody is charged twice");
    let renewed = sys.get("/api/v1/subscriptions/me", Some(&renewing)).await.body;
    assert_eq!(renewed["status"], "active");
    assert_ne!(renewed["current_period_end"], first["current_period_end"]);
    assert_eq!(sys.get("/api/v1/payments", Some(&renewing)).await.body["total"], 2);
    assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&leaving)).await.status, 404, "ended");
    assert_eq!(sys.get("/api/v1/payments", Some(&leaving)).await.body["total"], 1, "not charged again");
}

#[tokio::test]
async fn a_renewal_the_card_declines_leaves_the_subscription_past_due() {
    let sys = TestSystem::start().await;
    let (token, user) = sys.user_token().await;
    // Take a good subscription, then swap in a token that will decline (a card that ran dry).
    sys.post("/api/v1/subscriptions", subscribe("premium", GOOD), Some(&token)).await;
    card_becomes(&sys, &user, DECLINED).await;
    end_period_now(&sys, &user).await;
    renew_due(&state(&sys)).await.expect("pass");
    let s = sys.get("/api/v1/subscriptions/me", Some(&token)).await.body;
    assert_eq!(s["status"], "past_due");
    let failed = sys.get("/api/v1/payments", Some(&token)).await.body;
    assert_eq!(failed["items"][0]["failure_code"], "card_declined");
}

/// Swap in a processor token for `number` (a card that ran dry, or a good one again).
async fn card_becomes(sys: &TestSystem, user: &str, number: &str) {
    let checked =
        payments::processor::check(&serde_json::from_value(card(number)).expect("card")).expect("valid");
    sqlx::query("UPDATE subscriptions SET payment_token = $1 WHERE user_id = $2")
        .bind(&checked.token)
        .bind(user)
        .execute(&sys.db("payments").pool)
        .await
        .expect("swapped");
}

async fn payments_total(sys: &TestSystem, token: &str) -> i64 {
    sys.get("/api/v1/payments", Some(token)).await.body["total"].as_i64().unwrap_or(-1)
}

/// Issue 9, finding 10: a past-due subscription blocked a new one (409) and could not be
/// cancelled, for ever.
#[tokio::test]
async fn a_past_due_subscription_can_be_cancelled_or_replaced() {
    let sys = TestSystem::start().await;
    for replace in [false, true] {
        let (token, user) = sys.user_token().await;
        sys.post("/api/v1/subscriptions", subscribe("basic", GOOD), Some(&token)).await;
        card_becomes(&sys, &user, DECLINED).await;
        end_period_now(&sys, &user).await;
        renew_due(&state(&sys)).await.expect("pass");
        assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&token)).await.body["status"], "past_due");
        if !replace {
            let gone = sys
                .send("DELETE", &format!("{}/api/v1/subscriptions/me", sys.gateway), None, Some(&token))
                .await;
            assert_eq!(
                (gone.status, gone.body["status"].as_str()),
                (200, Some("cancelled")),
                "{}",
                gone.body
            );
            assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&token)).await.status, 404);
        }
        let again = sys.post("/api/v1/subscriptions", subscribe("standard", GOOD), Some(&token)).await;
        assert_eq!((again.status, again.body["status"].as_str()), (201, Some("active")), "{}", again.body);
        assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&token)).await.body["plan_id"], "standard");
    }
}

/// A declined renewal is tried again a day later; paid, the subscription is active again.
#[tokio::test]
async fn a_past_due_renewal_is_retried_and_recovers() {
    let sys = TestSystem::start().await;
    let (token, user) = sys.user_token().await;
    sys.post("/api/v1/subscriptions", subscribe("basic", GOOD), Some(&token)).await;
    card_becomes(&sys, &user, NO_FUNDS).await;
    end_period_now(&sys, &user).await;
    renew_due(&state(&sys)).await.expect("pass");
    assert_eq!(renew_due(&state(&sys)).await.expect("pass"), 0, "not retried at once");
    card_becomes(&sys, &user, GOOD).await;
    sys.clock.advance(std::time::Duration::from_secs(24 * 3600 + 1));
    assert_eq!(renew_due(&state(&sys)).await.expect("pass"), 1);
    assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&token)).await.body["status"], "active");
    assert_eq!(payments_total(&sys, &token).await, 3, "the first month, the declined try, the paid one");
    sys.assert_ledger_clean(std::time::Duration::from_secs(5)).await;
}

/// Finding 10: a renewal claim had no fencing, so a replica that stalled past its lease and the
/// next claimer both charged one period.
#[tokio::test]
async fn a_renewal_taken_over_by_another_worker_charges_the_period_once() {
    let sys = TestSystem::start().await;
    let (token, user) = sys.user_token().await;
    sys.post("/api/v1/subscriptions", subscribe("basic", GOOD), Some(&token)).await;
    end_period_now(&sys, &user).await;
    let db = sys.db("payments");
    let stalled = store::claim_due(&db, sys.clock.now_ms(), 10).await.expect("claim");
    assert_eq!(stalled.len(), 1);
    sys.clock.advance(std::time::Duration::from_secs(61)); // the stalled worker's lease runs out
    let next = store::claim_due(&db, sys.clock.now_ms(), 10).await.expect("claim");
    assert_eq!(next.len(), 1, "the next worker claims it");
    ops::renew(&state(&sys), &next[0].0, next[0].1).await.expect("renewed");
    ops::renew(&state(&sys), &stalled[0].0, stalled[0].1).await.expect("fenced off, not an error");
    assert_eq!(payments_total(&sys, &token).await, 2, "the first month and one renewal");
    sys.assert_ledger_clean(std::time::Duration::from_secs(5)).await;
}

/// Finding 10: a cancel between the renewal's claim and its charge was still charged.
#[tokio::test]
async fn a_cancel_after_the_renewal_was_claimed_is_not_charged() {
    let sys = TestSystem::start().await;
    let (token, user) = sys.user_token().await;
    sys.post("/api/v1/subscriptions", subscribe("basic", GOOD), Some(&token)).await;
    end_period_now(&sys, &user).await;
    let claimed = store::claim_due(&sys.db("payments"), sys.clock.now_ms(), 10).await.expect("claim");
    let cancelled =
        sys.send("DELETE", &format!("{}/api/v1/subscriptions/me", sys.gateway), None, Some(&token)).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    ops::renew(&state(&sys), &claimed[0].0, claimed[0].1).await.expect("pass");
    assert_eq!(payments_total(&sys, &token).await, 1, "not charged after the cancel");
    assert_eq!(sys.get("/api/v1/subscriptions/me", Some(&token)).await.status, 404, "ended");
}
