use serde_json::json;
use testkit::TestSystem;

#[tokio::test]
async fn registering_returns_a_session_and_the_user() {
    let sys = TestSystem::start().await;
    let a = sys
        .post(
            "/api/v1/auth/register",
            json!({"email": "Ada@Example.com", "password": "analytical1", "name": "Ada"}),
            None,
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["token_type"], "Bearer");
    assert_eq!(a.body["user"]["email"], "Ada@Example.com");
    assert_eq!(a.body["user"]["role"], "customer");
    assert!(a.body["expires_in"].as_i64().unwrap_or(0) > 0);
    assert!(a.body["refresh_token"].as_str().is_some_and(|t| t.len() >= 40));
    assert!(a.header("x-request-id").is_some());
}

#[tokio::test]
async fn an_email_taken_in_another_case_is_a_conflict() {
    let sys = TestSystem::start().await;
    sys.register("grace@example.com").await;
    let a = sys
        .post(
            "/api/v1/auth/register",
            json!({"email": "GRACE@example.COM", "password": "compiler12", "name": "G"}),
            None,
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(a.body["type"], "urn:marquee:problem:email-taken");
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
}

#[tokio::test]
async fn two_registrations_of_one_email_at_once_make_one_account() {
    let sys = TestSystem::start().await;
    let body = json!({"email": "race@example.com", "password": "racing-123", "name": "R"});
    let (a, b) = tokio::join!(
        sys.post("/api/v1/auth/register", body.clone(), None),
        sys.post("/api/v1/auth/register", body, None)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
}

#[tokio::test]
async fn invalid_fields_are_422_naming_them() {
    let sys = TestSystem::start().await;
    let a = sys
        .post(
            "/api/v1/auth/register",
            json!({"email": "not-an-email", "password": "short", "name": ""}),
            None,
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    let fields: Vec<&str> =
        a.body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["email", "name", "password"]);
    let missing =
        sys.post("/api/v1/auth/register", json!({"email": "x@example.com", "name": "X"}), None).await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["errors"][0]["field"], "password");
}

#[tokio::test]
async fn malformed_json_is_a_400_and_a_wrong_content_type_a_415() {
    let sys = TestSystem::start().await;
    let a = sys.post_raw("/api/v1/auth/register", "application/json", "{\"email\": ").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["type"], "urn:marquee:problem:bad-request");
    let b = sys.post_raw("/api/v1/auth/login", "text/plain", "hello").await;
    assert_eq!(b.status, 415);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let sys = TestSystem::start().await;
    sys.register("hopper@example.com").await;
    let wrong = sys
        .post(
            "/api/v1/auth/login",
            json!({"email": "hopper@example.com", "password": "wrong-password"}),
            None,
        )
        .await;
    let unknown = sys
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "wrong-password"}),
            None,
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body);
    let ok = sys
        .post(
            "/api/v1/auth/login",
            json!({"email": "HOPPER@example.com", "password": "correct-horse-1"}),
            None,
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let sys = TestSystem::start().await;
    sys.register("locked@example.com").await;
    for _ in 0..5 {
        let a = sys
            .post(
                "/api/v1/auth/login",
                json!({"email": "locked@example.com", "password": "guess-guess"}),
                None,
            )
            .await;
        assert_eq!(a.status, 401);
    }
    // Locked now, even with the right password.
    let a = sys
        .post(
            "/api/v1/auth/login",
            json!({"email": "locked@example.com", "password": "correct-horse-1"}),
            None,
        )
        .await;
    assert_eq!(a.status, 429, "{}", a.body);
    let retry: u64 = a.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!(retry > 0 && retry <= 900);
    // Another account from the same address is not locked by it.
    sys.register("other@example.com").await;
    let b = sys
        .post(
            "/api/v1/auth/login",
            json!({"email": "other@example.com", "password": "correct-horse-1"}),
            None,
        )
        .await;
    assert_eq!(b.status, 200);
}

#[tokio::test]
async fn a_refresh_token_rotates_and_its_reuse_revokes_the_family() {
    let sys = TestSystem::start().await;
    let session = sys.register("rotate@example.com").await;
    let first = session["refresh_token"].as_str().expect("token").to_owned();

    let a = sys.post("/api/v1/auth/refresh", json!({"refresh_token": first}), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let second = a.body["refresh_token"].as_str().expect("token").to_owned();
    assert_ne!(first, second);
    assert!(sys.get("/api/v1/users/me", a.body["access_token"].as_str()).await.status == 200);

    // The first token again: a reuse. It fails, and so does the second, newer one.
    let reuse = sys.post("/api/v1/auth/refresh", json!({"refresh_token": first}), None).await;
    assert_eq!(reuse.status, 401);
    let after = sys.post("/api/v1/auth/refresh", json!({"refresh_token": second}), None).await;
    assert_eq!(after.status, 401, "the family is revoked");

    // A new sign-in starts a new family that works.
    let login = sys
        .post(
            "/api/v1/auth/login",
            json!({"email": "rotate@example.com", "password": "correct-horse-1"}),
            None,
        )
        .await;
    let third = login.body["refresh_token"].as_str().expect("token").to_owned();
    assert_eq!(sys.post("/api/v1/auth/refresh", json!({"refresh_token": third}), None).await.status, 200);
}

#[tokio::test]
async fn an_unknown_refresh_token_is_401() {
    let sys = TestSystem::start().await;
    let a = sys.post("/api/v1/auth/refresh", json!({"refresh_token": "made-up"}), None).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.body["type"], "urn:marquee:problem:invalid-refresh-token");
}

#[tokio::test]
async fn logout_ends_the_refresh_token() {
    let sys = TestSystem::start().await;
    let session = sys.register("bye@example.com").await;
    let token = session["refresh_token"].as_str().expect("token");
    let a = sys.post("/api/v1/auth/logout", json!({"refresh_token": token}), None).await;
    assert_eq!(a.status, 204);
    assert_eq!(sys.post("/api/v1/auth/refresh", json!({"refresh_token": token}), None).await.status, 401);
    // Unknown tokens log out quietly too.
    assert_eq!(sys.post("/api/v1/auth/logout", json!({"refresh_token": "nope"}), None).await.status, 204);
}
