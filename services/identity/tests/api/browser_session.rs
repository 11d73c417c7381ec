//! The web UI's session through the gateway: the refresh token only ever in an HttpOnly cookie,
//! rotated on each refresh, its reuse ending the family, and nothing without the UI's header.

use serde_json::{Value, json};
use testkit::TestSystem;

struct Reply {
    status: u16,
    cookie: Option<String>,
    body: Value,
}

async fn call(
    sys: &TestSystem,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    cookie: Option<&str>,
    ui: bool,
) -> Reply {
    let mut req = sys.http.request(method, format!("{}{path}", sys.gateway));
    if ui {
        req = req.header("x-requested-with", "marquee");
    }
    if let Some(c) = cookie {
        req = req.header("cookie", format!("marquee_refresh={c}"));
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("sent");
    let status = res.status().as_u16();
    let cookie = res.headers().get("set-cookie").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = res.json().await.unwrap_or(Value::Null);
    Reply { status, cookie, body }
}

/// The token a `Set-Cookie` carries (empty when it clears the cookie).
fn token(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_ui_session_keeps_the_refresh_token_in_an_http_only_cookie() {
    let sys = TestSystem::start().await;
    let email = format!("ui-{}@example.com", uuid::Uuid::now_v7());
    let post = reqwest::Method::POST;
    let account = json!({"email": email, "password": "correct-horse-1", "name": "Ada"});
    let made = call(&sys, post.clone(), "/ui/session/register", Some(account), None, true).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert!(
        made.body["access_token"].is_string() && made.body.get("refresh_token").is_none(),
        "{}",
        made.body
    );
    let set = made.cookie.expect("a cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/ui/session"),
        "{set}"
    );
    let first = token(&set);
    assert!(!first.is_empty());

    // The access token works on the API.
    let me = sys.get("/api/v1/users/me", made.body["access_token"].as_str()).await;
    assert_eq!((me.status, me.body["email"].as_str()), (200, Some(email.as_str())), "{}", me.body);

    // Without the UI's header: refused, whatever the cookie.
    let forged = call(&sys, post.clone(), "/ui/session/refresh", None, Some(&first), false).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let login_csrf = json!({"email": email, "password": "correct-horse-1"});
    assert_eq!(
        call(&sys, post.clone(), "/ui/session", Some(login_csrf.clone()), None, false).await.status,
        403
    );

    // A refresh rotates the cookie.
    let refreshed = call(&sys, post.clone(), "/ui/session/refresh", None, Some(&first), true).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert!(refreshed.body["access_token"].is_string() && refreshed.body.get("refresh_token").is_none());
    let second = token(&refreshed.cookie.expect("a new cookie"));
    assert!(!second.is_empty() && second != first);

    // Reusing the spent one is a theft: 401, the cookie cleared, and the family revoked.
    let reused = call(&sys, post.clone(), "/ui/session/refresh", None, Some(&first), true).await;
    assert_eq!(reused.status, 401, "{}", reused.body);
    assert!(reused.cookie.is_some_and(|c| token(&c).is_empty() && c.contains("Max-Age=0")));
    assert_eq!(call(&sys, post.clone(), "/ui/session/refresh", None, Some(&second), true).await.status, 401);

    // Sign in again, then out: the cookie goes, and its token with it.
    let again = call(&sys, post.clone(), "/ui/session", Some(login_csrf), None, true).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let third = token(&again.cookie.expect("a cookie"));
    let out = call(&sys, reqwest::Method::DELETE, "/ui/session", None, Some(&third), true).await;
    assert_eq!(out.status, 204);
    assert!(out.cookie.is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(call(&sys, post.clone(), "/ui/session/refresh", None, Some(&third), true).await.status, 401);
    assert_eq!(call(&sys, post, "/ui/session/refresh", None, None, true).await.status, 401, "no cookie");

    let wrong = json!({"email": email, "password": "wrong password!"});
    let refused = call(&sys, reqwest::Method::POST, "/ui/session", Some(wrong), None, true).await;
    assert_eq!((refused.status, refused.cookie), (401, None), "identity's own problem, no cookie");
}
