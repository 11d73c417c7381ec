//! `movie-details` and `me/dashboard`: parts asked in parallel; a part that fails, is slow or
//! whose service is not deployed is left out and named in `partial`.

use std::time::{Duration, Instant};

use axum::{Json, Router, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use platform::Settings;
use serde_json::json;

use crate::{Identity, bearer, closed_url, gateway, get_json, serve};

const MOVIE: &str = "0190c7a2-5b1e-7c3d-9e4f-a1b2c3d4e5f6";

async fn catalog() -> String {
    serve(Router::new().route(
        "/api/v1/movies/{id}",
        get(|Path(id): Path<String>| async move {
            if id == MOVIE {
                Json(json!({"id": id, "title": "Metropolis"})).into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }),
    ))
    .await
}

/// A showtimes stand-in that takes `delay` to answer.
async fn showtimes(delay: Duration) -> String {
    serve(Router::new().route(
        "/api/v1/showtimes",
        get(move || async move {
            tokio::time::sleep(delay).await;
            Json(json!({"items": [{"id": "s1", "movie_id": MOVIE}], "page": 1, "total": 1}))
        }),
    ))
    .await
}

#[tokio::test]
async fn movie_details_leaves_out_and_names_the_parts_that_failed() {
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", catalog().await)
        .with("MARQUEE_SHOWTIMES_URL", showtimes(Duration::ZERO).await)
        .with("MARQUEE_REVIEWS_URL", closed_url()); // down; recommendations: not deployed
    let gw = gateway(settings).await;
    let (status, _, body) = get_json(&format!("{gw}/api/v1/movie-details/{MOVIE}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["movie"]["title"], "Metropolis");
    assert_eq!(body["showtimes"][0]["id"], "s1");
    assert_eq!(body["partial"], json!(["ratings", "similar"]));
    assert!(body.get("ratings").is_none() && body.get("similar").is_none());

    for id in ["0190c7a2-0000-7c3d-9e4f-a1b2c3d4e5f6", "not-a-uuid"] {
        let (status, _, body) = get_json(&format!("{gw}/api/v1/movie-details/{id}"), &[]).await;
        assert_eq!(status, 404, "{id}: {body}");
    }
}

#[tokio::test]
async fn a_slow_part_is_cut_off_and_a_dead_catalog_is_not_a_5xx() {
    let settings = Settings::default()
        .with("MARQUEE_CATALOG_URL", closed_url())
        .with("MARQUEE_SHOWTIMES_URL", showtimes(Duration::from_secs(5)).await)
        .with("MARQUEE_GATEWAY_AGGREGATE_TIMEOUT_MS", "300");
    let gw = gateway(settings).await;
    let started = Instant::now();
    let (status, _, body) = get_json(&format!("{gw}/api/v1/movie-details/{MOVIE}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partial"], json!(["movie", "ratings", "showtimes", "similar"]));
    assert!(started.elapsed() < Duration::from_secs(2), "the slow part did not hold the answer");
}

#[tokio::test]
async fn the_dashboard_needs_a_token_and_degrades_part_by_part() {
    let identity = Identity::start().await;
    let booking = serve(Router::new().route(
        "/api/v1/bookings",
        get(|| async { Json(json!({"items": [{"id": "b1"}], "page": 1, "total": 1})) }),
    ))
    .await;
    // No subscription yet: a 404, which is "none", not a failure.
    let payments =
        serve(Router::new().route("/api/v1/subscriptions/me", get(|| async { StatusCode::NOT_FOUND }))).await;
    let settings = Settings::default()
        .with("MARQUEE_IDENTITY_URL", &identity.url)
        .with("MARQUEE_BOOKING_URL", booking)
        .with("MARQUEE_PAYMENTS_URL", payments);
    let gw = gateway(settings).await;
    let url = format!("{gw}/api/v1/me/dashboard");

    let (status, _, body) = get_json(&url, &[]).await;
    assert_eq!(status, 401, "{body}");

    let token = bearer(&identity.token("u1", 300));
    let (status, _, body) = get_json(&url, &[("authorization", &token)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"]["email"], "ada@example.com");
    assert_eq!(body["bookings"][0]["id"], "b1");
    assert_eq!(body["subscription"], serde_json::Value::Null);
    assert_eq!(body["partial"], json!(["loyalty", "continue_watching", "recommendations"]));
}
