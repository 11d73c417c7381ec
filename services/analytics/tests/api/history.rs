//! A made-up history of events, delivered as the broker may deliver it: every event twice, in
//! a shuffled order (payments before their bookings, bookings before their showtimes, a
//! cancellation before its confirmation). The answers must be the sums of the events, on each
//! theater's clock, and a rebuild from the archive must give them again.

use std::collections::BTreeMap;

use contracts::{
    CloudEvent,
    booking::{BookingConfirmed, BookingEnded},
    catalog::MovieChanged,
    event_types::*,
    payments::{PaymentRefunded, PaymentSettled, SubscriptionChanged, booking_reference},
    showtimes::ShowtimeScheduled,
    streaming::{PlaybackStarted, PlaybackStopped},
};
use serde::Serialize;
use serde_json::{Value, json};
use testkit::TestSystem;
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::{sum, when};

struct Show {
    id: Uuid,
    movie: Uuid,
    theater: Uuid,
    timezone: &'static str,
}

/// What the events add up to, worked out here from the events themselves.
#[derive(Default)]
struct Expected {
    captured: i64,
    refunded: i64,
    bookings: i64,
    /// Per theater, per local day: captured, refunded.
    by_theater_day: BTreeMap<(Uuid, String), (i64, i64)>,
    /// Per showtime: seats sold and not cancelled.
    sold: BTreeMap<Uuid, i64>,
    /// Per movie: tickets sold and not cancelled.
    tickets: BTreeMap<Uuid, i64>,
    plays: i64,
    completed: i64,
    /// One customer's net spend.
    spender: (Uuid, i64),
}

fn event<T: Serialize>(source: &str, kind: &str, subject: Uuid, data: &T, at: OffsetDateTime) -> CloudEvent {
    let mut e = CloudEvent::new(source, kind, subject.to_string(), data).expect("event");
    e.time = at;
    e
}

fn day(at: OffsetDateTime, timezone: &str) -> String {
    platform::zones::local_date(at, timezone)
}

