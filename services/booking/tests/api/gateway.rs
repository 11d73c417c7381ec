//! The gateway over the real services: aggregations (every part there, none in `partial`) and
//! the merged API reference.

use serde_json::json;
use testkit::{TestSystem, test_settings};

use crate::{GOOD, card, hold, showtime};

#[tokio::test]
async fn movie_details_and_the_dashboard_gather_the_running_services() {
    // Every part must be there: the 2 s budget for the slowest part is the gateway's own test's
    // business (services/gateway/tests/api/aggregate.rs). CI, distributed, 2026-12-04: with the
    // suite's other tests sharing two cores, the showtimes part took longer and was left out.
    let sys =
        TestSystem::start_with(test_settings().with("MARQUEE_GATEWAY_AGGREGATE_TIMEOUT_MS", "15000")).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 4, 24).await;
    let movie = sys.get(&format!("/api/v1/showtimes/{show}"), None).await.body["movie_id"].clone();
    let movie = movie.as_str().expect("movie id");

    let details = sys.get(&format!("/api/v1/movie-details/{movie}"), None).await;
    assert_eq!(details.status, 200, "{}", details.body);
    assert_eq!(details.body["partial"], json!([]), "{}", details.body);
    assert_eq!(details.body["movie"]["id"], movie);
    assert_eq!(details.body["showtimes"][0]["id"], show);
    assert!(details.body["similar"].is_array(), "recommendations answers: {}", details.body);
    assert_eq!(details.body["ratings"]["count"], 0, "reviews answers: none yet");

    let (token, _) = sys.user_token().await;
    let booking = hold(&sys, &token, &show, &["A1"]).await;
    let id = booking.body["id"].as_str().expect("booking");
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!(paid.status, 200, "{}", paid.body);

    let dashboard = sys.get("/api/v1/me/dashboard", Some(&token)).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    assert_eq!(dashboard.body["partial"], json!([]), "{}", dashboard.body);
    assert!(dashboard.body["profile"]["email"].is_string());
    assert_eq!(dashboard.body["bookings"][0]["id"], id);
    assert_eq!(dashboard.body["subscription"], serde_json::Value::Null, "none taken");
    assert!(dashboard.body["recommendations"].is_array(), "{}", dashboard.body);
    assert_eq!(dashboard.body["loyalty"]["tier"], "bronze", "loyalty answers: {}", dashboard.body);
    assert_eq!(dashboard.body["continue_watching"], json!([]), "streaming answers: nothing watched yet");
    assert_eq!(sys.get("/api/v1/me/dashboard", None).await.status, 401);
}

#[tokio::test]
async fn the_api_reference_covers_every_running_service() {
    let sys = TestSystem::start().await;
    let doc = sys.get("/api/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/auth/login",
        "/api/v1/movies/{id}",
        "/api/v1/showtimes",
        "/api/v1/bookings/{id}/pay",
        "/api/v1/subscriptions/me",
        "/api/v1/playback/start",
        "/api/v1/reviews/stats/{movie_id}",
        "/api/v1/stream/{session_id}/{object}",
        "/api/v1/movie-details/{id}",
        "/api/v1/me/dashboard",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert_eq!(doc.body["x-partial"], json!([]));
    assert!(doc.body["components"]["schemas"].as_object().is_some_and(|s| s.len() > 10));
    let ui = reqwest::get(format!("{}/api/docs/", sys.gateway)).await.expect("docs");
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.expect("html").contains("swagger-ui"));
    let init = reqwest::get(format!("{}/api/docs/swagger-initializer.js", sys.gateway)).await.expect("js");
    assert!(init.text().await.expect("js").contains("/api/openapi.json"), "the UI reads the merged document");
}
