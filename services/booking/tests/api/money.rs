//! Money follows every booking, whatever races, crashes and outages happen on the way: each test
//! ends with the ledger check (`marquee check ledger`). Each reproduces a finding of issue 9.

use std::time::Duration;

use serde_json::json;
use testkit::{FaultProxy, TestSystem, eventually, test_settings};

use crate::{GOOD, card, charge_and_crash, hold, showtime};

const OTHER_CARD: &str = "5555555555554444";

fn status_of(a: &testkit::Answer) -> String {
    a.body["status"].as_str().unwrap_or_default().to_owned()
}

/// Finding 3: cancelling a hold ignored a charge that answered late, which stayed captured.
#[tokio::test]
async fn cancelling_a_hold_refunds_a_charge_that_landed_late() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let booking = hold(&sys, &token, &show, &["A1", "A2"]).await.body;
    charge_and_crash(&sys, &booking).await;
    let id = booking["id"].as_str().expect("id");
    let cancelled = sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&token)).await;
    assert_eq!((cancelled.status, status_of(&cancelled).as_str()), (200, "cancelled"), "{}", cancelled.body);
    let report = sys.assert_ledger_clean(Duration::from_secs(10)).await;
    assert_eq!((report.captured_cents, report.refunded_cents), (2000, 2000), "{}", report.summary());
}

/// Finding 1: the sweeper ended an expired hold whose charge it failed to refund (payments was
/// down) with nothing refunded, and never came back to it.
#[tokio::test]
async fn a_charged_hold_that_expires_while_payments_is_down_is_refunded_when_it_is_back() {
    let proxy = FaultProxy::start().await.expect("proxy");
    let settings = test_settings().with("MARQUEE_HOLD_SWEEP_MS", "100");
    let sys = TestSystem::start_routed(settings, &[("payments", &proxy)]).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let booking = hold(&sys, &token, &show, &["B1"]).await.body;
    charge_and_crash(&sys, &booking).await;
    proxy.faults.set_down(true);
    sys.clock.advance(Duration::from_secs(601));
    let id = booking["id"].as_str().expect("id").to_owned();
    let expired = eventually(Duration::from_secs(10), || async {
        sys.get(&format!("/api/v1/bookings/{id}"), Some(&token)).await.body["status"] == "expired"
    })
    .await;
    assert!(expired, "the sweeper ended the hold although payments is down");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(proxy.faults.counts().3 > 0, "the refund was tried while payments was down");
    proxy.faults.heal();
    let report = sys.assert_ledger_clean(Duration::from_secs(15)).await;
    assert_eq!(report.refunded_cents, 1500, "a premium seat: {}", report.summary());
}

/// Finding 2: a cancel that read `held` and a pay that confirmed in between ended a confirmed
/// booking with nothing refunded. Each of these bookings gets a pay and then a cancel, the
/// cancel sent a little later each time (from at once to a whole pay's time later), so that
/// some cancels read the booking just while its pay is confirming it. (On the old code this
/// left a cancelled booking with its payment captured in two runs of three.)
#[tokio::test]
async fn a_cancel_racing_a_pay_never_ends_a_paid_booking_unrefunded() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 5, 8, 24).await;
    let (token, _) = sys.user_token().await;
    let mut ids = Vec::new();
    for row in ["A", "B", "C", "D", "E"] {
        for n in 1..=8 {
            let b = hold(&sys, &token, &show, &[&format!("{row}{n}")]).await;
            assert_eq!(b.status, 201, "{}", b.body);
            ids.push(b.body["id"].as_str().expect("id").to_owned());
        }
    }
    // How long a pay takes here, so the cancels can be spread across it.
    let warm = ids.pop().expect("a booking");
    let started = std::time::Instant::now();
    assert_eq!(sys.post(&format!("/api/v1/bookings/{warm}/pay"), card(GOOD), Some(&token)).await.status, 200);
    let took = started.elapsed();
    let n = ids.len() as u32;
    let mut outcomes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (pay_path, cancel_path) =
            (format!("/api/v1/bookings/{id}/pay"), format!("/api/v1/bookings/{id}/cancel"));
        let pay = sys.post(&pay_path, card(GOOD), Some(&token));
        let cancel = async {
            tokio::time::sleep(took * (i as u32) / n).await;
            sys.post(&cancel_path, json!({}), Some(&token)).await
        };
        let (pay, cancel) = tokio::join!(pay, cancel);
        outcomes.push((pay.status, cancel.status));
    }
    for (pay, cancel) in &outcomes {
        assert!([200, 409].contains(pay) && [200, 409].contains(cancel), "{outcomes:?}");
    }
    let report = sys.assert_ledger_clean(Duration::from_secs(15)).await;
    assert_eq!(report.bookings, ids.len() + 1);
}

