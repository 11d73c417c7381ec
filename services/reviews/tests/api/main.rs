//! reviews through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod reviews;

use serde_json::{Value, json};
use testkit::{Answer, TestSystem};

pub async fn movie(sys: &TestSystem, admin: &str, title: &str) -> String {
    let m = sys
        .post(
            "/api/v1/movies",
            json!({"title": title, "genres": ["drama"], "runtime_minutes": 100}),
            Some(admin),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.body);
    m.body["id"].as_str().expect("movie id").to_owned()
}

pub async fn review(sys: &TestSystem, token: &str, movie: &str, rating: i64) -> Answer {
    sys.post(
        "/api/v1/reviews",
        json!({"movie_id": movie, "rating": rating, "title": "My view", "body": "Worth it.\nTwice."}),
        Some(token),
    )
    .await
}

pub fn id(answer: &Answer) -> String {
    answer.body["id"].as_str().unwrap_or_else(|| panic!("an id: {}", answer.body)).to_owned()
}

pub fn items(answer: &Answer) -> Vec<Value> {
    answer.body["items"].as_array().cloned().unwrap_or_else(|| panic!("a page: {}", answer.body))
}
