//! The web UI's files: the page, its scripts and styles, with validators, a cache lifetime,
//! compression, and a content security policy that lets the page do what it does and no more.

use platform::Settings;

use crate::gateway;

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    // No automatic decompression: the test looks at what was sent.
    let client = reqwest::Client::builder().no_gzip().build().expect("client");
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("sent")
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_validators_and_a_policy() {
    let gw = gateway(Settings::default()).await;
    let page = get(&format!("{gw}/"), &[]).await;
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache", "the page is revalidated each time");
    let csp = h["content-security-policy"].to_str().expect("csp");
    for directive in [
        "default-src 'self'",
        "img-src 'self' data: https:",
        "media-src 'self' blob:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("script-src"), "scripts only from the gateway itself (default-src): {csp}");
    // A reload revalidates the page: the 304's headers replace the cached ones, so it must carry
    // the page's policy too (with the API's `default-src 'none'` the page would load nothing).
    let page_etag = h["etag"].to_str().expect("etag");
    let revalidated = get(&format!("{gw}/"), &[("if-none-match", page_etag)]).await;
    assert_eq!(revalidated.status(), 304);
    assert_eq!(revalidated.headers()["content-security-policy"], csp, "the 304 keeps the page's policy");
    let html = page.text().await.expect("text");
    assert!(html.contains(r#"<script type="module" src="/ui/app.js"></script>"#), "{html}");

    let script = get(&format!("{gw}/ui/app.js"), &[]).await;
    assert_eq!(script.status(), 200);
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(script.headers()["cache-control"], "public, max-age=300, must-revalidate");
    let etag = script.headers()["etag"].to_str().expect("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
    let again = get(&format!("{gw}/ui/app.js"), &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304, "unchanged: not sent again");
    assert_eq!(again.headers()["etag"], etag.as_str());

    let gzipped = get(&format!("{gw}/ui/style.css"), &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["content-type"], "text/css; charset=utf-8");

    let missing = get(&format!("{gw}/ui/nothing.js"), &[]).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    for hostile in ["/ui/../Cargo.toml", "/ui/%2e%2e/src/lib.rs", "/ui//etc/passwd"] {
        let refused = get(&format!("{gw}{hostile}"), &[]).await;
        assert!(refused.status() == 400 || refused.status() == 404, "{hostile}: {}", refused.status());
    }
}

/// identity down: signing in, refreshing and signing out answer 503 problems, and no cookie is
/// set or cleared (a user is not signed out because identity could not be asked).
#[tokio::test]
async fn the_ui_session_with_identity_down_is_a_503_that_leaves_the_cookie_alone() {
    let gw = gateway(Settings::default().with("MARQUEE_IDENTITY_URL", crate::closed_url())).await;
    let client = reqwest::Client::new();
    let ui = ("x-requested-with", "marquee");
    let cookie = ("cookie", "marquee_refresh=still-good");
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/ui/session",
            Some(r#"{"email":"a@example.com","password":"correct-horse-1"}"#),
        ),
        (reqwest::Method::POST, "/ui/session/refresh", None),
        (reqwest::Method::DELETE, "/ui/session", None),
    ] {
        let mut req = client
            .request(method.clone(), format!("{gw}{path}"))
            .header(ui.0, ui.1)
            .header(cookie.0, cookie.1);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.expect("sent");
        assert_eq!(res.status(), 503, "{method} {path}");
        assert_eq!(res.headers()["content-type"], "application/problem+json", "{method} {path}");
        assert!(res.headers().get("retry-after").is_some(), "{method} {path}");
        assert!(res.headers().get("set-cookie").is_none(), "{method} {path}: the cookie is left alone");
    }
}
