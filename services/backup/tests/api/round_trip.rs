//! Back up a system with a customer's whole story in it, restore into a fresh one, and get the
//! same answers.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{TestSystem, flows};

use crate::{Store, backup, restore, settings, settled, until};

const PASSWORD: &str = "correct-horse-1";

/// What a customer and an admin see, path by path.
async fn answers(sys: &TestSystem, customer: &str, admin: &str, ids: &Ids) -> Vec<(String, Value)> {
    let as_customer = [
        "/api/v1/users/me".to_owned(),
        format!("/api/v1/bookings/{}", ids.booking),
        "/api/v1/bookings".to_owned(),
        "/api/v1/payments".to_owned(),
        "/api/v1/subscriptions/me".to_owned(),
        "/api/v1/loyalty/me".to_owned(),
        "/api/v1/loyalty/me/transactions".to_owned(),
        "/api/v1/watchlist".to_owned(),
        "/api/v1/playback/history".to_owned(),
        "/api/v1/notifications".to_owned(),
    ];
    let as_anyone = [
        format!("/api/v1/movies/{}", ids.movie),
        "/api/v1/movies/search?q=restored".to_owned(),
        format!("/api/v1/showtimes/{}", ids.showtime),
        format!("/api/v1/showtimes/{}/seats", ids.showtime),
        format!("/api/v1/reviews?movie_id={}", ids.movie),
        format!("/api/v1/reviews/stats/{}", ids.movie),
        format!("/api/v1/theaters/{}", ids.theater),
    ];
    let as_admin = [
        format!("/api/v1/tickets/{}", ids.ticket),
        format!("/api/v1/users/{}", ids.customer),
        "/api/v1/rewards".to_owned(),
    ];
    let mut out = Vec::new();
    for (paths, token) in
        [(&as_customer[..], Some(customer)), (&as_anyone[..], None), (&as_admin[..], Some(admin))]
    {
        for path in paths {
            let a = sys.get(path, token).await;
            assert_eq!(a.status, 200, "{path}: {}", a.body);
            out.push((path.clone(), a.body));
        }
    }
    out
}

struct Ids {
    customer: String,
    movie: String,
    showtime: String,
    theater: String,
    booking: String,
    ticket: String,
}

