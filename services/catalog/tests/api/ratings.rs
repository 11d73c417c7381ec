use std::time::Duration;

use contracts::{
    CloudEvent,
    event_types::{REVIEW_DELETED, REVIEW_POSTED, REVIEW_UPDATED},
    reviews::{ReviewDeleted, ReviewRated},
};
use testkit::{TestSystem, eventually};
use uuid::Uuid;

use crate::{create, movie};

fn rated(kind: &str, review: Uuid, movie: Uuid, rating: i64, version: i64) -> CloudEvent {
    let data = ReviewRated { review_id: review, movie_id: movie, user_id: Uuid::new_v4(), rating, version };
    CloudEvent::new("reviews", kind, review.to_string(), &data).expect("event")
}

fn deleted(review: Uuid, movie: Uuid, version: i64) -> CloudEvent {
    let data = ReviewDeleted { review_id: review, movie_id: movie, user_id: Uuid::new_v4(), version };
    CloudEvent::new("reviews", REVIEW_DELETED, review.to_string(), &data).expect("event")
}

async fn rating_of(sys: &TestSystem, id: Uuid) -> (serde_json::Value, serde_json::Value) {
    let m = sys.get(&format!("/api/v1/movies/{id}"), None).await.body;
    (m["rating"].clone(), m["rating_count"].clone())
}

async fn settles(sys: &TestSystem, id: Uuid, rating: serde_json::Value, count: i64) -> bool {
    eventually(Duration::from_secs(10), || {
        let rating = rating.clone();
        async move { rating_of(sys, id).await == (rating, serde_json::json!(count)) }
    })
    .await
}

#[tokio::test]
async fn ratings_follow_posted_updated_and_deleted_reviews_exactly_once() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let m = create(&sys, &admin, movie("Rated", &["drama"])).await;
    let id: Uuid = m["id"].as_str().expect("id").parse().expect("uuid");
    // Read it once so it is cached: rating changes must invalidate the cached copy.
    assert_eq!(rating_of(&sys, id).await.1, 0);
    let bus = sys.new_bus();
    let (r1, r2) = (Uuid::new_v4(), Uuid::new_v4());
    let first = rated(REVIEW_POSTED, r1, id, 8, 1);
    bus.publish(&first).await.expect("published");
    bus.publish(&first).await.expect("published again");
    bus.publish(&rated(REVIEW_POSTED, r2, id, 5, 1)).await.expect("published");
    assert!(settles(&sys, id, serde_json::json!(6.5), 2).await, "two reviews, the duplicate ignored");
    bus.publish(&rated(REVIEW_UPDATED, r2, id, 9, 2)).await.expect("published");
    assert!(settles(&sys, id, serde_json::json!(8.5), 2).await);
    bus.publish(&deleted(r1, id, 2)).await.expect("published");
    assert!(settles(&sys, id, serde_json::json!(9.0), 1).await);
}

#[tokio::test]
async fn a_deleted_review_stays_deleted_when_its_posting_arrives_late() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let m = create(&sys, &admin, movie("Out of order", &["drama"])).await;
    let id: Uuid = m["id"].as_str().expect("id").parse().expect("uuid");
    let bus = sys.new_bus();
    let (late, other) = (Uuid::new_v4(), Uuid::new_v4());
    bus.publish(&deleted(late, id, 2)).await.expect("published");
    bus.publish(&rated(REVIEW_POSTED, late, id, 1, 1)).await.expect("published");
    bus.publish(&rated(REVIEW_POSTED, other, id, 7, 1)).await.expect("published");
    assert!(settles(&sys, id, serde_json::json!(7.0), 1).await);
    let sorted = sys.get("/api/v1/movies?sort=-rating", None).await;
    assert_eq!(sorted.body["items"][0]["id"], id.to_string(), "{} {}", sorted.status, sorted.body);
}

/// Issue 12: catalog overwrote a rating with whatever event came last. An update that arrives
/// after a newer one must change nothing.
#[tokio::test]
async fn a_late_update_never_undoes_a_newer_one() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let m = create(&sys, &admin, movie("Late", &["drama"])).await;
    let id: Uuid = m["id"].as_str().expect("id").parse().expect("uuid");
    let bus = sys.new_bus();
    let review = Uuid::new_v4();
    bus.publish(&rated(REVIEW_POSTED, review, id, 3, 1)).await.expect("published");
    bus.publish(&rated(REVIEW_UPDATED, review, id, 9, 3)).await.expect("published");
    bus.publish(&rated(REVIEW_UPDATED, review, id, 1, 2)).await.expect("published late");
    let canary = Uuid::new_v4();
    bus.publish(&rated(REVIEW_POSTED, canary, id, 5, 1)).await.expect("published");
    assert!(settles(&sys, id, serde_json::json!(7.0), 2).await, "9 and 5: the late 1 was ignored");
}
