use std::net::SocketAddr;

use axum::{Json, Router, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use serde_json::json;
use testkit::{TestSystem, test_settings};

/// A stand-in for the RapidAPI IMDb provider: knows one film, says 404 to the rest.
async fn fake_provider() -> String {
    let app = Router::new().route(
        "/api/imdb/{id}",
        get(|Path(id): Path<String>| async move {
            if id != "tt0133093" {
                return StatusCode::NOT_FOUND.into_response();
            }
            Json(json!({
                "id": "tt0133093", "primaryTitle": "The Matrix (from the provider)",
                "description": "A hacker learns what the world really is.",
                "releaseDate": "1999-03-31", "runtimeMinutes": 136,
                "genres": ["Action", "Sci-Fi"], "directors": [{"fullName": "Lana Wachowski"}],
                "cast": [{"fullName": "Keanu Reeves"}, {"fullName": "Carrie-Anne Moss"}]
            }))
            .into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    url
}

fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("http://{}", l.local_addr().expect("addr"))
}

#[tokio::test]
async fn without_a_key_the_offline_catalog_answers() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let a = sys.post("/api/v1/movies/import", json!({"imdb_id": "tt0068646"}), Some(&admin)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["title"], "The Godfather");
    assert_eq!(a.body["imdb_id"], "tt0068646");
    let again = sys.post("/api/v1/movies/import", json!({"imdb_id": "tt0068646"}), Some(&admin)).await;
    assert_eq!(
        (again.status, again.body["type"].as_str()),
        (409, Some("urn:marquee:problem:already-imported"))
    );
    assert_eq!(
        sys.post("/api/v1/movies/import", json!({"imdb_id": "tt9999999"}), Some(&admin)).await.status,
        404
    );
    assert_eq!(
        sys.post("/api/v1/movies/import", json!({"imdb_id": "godfather"}), Some(&admin)).await.status,
        422
    );
}

#[tokio::test]
async fn the_provider_is_used_when_configured() {
    let provider = fake_provider().await;
    let settings = test_settings()
        .with("MARQUEE_IMDB_API_KEY", "test-key")
        .with("MARQUEE_IMDB_API_URL", provider.as_str());
    let sys = TestSystem::start_with(settings).await;
    let admin = sys.admin_token().await;
    let a = sys.post("/api/v1/movies/import", json!({"imdb_id": "tt0133093"}), Some(&admin)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["title"], "The Matrix (from the provider)");
    assert_eq!(a.body["genres"], json!(["action", "science-fiction"]));
    assert_eq!(a.body["director"], "Lana Wachowski");
    // Unknown to the provider but in the offline catalog.
    let b = sys.post("/api/v1/movies/import", json!({"imdb_id": "tt0068646"}), Some(&admin)).await;
    assert_eq!((b.status, b.body["title"].as_str()), (201, Some("The Godfather")));
}

#[tokio::test]
async fn an_unreachable_provider_falls_back_to_the_offline_catalog() {
    let settings =
        test_settings().with("MARQUEE_IMDB_API_KEY", "test-key").with("MARQUEE_IMDB_API_URL", closed_url());
    let sys = TestSystem::start_with(settings).await;
    let admin = sys.admin_token().await;
    let a = sys.post("/api/v1/movies/import", json!({"imdb_id": "tt0068646"}), Some(&admin)).await;
    assert_eq!((a.status, a.body["title"].as_str()), (201, Some("The Godfather")), "{}", a.body);
    // Not offline either: nobody can say, so 503 rather than a 404 that may be wrong.
    let b = sys.post("/api/v1/movies/import", json!({"imdb_id": "tt9999999"}), Some(&admin)).await;
    assert_eq!(b.status, 503, "{}", b.body);
    assert!(b.header("retry-after").is_some());
}
