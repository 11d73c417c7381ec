//! Issue 10, item 4: sign-in limits that cannot be outrun by parallel guesses and cannot be
//! turned against the people who share an address or an account's name. Calls go to identity
//! directly with `X-Forwarded-For`, as the gateway sends them (loopback is a trusted proxy by
//! default), to sign in from several addresses.

use std::time::Duration;

use serde_json::json;
use testkit::{Answer, TestSystem, test_settings};

/// A sign-in from `address`, as the gateway forwards it.
async fn login_from(sys: &TestSystem, address: &str, email: &str, password: &str) -> Answer {
    let url = format!("{}/api/v1/auth/login", sys.service_url("identity"));
    let res = sys
        .http
        .post(url)
        .header("x-forwarded-for", address)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or_default();
    Answer { status, headers, body }
}

async fn register_from(sys: &TestSystem, address: &str, email: &str) -> Answer {
    let url = format!("{}/api/v1/auth/register", sys.service_url("identity"));
    let body = json!({"email": email, "password": RIGHT, "name": "N"});
    let res = sys.http.post(url).header("x-forwarded-for", address).json(&body).send().await.expect("sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    Answer { status, headers, body: res.json().await.unwrap_or_default() }
}

const RIGHT: &str = "correct-horse-1";

#[tokio::test]
async fn parallel_wrong_guesses_get_no_more_checks_than_the_limit() {
    let sys = TestSystem::start().await;
    sys.register("target@example.com").await;
    let guesses = (0..20).map(|i| {
        login_from(&sys, "203.0.113.1", "target@example.com", if i == 19 { RIGHT } else { "guess-guess" })
    });
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers.iter().filter(|a| a.status == 401).count();
    let refused = answers.iter().filter(|a| a.status == 429).count();
    assert!(checked <= 5, "at most MARQUEE_LOGIN_MAX_FAILURES wrong guesses were checked: {checked}");
    assert_eq!(checked + refused + answers.iter().filter(|a| a.status == 200).count(), 20);
    assert!(answers.iter().filter(|a| a.status == 429).all(|a| a.header("retry-after").is_some()));
    // The account is locked for sign-ins from anywhere it has not signed in from.
    assert_eq!(login_from(&sys, "203.0.113.2", "target@example.com", RIGHT).await.status, 429);
}

#[tokio::test]
async fn a_shared_address_slows_strangers_but_not_people_who_signed_in_there() {
    let settings = test_settings()
        .with("MARQUEE_LOGIN_MAX_FAILURES_PER_ADDRESS", "3")
        .with("MARQUEE_LOGIN_SLOW_SECONDS", "1");
    let sys = TestSystem::start_with(settings).await;
    let office = "198.51.100.7";
    sys.register("alice@example.com").await;
    sys.register("bob@example.com").await;
    assert_eq!(login_from(&sys, office, "alice@example.com", RIGHT).await.status, 200, "alice works here");

    // Someone in the office sprays guesses at other accounts.
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(login_from(&sys, office, &format!("spray{i}@example.com"), "guess-guess").await.status);
    }
    assert_eq!(&statuses[..4], &[401, 401, 401, 401], "three failures, then one per second: {statuses:?}");
    assert!(statuses[4..].iter().all(|s| *s == 429), "slowed: {statuses:?}");

    // Alice, who has signed in here before, is not slowed at all.
    for _ in 0..3 {
        assert_eq!(login_from(&sys, office, "alice@example.com", RIGHT).await.status, 200);
    }
    // Bob, new here, waits his turn: at most the slowdown, not a lockout.
    let bob = login_from(&sys, office, "bob@example.com", RIGHT).await;
    if bob.status == 429 {
        let wait: u64 = bob.header("retry-after").expect("Retry-After").parse().expect("seconds");
        assert!(wait <= 1, "a slowdown of a second: {wait}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(login_from(&sys, office, "bob@example.com", RIGHT).await.status, 200);
    } else {
        assert_eq!(bob.status, 200, "{}", bob.body);
    }
    // Another address knows nothing of the office's failures.
    assert_eq!(login_from(&sys, "192.0.2.44", "spray1@example.com", "guess-guess").await.status, 401);
}

#[tokio::test]
async fn guessing_from_elsewhere_does_not_lock_the_owner_out_where_they_sign_in() {
    let sys = TestSystem::start().await;
    sys.register("owner@example.com").await;
    assert_eq!(login_from(&sys, "198.51.100.20", "owner@example.com", RIGHT).await.status, 200);
    for _ in 0..5 {
        assert_eq!(login_from(&sys, "203.0.113.66", "owner@example.com", "guess-guess").await.status, 401);
    }
    assert_eq!(
        login_from(&sys, "203.0.113.66", "owner@example.com", RIGHT).await.status,
        429,
        "locked there"
    );
    assert_eq!(
        login_from(&sys, "203.0.113.67", "owner@example.com", RIGHT).await.status,
        429,
        "and elsewhere"
    );
    assert_eq!(
        login_from(&sys, "198.51.100.20", "owner@example.com", RIGHT).await.status,
        200,
        "not at home"
    );
    // A known place has its own counter, with the same limit.
    for _ in 0..5 {
        assert_eq!(login_from(&sys, "198.51.100.20", "owner@example.com", "guess-guess").await.status, 401);
    }
    assert_eq!(login_from(&sys, "198.51.100.20", "owner@example.com", RIGHT).await.status, 429);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Loopback is not trusted here: the X-Forwarded-For a client writes is its claim.
    let settings = test_settings()
        .with("MARQUEE_TRUSTED_PROXIES", "10.0.0.0/8")
        .with("MARQUEE_RATE_LIMIT_EXEMPT", "")
        .with("MARQUEE_LOGIN_MAX_FAILURES_PER_ADDRESS", "2")
        .with("MARQUEE_LOGIN_SLOW_SECONDS", "60");
    let sys = TestSystem::start_with(settings).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let claimed = format!("203.0.113.{i}");
        statuses.push(login_from(&sys, &claimed, &format!("x{i}@example.com"), "guess-guess").await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 429], "every claim counts on the one real address");
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let sys = TestSystem::start_with(test_settings().with("MARQUEE_REGISTRATIONS_PER_ADDRESS", "2")).await;
    assert_eq!(register_from(&sys, "198.51.100.99", "r1@example.com").await.status, 201);
    assert_eq!(register_from(&sys, "198.51.100.99", "r2@example.com").await.status, 201);
    let third = register_from(&sys, "198.51.100.99", "r3@example.com").await;
    assert_eq!(third.status, 429, "{}", third.body);
    assert!(third.header("retry-after").is_some());
}

