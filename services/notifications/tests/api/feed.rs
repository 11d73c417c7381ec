//! The feed, read marks and preferences; every event delivered twice, late or out of order has
//! one effect.

use std::time::Duration;

use contracts::{
    CloudEvent,
    event_types::{REWARD_REDEEMED, SUBSCRIPTION_ACTIVATED, TIER_CHANGED},
    loyalty::{RewardRedeemed, TierChanged},
    payments::SubscriptionChanged,
};
use serde_json::json;
use testkit::flows;
use uuid::Uuid;

use crate::{feed_when, kinds, system_with_smtp, to, user};

#[tokio::test]
async fn the_feed_counts_unread_and_marks_read_only_your_own() {
    let (sys, _smtp) = system_with_smtp().await;
    let admin = sys.admin_token().await;
    let show = flows::showtime(&sys, &admin, "Alien", "Europe/Paris", 30).await;
    let (token, _, _) = user(&sys).await;
    assert_eq!(sys.get("/api/v1/notifications", None).await.status, 401);

    flows::book(&sys, &token, &show.id, &["C1"]).await;
    let feed = feed_when(&sys, &token, |f| f["total"] == 2).await;
    assert_eq!(kinds(&feed), ["booking_confirmed", "welcome"], "newest first: {feed}");
    assert_eq!(feed["unread"], 2);
    assert_eq!(feed["items"][0]["title"], "Booking confirmed");
    assert_eq!(feed["items"][0]["body"], "1 ticket: seat C1. Your codes are in your booking and your email.");

    let first = feed["items"][0]["id"].as_str().expect("id").to_owned();
    let read = sys.post(&format!("/api/v1/notifications/{first}/read"), json!({}), Some(&token)).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["read"], true);
    let again = sys.post(&format!("/api/v1/notifications/{first}/read"), json!({}), Some(&token)).await;
    assert_eq!(again.body["read_at"], read.body["read_at"], "reading again changes nothing");
    assert_eq!(sys.get("/api/v1/notifications", Some(&token)).await.body["unread"], 1);

    let (other, _, _) = user(&sys).await;
    let theirs = sys.post(&format!("/api/v1/notifications/{first}/read"), json!({}), Some(&other)).await;
    assert_eq!(theirs.status, 404, "another user's notification is not found");
    let unknown =
        sys.post(&format!("/api/v1/notifications/{}/read", Uuid::now_v7()), json!({}), Some(&token)).await;
    assert_eq!(unknown.status, 404);
    let all = sys.post("/api/v1/notifications/read-all", json!({}), Some(&token)).await;
    assert_eq!(all.body["marked"], 1, "{}", all.body);
    assert_eq!(sys.get("/api/v1/notifications", Some(&token)).await.body["unread"], 0);
}

