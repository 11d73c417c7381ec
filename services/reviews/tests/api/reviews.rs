use std::time::Duration;

use contracts::{
    CloudEvent, booking::BookingConfirmed, event_types::BOOKING_CONFIRMED, event_types::PLAYBACK_STARTED,
    streaming::PlaybackStarted,
};
use serde_json::{Value, json};
use testkit::TestSystem;
use uuid::Uuid;

use crate::{id, items, movie, review};

#[tokio::test]
async fn one_review_per_user_and_movie_with_its_fields_checked() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let film = movie(&sys, &admin, "Reviewed").await;
    let (token, user) = sys.user_token().await;
    let first = review(&sys, &token, &film, 8).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(
        (first.body["user_id"].as_str(), first.body["version"].as_i64()),
        (Some(user.as_str()), Some(1))
    );
    assert_eq!(first.body["verified"], false);
    let second = review(&sys, &token, &film, 3).await;
    assert_eq!(
        (second.status, second.body["type"].as_str(), second.body["review_id"].as_str()),
        (409, Some("urn:marquee:problem:already-reviewed"), Some(id(&first).as_str()))
    );
    let unknown = review(&sys, &token, &Uuid::now_v7().to_string(), 5).await;
    assert_eq!(unknown.status, 404);
    for bad in [
        json!({"movie_id": film, "rating": 0, "title": "t"}),
        json!({"movie_id": film, "rating": 11, "title": "t"}),
        json!({"movie_id": film, "rating": 5, "title": "   "}),
        json!({"movie_id": film, "rating": 5, "title": "x".repeat(121)}),
        json!({"movie_id": film, "rating": 5, "title": "t", "body": "x".repeat(4001)}),
        json!({"movie_id": film, "rating": 5.5, "title": "t"}),
    ] {
        let a = sys.post("/api/v1/reviews", bad.clone(), Some(&token)).await;
        assert_eq!(a.status, 422, "{bad}: {}", a.body);
    }
    assert_eq!(
        sys.post("/api/v1/reviews", json!({"movie_id": film, "rating": 5, "title": "t"}), None).await.status,
        401
    );
    // Deleted, it can be written again.
    assert_eq!(sys.delete(&format!("/api/v1/reviews/{}", id(&first)), Some(&token)).await.status, 204);
    assert_eq!(review(&sys, &token, &film, 6).await.status, 201);
}

#[tokio::test]
async fn authors_and_admins_change_and_delete_reviews_and_nobody_else() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let film = movie(&sys, &admin, "Edited").await;
    let (author, _) = sys.user_token().await;
    let (other, _) = sys.user_token().await;
    let r = review(&sys, &author, &film, 4).await;
    let path = format!("/api/v1/reviews/{}", id(&r));
    assert_eq!(
        sys.patch(&path, json!({"rating": 9}), Some(&other)).await.status,
        404,
        "another user's: not found"
    );
    assert_eq!(sys.delete(&path, Some(&other)).await.status, 404);
    let changed =
        sys.patch(&path, json!({"rating": 9, "title": "Better the second time"}), Some(&author)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!((changed.body["rating"].as_i64(), changed.body["version"].as_i64()), (Some(9), Some(2)));
    assert_eq!(changed.body["body"], r.body["body"], "absent fields stay");
    let by_admin = sys.patch(&path, json!({"body": "Edited by the moderators."}), Some(&admin)).await;
    assert_eq!((by_admin.status, by_admin.body["version"].as_i64()), (200, Some(3)));
    let nothing = sys.patch(&path, json!({}), Some(&author)).await;
    assert_eq!(
        (nothing.status, nothing.body["version"].as_i64()),
        (200, Some(3)),
        "an empty change changes nothing"
    );
    assert_eq!(sys.patch(&path, json!({"rating": 12}), Some(&author)).await.status, 422);
    assert_eq!(sys.delete(&path, Some(&admin)).await.status, 204);
    assert_eq!(sys.get(&path, None).await.status, 404);
    assert_eq!(sys.delete(&path, Some(&author)).await.status, 404, "gone");
}

