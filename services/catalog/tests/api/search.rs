use std::time::Duration;

use serde_json::json;
use testkit::{TestSystem, eventually};

use crate::{create, movie};

fn first_title(v: &serde_json::Value) -> Option<String> {
    v["items"][0]["title"].as_str().map(str::to_owned)
}

async fn seed(sys: &TestSystem, admin: &str) {
    let mut godfather = movie("The Godfather", &["crime", "drama"]);
    godfather["director"] = json!("Francis Ford Coppola");
    godfather["cast"] = json!(["Marlon Brando", "Al Pacino"]);
    let mut amelie = movie("Amélie", &["comedy", "romance"]);
    amelie["cast"] = json!(["Audrey Tautou"]);
    for body in [godfather, amelie, movie("Godzilla", &["action"]), movie("Heat", &["crime"])] {
        create(sys, admin, body).await;
    }
}

#[tokio::test]
async fn search_forgives_typos_and_accents_and_ranks_by_relevance() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    seed(&sys, &admin).await;
    let sys = &sys;
    let q =
        |text: &'static str| async move { sys.get(&format!("/api/v1/movies/search?q={text}"), None).await };
    assert_eq!(first_title(&q("godfathr").await.body).as_deref(), Some("The Godfather"));
    assert_eq!(first_title(&q("amelie").await.body).as_deref(), Some("Amélie"));
    assert_eq!(first_title(&q("brando").await.body).as_deref(), Some("The Godfather"), "cast is searched");
    assert_eq!(first_title(&q("coppola%20godfather").await.body).as_deref(), Some("The Godfather"));
    let typing = q("godf").await.body;
    assert_eq!(first_title(&typing).as_deref(), Some("The Godfather"), "a prefix matches as the user types");
    assert_eq!(q("xyzzyplugh").await.body["total"], 0);
    assert_eq!(sys.get("/api/v1/movies/search?q=", None).await.status, 422);
    assert_eq!(sys.get("/api/v1/movies/search", None).await.status, 422);
}

#[tokio::test]
async fn the_index_follows_updates_and_deletions() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let m = create(&sys, &admin, movie("Solaris", &["science-fiction"])).await;
    let id = m["id"].as_str().expect("id");
    sys.patch(
        &format!("/api/v1/movies/{id}"),
        json!({"title": "Stalker", "synopsis": "Three men cross the Zone."}),
        Some(&admin),
    )
    .await;
    assert_eq!(
        first_title(&sys.get("/api/v1/movies/search?q=stalker", None).await.body).as_deref(),
        Some("Stalker")
    );
    assert_eq!(sys.get("/api/v1/movies/search?q=solaris", None).await.body["total"], 0);
    sys.delete(&format!("/api/v1/movies/{id}"), Some(&admin)).await;
    assert_eq!(sys.get("/api/v1/movies/search?q=stalker", None).await.body["total"], 0);
}

#[tokio::test]
async fn a_write_on_one_replica_is_searchable_and_uncached_on_another() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let other = sys.start_replica("catalog").await;
    let first = sys.service_url("catalog");
    let created = sys
        .send("POST", &format!("{first}/api/v1/movies"), Some(movie("Rashomon", &["drama"])), Some(&admin))
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let found = eventually(Duration::from_secs(10), || async {
        sys.send("GET", &format!("{other}/api/v1/movies/search?q=rashomon"), None, None).await.body["total"]
            == 1
    })
    .await;
    assert!(found, "the other replica indexed the new movie from its event");

    // The other replica caches the movie, then the first one changes it.
    let before = sys.send("GET", &format!("{other}/api/v1/movies/{id}"), None, None).await;
    assert_eq!(before.body["title"], "Rashomon");
    let patched = sys
        .send("PATCH", &format!("{first}/api/v1/movies/{id}"), Some(json!({"title": "Ikiru"})), Some(&admin))
        .await;
    assert_eq!(patched.status, 200);
    let fresh = eventually(Duration::from_secs(10), || async {
        sys.send("GET", &format!("{other}/api/v1/movies/{id}"), None, None).await.body["title"] == "Ikiru"
    })
    .await;
    assert!(fresh, "the other replica's cached copy was invalidated");
    let renamed = eventually(Duration::from_secs(10), || async {
        sys.send("GET", &format!("{other}/api/v1/movies/search?q=ikiru"), None, None).await.body["total"] == 1
    })
    .await;
    assert!(renamed);
}

/// Issue 10: a search for a page far away answered 500 (it allocated for the page asked for).
/// Lists serve their first 10,000 results; deeper pages are a 422 naming `page`.
#[tokio::test]
async fn a_page_beyond_the_result_window_is_a_422_not_a_500() {
    let sys = TestSystem::start().await;
    for path in [
        "/api/v1/movies/search?q=matrix&page=10000000000000000&per_page=100",
        "/api/v1/movies/search?q=matrix&page=101&per_page=100",
        "/api/v1/movies?page=10000000000000000&per_page=100",
    ] {
        let a = sys.get(path, None).await;
        assert_eq!(
            (a.status, a.body["errors"][0]["field"].as_str()),
            (422, Some("page")),
            "{path}: {}",
            a.body
        );
    }
    assert_eq!(sys.get("/api/v1/movies/search?q=matrix&page=100&per_page=100", None).await.status, 200);
}
