use std::time::Duration;

use serde_json::{Value, json};
use testkit::TestSystem;

use crate::{beat, movie, settings, start, stop, streamable, subscriber};

#[tokio::test]
async fn no_subscription_is_forbidden_and_unknown_or_unstreamable_movies_are_not_found() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (nobody, _) = sys.user_token().await;
    let refused = start(&sys, &nobody, &movie_id).await;
    assert_eq!(
        (refused.status, refused.body["type"].as_str()),
        (403, Some("urn:marquee:problem:subscription-required"))
    );

    let (viewer, _) = subscriber(&sys, "basic").await;
    let unknown = start(&sys, &viewer, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let no_media = movie(&sys, &admin, "Not yet").await;
    let not_streamable = start(&sys, &viewer, &no_media).await;
    assert_eq!(
        (not_streamable.status, not_streamable.body["type"].as_str()),
        (404, Some("urn:marquee:problem:not-streamable"))
    );
    // Marked streamable by hand, still without media: nothing to play, still a 404.
    let marked =
        sys.patch(&format!("/api/v1/movies/{no_media}"), json!({"streamable": true}), Some(&admin)).await;
    assert_eq!(marked.status, 200, "{}", marked.body);
    assert_eq!(start(&sys, &viewer, &no_media).await.status, 404);
    let bad = sys.post("/api/v1/playback/start", json!({"movie_id": "nope"}), Some(&viewer)).await;
    assert_eq!(bad.status, 422);
    let anonymous = sys.post("/api/v1/playback/start", json!({"movie_id": movie_id}), None).await;
    assert_eq!(anonymous.status, 401);

    let ok = start(&sys, &viewer, &movie_id).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(ok.body["resume_position_seconds"], 0);
    assert!(ok.body["stream_url"].as_str().is_some_and(|u| u.contains("sig=")), "{}", ok.body);
}

/// Eight starts at once, half on each of two replicas: the plan's limit holds exactly.
#[tokio::test]
async fn the_stream_limit_holds_under_a_race_across_two_replicas() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let replicas = [sys.service_url("streaming"), sys.start_replica("streaming").await];
    for (plan, limit) in [("basic", 1), ("standard", 2)] {
        let (token, _) = subscriber(&sys, plan).await;
        let urls: Vec<String> =
            (0..8).map(|i| format!("{}/api/v1/playback/start", replicas[i % 2])).collect();
        let starts =
            urls.iter().map(|url| sys.send("POST", url, Some(json!({"movie_id": movie_id})), Some(&token)));
        let answers = futures_util::future::join_all(starts).await;
        let won = answers.iter().filter(|a| a.status == 201).count();
        let refused = answers.iter().filter(|a| a.status == 409).count();
        assert_eq!(
            (won, refused),
            (limit, 8 - limit),
            "{plan}: {:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        let problem = &answers.iter().find(|a| a.status == 409).expect("a refusal").body;
        assert_eq!(problem["type"], "urn:marquee:problem:stream-limit");
        assert_eq!(problem["max_streams"], limit as i64);
    }
}

/// A smaller plan (premium, 4 streams, to basic, 1): the stream started first plays on, the
/// later ones end at their next heartbeat, and no new one starts while one runs. (The plan
/// change is written into payments' row; a subscription event makes the sessions ask again.)
#[tokio::test]
async fn after_a_downgrade_the_first_stream_plays_on_and_the_later_ones_end() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, user) = subscriber(&sys, "premium").await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let s = start(&sys, &token, &movie_id).await;
        assert_eq!(s.status, 201, "{}", s.body);
        sessions.push(s.body);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::query("UPDATE subscriptions SET plan_id = 'basic' WHERE user_id = $1")
        .bind(&user)
        .execute(&sys.db("payments").pool)
        .await
        .expect("payments");
    sqlx::query("UPDATE playback_sessions SET recheck = recheck + 1 WHERE user_id = $1")
        .bind(&user)
        .execute(&sys.db("streaming").pool)
        .await
        .expect("streaming");
    let newest = beat(&sys, &token, &sessions[2], 1.0).await;
    assert_eq!((newest.status, newest.body["max_streams"].as_i64()), (409, Some(1)), "{}", newest.body);
    assert_eq!(beat(&sys, &token, &sessions[0], 1.0).await.status, 204, "the first plays on");
    assert_eq!(beat(&sys, &token, &sessions[1], 1.0).await.status, 409);
    assert_eq!(beat(&sys, &token, &sessions[0], 2.0).await.status, 204);
    assert_eq!(start(&sys, &token, &movie_id).await.status, 409, "basic: one at a time");
}