#[tokio::test]
async fn a_full_password_queue_is_a_503_with_retry_after() {
    // Eight wrong guesses at once, and the account locks at eight counted failures: at least one
    // is refused as busy (asserted below), so the lock comes only if refusals were counted. (At
    // the default of five, a loaded machine that checked five of the eight locked the account
    // legitimately, and the last sign-in failed for the wrong reason.)
    let settings =
        test_settings().with("MARQUEE_PASSWORD_QUEUE", "1").with("MARQUEE_LOGIN_MAX_FAILURES", "8");
    let sys = TestSystem::start_with(settings).await;
    sys.register("queue@example.com").await;
    let addresses: Vec<String> = (0..8).map(|i| format!("192.0.2.{i}")).collect();
    let logins = addresses.iter().map(|a| login_from(&sys, a, "queue@example.com", "guess-guess"));
    let answers = futures_util::future::join_all(logins).await;
    let busy: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(!busy.is_empty(), "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    assert!(
        busy.iter()
            .all(|a| a.header("retry-after") == Some("1") && a.body["type"] == "urn:marquee:problem:busy")
    );
    assert!(answers.iter().all(|a| matches!(a.status, 401 | 429 | 503)));
    // A refused check is not counted as a failure: the owner can still sign in.
    assert_eq!(login_from(&sys, "192.0.2.99", "queue@example.com", RIGHT).await.status, 200);
}
