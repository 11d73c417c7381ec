use aws_lc_rs::{rand::SystemRandom, signature::Ed25519KeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use identity::keys::{KeyPolicy, SigningKeys};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::{AUDIENCE, Claims, ISSUER, Role};
use testkit::TestSystem;

fn claims(sub: &str, role: Role, ttl: i64) -> Claims {
    let now = platform::time::now_ms() / 1000;
    Claims {
        sub: sub.into(),
        role,
        email: None,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now,
        exp: now + ttl,
        jti: "t".into(),
    }
}

async fn real_kid(sys: &TestSystem) -> String {
    let jwks = sys.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.body["keys"][0]["kty"], "OKP");
    assert_eq!(jwks.body["keys"][0]["alg"], "EdDSA");
    jwks.body["keys"][0]["kid"].as_str().expect("kid").to_owned()
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let sys = TestSystem::start().await;
    let (_, user_id) = sys.user_token().await;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(real_kid(&sys).await);
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&user_id, Role::Admin, 600),
        &EncodingKey::from_ed_der(pkcs8.as_ref()),
    )
    .expect("signed");
    let a = sys.get("/api/v1/users/me", Some(&forged)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    // An unknown kid too.
    header.kid = Some("someone-elses".into());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&user_id, Role::Admin, 600),
        &EncodingKey::from_ed_der(pkcs8.as_ref()),
    )
    .expect("signed");
    assert_eq!(sys.get("/api/v1/users", Some(&forged)).await.status, 401);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let sys = TestSystem::start().await;
    let (_, user_id) = sys.user_token().await;
    let keys = identity::keys::SigningKeys::load_or_create(&sys.db("identity"), KeyPolicy::default())
        .await
        .expect("keys");
    let expired = keys.sign(&user_id, Role::Customer, None, -120).expect("signed");
    assert_eq!(sys.get("/api/v1/users/me", Some(&expired)).await.status, 401);
    let fresh = keys.sign(&user_id, Role::Customer, None, 120).expect("signed");
    assert_eq!(sys.get("/api/v1/users/me", Some(&fresh)).await.status, 200);
}

#[tokio::test]
async fn alg_none_and_garbage_are_refused() {
    let sys = TestSystem::start().await;
    let (_, user_id) = sys.user_token().await;
    let kid = real_kid(&sys).await;
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&user_id, Role::Admin, 600)).expect("json"));
    for token in [format!("{header}.{body}."), format!("{header}.{body}"), "garbage".to_owned()] {
        let a = sys.get("/api/v1/users/me", Some(&token)).await;
        assert_eq!(a.status, 401, "{token}: {}", a.body);
    }
    assert_eq!(sys.get("/api/v1/users/me", None).await.status, 401);
}

/// Issue 10, item 2: one shared secret made its holder every service. Each service now shows
/// its own credential (derived from the secret only identity holds), which gets a token as that
/// service and no other; failures are throttled per address.
#[tokio::test]
async fn service_tokens_need_the_service_s_own_credential() {
    let sys = TestSystem::start().await;
    let url = format!("{}/internal/service-token", sys.service_url("identity"));
    let secret = sys.settings.get("MARQUEE_SERVICE_SECRET").expect("secret").to_owned();
    let ask = |service: &'static str, credential: String| {
        let url = url.clone();
        let sys = &sys;
        async move {
            let body = serde_json::json!({"service": service, "secret": credential});
            sys.request(reqwest::Method::POST, &url, Some(body), None).await
        }
    };
    let booking = platform::auth::service_credential(&secret, "booking");
    let ok = ask("booking", booking.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ask("payments", booking).await.status, 403, "booking's credential is not payments'");
    assert_eq!(ask("booking", secret.clone()).await.status, 403, "the secret itself is no credential");
    assert_eq!(ask("booking", "guess".into()).await.status, 403);
    assert_eq!(ask("gateway", platform::auth::service_credential(&secret, "gateway")).await.status, 403);
    // Not reachable through the gateway.
    assert_eq!(sys.post("/internal/service-token", serde_json::json!({}), None).await.status, 404);
    // A service token is not a user.
    let token = ok.body["access_token"].as_str().expect("token");
    assert_eq!(sys.get("/api/v1/users/me", Some(token)).await.status, 403);
}

#[tokio::test]
async fn guessing_service_credentials_is_slowed_down() {
    let settings = testkit::test_settings()
        .with("MARQUEE_LOGIN_MAX_FAILURES_PER_ADDRESS", "3")
        .with("MARQUEE_LOGIN_SLOW_SECONDS", "60")
        .with("MARQUEE_RATE_LIMIT_EXEMPT", "");
    let sys = TestSystem::start_with(settings).await;
    let url = format!("{}/internal/service-token", sys.service_url("identity"));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let body = serde_json::json!({"service": "booking", "secret": "guess"});
        statuses.push(sys.request(reqwest::Method::POST, &url, Some(body), None).await.status);
    }
    assert_eq!(statuses, [403, 403, 403, 403, 429], "three failures, then one a minute");
}