#[tokio::test]
async fn an_idle_session_ends_and_frees_its_stream() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, _) = subscriber(&sys, "basic").await;
    let first = start(&sys, &token, &movie_id).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(beat(&sys, &token, &first.body, 1.5).await.status, 204);
    assert_eq!(start(&sys, &token, &movie_id).await.status, 409, "one stream on basic");

    sys.clock.advance(Duration::from_secs(61));
    let id = first.body["session_id"].as_str().expect("id").to_owned();
    let streaming = sys.db("streaming");
    let swept = testkit::eventually(Duration::from_secs(5), || async {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM playback_sessions WHERE id = $1")
            .bind(&id)
            .fetch_optional(&streaming.pool)
            .await
            .expect("query");
        status.as_deref() == Some("expired")
    })
    .await;
    assert!(swept, "the sweeper ended the idle session");
    let late = beat(&sys, &token, &first.body, 2.0).await;
    assert_eq!((late.status, late.body["reason"].as_str()), (409, Some("expired")), "{}", late.body);
    let again = start(&sys, &token, &movie_id).await;
    assert_eq!(again.status, 201, "the stream is free again: {}", again.body);
    assert_eq!(again.body["resume_position_seconds"], 1, "the last heartbeat's position");
}

#[tokio::test]
async fn a_start_frees_the_users_own_idle_session_before_the_sweeper_does() {
    // A sweeper that never runs in this test: the start itself must end the idle session.
    let sys = TestSystem::start_with(settings(false).with("MARQUEE_PLAYBACK_SWEEP_MS", "3600000")).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, _) = subscriber(&sys, "basic").await;
    let first = start(&sys, &token, &movie_id).await;
    assert_eq!(first.status, 201);
    sys.clock.advance(Duration::from_secs(50));
    assert_eq!(start(&sys, &token, &movie_id).await.status, 409, "50 s is not idle yet");
    sys.clock.advance(Duration::from_secs(11));
    assert_eq!(start(&sys, &token, &movie_id).await.status, 201, "61 s is");
    assert_eq!(beat(&sys, &token, &first.body, 1.0).await.status, 409);
}

#[tokio::test]
async fn stop_saves_the_position_the_next_start_resumes_there_and_past_ninety_percent_is_watched() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (first_movie, _) = streamable(&sys, &admin, 20).await;
    let (second_movie, _) = streamable(&sys, &admin, 20).await;
    let (token, _) = subscriber(&sys, "standard").await;

    let s = start(&sys, &token, &first_movie).await;
    assert_eq!(s.body["duration_seconds"], 20, "the clip's own running time: {}", s.body);
    assert_eq!(beat(&sys, &token, &s.body, 5.0).await.status, 204);
    assert_eq!(stop(&sys, &token, &s.body, 7.9).await.status, 204);
    assert_eq!(stop(&sys, &token, &s.body, 7.9).await.status, 204, "stopping again is the same");
    assert_eq!(beat(&sys, &token, &s.body, 8.0).await.status, 409, "a stopped session takes no heartbeat");
    let resumed = start(&sys, &token, &first_movie).await;
    assert_eq!(resumed.body["resume_position_seconds"], 7, "{}", resumed.body);

    let other = start(&sys, &token, &second_movie).await;
    assert_eq!(other.status, 201, "standard plays two: {}", other.body);
    assert_eq!(stop(&sys, &token, &other.body, 3.0).await.status, 204);
    assert_eq!(stop(&sys, &token, &resumed.body, 18.0).await.status, 204, "90 % of 20 s");

    let history = sys.get("/api/v1/playback/history", Some(&token)).await;
    let entries = history.body.as_array().expect("a list");
    assert_eq!(entries.len(), 2, "{}", history.body);
    assert_eq!(
        (
            entries[0]["movie_id"].as_str(),
            entries[0]["completed"].as_bool(),
            entries[0]["position_seconds"].as_i64()
        ),
        (Some(second_movie.as_str()), Some(false), Some(3)),
        "continue watching comes first"
    );
    assert_eq!(
        (entries[1]["movie_id"].as_str(), entries[1]["completed"].as_bool()),
        (Some(first_movie.as_str()), Some(true))
    );
    let again = start(&sys, &token, &first_movie).await;
    assert_eq!(again.body["resume_position_seconds"], 0, "a watched movie starts over");

    let negative = beat(&sys, &token, &again.body, -1.0).await;
    assert_eq!(negative.status, 422);
    assert_eq!(beat(&sys, &token, &again.body, 1e300).await.status, 204, "clamped to the running time");
}

#[tokio::test]
async fn another_users_session_is_not_found() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (alice, _) = subscriber(&sys, "basic").await;
    let (mallory, _) = subscriber(&sys, "basic").await;
    let s = start(&sys, &alice, &movie_id).await;
    assert_eq!(beat(&sys, &mallory, &s.body, 1.0).await.status, 404);
    assert_eq!(stop(&sys, &mallory, &s.body, 1.0).await.status, 404);
    assert_eq!(beat(&sys, &alice, &s.body, 1.0).await.status, 204, "untouched by the attempts");
    let not_a_session =
        sys.post("/api/v1/playback/nope/heartbeat", json!({"position_seconds": 1}), Some(&alice)).await;
    assert_eq!(not_a_session.status, 400);
}

