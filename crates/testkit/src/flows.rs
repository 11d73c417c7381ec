//! The steps most suites need before their own: a showtime to book, a booking paid for. Through
//! the gateway, as a client would.

use serde_json::{Value, json};

use crate::TestSystem;

/// The test card that succeeds.
pub const GOOD_CARD: &str = "4242424242424242";

/// A payment method with a test card number.
pub fn card(number: &str) -> Value {
    json!({"payment_method": {"type": "card", "number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
}

/// A scheduled showtime and what it belongs to.
#[derive(Debug, Clone)]
pub struct Show {
    pub id: String,
    pub movie_id: String,
    pub theater_id: String,
}

/// A showtime of a new movie called `title` in a new theater in `timezone` (an IANA name), in
/// a room of rows A to E with 10 seats each (row E premium), at 10.00 a seat, starting
/// `hours_ahead` hours from now.
pub async fn showtime(sys: &TestSystem, admin: &str, title: &str, timezone: &str, hours_ahead: i64) -> Show {
    let t = sys
        .post(
            "/api/v1/theaters",
            json!({"name": "Marquee Riverside", "city": "C", "address": "1 Main St", "timezone": timezone}),
            Some(admin),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    let r = sys
        .post(
            &format!("/api/v1/theaters/{}/rooms", t.body["id"].as_str().expect("theater")),
            json!({"name": "Room 1", "rows": ["A", "B", "C", "D", "E"], "seats_per_row": 10, "premium_rows": ["E"]}),
            Some(admin),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let m = sys
        .post(
            "/api/v1/movies",
            json!({"title": title, "genres": ["drama"], "runtime_minutes": 90}),
            Some(admin),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.body);
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
    let id = |v: &Value| v["id"].as_str().expect("an id").to_owned();
    Show { id: id(&s.body), movie_id: id(&m.body), theater_id: id(&t.body) }
}

/// Hold `seats` and pay with the good card; the confirmed booking (with its tickets).
pub async fn book(sys: &TestSystem, token: &str, showtime: &str, seats: &[&str]) -> Value {
    let held =
        sys.post("/api/v1/bookings", json!({"showtime_id": showtime, "seats": seats}), Some(token)).await;
    assert_eq!(held.status, 201, "hold: {}", held.body);
    let id = held.body["id"].as_str().expect("booking id");
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD_CARD), Some(token)).await;
    assert_eq!(paid.status, 200, "pay: {}", paid.body);
    paid.body
}
