//! showtimes through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod showtimes;
mod theaters;

use serde_json::{Value, json};
use testkit::TestSystem;

/// A theater with one 5 x 8 room (row E premium, A1 accessible); returns (theater, room) ids.
pub async fn theater_with_room(sys: &TestSystem, admin: &str) -> (String, String) {
    let t = sys
        .post(
            "/api/v1/theaters",
            json!({"name": "Marquee Downtown", "city": "Lyon", "address": "1 Rue de la République", "timezone": "Europe/Paris"}),
            Some(admin),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    let theater = t.body["id"].as_str().expect("id").to_owned();
    let r = sys
        .post(
            &format!("/api/v1/theaters/{theater}/rooms"),
            json!({"name": "Salle 1", "rows": ["A", "B", "C", "D", "E"], "seats_per_row": 8, "premium_rows": ["E"], "accessible_seats": ["A1", "A2"]}),
            Some(admin),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (theater, r.body["id"].as_str().expect("id").to_owned())
}

/// A movie in the catalog with this runtime; its id.
pub async fn movie(sys: &TestSystem, admin: &str, runtime: i64) -> String {
    let m = sys
        .post(
            "/api/v1/movies",
            json!({"title": "Playtime", "genres": ["comedy"], "runtime_minutes": runtime}),
            Some(admin),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.body);
    m.body["id"].as_str().expect("id").to_owned()
}

/// An RFC 3339 time `days` days and `hours` hours from now, on the hour.
pub fn at(days: i64, hours: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::hours(hours);
    let t = t
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .expect("time");
    t.format(&time::format_description::well_known::Rfc3339).expect("format")
}

pub fn showtime(movie: &str, room: &str, starts_at: &str) -> Value {
    json!({"movie_id": movie, "room_id": room, "starts_at": starts_at, "price_cents": 1200, "currency": "EUR"})
}
