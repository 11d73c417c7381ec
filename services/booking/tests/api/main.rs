//! booking through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod chaos;
mod gateway;
mod holds;
mod money;
mod paying;
mod race;
mod saga;

use serde_json::{Value, json};
use testkit::TestSystem;

pub const GOOD: &str = "4242424242424242";
pub const DECLINED: &str = "4000000000000002";

pub fn card(number: &str) -> Value {
    json!({"payment_method": {"type": "card", "number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
}

/// A scheduled showtime `hours_ahead` from now in a room of `rows` x `seats` (the last row
/// premium), at 10.00 a seat; its id.
pub async fn showtime(sys: &TestSystem, admin: &str, rows: usize, seats: i64, hours_ahead: i64) -> String {
    let t = sys
        .post(
            "/api/v1/theaters",
            json!({"name": "T", "city": "C", "address": "A", "timezone": "UTC"}),
            Some(admin),
        )
        .await;
    let theater = t.body["id"].as_str().expect("theater").to_owned();
    let labels: Vec<String> = (0..rows).map(|i| char::from(b'A' + i as u8).to_string()).collect();
    let premium = labels.last().cloned().expect("a row");
    let r = sys
        .post(
            &format!("/api/v1/theaters/{theater}/rooms"),
            json!({"name": "R", "rows": labels, "seats_per_row": seats, "premium_rows": [premium]}),
            Some(admin),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let m = sys
        .post(
            "/api/v1/movies",
            json!({"title": "M", "genres": ["drama"], "runtime_minutes": 90}),
            Some(admin),
        )
        .await;
    let starts = time::OffsetDateTime::now_utc() + time::Duration::minutes(hours_ahead * 60 + 1);
    let starts = starts.format(&time::format_description::well_known::Rfc3339).expect("time");
    let s = sys
        .post(
            "/api/v1/showtimes",
            json!({"movie_id": m.body["id"], "room_id": r.body["id"], "starts_at": starts, "price_cents": 1000, "currency": "USD"}),
            Some(admin),
        )
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    s.body["id"].as_str().expect("showtime").to_owned()
}

pub async fn hold(sys: &TestSystem, token: &str, showtime: &str, seats: &[&str]) -> testkit::Answer {
    sys.post("/api/v1/bookings", json!({"showtime_id": showtime, "seats": seats}), Some(token)).await
}

/// What a pay request that died right after the charge leaves behind: a payment for the
/// booking, and the booking marked as charging.
pub async fn charge_and_crash(sys: &TestSystem, booking: &serde_json::Value) -> String {
    let token = sys.service_token("booking").await;
    let id = booking["id"].as_str().expect("id");
    let body = json!({
        "amount_cents": booking["total_cents"], "currency": "USD", "reference": format!("booking:{id}"),
        "user_id": booking["user_id"], "payment_method": card(GOOD)["payment_method"],
    });
    let paid = sys.post("/api/v1/payments", body, Some(&token)).await;
    assert_eq!(paid.body["status"], "succeeded", "{}", paid.body);
    sqlx::query("UPDATE bookings SET charging_at = $1 WHERE id = $2")
        .bind(platform::time::now_ms())
        .bind(id)
        .execute(&sys.db("booking").pool)
        .await
        .expect("marked");
    paid.body["id"].as_str().expect("payment").to_owned()
}
