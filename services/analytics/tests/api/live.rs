//! analytics fed by the real services: bookings paid and cancelled, a subscription, through the
//! gateway; and what it refuses.

use serde_json::{Value, json};
use testkit::{
    TestSystem,
    flows::{self, GOOD_CARD},
};
use uuid::Uuid;

use crate::{csv, sum, when};

const EVER: &str = "from=2000-01-01&to=2100-12-31";

#[tokio::test]
async fn occupancy_is_seats_sold_over_capacity_and_money_follows_the_payments() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    // A room of 5 rows of 10: 50 seats.
    let show = flows::showtime(&sys, &admin, "Heat", "America/Los_Angeles", 48).await;
    let (alice, alice_id) = sys.user_token().await;
    let (bob, _) = sys.user_token().await;
    let kept = flows::book(&sys, &alice, &show.id, &["A1", "A2", "E1"]).await;
    assert_eq!(kept["total_cents"], 3500);
    let dropped = flows::book(&sys, &bob, &show.id, &["B1"]).await;
    let id = dropped["id"].as_str().expect("id");
    let cancel = sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&bob)).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);

    let occupancy = format!("/api/v1/analytics/occupancy?theater_id={}&{EVER}", show.theater_id);
    let page = when(&sys, &occupancy, &admin, |p| p["items"][0]["sold"] == 3).await;
    assert_eq!(page["total"], 1, "{page}");
    let item = &page["items"][0];
    assert_eq!((item["showtime_id"].as_str(), item["capacity"].as_i64()), (Some(show.id.as_str()), Some(50)));
    assert_eq!(item["occupancy"].as_f64(), Some(3.0 / 50.0), "{item}");
    assert_eq!((item["title"].as_str(), item["status"].as_str()), (Some("Heat"), Some("scheduled")));

    // Captured 35.00 + 10.00, refunded 10.00: the payments' own figures.
    let revenue = format!("/api/v1/analytics/revenue?theater_id={}", show.theater_id);
    let series = when(&sys, &revenue, &admin, |s| sum(s, "refunds_cents") == 1000).await;
    assert_eq!(
        (sum(&series, "revenue_cents"), sum(&series, "refunds_cents"), sum(&series, "net_cents")),
        (4500, 1000, 3500),
        "{series}"
    );
    assert_eq!((sum(&series, "bookings"), sum(&series, "tickets")), (2, 4));
    assert_eq!(series.as_array().map(Vec::len), Some(30), "every day of the default range is listed");
    let paid: Value = sys.get("/api/v1/payments?per_page=100", Some(&admin)).await.body;
    let captured: i64 = paid["items"]
        .as_array()
        .expect("payments")
        .iter()
        .filter(|p| p["status"] != "failed")
        .map(|p| p["amount_cents"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(captured, sum(&series, "revenue_cents"), "analytics and payments agree: {paid}");

    let dashboard = when(&sys, "/api/v1/analytics/dashboard", &admin, |d| d["bookings_30d"] == 2).await;
    assert_eq!(
        (dashboard["revenue_cents_30d"].as_i64(), dashboard["tickets_sold_30d"].as_i64()),
        (Some(3500), Some(3)),
        "{dashboard}"
    );
    assert_eq!(dashboard["top_movies"][0]["title"], "Heat", "{dashboard}");
    assert_eq!(dashboard["average_occupancy"].as_f64(), Some(3.0 / 50.0), "{dashboard}");

    let movie = sys.get(&format!("/api/v1/analytics/movies/{}", show.movie_id), Some(&admin)).await;
    assert_eq!(movie.status, 200, "{}", movie.body);
    assert_eq!(
        (movie.body["bookings"].as_i64(), movie.body["tickets"].as_i64(), movie.body["showtimes"].as_i64()),
        (Some(2), Some(3), Some(1)),
        "{}",
        movie.body
    );
    assert_eq!(movie.body["average_occupancy"].as_f64(), Some(3.0 / 50.0));
    let unknown = sys.get(&format!("/api/v1/analytics/movies/{}", Uuid::now_v7()), Some(&admin)).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let behavior = sys.get(&format!("/api/v1/analytics/users/{alice_id}/behavior"), Some(&admin)).await;
    assert_eq!(behavior.status, 200, "{}", behavior.body);
    assert_eq!(
        (behavior.body["net_spend_cents"].as_i64(), behavior.body["segment"].as_str()),
        (Some(3500), Some("casual")),
        "{}",
        behavior.body
    );
    assert_eq!((behavior.body["bookings"].as_i64(), behavior.body["tickets"].as_i64()), (Some(1), Some(3)));

    // The same series as CSV.
    let (status, content_type, text) = csv(&sys, &revenue, &admin).await;
    assert_eq!((status, content_type.as_str()), (200, "text/csv; charset=utf-8"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "period_start,revenue_cents,refunds_cents,net_cents,bookings,tickets,currency");
    assert_eq!(lines.len(), 31, "a header and 30 days");
    let csv_total: i64 =
        lines[1..].iter().map(|l| l.split(',').nth(1).and_then(|c| c.parse::<i64>().ok()).unwrap_or(0)).sum();
    assert_eq!(csv_total, 4500);
    let (status, _, text) = csv(&sys, &occupancy, &admin).await;
    assert_eq!(status, 200);
    assert!(
        text.lines().nth(1).is_some_and(|l| l.contains(&show.id) && l.ends_with(",50,3,0.0600")),
        "{text}"
    );
}

#[tokio::test]
async fn subscriptions_are_counted_active_and_segments_follow_spend() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let (token, user) = sys.user_token().await;
    let body = json!({"plan_id": "standard", "payment_method": flows::card(GOOD_CARD)["payment_method"]});
    let s = sys.post("/api/v1/subscriptions", body, Some(&token)).await;
    assert_eq!(s.status, 201, "{}", s.body);
    let dashboard =
        when(&sys, "/api/v1/analytics/dashboard", &admin, |d| d["active_subscriptions"] == 1).await;
    assert_eq!(dashboard["active_subscriptions"], 1, "{dashboard}");
    let series = when(&sys, "/api/v1/analytics/subscriptions", &admin, |s| sum(s, "started") == 1).await;
    let today = series.as_array().and_then(|s| s.last()).cloned().unwrap_or_default();
    assert_eq!((today["started"].as_i64(), today["active_at_end"].as_i64()), (Some(1), Some(1)), "{series}");

    let behavior = when(&sys, &format!("/api/v1/analytics/users/{user}/behavior"), &admin, |b| {
        b["spent_cents"].as_i64() > Some(0)
    })
    .await;
    assert_eq!(behavior["segment"], "casual", "{behavior}");
    let segments = sys.get("/api/v1/analytics/segments", Some(&admin)).await;
    assert_eq!(segments.status, 200, "{}", segments.body);
    assert!(segments.body["casual"].as_i64() >= Some(1), "{}", segments.body);
    let casual = sys.get("/api/v1/analytics/users?segment=casual", Some(&admin)).await;
    assert_eq!(casual.status, 200, "{}", casual.body);
    assert!(casual.body["items"].to_string().contains(&user), "{}", casual.body);

    let cancel = sys.delete("/api/v1/subscriptions/me", Some(&token)).await;
    assert!(cancel.status < 300, "{}", cancel.body);
    let series = when(&sys, "/api/v1/analytics/subscriptions", &admin, |s| sum(s, "cancelled") == 1).await;
    assert_eq!(sum(&series, "cancelled"), 1, "{series}");
    // Cancelled at the end of the paid month: still active until then.
    let dashboard = sys.get("/api/v1/analytics/dashboard", Some(&admin)).await;
    assert_eq!(dashboard.body["active_subscriptions"], 1, "{}", dashboard.body);
}

#[tokio::test]
async fn analytics_is_for_admins_and_refuses_what_it_cannot_answer() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let (customer, _) = sys.user_token().await;
    for path in [
        "/api/v1/analytics/dashboard",
        "/api/v1/analytics/revenue",
        "/api/v1/analytics/occupancy",
        "/api/v1/analytics/segments",
    ] {
        assert_eq!(sys.get(path, None).await.status, 401, "{path}");
        assert_eq!(sys.get(path, Some(&customer)).await.status, 403, "{path}");
    }
    assert_eq!(sys.post("/api/v1/analytics/rebuild", json!({}), Some(&customer)).await.status, 403);
    let unknown = sys.get(&format!("/api/v1/analytics/rebuilds/{}", Uuid::now_v7()), Some(&admin)).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    for (path, field) in [
        ("/api/v1/analytics/revenue?from=2026-12-02&to=2026-12-01", "from"),
        ("/api/v1/analytics/revenue?from=2000-01-01&to=2100-12-31", "to"),
        ("/api/v1/analytics/revenue?from=2026-02-30", "from"),
        ("/api/v1/analytics/revenue?currency=usd", "currency"),
        ("/api/v1/analytics/popular-movies?limit=0", "limit"),
    ] {
        let a = sys.get(path, Some(&admin)).await;
        assert_eq!(a.status, 422, "{path}: {}", a.body);
        assert_eq!(a.body["errors"][0]["field"], field, "{path}: {}", a.body);
    }
    let a = sys.get("/api/v1/analytics/revenue?interval=year", Some(&admin)).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    // A long range is fine by the month.
    let monthly =
        sys.get("/api/v1/analytics/revenue?from=2000-01-01&to=2080-12-31&interval=month", Some(&admin)).await;
    assert_eq!((monthly.status, monthly.body.as_array().map(Vec::len)), (200, Some(972)));
    assert_eq!(
        sys.get(&format!("/api/v1/analytics/users/{}/behavior", Uuid::now_v7()), Some(&admin)).await.status,
        404
    );
}