#[tokio::test]
async fn playback_started_and_stopped_reach_identitys_activity() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, _) = subscriber(&sys, "basic").await;
    let s = start(&sys, &token, &movie_id).await;
    assert_eq!(s.status, 201);
    assert_eq!(stop(&sys, &token, &s.body, 2.0).await.status, 204);
    let mut kinds = Vec::new();
    for _ in 0..100 {
        let a = sys.get("/api/v1/users/me/activity", Some(&token)).await;
        kinds = a.body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| i["subject"] == Value::String(movie_id.clone()))
                    .filter(|i| i["details"]["session_id"] == s.body["session_id"])
                    .map(|i| {
                        (
                            i["kind"].as_str().unwrap_or_default().to_owned(),
                            i["details"]["position_seconds"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if kinds.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        [("playback_started".to_owned(), json!(0)), ("playback_stopped".to_owned(), json!(2))],
        "both events reached identity's activity log"
    );
}

/// A cancelled subscription plays to the end of its paid period, and no further. (The month
/// passing is written into both services' rows: moving the clock a month would also end the
/// session for want of heartbeats.)
#[tokio::test]
async fn a_cancelled_subscription_ends_its_sessions_when_its_period_is_over() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, user) = subscriber(&sys, "basic").await;
    let s = start(&sys, &token, &movie_id).await;
    assert_eq!(sys.delete("/api/v1/subscriptions/me", Some(&token)).await.status, 200);
    for _ in 0..3 {
        assert_eq!(beat(&sys, &token, &s.body, 1.0).await.status, 204, "paid until the period ends");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let past = platform::time::now_ms() - 1000;
    sqlx::query("UPDATE subscriptions SET current_period_end = $1 WHERE user_id = $2")
        .bind(past)
        .bind(&user)
        .execute(&sys.db("payments").pool)
        .await
        .expect("payments");
    sqlx::query("UPDATE playback_sessions SET entitled_until = $1 WHERE user_id = $2")
        .bind(past)
        .bind(&user)
        .execute(&sys.db("streaming").pool)
        .await
        .expect("streaming");
    let over = beat(&sys, &token, &s.body, 2.0).await;
    assert_eq!(
        (over.status, over.body["type"].as_str()),
        (403, Some("urn:marquee:problem:subscription-ended"))
    );
    assert_eq!(start(&sys, &token, &movie_id).await.status, 403);
}

#[tokio::test]
async fn a_refunded_subscription_ends_its_sessions_at_the_next_heartbeat() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, user) = subscriber(&sys, "standard").await;
    let s = start(&sys, &token, &movie_id).await;
    assert_eq!(beat(&sys, &token, &s.body, 1.0).await.status, 204);

    let payments = sys.get(&format!("/api/v1/payments?user_id={user}"), Some(&admin)).await;
    let payment = payments.body["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|p| p["reference"].as_str().is_some_and(|r| r.starts_with("subscription:")))
        })
        .cloned()
        .unwrap_or_else(|| panic!("the subscription's payment: {}", payments.body));
    let refund = sys
        .post(
            &format!("/api/v1/payments/{}/refund", payment["id"].as_str().expect("id")),
            json!({}),
            Some(&admin),
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.body);
    let mine = sys.get("/api/v1/subscriptions/me", Some(&token)).await;
    assert_eq!(mine.status, 404, "a refunded period ends the subscription: {}", mine.body);

    let mut last = None;
    for _ in 0..100 {
        let answer = beat(&sys, &token, &s.body, 2.0).await;
        let done = answer.status == 403;
        last = Some(answer);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = last.expect("a heartbeat");
    assert_eq!(last.status, 403, "the session ended: {}", last.body);
    assert_eq!(last.body["type"], "urn:marquee:problem:subscription-ended");
    assert_eq!(beat(&sys, &token, &s.body, 2.0).await.status, 409, "over for good");
    assert_eq!(start(&sys, &token, &movie_id).await.status, 403);
}

#[tokio::test]
async fn the_watchlist_adds_and_removes_idempotently() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let first = movie(&sys, &admin, "First").await;
    let second = movie(&sys, &admin, "Second").await;
    let (token, _) = sys.user_token().await;
    for id in [&first, &first, &second] {
        let put =
            sys.send("PUT", &format!("{}/api/v1/watchlist/{id}", sys.gateway), None, Some(&token)).await;
        assert_eq!(put.status, 204, "{}", put.body);
    }
    let list = sys.get("/api/v1/watchlist", Some(&token)).await;
    let ids: Vec<&str> =
        list.body.as_array().expect("a list").iter().filter_map(|e| e["movie_id"].as_str()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "once each, newest first");
    for _ in 0..2 {
        assert_eq!(sys.delete(&format!("/api/v1/watchlist/{first}"), Some(&token)).await.status, 204);
    }
    let list = sys.get("/api/v1/watchlist", Some(&token)).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(1));
    let unknown = uuid::Uuid::now_v7();
    let put =
        sys.send("PUT", &format!("{}/api/v1/watchlist/{unknown}", sys.gateway), None, Some(&token)).await;
    assert_eq!(put.status, 404);
    let (other, _) = sys.user_token().await;
    assert_eq!(sys.get("/api/v1/watchlist", Some(&other)).await.body, json!([]), "lists are per user");
}
