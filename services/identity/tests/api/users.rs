use serde_json::json;
use testkit::{TestSystem, eventually};

#[tokio::test]
async fn me_shows_the_signed_in_user_and_patch_changes_the_name() {
    let sys = TestSystem::start().await;
    let (token, id) = sys.user_token().await;
    let me = sys.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["id"], id.as_str());
    let patched = sys.patch("/api/v1/users/me", json!({"name": "  New Name "}), Some(&token)).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["name"], "New Name");
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_revokes_refresh_tokens() {
    let sys = TestSystem::start().await;
    let session = sys.register("pw@example.com").await;
    let token = session["access_token"].as_str().expect("token");
    let refresh = session["refresh_token"].as_str().expect("token");

    let missing = sys.patch("/api/v1/users/me", json!({"password": "new-password-1"}), Some(token)).await;
    assert_eq!(missing.status, 422);
    let wrong = sys
        .patch(
            "/api/v1/users/me",
            json!({"password": "new-password-1", "current_password": "nope-nope"}),
            Some(token),
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.body["errors"][0]["field"], "current_password");
    let ok = sys
        .patch(
            "/api/v1/users/me",
            json!({"password": "new-password-1", "current_password": "correct-horse-1"}),
            Some(token),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    assert_eq!(sys.post("/api/v1/auth/refresh", json!({"refresh_token": refresh}), None).await.status, 401);
    let old = sys
        .post("/api/v1/auth/login", json!({"email": "pw@example.com", "password": "correct-horse-1"}), None)
        .await;
    assert_eq!(old.status, 401);
    let new = sys
        .post("/api/v1/auth/login", json!({"email": "pw@example.com", "password": "new-password-1"}), None)
        .await;
    assert_eq!(new.status, 200);
}

#[tokio::test]
async fn a_customer_cannot_list_users_or_read_another_user() {
    let sys = TestSystem::start().await;
    let (token, _) = sys.user_token().await;
    let (_, other_id) = sys.user_token().await;
    let list = sys.get("/api/v1/users", Some(&token)).await;
    assert_eq!(list.status, 403);
    assert_eq!(list.body["type"], "urn:marquee:problem:forbidden");
    assert_eq!(sys.get(&format!("/api/v1/users/{other_id}"), Some(&token)).await.status, 404);
    assert_eq!(
        sys.patch(&format!("/api/v1/users/{other_id}"), json!({"role": "admin"}), Some(&token)).await.status,
        403
    );
    assert_eq!(sys.get("/api/v1/users/not-a-uuid", Some(&token)).await.status, 400);
}

#[tokio::test]
async fn an_admin_lists_reads_and_promotes_users() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let session = sys.register("promote@example.com").await;
    let user_token = session["access_token"].as_str().expect("token").to_owned();
    let user_id = session["user"]["id"].as_str().expect("id").to_owned();
    let page = sys.get("/api/v1/users?per_page=1&page=1", Some(&admin)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["per_page"], 1);
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(1));
    assert!(page.body["total"].as_i64().unwrap_or(0) >= 2);
    let customers = sys.get("/api/v1/users?role=customer", Some(&admin)).await;
    assert!(customers.body["items"].as_array().expect("items").iter().all(|u| u["role"] == "customer"));
    assert_eq!(sys.get("/api/v1/users?per_page=10000", Some(&admin)).await.status, 422);

    let one = sys.get(&format!("/api/v1/users/{user_id}"), Some(&admin)).await;
    assert_eq!(one.status, 200);
    let promoted =
        sys.patch(&format!("/api/v1/users/{user_id}"), json!({"role": "admin"}), Some(&admin)).await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.body["role"], "admin");
    assert_eq!(
        sys.patch(&format!("/api/v1/users/{user_id}"), json!({"role": "root"}), Some(&admin)).await.status,
        422
    );
    // The old token still says customer until it is refreshed; the refreshed one says admin.
    assert_eq!(sys.get("/api/v1/users", Some(&user_token)).await.status, 403);
    let refreshed =
        sys.post("/api/v1/auth/refresh", json!({"refresh_token": session["refresh_token"]}), None).await;
    assert_eq!(refreshed.body["user"]["role"], "admin");
    assert_eq!(sys.get("/api/v1/users", refreshed.body["access_token"].as_str()).await.status, 200);
}