#[tokio::test]
async fn lists_by_movie_and_by_user_and_stats_with_the_histogram() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let (a, b) = (movie(&sys, &admin, "A").await, movie(&sys, &admin, "B").await);
    let mut users = Vec::new();
    for rating in [10, 10, 7] {
        let (token, user) = sys.user_token().await;
        assert_eq!(review(&sys, &token, &a, rating).await.status, 201);
        users.push((token, user));
    }
    assert_eq!(review(&sys, &users[0].0, &b, 2).await.status, 201);
    let of_a = sys.get(&format!("/api/v1/reviews?movie_id={a}"), None).await;
    assert_eq!((of_a.body["total"].as_i64(), items(&of_a).len()), (Some(3), 3));
    let by_first = sys.get(&format!("/api/v1/reviews?user_id={}", users[0].1), None).await;
    let mut movies: Vec<String> =
        items(&by_first).iter().filter_map(|r| r["movie_id"].as_str().map(str::to_owned)).collect();
    movies.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(movies, expected, "the first user's two reviews");
    let stats = sys.get(&format!("/api/v1/reviews/stats/{a}"), None).await;
    assert_eq!(stats.status, 200);
    assert_eq!((stats.body["count"].as_i64(), stats.body["average"].as_f64()), (Some(3), Some(9.0)));
    let histogram = stats.body["histogram"].as_object().expect("histogram");
    assert_eq!(histogram.len(), 10);
    assert_eq!(
        (histogram["10"].as_i64(), histogram["7"].as_i64(), histogram["1"].as_i64()),
        (Some(2), Some(1), Some(0))
    );
    let none = sys.get(&format!("/api/v1/reviews/stats/{}", Uuid::now_v7()), None).await;
    assert_eq!((none.body["count"].as_i64(), none.body["average"].clone()), (Some(0), Value::Null));
}

/// The badge comes from booking's and streaming's events, delivered twice here, before or
/// after the review.
#[tokio::test]
async fn a_booking_or_a_playback_of_the_movie_verifies_the_review() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let film = movie(&sys, &admin, "Seen").await;
    let film_id: Uuid = film.parse().expect("uuid");
    let bus = sys.new_bus();
    let (booker, booker_id) = sys.user_token().await;
    let posted = review(&sys, &booker, &film, 9).await;
    let confirmed = BookingConfirmed {
        booking_id: Uuid::now_v7(),
        user_id: booker_id.parse().expect("uuid"),
        showtime_id: Uuid::now_v7(),
        movie_id: film_id,
        seats: vec!["A1".into()],
        total_cents: 1000,
        currency: "USD".into(),
        confirmed_at: time::OffsetDateTime::now_utc(),
        starts_at: None,
        tickets: Vec::new(),
    };
    let event = CloudEvent::new("booking", BOOKING_CONFIRMED, confirmed.booking_id.to_string(), &confirmed)
        .expect("event");
    bus.publish(&event).await.expect("published");
    bus.publish(&event).await.expect("published again");
    let path = format!("/api/v1/reviews/{}", id(&posted));
    let verified = testkit::eventually(Duration::from_secs(10), || async {
        sys.get(&path, None).await.body["verified"] == Value::Bool(true)
    })
    .await;
    assert!(verified, "a review posted before the booking's event is verified by it");

    let (viewer, viewer_id) = sys.user_token().await;
    let played = PlaybackStarted {
        session_id: Uuid::now_v7(),
        user_id: viewer_id.parse().expect("uuid"),
        movie_id: film_id,
        position_seconds: 0,
        started_at: time::OffsetDateTime::now_utc(),
    };
    let event = CloudEvent::new("streaming", PLAYBACK_STARTED, played.session_id.to_string(), &played)
        .expect("event");
    bus.publish(&event).await.expect("published");
    let mut badge = Value::Null;
    // Until the event is in, a review posted is not verified yet: post, look, delete, again.
    for _ in 0..100 {
        let posted = review(&sys, &viewer, &film, 7).await;
        badge = posted.body["verified"].clone();
        if badge == Value::Bool(true) {
            break;
        }
        assert_eq!(sys.delete(&format!("/api/v1/reviews/{}", id(&posted)), Some(&viewer)).await.status, 204);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(badge, Value::Bool(true), "a viewer's review is verified when posted");
    let (stranger, _) = sys.user_token().await;
    assert_eq!(review(&sys, &stranger, &film, 1).await.body["verified"], false, "nobody else's");
}

/// End to end: reviews' events move the catalog's rating, through the real bus.
#[tokio::test]
async fn the_catalog_rating_follows_the_reviews() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let film = movie(&sys, &admin, "Rated for real").await;
    let (a, _) = sys.user_token().await;
    let (b, _) = sys.user_token().await;
    let ra = review(&sys, &a, &film, 8).await;
    assert_eq!(review(&sys, &b, &film, 6).await.status, 201);
    let rating = |expect: Value, count: i64| {
        let sys = &sys;
        let film = film.clone();
        async move {
            testkit::eventually(Duration::from_secs(10), || {
                let expect = expect.clone();
                let film = film.clone();
                async move {
                    let m = sys.get(&format!("/api/v1/movies/{film}"), None).await.body;
                    m["rating"] == expect && m["rating_count"] == json!(count)
                }
            })
            .await
        }
    };
    assert!(rating(json!(7.0), 2).await, "8 and 6");
    let path = format!("/api/v1/reviews/{}", id(&ra));
    assert_eq!(sys.patch(&path, json!({"rating": 10}), Some(&a)).await.status, 200);
    assert!(rating(json!(8.0), 2).await, "10 and 6");
    assert_eq!(sys.delete(&path, Some(&a)).await.status, 204);
    assert!(rating(json!(6.0), 1).await, "6 alone");
}