#[tokio::test]
async fn a_key_made_by_another_replica_is_published_and_accepted() {
    let sys = TestSystem::start().await;
    let (_, user_id) = sys.user_token().await;
    let db = sys.db("identity");
    let before = sys.get("/.well-known/jwks.json", None).await.body["keys"].as_array().map(Vec::len);
    // What `marquee keys rotate`, or another replica's rotation, does.
    let now = platform::time::now_ms();
    let kid = identity::keys::add_key(&db, now).await.expect("a new key");
    let after = sys.get("/.well-known/jwks.json", None).await.body["keys"].as_array().map(Vec::len);
    assert_eq!((before, after), (Some(1), Some(2)), "published at once");
    // A replica a minute later signs with it, and everyone accepts its tokens.
    let other = SigningKeys::load_at(&db, KeyPolicy::default(), now + 61_000).await.expect("keys");
    assert_eq!(other.signing_kid(), kid);
    let token = other.sign(&user_id, Role::Customer, None, 120).expect("signed");
    let me = sys.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
}

/// CI 2026-12-03: a restore brought back the old system's keys moments after the gateway had
/// fetched the new system's, and the old token was refused because the key set had been fetched
/// less than the refresh interval before. A key nobody has seen waits for the next fetch instead.
#[tokio::test]
async fn a_key_made_just_after_the_last_fetch_is_accepted() {
    let sys = TestSystem::start().await;
    let (token, user_id) = sys.user_token().await;
    assert_eq!(sys.get("/api/v1/users/me", Some(&token)).await.status, 200, "keys fetched");
    let db = sys.db("identity");
    let now = platform::time::now_ms();
    identity::keys::add_key(&db, now).await.expect("a new key");
    let other = SigningKeys::load_at(&db, KeyPolicy::default(), now + 61_000).await.expect("keys");
    let token = other.sign(&user_id, Role::Customer, None, 120).expect("signed");
    let me = sys.get("/api/v1/users/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
}

/// Issue 10, item 4: signing keys rotate on a schedule; a new key is published before it signs,
/// and an old one stays published until every token it signed has expired, then leaves.
#[tokio::test]
async fn keys_rotate_on_schedule_and_retire_once_their_tokens_have_expired() {
    let sys = TestSystem::start().await;
    let db = sys.db("identity");
    let minute = 60_000;
    let policy = KeyPolicy {
        activation_ms: minute,
        rotate_after_ms: 30 * 24 * 60 * minute,
        longest_token_ms: 15 * minute,
    };
    let now = platform::time::now_ms();
    let keys = SigningKeys::load_at(&db, policy, now).await.expect("keys");
    let first = keys.signing_kid();
    assert_eq!(keys.maintain(now + minute).await.expect("maintained"), 0, "not due yet");

    let due = now + 31 * 24 * 60 * minute;
    assert_eq!(keys.maintain(due).await.expect("maintained"), 1, "a new key");
    assert_eq!(keys.signing_kid(), first, "published, not signing yet");
    let published = keys.published(due).await.expect("jwks");
    assert_eq!(published.keys.len(), 2);
    let public = sys.get("/.well-known/jwks.json", None).await;
    assert_eq!(public.body["keys"].as_array().map(Vec::len), Some(2), "{}", public.body);

    keys.maintain(due + minute).await.expect("maintained");
    let second = keys.signing_kid();
    assert_ne!(second, first, "the new key signs");
    assert_eq!(keys.published(due + minute).await.expect("jwks").keys.len(), 2, "the old one's tokens live");

    // The old key signed until due + 1 min; its last token expired 15 min later (and a leeway).
    assert_eq!(keys.maintain(due + 18 * minute).await.expect("maintained"), 1, "retired");
    let left = keys.published(due + 18 * minute).await.expect("jwks");
    assert_eq!(left.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), [second.as_str()]);
    let rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys").fetch_one(&db.pool).await.expect("count");
    assert_eq!(rows, 1, "gone from the database too");
}

/// Issue 10, item 4: expired refresh tokens and login-failure counters were kept for ever. The
/// hourly purge drops tokens a day past their expiry and counters whose window and lockout are
/// over, and keeps the rest.
#[tokio::test]
async fn expired_refresh_tokens_and_finished_login_counters_are_purged() {
    let sys = testkit::TestSystem::start().await;
    let (_, user) = sys.user_token().await;
    let db = sys.db("identity");
    let now = platform::time::now_ms();
    let day = 24 * 3600 * 1000;
    for (id, expires) in [("gone", now - 2 * day), ("kept", now + day)] {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at) \
             VALUES ($1, $2, 'f', $3, $4, $5)",
        )
        .bind(id)
        .bind(format!("hash-{id}"))
        .bind(&user)
        .bind(now - 3 * day)
        .bind(expires)
        .execute(&db.pool)
        .await
        .expect("a token");
    }
    for (key, window_start, blocked_until) in
        [("old", now - day, now - day), ("locked", now - day, now + 60_000)]
    {
        sqlx::query(
            "INSERT INTO login_attempts (key, failures, window_start, blocked_until) VALUES ($1, 5, $2, $3)",
        )
        .bind(key)
        .bind(window_start)
        .bind(blocked_until)
        .execute(&db.pool)
        .await
        .expect("a counter");
    }
    identity::purge::purge_expired(&db, now, 900_000).await.expect("purged");
    let tokens: Vec<String> =
        sqlx::query_scalar("SELECT id FROM refresh_tokens WHERE id IN ('gone', 'kept')")
            .fetch_all(&db.pool)
            .await
            .expect("tokens");
    let counters: Vec<String> =
        sqlx::query_scalar("SELECT key FROM login_attempts WHERE key IN ('old', 'locked')")
            .fetch_all(&db.pool)
            .await
            .expect("counters");
    assert_eq!((tokens, counters), (vec!["kept".to_owned()], vec!["locked".to_owned()]));
}