/// Finding 5: a first charge that was slow (booking gave up, payments committed later), then a
/// retry with another card, captured twice. Now payments keeps one capture per booking.
#[tokio::test]
async fn a_retry_with_another_card_after_a_slow_charge_keeps_one_capture() {
    let proxy = FaultProxy::start().await.expect("proxy");
    let sys = TestSystem::start_routed(test_settings(), &[("payments", &proxy)]).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let id = hold(&sys, &token, &show, &["A1"]).await.body["id"].as_str().expect("id").to_owned();
    // The first charge reaches payments only after booking has given up on it (3 s) and the
    // customer has retried with another card.
    proxy.faults.stall_next(1, Duration::from_millis(4_500));
    let slow = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!(slow.status, 503, "booking gave up on the slow charge: {}", slow.body);
    let retry = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(OTHER_CARD), Some(&token)).await;
    assert_eq!((retry.status, status_of(&retry).as_str()), (200, "confirmed"), "{}", retry.body);
    tokio::time::sleep(Duration::from_millis(2_000)).await; // the first charge lands
    let payments = sys.get("/api/v1/payments", Some(&token)).await.body;
    assert_eq!(payments["total"], 2, "both charges reached payments: {payments}");
    let report = sys.assert_ledger_clean(Duration::from_secs(10)).await;
    assert_eq!(report.captured_cents - report.refunded_cents, 1000, "{}", report.summary());
}

/// Finding 6: an admin's refund of a booking's payment left the booking confirmed and its
/// tickets valid at the door.
#[tokio::test]
async fn a_booking_whose_payment_an_admin_refunded_becomes_refunded_and_its_tickets_void() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let id = hold(&sys, &token, &show, &["A1", "A2"]).await.body["id"].as_str().expect("id").to_owned();
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await.body;
    let payment = paid["payment_id"].as_str().expect("payment");
    let code = paid["tickets"][0]["code"].as_str().expect("code").to_owned();
    let partial = sys
        .post(&format!("/api/v1/payments/{payment}/refund"), json!({"amount_cents": 500}), Some(&admin))
        .await;
    assert_eq!(
        (partial.status, partial.body["type"].as_str()),
        (409, Some("urn:marquee:problem:partial-refund-not-allowed")),
        "a booking holds its whole total or nothing: {}",
        partial.body
    );
    let whole = sys.post(&format!("/api/v1/payments/{payment}/refund"), json!({}), Some(&admin)).await;
    assert_eq!(whole.status, 201, "{}", whole.body);
    let refunded = eventually(Duration::from_secs(10), || async {
        sys.get(&format!("/api/v1/bookings/{id}"), Some(&token)).await.body["status"] == "refunded"
    })
    .await;
    assert!(refunded, "the booking follows its payment");
    assert_eq!(sys.get(&format!("/api/v1/tickets/{code}"), Some(&admin)).await.body["valid"], false);
    assert_eq!(hold(&sys, &token, &show, &["A1"]).await.status, 201, "its seats are free again");
    sys.assert_ledger_clean(Duration::from_secs(5)).await;
}