/// An event analytics cannot read (a producer's bug) is retried, then dead-lettered, with no
/// effect: nothing archived, nothing counted, and the events behind it still applied.
#[tokio::test]
async fn an_unreadable_event_is_dead_lettered_and_changes_nothing() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let broken = contracts::CloudEvent::new(
        "booking",
        "booking.confirmed",
        "b1",
        &json!({"booking_id": "not a uuid"}),
    )
    .expect("event");
    let paid = contracts::payments::PaymentSettled {
        payment_id: Uuid::now_v7(),
        user_id: Uuid::now_v7(),
        reference: format!("subscription:{}:0", Uuid::now_v7()),
        amount_cents: 777,
        currency: "USD".into(),
        failure_code: None,
    };
    let good = contracts::CloudEvent::new("payments", "payment.succeeded", "p1", &paid).expect("event");
    let bus = sys.new_bus();
    bus.publish(&broken).await.expect("published");
    bus.publish(&good).await.expect("published");

    let dashboard =
        when(&sys, "/api/v1/analytics/dashboard", &admin, |d| d["revenue_cents_30d"] == 777).await;
    assert_eq!(dashboard["revenue_cents_30d"], 777, "the event behind it was applied: {dashboard}");
    let dead = testkit::eventually(std::time::Duration::from_secs(20), || async {
        sys.bus("analytics").dead_letter_count("analytics").await.unwrap_or(0) == 1
    })
    .await;
    assert!(dead, "the unreadable event ends dead-lettered");
    let archived: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM archive WHERE event_id = $1")
        .bind(broken.id.to_string())
        .fetch_one(&sys.db("analytics").pool)
        .await
        .expect("counted");
    assert_eq!(archived, 0, "not archived: a rebuild will not trip on it either");
    assert_eq!(sys.get("/api/v1/analytics/dashboard", Some(&admin)).await.body["bookings_30d"], 0);
}
