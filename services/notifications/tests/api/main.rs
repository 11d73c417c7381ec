//! notifications through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis,
//! with a real SMTP server (testkit's) taking the email.

mod delivery;
mod feed;
mod latency;

use std::time::Duration;

use serde_json::Value;
use testkit::{TestSystem, smtp::SmtpServer};

/// Settings for a system whose notifications go to `smtp` (a URL), retried quickly.
pub fn settings(smtp: &str) -> testkit::platform::Settings {
    testkit::test_settings()
        .with("MARQUEE_SMTP_URL", smtp)
        .with("MARQUEE_NOTIFY_POLL_MS", "100")
        .with("MARQUEE_NOTIFY_RETRY_BASE_MS", "100")
        .with("MARQUEE_NOTIFY_MAX_BACKOFF_MS", "400")
        .with("MARQUEE_NOTIFY_MAX_ATTEMPTS", "4")
}

pub async fn system_with_smtp() -> (TestSystem, SmtpServer) {
    let smtp = SmtpServer::start().await.expect("an SMTP server");
    let sys = TestSystem::start_with(settings(&smtp.url())).await;
    (sys, smtp)
}

/// The user's feed once `done` holds of it (or the last one after 10 s).
pub async fn feed_when(sys: &TestSystem, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let a = sys.get("/api/v1/notifications?per_page=100", Some(token)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        // The page and its counts are two reads: an entry written in between shows in one only.
        let settled =
            a.body["items"].as_array().map(Vec::len) == a.body["total"].as_u64().map(|t| t as usize);
        if settled && done(&a.body) {
            return a.body;
        }
        last = a.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// The kinds in a feed, newest first.
pub fn kinds(feed: &Value) -> Vec<String> {
    feed["items"].as_array().map_or(Vec::new(), |items| {
        items.iter().filter_map(|n| n["kind"].as_str().map(str::to_owned)).collect()
    })
}

/// The delivery log of one user (admin), once `done` holds of it.
pub async fn deliveries_when(
    sys: &TestSystem,
    admin: &str,
    user: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..300 {
        let a = sys
            .get(&format!("/api/v1/notifications/deliveries?user_id={user}&per_page=100"), Some(admin))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        last = a.body["items"].as_array().cloned().unwrap_or_default();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Messages the server received for one address.
pub fn to(smtp: &SmtpServer, address: &str) -> Vec<testkit::smtp::Received> {
    smtp.received().into_iter().filter(|m| m.to.iter().any(|t| t == address)).collect()
}

/// A new user: `(token, id, email)`.
pub async fn user(sys: &TestSystem) -> (String, String, String) {
    let email = format!("viewer-{}@example.com", uuid::Uuid::new_v4().simple());
    let session = sys.register(&email).await;
    let token = session["access_token"].as_str().expect("token").to_owned();
    let id = session["user"]["id"].as_str().expect("id").to_owned();
    (token, id, email)
}