/// A deterministic shuffle (xorshift), so a failure can be run again as it was.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn history(start: OffsetDateTime) -> (Vec<CloudEvent>, Expected) {
    let mut events = Vec::new();
    let mut x = Expected::default();
    let (heat, alien) = (Uuid::now_v7(), Uuid::now_v7());
    // The newest title wins, whichever change arrives last.
    for (movie, title, at) in
        [(heat, "Heat draft", start), (heat, "Heat", start + Duration::hours(1)), (alien, "Alien", start)]
    {
        let kind = if title == "Heat" { MOVIE_UPDATED } else { MOVIE_CREATED };
        let data = MovieChanged {
            movie_id: movie,
            title: title.into(),
            runtime_minutes: 120,
            genres: vec!["crime".into()],
            streamable: true,
            director: "Michael Mann".into(),
            cast: Vec::new(),
        };
        events.push(event("catalog", kind, movie, &data, at));
    }
    let (portland, paris) = (Uuid::now_v7(), Uuid::now_v7());
    let shows: Vec<Show> = [
        (heat, portland, "America/Los_Angeles"),
        (alien, portland, "America/Los_Angeles"),
        (heat, paris, "Europe/Paris"),
        (alien, paris, "Europe/Paris"),
    ]
    .into_iter()
    .map(|(movie, theater, timezone)| Show { id: Uuid::now_v7(), movie, theater, timezone })
    .collect();
    for s in &shows {
        let data = ShowtimeScheduled {
            showtime_id: s.id,
            movie_id: s.movie,
            room_id: Uuid::now_v7(),
            theater_id: s.theater,
            starts_at: start + Duration::days(12),
            ends_at: start + Duration::days(12) + Duration::hours(2),
            price_cents: 1000,
            currency: "USD".into(),
            capacity: 50,
            timezone: Some(s.timezone.into()),
        };
        events.push(event("showtimes", SHOWTIME_SCHEDULED, s.id, &data, start));
        x.sold.insert(s.id, 0);
    }
    let users: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let mut spent = BTreeMap::<Uuid, i64>::new();
    for i in 0..20i64 {
        let show = &shows[(i % 4) as usize];
        let user = users[(i % 5) as usize];
        // Every 7 hours from 05:00 UTC: some fall on the previous day in Portland, the next in Paris.
        let at = start + Duration::hours(5 + 7 * i);
        let seats: Vec<String> = (0..=(i % 3)).map(|n| format!("A{}", n + 1 + i * 3)).collect();
        let total = seats.len() as i64 * 1000;
        let booking = Uuid::now_v7();
        let confirmed = BookingConfirmed {
            booking_id: booking,
            user_id: user,
            showtime_id: show.id,
            movie_id: show.movie,
            seats: seats.clone(),
            total_cents: total,
            currency: "USD".into(),
            confirmed_at: at,
            starts_at: None,
            tickets: Vec::new(),
        };
        let payment = Uuid::now_v7();
        let paid = PaymentSettled {
            payment_id: payment,
            user_id: user,
            reference: booking_reference(booking),
            amount_cents: total,
            currency: "USD".into(),
            failure_code: None,
        };
        events.push(event("payments", PAYMENT_SUCCEEDED, payment, &paid, at));
        events.push(event("booking", BOOKING_CONFIRMED, booking, &confirmed, at));
        x.captured += total;
        x.bookings += 1;
        *spent.entry(user).or_default() += total;
        x.by_theater_day.entry((show.theater, day(at, show.timezone))).or_default().0 += total;
        let cancelled = i % 4 == 3;
        if cancelled {
            let later = at + Duration::hours(20);
            let refund = PaymentRefunded {
                payment_id: payment,
                refund_id: Uuid::now_v7(),
                user_id: user,
                reference: booking_reference(booking),
                amount_cents: total,
                refunded_cents: total,
                payment_amount_cents: total,
                currency: "USD".into(),
                reason: Some("booking-cancelled".into()),
            };
            let ended = BookingEnded {
                booking_id: booking,
                user_id: user,
                showtime_id: show.id,
                movie_id: show.movie,
                seats: seats.clone(),
                refunded_cents: total,
                currency: "USD".into(),
                reason: Some("customer".into()),
            };
            events.push(event("payments", PAYMENT_REFUNDED, payment, &refund, later));
            events.push(event("booking", BOOKING_CANCELLED, booking, &ended, later));
            x.refunded += total;
            *spent.entry(user).or_default() -= total;
            x.by_theater_day.entry((show.theater, day(later, show.timezone))).or_default().1 += total;
        } else {
            *x.sold.entry(show.id).or_default() += seats.len() as i64;
            *x.tickets.entry(show.movie).or_default() += seats.len() as i64;
        }
    }
    // A hold that expired: never confirmed, never paid; it counts for nothing.
    let expired = BookingEnded {
        booking_id: Uuid::now_v7(),
        user_id: users[0],
        showtime_id: shows[0].id,
        movie_id: shows[0].movie,
        seats: vec!["Z1".into()],
        refunded_cents: 0,
        currency: "USD".into(),
        reason: Some("hold-expired".into()),
    };
    events.push(event("booking", BOOKING_EXPIRED, expired.booking_id, &expired, start + Duration::hours(3)));
    // A subscription paid once: its money is on the UTC day, in no theater.
    let sub = Uuid::now_v7();
    let sub_at = start + Duration::days(2);
    let sub_payment = PaymentSettled {
        payment_id: Uuid::now_v7(),
        user_id: users[1],
        reference: format!("subscription:{sub}:{}", sub_at.unix_timestamp() * 1000),
        amount_cents: 999,
        currency: "USD".into(),
        failure_code: None,
    };
    events.push(event("payments", PAYMENT_SUCCEEDED, sub_payment.payment_id, &sub_payment, sub_at));
    x.captured += 999;
    *spent.entry(users[1]).or_default() += 999;
    let period_end = (sub_at + Duration::days(30)).format(&Rfc3339).expect("time");
    let activated = SubscriptionChanged {
        subscription_id: sub,
        user_id: users[1],
        plan_id: "basic".into(),
        max_streams: 1,
        current_period_end: period_end,
    };
    events.push(event("payments", SUBSCRIPTION_ACTIVATED, sub, &activated, sub_at));
    // Another, cancelled by its customer and then ended by a refund: one subscription lost.
    let other =
        SubscriptionChanged { subscription_id: Uuid::now_v7(), user_id: users[2], ..activated.clone() };
    let gone = other.subscription_id;
    events.push(event("payments", SUBSCRIPTION_ACTIVATED, gone, &other, start));
    events.push(event("payments", SUBSCRIPTION_CANCELLED, gone, &other, start + Duration::days(1)));
    let ended = SubscriptionChanged {
        current_period_end: (start + Duration::days(2)).format(&Rfc3339).expect("time"),
        ..other
    };
    events.push(event("payments", SUBSCRIPTION_CANCELLED, gone, &ended, start + Duration::days(2)));
    // Six sessions; four stopped, two of them completed.
    for n in 0..6 {
        let session = Uuid::now_v7();
        let (user, movie) = (users[n % 5], if n % 2 == 0 { heat } else { alien });
        let at = start + Duration::hours(30 + n as i64);
        let started = PlaybackStarted {
            session_id: session,
            user_id: user,
            movie_id: movie,
            position_seconds: 0,
            started_at: at,
        };
        events.push(event("streaming", PLAYBACK_STARTED, session, &started, at));
        if n < 4 {
            let stopped = PlaybackStopped {
                session_id: session,
                user_id: user,
                movie_id: movie,
                position_seconds: if n < 2 { 7000 } else { 600 },
                duration_seconds: 7200,
                completed: n < 2,
                reason: "stopped".into(),
                stopped_at: at + Duration::minutes(90),
            };
            events.push(event("streaming", PLAYBACK_STOPPED, session, &stopped, at + Duration::minutes(90)));
        }
        *x.tickets.entry(movie).or_default() += 0;
    }
    x.plays = 6;
    x.completed = 2;
    x.spender = (users[1], spent[&users[1]]);
    (events, x)
}

