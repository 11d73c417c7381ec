//! Email and SMS out: the booking email reaches a real SMTP server with the ticket codes in both
//! parts and the show's time on the theater's clock; a server that is down delays mail without
//! losing it; a message that cannot go is failed, shown to admins, and can be sent again.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{TestSystem, flows, smtp::SmtpServer};

use crate::{deliveries_when, settings, system_with_smtp, to, user};

#[tokio::test]
async fn the_booking_email_reaches_the_smtp_server_with_the_codes_in_both_parts() {
    let (sys, smtp) = system_with_smtp().await;
    let admin = sys.admin_token().await;
    // Two days ahead at 19:30 in Los Angeles would do; any time shows the zone's abbreviation.
    let show = flows::showtime(&sys, &admin, "Heat", "America/Los_Angeles", 48).await;
    let (token, _, email) = user(&sys).await;
    let welcome =
        testkit::eventually(Duration::from_secs(10), || async { to(&smtp, &email).len() == 1 }).await;
    assert!(welcome, "the welcome email");

    let booking = flows::book(&sys, &token, &show.id, &["A1", "E2"]).await;
    let codes: Vec<String> = booking["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|t| t["code"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), 2, "{booking}");
    let got = testkit::eventually(Duration::from_secs(10), || async { to(&smtp, &email).len() >= 2 }).await;
    assert!(got, "the booking email arrives");
    let mails = to(&smtp, &email);
    let mail = mails
        .iter()
        .find(|m| m.header("Subject").is_some_and(|s| s.contains("Heat")))
        .expect("the tickets email");
    let subject = mail.header("Subject").unwrap_or_default();
    assert!(subject.contains("PST") || subject.contains("PDT"), "the theater's clock: {subject}");
    let (text, html) = (mail.parts("text/plain").concat(), mail.parts("text/html").concat());
    assert!(!text.is_empty() && !html.is_empty(), "both parts: {}", mail.data);
    for code in &codes {
        assert!(text.contains(code.as_str()), "{code} in the text part:\n{text}");
        assert!(html.contains(code.as_str()), "{code} in the HTML part");
    }
    assert!(text.contains("Marquee Riverside") && text.contains("25.00 USD"), "{text}");
    assert!(mail.header("From").is_some_and(|f| f.contains("no-reply@marquee.localhost")));

    // Cancelled a day and more before: refunded, and told so.
    let id = booking["id"].as_str().expect("id");
    assert_eq!(sys.post(&format!("/api/v1/bookings/{id}/cancel"), json!({}), Some(&token)).await.status, 200);
    let got = testkit::eventually(Duration::from_secs(10), || async {
        to(&smtp, &email).iter().any(|m| m.header("Subject").is_some_and(|s| s.starts_with("Refunded")))
    })
    .await;
    assert!(
        got,
        "the refund email: {:?}",
        to(&smtp, &email).iter().map(|m| m.header("Subject")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_smtp_server_that_is_down_delays_the_email_without_losing_it() {
    let port = testkit::smtp::free_port();
    let sys = TestSystem::start_with(
        settings(&format!("smtp://127.0.0.1:{port}")).with("MARQUEE_NOTIFY_MAX_ATTEMPTS", "50"),
    )
    .await;
    let admin = sys.admin_token().await;
    let (_, id, email) = user(&sys).await;
    let tried =
        deliveries_when(&sys, &admin, &id, |d| d.first().is_some_and(|d| d["attempts"].as_i64() >= Some(2)))
            .await;
    assert_eq!(tried.len(), 1, "{tried:?}");
    let waiting = tried[0]["status"] == "pending" || tried[0]["status"] == "sending";
    assert!(waiting, "waiting for its next try (or in it): {:?}", tried[0]);
    assert!(tried[0]["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{:?}", tried[0]);

    let smtp = SmtpServer::start_on(port).await.expect("the server comes up on its port");
    // (In the distributed mode the seeded admin's welcome comes too: only this user's counts.)
    let arrived =
        testkit::eventually(Duration::from_secs(15), || async { !to(&smtp, &email).is_empty() }).await;
    assert!(arrived, "delivered once the server is up");
    let done = deliveries_when(&sys, &admin, &id, |d| d.first().is_some_and(|d| d["status"] == "sent")).await;
    assert_eq!(done[0]["status"], "sent", "{done:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to(&smtp, &email).len(), 1, "and only once");
}

#[tokio::test]
async fn sms_goes_through_the_provider_and_failures_are_shown_to_admins() {
    let (sys, smtp) = system_with_smtp().await;
    let admin = sys.admin_token().await;
    let show = flows::showtime(&sys, &admin, "Ran", "Asia/Tokyo", 30).await;

    let (token, id, _) = user(&sys).await;
    let set = sys
        .patch(
            "/api/v1/notifications/preferences",
            json!({"sms": {"phone": "+15551234567", "booking_confirmed": true}}),
            Some(&token),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    flows::book(&sys, &token, &show.id, &["B3"]).await;
    let log = deliveries_when(&sys, &admin, &id, |d| {
        d.iter().any(|d| d["channel"] == "sms" && d["status"] == "sent")
    })
    .await;
    let sms: Vec<&Value> = log.iter().filter(|d| d["channel"] == "sms").collect();
    assert_eq!(sms.len(), 1, "{log:?}");
    assert_eq!(sms[0]["recipient"], "+15551234567");

    // The provider's "not a valid number": failed at once (a permanent error), for admins to see.
    let (bad_token, bad_id, _) = user(&sys).await;
    let set = sys
        .patch(
            "/api/v1/notifications/preferences",
            json!({"sms": {"phone": "+15005550001", "booking_confirmed": true}}),
            Some(&bad_token),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    flows::book(&sys, &bad_token, &show.id, &["B4"]).await;
    let log = deliveries_when(&sys, &admin, &bad_id, |d| {
        d.iter().any(|d| d["channel"] == "sms" && d["status"] == "failed")
    })
    .await;
    let failed = log.iter().find(|d| d["channel"] == "sms").expect("the sms delivery");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempts"], 1, "a permanent error is not tried again: {failed}");
    assert!(failed["last_error"].as_str().is_some_and(|e| e.contains("21211")), "{failed}");
    let all_failed = sys.get("/api/v1/notifications/deliveries?status=failed", Some(&admin)).await;
    assert!(
        all_failed.body["items"].as_array().is_some_and(|i| i.iter().any(|d| d["id"] == failed["id"])),
        "{}",
        all_failed.body
    );
    assert_eq!(sys.get("/api/v1/notifications/deliveries", Some(&bad_token)).await.status, 403);
    assert_eq!(sys.get("/api/v1/notifications/deliveries?status=lost", Some(&admin)).await.status, 422);

    // Sent again by an admin: its tries start over (and it fails again: the number is still bad).
    let path = format!("/api/v1/notifications/deliveries/{}/retry", failed["id"].as_str().expect("id"));
    let again = sys.post(&path, json!({}), Some(&admin)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let sent = log.iter().find(|d| d["channel"] == "email" && d["kind"] == "booking_confirmed").cloned();
    if let Some(sent) = sent.filter(|d| d["status"] == "sent") {
        let path = format!("/api/v1/notifications/deliveries/{}/retry", sent["id"].as_str().expect("id"));
        assert_eq!(sys.post(&path, json!({}), Some(&admin)).await.status, 409, "only a failed one");
    }
    let unknown = format!("/api/v1/notifications/deliveries/{}/retry", uuid::Uuid::now_v7());
    assert_eq!(sys.post(&unknown, json!({}), Some(&admin)).await.status, 404);
    drop(smtp);
}
