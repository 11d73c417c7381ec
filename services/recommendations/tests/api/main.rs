//! recommendations through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and
//! Redis. Movies are made through the catalog (so their events are real); what people watched
//! is published as streaming would publish it.

mod cinema;
mod taste;

use std::time::Duration;

use contracts::{CloudEvent, event_types::PLAYBACK_STOPPED, streaming::PlaybackStopped};
use serde_json::{Value, json};
use testkit::TestSystem;
use uuid::Uuid;

/// A movie made by an admin through the catalog; its id.
pub async fn movie(sys: &TestSystem, admin: &str, title: &str, genres: &[&str], director: &str) -> Uuid {
    let m = sys
        .post(
            "/api/v1/movies",
            json!({"title": title, "genres": genres, "runtime_minutes": 110, "director": director,
                   "cast": [format!("{title} Lead")]}),
            Some(admin),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.body);
    m.body["id"].as_str().and_then(|s| s.parse().ok()).expect("movie id")
}

/// `user` watched `movie` to the end (as streaming reports it).
pub async fn watched(sys: &TestSystem, user: Uuid, movie: Uuid) {
    let stopped = PlaybackStopped {
        session_id: Uuid::now_v7(),
        user_id: user,
        movie_id: movie,
        position_seconds: 6500,
        duration_seconds: 6600,
        completed: true,
        reason: "stopped".into(),
        stopped_at: time::OffsetDateTime::now_utc(),
    };
    let event = CloudEvent::new("streaming", PLAYBACK_STOPPED, stopped.session_id.to_string(), &stopped)
        .expect("event");
    sys.new_bus().publish(&event).await.expect("published");
}

/// `GET path` once `done` holds of the answer (or the last answer after 15 s).
pub async fn when(sys: &TestSystem, path: &str, token: Option<&str>, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let a = sys.get(path, token).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        if done(&a.body) {
            return a.body;
        }
        last = a.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// The movie ids of an answer, in order.
pub fn ids(answer: &Value) -> Vec<Uuid> {
    answer
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["movie_id"].as_str().and_then(|s| s.parse().ok()).expect("movie id"))
        .collect()
}
