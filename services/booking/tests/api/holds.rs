use serde_json::json;
use testkit::{TestSystem, test_settings};

use crate::{hold, showtime};

#[tokio::test]
async fn a_hold_prices_premium_seats_and_blocks_them_for_others() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 5, 8, 24).await;
    let (alice, alice_id) = sys.user_token().await;
    let (bob, _) = sys.user_token().await;
    let a = hold(&sys, &alice, &show, &["e5", "A1"]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        (a.body["status"].as_str(), a.body["user_id"].as_str()),
        (Some("held"), Some(alice_id.as_str()))
    );
    assert_eq!(a.body["seats"], json!(["A1", "E5"]));
    assert_eq!(a.body["total_cents"], 1000 + 1500, "premium seats cost 1.5 times");
    let b = hold(&sys, &bob, &show, &["E5", "E6"]).await;
    assert_eq!((b.status, b.body["unavailable"].clone()), (409, json!(["E5"])));
    assert_eq!(b.body["type"], "urn:marquee:problem:seats-unavailable");

    let map = sys.get(&format!("/api/v1/showtimes/{show}/seats"), None).await;
    assert_eq!(map.status, 200, "{}", map.body);
    assert_eq!(map.body["available"], 38);
    let e = &map.body["rows"][4]["seats"];
    assert_eq!(e[4], json!({"seat": "E5", "kind": "premium", "status": "held", "price_cents": 1500}));
    assert_eq!(e[5]["status"], "available");
}

#[tokio::test]
async fn bad_holds_are_422_naming_the_field() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let field = |a: &testkit::Answer| a.body["errors"][0]["field"].as_str().map(str::to_owned);
    assert_eq!(field(&hold(&sys, &token, &show, &[]).await).as_deref(), Some("seats"));
    assert_eq!(field(&hold(&sys, &token, &show, &["Z9"]).await).as_deref(), Some("seats"));
    let eleven: Vec<String> =
        (1..=6).map(|n| format!("A{n}")).chain((1..=5).map(|n| format!("B{n}"))).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    assert_eq!(hold(&sys, &token, &show, &eleven).await.status, 422);
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(field(&hold(&sys, &token, &unknown, &["A1"]).await).as_deref(), Some("showtime_id"));
    assert_eq!(sys.delete(&format!("/api/v1/showtimes/{show}"), Some(&admin)).await.status, 204);
    // The booking service may have the showtime cached; a cancelled one must still be refused
    // once the cache lapses or is told. Here it is fresh: never booked before.
    let other = showtime(&sys, &admin, 2, 6, 24).await;
    sys.delete(&format!("/api/v1/showtimes/{other}"), Some(&admin)).await;
    assert_eq!(field(&hold(&sys, &token, &other, &["A1"]).await).as_deref(), Some("showtime_id"));
    assert_eq!(hold(&sys, "", &show, &["A1"]).await.status, 401);
}

#[tokio::test]
async fn an_expired_hold_never_blocks_the_next_buyer_and_cannot_be_paid() {
    let sys = TestSystem::start_with(test_settings().with("MARQUEE_HOLD_TTL_SECONDS", "1")).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (alice, _) = sys.user_token().await;
    let (bob, _) = sys.user_token().await;
    let first = hold(&sys, &alice, &show, &["A1", "A2"]).await;
    assert_eq!(first.status, 201);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let map = sys.get(&format!("/api/v1/showtimes/{show}/seats"), None).await;
    assert_eq!(map.body["rows"][0]["seats"][0]["status"], "available", "shown free at once");
    let second = hold(&sys, &bob, &show, &["A2", "A3"]).await;
    assert_eq!(second.status, 201, "no sweeper has run, and still: {}", second.body);
    let id = first.body["id"].as_str().expect("id");
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), crate::card(crate::GOOD), Some(&alice)).await;
    assert_eq!((paid.status, paid.body["type"].as_str()), (409, Some("urn:marquee:problem:hold-expired")));
    assert_eq!(sys.get(&format!("/api/v1/bookings/{id}"), Some(&alice)).await.body["status"], "expired");
}

