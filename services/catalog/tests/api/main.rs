//! The catalog through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod import;
mod movies;
mod ratings;
mod search;

use serde_json::{Value, json};
use testkit::TestSystem;

/// A movie body with the given title and genres.
pub fn movie(title: &str, genres: &[&str]) -> Value {
    json!({
        "title": title,
        "synopsis": format!("A film called {title}."),
        "genres": genres,
        "runtime_minutes": 120,
        "release_date": "1999-03-31",
        "director": "Some Director",
        "cast": ["Lead Actor", "Second Actor"],
    })
}

/// Create a movie as admin; panics unless 201. Returns it.
pub async fn create(sys: &TestSystem, admin: &str, body: Value) -> Value {
    let a = sys.post("/api/v1/movies", body, Some(admin)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body
}
