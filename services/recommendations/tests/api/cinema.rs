//! `?for=cinema`: only movies with a showtime to come, those at the user's own theaters (where
//! they booked before) ahead of those elsewhere.

use serde_json::json;
use testkit::{TestSystem, flows};
use uuid::Uuid;

use crate::{ids, movie, when};

/// Schedule `movie` in the room of `show` (a showtime made by `flows::showtime`), `days` ahead.
async fn schedule_beside(sys: &TestSystem, admin: &str, show: &flows::Show, movie: Uuid, days: i64) {
    let s = sys.get(&format!("/api/v1/showtimes/{}", show.id), None).await;
    assert_eq!(s.status, 200, "{}", s.body);
    let starts = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let starts = starts.format(&time::format_description::well_known::Rfc3339).expect("time");
    let created = sys
        .post(
            "/api/v1/showtimes",
            json!({"movie_id": movie, "room_id": s.body["room_id"], "starts_at": starts, "price_cents": 1200, "currency": "USD"}),
            Some(admin),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

#[tokio::test]
async fn for_the_cinema_only_movies_showing_and_those_near_the_user_first() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    // Two theaters; the user books at the first.
    let mine = flows::showtime(&sys, &admin, "Heat", "UTC", 24).await;
    let elsewhere = flows::showtime(&sys, &admin, "Ronin", "UTC", 24).await;
    let (token, _) = sys.user_token().await;
    flows::book(&sys, &token, &mine.id, &["A1"]).await;
    let heat: Uuid = mine.movie_id.parse().expect("uuid");
    let ronin: Uuid = elsewhere.movie_id.parse().expect("uuid");
    // Two more films: one showing at the user's theater, one not showing anywhere.
    let near = movie(&sys, &admin, "Thief", &["drama"], "Michael Mann").await;
    schedule_beside(&sys, &admin, &mine, near, 3).await;
    let nowhere = movie(&sys, &admin, "Collateral", &["drama"], "Michael Mann").await;

    let path = "/api/v1/recommendations/me?for=cinema";
    let recs = when(&sys, path, Some(&token), |r| ids(r) == [near, ronin]).await;
    assert_eq!(ids(&recs), [near, ronin], "the user's theater first, never the booked one: {recs}");
    assert!(!ids(&recs).contains(&heat) && !ids(&recs).contains(&nowhere));
    // Without the filter the film that is not showing is suggested too.
    let any = when(&sys, "/api/v1/recommendations/me", Some(&token), |r| ids(r).contains(&nowhere)).await;
    assert!(ids(&any).contains(&nowhere) && !ids(&any).contains(&heat), "{any}");
}