#[tokio::test]
async fn registering_shows_up_in_the_activity_log() {
    let sys = TestSystem::start().await;
    let (token, _) = sys.user_token().await;
    let seen = eventually(std::time::Duration::from_secs(10), || async {
        let a = sys.get("/api/v1/users/me/activity", Some(&token)).await;
        a.body["items"].as_array().is_some_and(|items| items.iter().any(|i| i["kind"] == "registered"))
    })
    .await;
    assert!(seen, "user.registered reached the activity log");
}

#[tokio::test]
async fn unknown_routes_are_404_problems_and_health_is_up() {
    let sys = TestSystem::start().await;
    let a = sys.get("/api/v1/nothing-here", None).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    let h = sys.get("/health", None).await;
    assert_eq!(h.status, 200, "{}", h.body);
    // Every service of the registry is deployed, the last one too: backups want an admin.
    assert_eq!(sys.get("/api/v1/backups", None).await.status, 401);
    let openapi = sys
        .request(reqwest::Method::GET, &format!("{}/openapi.json", sys.service_url("identity")), None, None)
        .await;
    assert!(openapi.body["paths"]["/api/v1/auth/login"].is_object(), "{}", openapi.body);
    assert_eq!(openapi.body["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let ready = sys
        .request(reqwest::Method::GET, &format!("{}/health/ready", sys.service_url("identity")), None, None)
        .await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["checks"]["database"], "ok");
    assert_eq!(ready.body["checks"]["broker"], "ok");
    if std::env::var("MARQUEE_TEST_REDIS_URL").is_ok_and(|u| !u.is_empty()) {
        assert_eq!(ready.body["checks"]["cache"], "ok");
    }
}

#[tokio::test]
async fn the_trace_of_a_request_travels_into_its_event() {
    let sys = TestSystem::start().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = sys
        .http
        .post(format!("{}/api/v1/auth/register", sys.gateway))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"email": "traced@example.com", "password": "follow-me-1", "name": "T"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-request-id"], trace_id, "the request id is the trace id");
    let payload: String = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE event_type = 'user.registered' AND payload LIKE '%traced@%'",
    )
    .fetch_one(&sys.db("identity").pool)
    .await
    .expect("the event is in the outbox");
    let event: serde_json::Value = serde_json::from_str(&payload).expect("json");
    let traceparent = event["traceparent"].as_str().expect("a traceparent");
    assert!(traceparent.starts_with(&format!("00-{trace_id}-")), "{traceparent}");
}

/// Issue 10, item 4: the admin bootstrap promoted an existing customer account with the
/// configured email and kept its password, so whoever registered that email first became admin.
/// Now the account gets the configured password (and loses its sessions) as it is promoted.
#[tokio::test]
async fn the_admin_bootstrap_does_not_keep_a_customers_password() {
    let sys = TestSystem::start().await;
    let email = format!("boss-{}@example.com", uuid::Uuid::new_v4().simple());
    sys.register(&email).await; // password correct-horse-1, a customer
    let settings = sys
        .settings
        .clone()
        .with("MARQUEE_ADMIN_EMAIL", email.as_str())
        .with("MARQUEE_ADMIN_PASSWORD", "configured-admin-1");
    let platform = platform::Platform::new("identity", settings, tokio_util::sync::CancellationToken::new())
        .expect("platform");
    let _second = identity::build(platform, sys.db("identity"), sys.bus("identity"))
        .await
        .expect("a second identity bootstraps");
    let login = |password: &'static str| {
        let email = email.clone();
        let sys = &sys;
        async move {
            sys.post("/api/v1/auth/login", serde_json::json!({"email": email, "password": password}), None)
                .await
        }
    };
    assert_eq!(login("correct-horse-1").await.status, 401, "the customer's password no longer works");
    let admin = login("configured-admin-1").await;
    assert_eq!((admin.status, admin.body["user"]["role"].as_str()), (200, Some("admin")), "{}", admin.body);
}