#[tokio::test]
async fn preferences_turn_email_kinds_off_and_are_checked() {
    let (sys, smtp) = system_with_smtp().await;
    let admin = sys.admin_token().await;
    let show = flows::showtime(&sys, &admin, "Vertigo", "UTC", 30).await;
    let (token, _, email) = user(&sys).await;

    let defaults = sys.get("/api/v1/notifications/preferences", Some(&token)).await;
    assert_eq!(defaults.status, 200, "{}", defaults.body);
    assert_eq!(defaults.body["email"]["booking_confirmed"], true);
    assert_eq!(defaults.body["sms"], json!({"phone": null, "booking_confirmed": false}));
    for (bad, field) in [
        (json!({"email": {"spam": false}}), "email.spam"),
        (json!({"sms": {"phone": "555-1234"}}), "sms.phone"),
        (json!({"sms": {"booking_confirmed": true}}), "sms.booking_confirmed"),
    ] {
        let a = sys.patch("/api/v1/notifications/preferences", bad.clone(), Some(&token)).await;
        assert_eq!(a.status, 422, "{bad}: {}", a.body);
        assert_eq!(a.body["errors"][0]["field"], field, "{}", a.body);
    }
    let off = sys
        .patch(
            "/api/v1/notifications/preferences",
            json!({"email": {"booking_confirmed": false}}),
            Some(&token),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(
        (off.body["email"]["booking_confirmed"].clone(), off.body["email"]["welcome"].clone()),
        (json!(false), json!(true))
    );

    flows::book(&sys, &token, &show.id, &["D4"]).await;
    let feed = feed_when(&sys, &token, |f| f["total"] == 2).await;
    assert_eq!(kinds(&feed), ["booking_confirmed", "welcome"], "the feed has it all the same");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mails = to(&smtp, &email);
    assert_eq!(
        mails.len(),
        1,
        "the welcome only: {:?}",
        mails.iter().map(|m| m.header("Subject")).collect::<Vec<_>>()
    );
}

async fn publish_twice(
    sys: &testkit::TestSystem,
    source: &str,
    event_type: &str,
    subject: &str,
    data: &impl serde::Serialize,
) {
    let event = CloudEvent::new(source, event_type, subject, data).expect("event");
    let bus = sys.new_bus();
    bus.publish(&event).await.expect("published");
    bus.publish(&event).await.expect("published again");
}

#[tokio::test]
async fn every_event_delivered_twice_has_one_effect() {
    let (sys, smtp) = system_with_smtp().await;
    let admin = sys.admin_token().await;
    let show = flows::showtime(&sys, &admin, "Solaris", "Europe/Paris", 30).await;
    let (token, id, email) = user(&sys).await;
    let user_id: Uuid = id.parse().expect("uuid");

    // Events as their services publish them, each twice, and the account's own in order.
    let confirmed = flows::book(&sys, &token, &show.id, &["A5"]).await;
    let booking_events: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, payload FROM outbox WHERE event_type = 'booking.confirmed' AND payload LIKE $1",
    )
    .bind(format!("%{}%", confirmed["id"].as_str().expect("id")))
    .fetch_all(&sys.db("booking").pool)
    .await
    .expect("booking's outbox");
    assert_eq!(booking_events.len(), 1);
    let event: CloudEvent = serde_json::from_str(&booking_events[0].1).expect("a CloudEvent");
    let bus = sys.new_bus();
    bus.publish(&event).await.expect("the confirmation again");
    let welcome: Vec<(String,)> =
        sqlx::query_as("SELECT payload FROM outbox WHERE event_type = 'user.registered' AND payload LIKE $1")
            .bind(format!("%{id}%"))
            .fetch_all(&sys.db("identity").pool)
            .await
            .expect("identity's outbox");
    let welcome: CloudEvent = serde_json::from_str(&welcome[0].0).expect("event");
    bus.publish(&welcome).await.expect("the welcome again");

    let subscription = SubscriptionChanged {
        subscription_id: Uuid::now_v7(),
        user_id,
        plan_id: "premium".into(),
        max_streams: 4,
        current_period_end: "2027-01-02T10:00:00Z".into(),
    };
    publish_twice(&sys, "payments", SUBSCRIPTION_ACTIVATED, &id, &subscription).await;
    let redeemed = RewardRedeemed {
        redemption_id: Uuid::now_v7(),
        user_id,
        reward_id: Uuid::now_v7(),
        reward_name: "Large popcorn".into(),
        code: "RW-7F3K-Q9XM-2D8V-T4NB-N".into(),
        points_spent: 50,
        balance: 12,
        redeemed_at: time::OffsetDateTime::now_utc(),
    };
    publish_twice(&sys, "loyalty", REWARD_REDEEMED, &id, &redeemed).await;
    let up = TierChanged {
        user_id,
        from: "bronze".into(),
        to: "silver".into(),
        lifetime_points: 512,
        changed_at: time::OffsetDateTime::now_utc(),
    };
    publish_twice(&sys, "loyalty", TIER_CHANGED, &id, &up).await;
    let down = TierChanged { from: "silver".into(), to: "bronze".into(), lifetime_points: 12, ..up.clone() };
    publish_twice(&sys, "loyalty", TIER_CHANGED, &id, &down).await;

    let feed = feed_when(&sys, &token, |f| f["total"] == 6).await;
    let mut got = kinds(&feed);
    got.sort();
    assert_eq!(
        got,
        [
            "booking_confirmed",
            "reward_redeemed",
            "subscription_activated",
            "tier_lowered",
            "tier_reached",
            "welcome"
        ],
        "one entry per event: {feed}"
    );
    // One email per emailed kind: the lowered tier is not emailed.
    let arrived =
        testkit::eventually(Duration::from_secs(10), || async { to(&smtp, &email).len() >= 5 }).await;
    assert!(arrived, "{:?}", to(&smtp, &email).iter().map(|m| m.header("Subject")).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut subjects: Vec<String> = to(&smtp, &email).iter().filter_map(|m| m.header("Subject")).collect();
    subjects.sort();
    assert_eq!(subjects.len(), 5, "{subjects:?}");
    assert!(subjects.iter().any(|s| s == "Your reward: Large popcorn"), "{subjects:?}");
    assert!(subjects.iter().any(|s| s == "You are silver now"), "{subjects:?}");
    let reward =
        to(&smtp, &email).into_iter().find(|m| m.header("Subject").is_some_and(|s| s.contains("reward")));
    let reward = reward.expect("reward email");
    assert!(reward.parts("text/plain").concat().contains("RW-7F3K-Q9XM-2D8V-T4NB-N"));
}

#[tokio::test]
async fn an_event_before_the_welcome_asks_identity_who_to_write_to() {
    let (sys, smtp) = system_with_smtp().await;
    let admin = sys.admin_token().await;
    let (_, id, email) = user(&sys).await;
    testkit::eventually(Duration::from_secs(10), || async { to(&smtp, &email).len() == 1 }).await;
    // As if user.registered had not arrived yet: notifications knows no address.
    sqlx::query("DELETE FROM recipients WHERE user_id = $1")
        .bind(&id)
        .execute(&sys.db("notifications").pool)
        .await
        .expect("delete");
    let redeemed = RewardRedeemed {
        redemption_id: Uuid::now_v7(),
        user_id: id.parse().expect("uuid"),
        reward_id: Uuid::now_v7(),
        reward_name: "Soda".into(),
        code: "RW-0000-0000-0000-0000-0".into(),
        points_spent: 30,
        balance: 0,
        redeemed_at: time::OffsetDateTime::now_utc(),
    };
    publish_twice(&sys, "loyalty", REWARD_REDEEMED, &id, &redeemed).await;
    let got = testkit::eventually(Duration::from_secs(10), || async { to(&smtp, &email).len() == 2 }).await;
    assert!(got, "the reward email went to the address identity has");
    let _ = admin;
}