/// Finding 14: the hold's end was compared in whole seconds, so a pay shortly before it was a
/// 409. The clock moves to 0.4 s before the end.
#[tokio::test]
async fn paying_just_before_the_hold_ends_succeeds() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let b = hold(&sys, &token, &show, &["A1"]).await.body;
    let expires = time::OffsetDateTime::parse(
        b["expires_at"].as_str().expect("expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("a time");
    let left = expires - sys.clock.now();
    sys.clock.advance(Duration::from_millis((left.whole_milliseconds() - 400).max(0) as u64));
    let id = b["id"].as_str().expect("id");
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!((paid.status, status_of(&paid).as_str()), (200, "confirmed"), "{}", paid.body);
    sys.clock.advance(Duration::from_secs(1));
    let late = hold(&sys, &token, &show, &["A2"]).await.body;
    sys.clock.advance(Duration::from_secs(601));
    let id = late["id"].as_str().expect("id");
    let expired = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!(
        (expired.status, expired.body["type"].as_str()),
        (409, Some("urn:marquee:problem:hold-expired"))
    );
    sys.assert_ledger_clean(Duration::from_secs(5)).await;
}

/// Finding 8: cancelling a showtime refunded over HTTP inside the consumer's transaction, with a
/// retry budget shorter than an outage. Payments is away for 30 s; everyone is refunded after.
#[tokio::test]
async fn a_cancelled_showtime_refunds_everyone_after_a_payments_outage() {
    let proxy = FaultProxy::start().await.expect("proxy");
    let sys = TestSystem::start_routed(test_settings(), &[("payments", &proxy)]).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 3, 6, 0).await;
    let mut paid = Vec::new();
    for row in ["A", "B", "C"] {
        let (token, _) = sys.user_token().await;
        let id = hold(&sys, &token, &show, &[&format!("{row}1"), &format!("{row}2")]).await.body["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let p = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
        assert_eq!(p.status, 200, "{}", p.body);
        paid.push((id, token));
    }
    proxy.faults.set_down(true);
    assert_eq!(sys.delete(&format!("/api/v1/showtimes/{show}"), Some(&admin)).await.status, 204);
    let cancelled = eventually(Duration::from_secs(15), || async {
        for (id, token) in &paid {
            if sys.get(&format!("/api/v1/bookings/{id}"), Some(token)).await.body["status"] != "cancelled" {
                return false;
            }
        }
        true
    })
    .await;
    assert!(cancelled, "every booking was cancelled while payments was down");
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Operators see what is owed and for how long.
    let metrics =
        sys.http.get(format!("{}/metrics", sys.service_url("booking"))).send().await.expect("metrics");
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains("commands_pending{service=\"booking\"}")
            && text.contains("commands_oldest_pending_seconds"),
        "the owed refunds show in /metrics"
    );
    let (_, _, _, refused) = proxy.faults.counts();
    assert!(refused > 0, "the refunds were tried during the outage");
    proxy.faults.heal();
    let report = sys.assert_ledger_clean(Duration::from_secs(20)).await;
    assert_eq!(report.refunded_cents, 7000, "two rows of standard seats, one premium: {}", report.summary());
    let mut reported: Vec<i64> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE event_type = 'booking.cancelled'")
            .fetch_all(&sys.db("booking").pool)
            .await
            .expect("outbox")
            .iter()
            .map(|p: &String| {
                serde_json::from_str::<serde_json::Value>(p).expect("json")["data"]["refunded_cents"]
                    .as_i64()
                    .unwrap_or(-1)
            })
            .collect();
    reported.sort();
    assert_eq!(reported, [2000, 2000, 3000], "each cancellation says what is refunded");
}

/// Finding 4: the sweeper picked an expired hold while its pay was charging the card and ended
/// it under the pay: money and booking came apart. A booking that is charging is the pay's
/// until the charge has an outcome.
#[tokio::test]
async fn a_hold_that_runs_out_while_its_card_is_charged_is_left_to_the_pay() {
    let proxy = FaultProxy::start().await.expect("proxy");
    let settings = test_settings().with("MARQUEE_HOLD_TTL_SECONDS", "1").with("MARQUEE_HOLD_SWEEP_MS", "50");
    let sys = TestSystem::start_routed(settings, &[("payments", &proxy)]).await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let (token, _) = sys.user_token().await;
    let id = hold(&sys, &token, &show, &["A1"]).await.body["id"].as_str().expect("id").to_owned();
    // The charge takes 2 s; the hold ends after 1 s, and the sweeper passes every 50 ms.
    proxy.faults.stall_next(1, Duration::from_millis(2_000));
    let paid = sys.post(&format!("/api/v1/bookings/{id}/pay"), card(GOOD), Some(&token)).await;
    assert_eq!((paid.status, status_of(&paid).as_str()), (200, "confirmed"), "{}", paid.body);
    let (other, _) = sys.user_token().await;
    assert_eq!(hold(&sys, &other, &show, &["A1"]).await.status, 409, "the seat is sold");
    sys.assert_ledger_clean(Duration::from_secs(5)).await;
}

/// A booking replica that still has the showtime cached as scheduled must not take a hold on it
/// once its cancellation was handled (nor confirm one): booking keeps the showtime's fate
/// itself, and holds, pays and the cancellation take turns on it.
#[tokio::test]
async fn no_hold_is_taken_on_a_showtime_once_its_cancellation_was_handled() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let show = showtime(&sys, &admin, 2, 6, 24).await;
    let replica = sys.start_replica("booking").await;
    let (token, _) = sys.user_token().await;
    let first = sys
        .send(
            "POST",
            &format!("{replica}/api/v1/bookings"),
            Some(json!({"showtime_id": show, "seats": ["A1"]})),
            Some(&token),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.body["id"].as_str().expect("id").to_owned();
    assert_eq!(sys.delete(&format!("/api/v1/showtimes/{show}"), Some(&admin)).await.status, 204);
    let handled = eventually(Duration::from_secs(10), || async {
        sys.get(&format!("/api/v1/bookings/{id}"), Some(&token)).await.body["status"] == "cancelled"
    })
    .await;
    assert!(handled, "the cancellation reached booking");
    for base in [sys.service_url("booking"), replica] {
        let late = sys
            .send(
                "POST",
                &format!("{base}/api/v1/bookings"),
                Some(json!({"showtime_id": show, "seats": ["B1"]})),
                Some(&token),
            )
            .await;
        assert_eq!(late.status, 422, "{base}: {}", late.body);
    }
    sys.assert_ledger_clean(Duration::from_secs(5)).await;
}
