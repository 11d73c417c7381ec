//! The gateway's aggregations over the real services: what is deployed is there, the services
//! not built yet are named in `partial`.

use serde_json::json;
use testkit::TestSystem;

use crate::{GOOD, card, hold, showtime};

#[tokio::test]
async fn movie_details_and_the_dashboard_gather_the_running_services() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 4, 24).await;
    let movie = sys.get(&format!("/api/v1/showtimes/{show}"), None).await.body["movie_id"].clone();
    let movie = movie.as_str().expect("movie id");

    let details = sys.get(&format!("/api/v1/movie-details/{movie}"), None).await;
    assert_eq!(details.status, 200, "{}", details.body);
    assert_eq!(details.body["movie"]["id"], movie);
    assert_eq!(details.body["showtimes"][0]["id"], show);
    assert_eq!(details.body["partial"], json!(["ratings", "similar"]), "reviews and recommendations: not yet");

    let (token, _) = sys.user_token().await;
    let booking = hold(&sys, &token, &show, &["A1"]).await;
    let id = booking.body["id"].as_str().expect("booking");
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!(paid.status, 200, "{}", paid.body);

    let dashboard = sys.get("/api/v1/me/dashboard", Some(&token)).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    assert!(dashboard.body["profile"]["email"].is_string());
    assert_eq!(dashboard.body["bookings"][0]["id"], id);
    assert_eq!(dashboard.body["subscription"], serde_json::Value::Null, "none taken");
    assert_eq!(dashboard.body["partial"], json!(["loyalty", "continue_watching", "recommendations"]));
    assert_eq!(sys.get("/api/v1/me/dashboard", None).await.status, 401);
}