/// Every answer the test compares before and after the rebuild.
async fn snapshot(sys: &TestSystem, admin: &str, range: &str, x: &Expected) -> BTreeMap<String, Value> {
    let mut paths = vec![
        format!("/api/v1/analytics/revenue?{range}"),
        format!("/api/v1/analytics/revenue?{range}&interval=week"),
        format!("/api/v1/analytics/plays?{range}"),
        format!("/api/v1/analytics/subscriptions?{range}&interval=month"),
        format!("/api/v1/analytics/popular-movies?{range}"),
        format!("/api/v1/analytics/occupancy?from=2000-01-01&to=2100-12-31&per_page=100"),
        format!("/api/v1/analytics/users/{}/behavior", x.spender.0),
        "/api/v1/analytics/segments".to_owned(),
    ];
    for theater in x.by_theater_day.keys().map(|(t, _)| *t).collect::<std::collections::BTreeSet<_>>() {
        paths.push(format!("/api/v1/analytics/revenue?{range}&theater_id={theater}"));
    }
    let mut answers = BTreeMap::new();
    for path in paths {
        let a = sys.get(&path, Some(admin)).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        answers.insert(path, a.body);
    }
    answers
}

/// Whether the answers are the events' sums; the first difference otherwise.
fn check(answers: &BTreeMap<String, Value>, range: &str, x: &Expected) -> Result<(), String> {
    let revenue = &answers[&format!("/api/v1/analytics/revenue?{range}")];
    let totals = (sum(revenue, "revenue_cents"), sum(revenue, "refunds_cents"), sum(revenue, "bookings"));
    if totals != (x.captured, x.refunded, x.bookings) {
        return Err(format!("totals {totals:?}, expected {:?}", (x.captured, x.refunded, x.bookings)));
    }
    let weekly = &answers[&format!("/api/v1/analytics/revenue?{range}&interval=week")];
    if (sum(weekly, "revenue_cents"), sum(weekly, "refunds_cents")) != (x.captured, x.refunded) {
        return Err(format!("weekly totals differ: {weekly}"));
    }
    for ((theater, day), (captured, refunded)) in &x.by_theater_day {
        let series = &answers[&format!("/api/v1/analytics/revenue?{range}&theater_id={theater}")];
        let point = series.as_array().and_then(|s| s.iter().find(|p| p["period_start"] == day.as_str()));
        let got = point.map(|p| (p["revenue_cents"].as_i64(), p["refunds_cents"].as_i64()));
        if got != Some((Some(*captured), Some(*refunded))) {
            return Err(format!("theater {theater} on {day}: {got:?}, expected {:?}", (captured, refunded)));
        }
    }
    let occupancy = &answers["/api/v1/analytics/occupancy?from=2000-01-01&to=2100-12-31&per_page=100"];
    for item in occupancy["items"].as_array().into_iter().flatten() {
        let id: Uuid = item["showtime_id"].as_str().and_then(|s| s.parse().ok()).ok_or("showtime id")?;
        let sold = x.sold.get(&id).copied().ok_or(format!("unexpected showtime {id}"))?;
        if item["sold"] != sold
            || item["capacity"] != 50
            || item["occupancy"].as_f64() != Some(sold as f64 / 50.0)
        {
            return Err(format!("showtime {id}: {item}, expected {sold} of 50 sold"));
        }
    }
    if occupancy["total"] != x.sold.len() {
        return Err(format!("occupancy lists {} showtimes", occupancy["total"]));
    }
    let popular = &answers[&format!("/api/v1/analytics/popular-movies?{range}")];
    for movie in popular.as_array().into_iter().flatten() {
        let id: Uuid = movie["movie_id"].as_str().and_then(|s| s.parse().ok()).ok_or("movie id")?;
        if movie["tickets"] != x.tickets[&id] {
            return Err(format!("movie {id}: {movie}, expected {} tickets", x.tickets[&id]));
        }
    }
    if popular.as_array().map(Vec::len) != Some(2) || !popular.to_string().contains("\"Heat\"") {
        return Err(format!("popular movies: {popular}"));
    }
    let plays = &answers[&format!("/api/v1/analytics/plays?{range}")];
    if (sum(plays, "plays"), sum(plays, "completed")) != (x.plays, x.completed) {
        return Err(format!("plays: {plays}"));
    }
    let subscriptions = &answers[&format!("/api/v1/analytics/subscriptions?{range}&interval=month")];
    if (sum(subscriptions, "started"), sum(subscriptions, "cancelled")) != (2, 1) {
        return Err(format!("two started, one cancelled (twice): {subscriptions}"));
    }
    let behavior = &answers[&format!("/api/v1/analytics/users/{}/behavior", x.spender.0)];
    if behavior["net_spend_cents"] != x.spender.1 {
        return Err(format!("behavior: {behavior}, expected a net spend of {}", x.spender.1));
    }
    Ok(())
}

