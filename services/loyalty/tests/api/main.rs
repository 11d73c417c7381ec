//! loyalty through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod points;
mod rewards;

use std::time::Duration;

use contracts::{
    CloudEvent,
    booking::{BookingConfirmed, BookingEnded},
    event_types::{BOOKING_CANCELLED, BOOKING_CONFIRMED},
};
use serde_json::Value;
use testkit::TestSystem;
use uuid::Uuid;

pub fn confirmed(user: Uuid, total_cents: i64) -> BookingConfirmed {
    BookingConfirmed {
        booking_id: Uuid::now_v7(),
        user_id: user,
        showtime_id: Uuid::now_v7(),
        movie_id: Uuid::now_v7(),
        seats: vec!["A1".into()],
        total_cents,
        currency: "USD".into(),
        confirmed_at: time::OffsetDateTime::now_utc(),
        starts_at: None,
        tickets: Vec::new(),
    }
}

pub fn cancelled(c: &BookingConfirmed) -> BookingEnded {
    BookingEnded {
        booking_id: c.booking_id,
        user_id: c.user_id,
        showtime_id: c.showtime_id,
        movie_id: c.movie_id,
        seats: c.seats.clone(),
        refunded_cents: c.total_cents,
        currency: c.currency.clone(),
        reason: Some("customer".into()),
    }
}

/// Publish booking's events as booking would (each twice: delivery is at least once).
pub async fn publish_confirmed(sys: &TestSystem, c: &BookingConfirmed) {
    let event = CloudEvent::new("booking", BOOKING_CONFIRMED, c.booking_id.to_string(), c).expect("event");
    let bus = sys.new_bus();
    bus.publish(&event).await.expect("published");
    bus.publish(&event).await.expect("published again");
}

pub async fn publish_cancelled(sys: &TestSystem, e: &BookingEnded) {
    let event = CloudEvent::new("booking", BOOKING_CANCELLED, e.booking_id.to_string(), e).expect("event");
    let bus = sys.new_bus();
    bus.publish(&event).await.expect("published");
    bus.publish(&event).await.expect("published again");
}

/// `GET /loyalty/me` once `done` holds of it (or the last answer after 10 s).
pub async fn account_when(sys: &TestSystem, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let a = sys.get("/api/v1/loyalty/me", Some(token)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        if done(&a.body) {
            return a.body;
        }
        last = a.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// The member's ledger, newest first.
pub async fn ledger(sys: &TestSystem, token: &str) -> Vec<Value> {
    let a = sys.get("/api/v1/loyalty/me/transactions?per_page=100", Some(token)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["items"].as_array().cloned().expect("items")
}

/// The balance equals the sum of the ledger, for every member.
pub async fn assert_balanced(sys: &TestSystem) {
    let off = loyalty::store::unbalanced(&sys.db("loyalty")).await.expect("query");
    assert!(off.is_empty(), "balances that are not the sum of their ledger: {off:?}");
}
