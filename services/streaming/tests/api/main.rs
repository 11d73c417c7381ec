//! streaming through the gateway, in the embedded mode or on PostgreSQL, RabbitMQ and Redis.

mod demo;
mod media;
mod playback;
mod s3;

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{Answer, TestSystem};

pub const GOOD: &str = "4242424242424242";

/// Settings for a test of streaming: ffmpeg as the machine has it unless `ffmpeg` says off.
pub fn settings(ffmpeg: bool) -> platform::Settings {
    let settings = testkit::test_settings().with("MARQUEE_PLAYBACK_SWEEP_MS", "100");
    if ffmpeg { settings } else { settings.with("MARQUEE_FFMPEG", "off") }
}

/// A user subscribed to `plan`: (token, id).
pub async fn subscriber(sys: &TestSystem, plan: &str) -> (String, String) {
    let (token, id) = sys.user_token().await;
    let card = json!({"type": "card", "number": GOOD, "exp_month": 12, "exp_year": 2035, "cvc": "123"});
    let s = sys
        .post("/api/v1/subscriptions", json!({"plan_id": plan, "payment_method": card}), Some(&token))
        .await;
    assert_eq!(s.status, 201, "{}", s.body);
    (token, id)
}

pub async fn movie(sys: &TestSystem, admin: &str, title: &str) -> String {
    let m = sys
        .post(
            "/api/v1/movies",
            json!({"title": title, "genres": ["drama"], "runtime_minutes": 95}),
            Some(admin),
        )
        .await;
    assert_eq!(m.status, 201, "{}", m.body);
    m.body["id"].as_str().expect("movie id").to_owned()
}

/// PUT a media file.
pub async fn upload(
    sys: &TestSystem,
    token: &str,
    movie: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Answer {
    let res = sys
        .http
        .put(format!("{}/api/v1/media/{movie}", sys.gateway))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("upload sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = serde_json::from_slice(&res.bytes().await.expect("body")).unwrap_or(Value::Null);
    Answer { status, headers, body }
}

/// A movie with a `seconds`-long demo clip, once the catalog says it is streamable: (id, clip).
pub async fn streamable(sys: &TestSystem, admin: &str, seconds: u32) -> (String, Vec<u8>) {
    let id = movie(sys, admin, "Clip").await;
    let clip = streaming::clip::mp4("Clip", seconds);
    let up = upload(sys, admin, &id, "video/mp4", clip.clone()).await;
    assert_eq!(up.status, 201, "{}", up.body);
    let path = format!("/api/v1/movies/{id}");
    let ready = testkit::eventually(Duration::from_secs(10), || async {
        sys.get(&path, None).await.body["streamable"] == Value::Bool(true)
    })
    .await;
    assert!(ready, "media.uploaded made the movie streamable in the catalog");
    (id, clip)
}

pub async fn start(sys: &TestSystem, token: &str, movie: &str) -> Answer {
    sys.post("/api/v1/playback/start", json!({"movie_id": movie}), Some(token)).await
}

pub async fn beat(sys: &TestSystem, token: &str, session: &Value, position: f64) -> Answer {
    let path = format!("/api/v1/playback/{}/heartbeat", session["session_id"].as_str().expect("session"));
    sys.post(&path, json!({"position_seconds": position}), Some(token)).await
}

pub async fn stop(sys: &TestSystem, token: &str, session: &Value, position: f64) -> Answer {
    let path = format!("/api/v1/playback/{}/stop", session["session_id"].as_str().expect("session"));
    sys.post(&path, json!({"position_seconds": position}), Some(token)).await
}

/// GET a stream URL (a path on the gateway) with headers: status, headers, bytes.
pub async fn fetch(
    sys: &TestSystem,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", sys.gateway) };
    let mut req = sys.http.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.expect("body").to_vec())
}

/// ffmpeg, when the machine has it. CI sets `MARQUEE_TEST_REQUIRE_FFMPEG`, so there a missing
/// one fails instead of skipping.
pub fn have_ffmpeg(test: &str) -> bool {
    let found = streaming::hls::ffmpeg_from_settings(&platform::Settings::default()).is_some();
    if !found {
        assert!(std::env::var("MARQUEE_TEST_REQUIRE_FFMPEG").is_err(), "{test}: ffmpeg is required here");
        eprintln!("SKIPPED {test}: no ffmpeg on the PATH");
    }
    found
}