#[tokio::test]
async fn totals_are_the_sums_of_the_events_delivered_twice_out_of_order_and_after_a_rebuild() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let today = OffsetDateTime::now_utc().date();
    let start = (today - Duration::days(10)).midnight().assume_utc();
    let (mut events, expected) = history(start);
    let range = format!("from={}&to={}", today - Duration::days(12), today);

    shuffle(&mut events, 0x9e37_79b9_7f4a_7c15);
    let bus = sys.new_bus();
    for e in events.iter().chain(events.iter().rev()) {
        bus.publish(e).await.expect("published");
    }
    let mut last = Err(String::new());
    for _ in 0..300 {
        let answers = snapshot(&sys, &admin, &range, &expected).await;
        last = check(&answers, &range, &expected);
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last.expect("the answers are the sums of the events");
    // Nothing moves once every copy has been taken.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = snapshot(&sys, &admin, &range, &expected).await;
    check(&before, &range, &expected).expect("still the sums of the events");

    // Lose two read models behind analytics' back: the rebuild makes them again from the archive.
    let analytics = sys.db("analytics");
    for table in ["money", "bookings"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(&analytics.pool)
            .await
            .expect("deleted");
    }
    let broken = snapshot(&sys, &admin, &range, &expected).await;
    assert!(check(&broken, &range, &expected).is_err(), "the damage shows");

    let started = sys.post("/api/v1/analytics/rebuild", json!({}), Some(&admin)).await;
    assert_eq!(started.status, 202, "{}", started.body);
    let location = started.header("location").expect("a location").to_owned();
    assert_eq!(location, format!("/api/v1/analytics/rebuilds/{}", started.body["id"].as_str().expect("id")));
    let rebuilt = when(&sys, &location, &admin, |r| r["status"] != "running").await;
    assert_eq!(rebuilt["status"], "done", "{rebuilt}");
    let archived: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM archive WHERE event_type <> 'user.registered'")
            .fetch_one(&analytics.pool)
            .await
            .expect("counted");
    assert_eq!(archived, events.len() as i64, "each event archived once");
    assert!(rebuilt["events"].as_i64() >= Some(archived), "{rebuilt}");
    let after = snapshot(&sys, &admin, &range, &expected).await;
    assert_eq!(after, before, "a rebuild from the archive gives the same answers");

    // The title is the newest change's, though the older one may have arrived last.
    let popular = when(&sys, &format!("/api/v1/analytics/popular-movies?{range}"), &admin, |_| true).await;
    assert!(
        popular.to_string().contains("\"Heat\"") && !popular.to_string().contains("Heat draft"),
        "{popular}"
    );
}