#[tokio::test]
async fn bookings_are_private_and_a_held_booking_can_be_cancelled() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (alice, _) = sys.user_token().await;
    let (bob, _) = sys.user_token().await;
    let b = hold(&sys, &alice, &show, &["B1"]).await;
    let id = b.body["id"].as_str().expect("id");
    assert_eq!(sys.get(&format!("/api/v1/bookings/{id}"), Some(&bob)).await.status, 404);
    assert_eq!(sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&bob)).await.status, 404);
    assert_eq!(sys.get("/api/v1/bookings", Some(&bob)).await.body["total"], 0);
    assert_eq!(sys.get("/api/v1/bookings", Some(&alice)).await.body["total"], 1);
    assert_eq!(sys.get("/api/v1/bookings", Some(&admin)).await.body["total"], 1);
    let cancelled = sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&alice)).await;
    assert_eq!((cancelled.status, cancelled.body["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&alice)).await.status, 409);
    assert_eq!(hold(&sys, &bob, &show, &["B1"]).await.status, 201, "the seat is free again");
}

#[tokio::test]
async fn the_seat_stream_shows_holds_and_releases_as_they_happen() {
    use futures_util::StreamExt;
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let response = sys
        .http
        .get(format!("{}/api/v1/showtimes/{show}/seats/stream", sys.gateway))
        .send()
        .await
        .expect("open");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let b = hold(&sys, &token, &show, &["B2"]).await;
    sys.post(
        &format!("/api/v1/bookings/{}/cancel", b.body["id"].as_str().expect("id")),
        json!({}),
        Some(&token),
    )
    .await;
    let mut seen = String::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(r#""status":"available""#) {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "events arrived through the gateway as they happened: {seen}");
    let held = seen.find(r#"{"seat":"B2","status":"held"}"#).expect("the hold");
    let freed = seen.find(r#"{"seat":"B2","status":"available"}"#).expect("the release");
    assert!(held < freed);
    assert!(seen.contains("event: seat"));
}

/// Issue 10, item 5: one user could hold every seat of a show and never pay. Holds are capped
/// per showtime and in all (409 `hold-limit`), even for holds sent in parallel; paid seats no
/// longer count.
#[tokio::test]
async fn one_user_cannot_hoard_seats_with_holds() {
    let settings =
        test_settings().with("MARQUEE_MAX_HELD_SEATS_PER_SHOWTIME", "4").with("MARQUEE_MAX_HELD_SEATS", "6");
    let sys = TestSystem::start_with(settings).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 3, 8, 24).await;
    let other_show = showtime(&sys, &admin, 3, 8, 24).await;
    let (token, _) = sys.user_token().await;
    // Eight one-seat holds at once: four get through.
    let tries: Vec<_> = (1..=8)
        .map(|n| {
            let seat = format!("A{n}");
            let (sys, token, show) = (&sys, &token, &show);
            async move { hold(sys, token, show, &[seat.as_str()]).await }
        })
        .collect();
    let answers = futures_util::future::join_all(tries).await;
    let held: Vec<&testkit::Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(held.len(), 4, "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    let refused = answers.iter().find(|a| a.status == 409).expect("a refusal");
    assert_eq!(refused.body["type"], "urn:marquee:problem:hold-limit", "{}", refused.body);
    // Two more of another showtime make six in all; a seventh is refused.
    assert_eq!(hold(&sys, &token, &other_show, &["B1", "B2"]).await.status, 201);
    assert_eq!(hold(&sys, &token, &other_show, &["B3"]).await.status, 409);
    // Paying for a hold frees the room it took.
    let id = held[0].body["id"].as_str().expect("id");
    assert_eq!(
        sys.post(&format!("/api/v1/bookings/{id}/pay"), crate::card(crate::GOOD), Some(&token)).await.status,
        200
    );
    assert_eq!(hold(&sys, &token, &other_show, &["B3"]).await.status, 201);
    // Another user is not held back by this one.
    let (other, _) = sys.user_token().await;
    assert_eq!(hold(&sys, &other, &show, &["C1", "C2", "C3", "C4"]).await.status, 201);
}