/// A customer who booked and paid, reviewed, subscribed, watched and listed a movie.
async fn a_customers_story(sys: &TestSystem, admin: &str) -> (String, Ids) {
    let show = flows::showtime(sys, admin, "The Restored Reel", "Europe/Paris", 72).await;
    let reward = sys
        .post(
            "/api/v1/rewards",
            json!({"name": "Popcorn", "points_cost": 5, "description": "A bucket"}),
            Some(admin),
        )
        .await;
    assert_eq!(reward.status, 201, "{}", reward.body);
    let session = sys
        .post(
            "/api/v1/auth/register",
            json!({"email": "alice@example.com", "password": PASSWORD, "name": "Alice"}),
            None,
        )
        .await;
    assert_eq!(session.status, 201, "{}", session.body);
    let token = session.body["access_token"].as_str().expect("a token").to_owned();
    let booked = flows::book(sys, &token, &show.id, &["C3", "C4"]).await;
    let review = sys
        .post(
            "/api/v1/reviews",
            json!({"movie_id": show.movie_id, "rating": 9, "title": "Worth it", "body": "Twice."}),
            Some(&token),
        )
        .await;
    assert_eq!(review.status, 201, "{}", review.body);
    let card =
        json!({"type": "card", "number": flows::GOOD_CARD, "exp_month": 12, "exp_year": 2035, "cvc": "123"});
    let sub = sys
        .post("/api/v1/subscriptions", json!({"plan_id": "basic", "payment_method": card}), Some(&token))
        .await;
    assert_eq!(sub.status, 201, "{}", sub.body);
    let listed = sys
        .request(
            reqwest::Method::PUT,
            &format!("{}/api/v1/watchlist/{}", sys.gateway, show.movie_id),
            None,
            Some(&token),
        )
        .await;
    assert!(listed.status < 300, "{}", listed.body);
    // A clip to watch a little of.
    let up = sys
        .http
        .put(format!("{}/api/v1/media/{}", sys.gateway, show.movie_id))
        .bearer_auth(admin)
        .header("content-type", "video/mp4")
        .body(streaming::clip::mp4("Reel", 4))
        .send()
        .await
        .expect("upload sent");
    assert_eq!(up.status().as_u16(), 201);
    until(sys, &format!("/api/v1/movies/{}", show.movie_id), admin, Duration::from_secs(15), |m| {
        m["streamable"] == true
    })
    .await;
    let play = sys.post("/api/v1/playback/start", json!({"movie_id": show.movie_id}), Some(&token)).await;
    assert_eq!(play.status, 201, "{}", play.body);
    let session_id = play.body["session_id"].as_str().expect("a session");
    let stop = sys
        .post(&format!("/api/v1/playback/{session_id}/stop"), json!({"position_seconds": 2.5}), Some(&token))
        .await;
    assert_eq!(stop.status, 204, "{}", stop.body);
    // Let every consumer catch up, so the answers compared are the settled ones.
    until(sys, "/api/v1/loyalty/me", &token, Duration::from_secs(15), |l| {
        l["lifetime_points"].as_i64() > Some(0)
    })
    .await;
    until(sys, &format!("/api/v1/movies/{}", show.movie_id), &token, Duration::from_secs(15), |m| {
        m["rating_count"] == 1
    })
    .await;
    until(sys, "/api/v1/notifications", &token, Duration::from_secs(15), |n| {
        n["items"].as_array().is_some_and(|i| i.len() >= 3)
    })
    .await;
    until(sys, "/api/v1/playback/history", &token, Duration::from_secs(15), |h| {
        h.as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    settled(sys).await;
    let ids = Ids {
        customer: session.body["user"]["id"].as_str().expect("an id").to_owned(),
        movie: show.movie_id,
        showtime: show.id,
        theater: show.theater_id,
        booking: booked["id"].as_str().expect("an id").to_owned(),
        ticket: booked["tickets"][0]["code"].as_str().expect("a code").to_owned(),
    };
    (token, ids)
}

#[tokio::test]
async fn a_restored_system_answers_like_the_one_backed_up() {
    let store = Store::fresh();
    let mut source = TestSystem::start_with(settings(&store.0)).await;
    let admin = source.admin_token().await;
    let (old_token, ids) = a_customers_story(&source, &admin).await;
    let before = answers(&source, &old_token, &admin, &ids).await;

    let done = backup(&source, &admin).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["services_done"], done["services_total"], "{done}");
    assert!(done["rows"].as_i64() > Some(20) && done["bytes"].as_i64() > Some(0), "{done}");
    assert!(done["cut_at"].is_string(), "{done}");
    let id = done["id"].as_str().expect("an id").to_owned();
    source.stop().await;

    // A fresh system on the same store finds the backup there and restores it.
    let target = TestSystem::start_with(settings(&store.0)).await;
    let admin = target.admin_token().await;
    let listed = target.get("/api/v1/backups", Some(&admin)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(
        listed.body["items"].as_array().expect("items").iter().any(|b| b["id"] == id.as_str()),
        "{}",
        listed.body
    );
    let restored = restore(&target, &admin, &id).await;
    assert_eq!(restored["restore"]["status"], "complete", "{restored}");
    assert_eq!(restored["restore"]["services_done"], restored["restore"]["services_total"], "{restored}");
    settled(&target).await;

    // The customer's password still works, and so does the token the old system gave her.
    let login = target
        .post("/api/v1/auth/login", json!({"email": "alice@example.com", "password": PASSWORD}), None)
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let token = login.body["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(target.get("/api/v1/users/me", Some(&old_token)).await.status, 200, "the old token verifies");
    let admin = target.admin_token().await;
    let after = answers(&target, &token, &admin, &ids).await;
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{path} answers the same after the restore");
    }
    // The events sent again were recognised: no second email, no points twice.
    let emails = target.get("/api/v1/notifications", Some(&token)).await;
    assert_eq!(emails.body, before.iter().find(|(p, _)| p == "/api/v1/notifications").expect("asked").1);
}
