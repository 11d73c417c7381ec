use serde_json::json;
use testkit::TestSystem;

use crate::{create, movie};

#[tokio::test]
async fn an_admin_creates_reads_updates_and_deletes_a_movie() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let m = create(&sys, &admin, movie("The Matrix", &["action", "science-fiction"])).await;
    let id = m["id"].as_str().expect("id").to_owned();
    assert_eq!(m["genres"], json!(["action", "science-fiction"]));
    assert_eq!(m["rating"], serde_json::Value::Null);
    assert_eq!(m["rating_count"], 0);
    assert_eq!(m["release_date"], "1999-03-31");

    let got = sys.get(&format!("/api/v1/movies/{id}"), None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, m);

    let patched = sys
        .patch(
            &format!("/api/v1/movies/{id}"),
            json!({"runtime_minutes": 136, "featured": true}),
            Some(&admin),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["runtime_minutes"], 136);
    assert_eq!(patched.body["title"], "The Matrix", "fields not sent stay");
    assert_eq!(
        sys.get(&format!("/api/v1/movies/{id}"), None).await.body["runtime_minutes"],
        136,
        "the cache was invalidated"
    );
    let featured = sys.get("/api/v1/movies/featured", None).await;
    assert_eq!(featured.body["items"][0]["id"], id.as_str());

    assert_eq!(sys.delete(&format!("/api/v1/movies/{id}"), Some(&admin)).await.status, 204);
    assert_eq!(sys.get(&format!("/api/v1/movies/{id}"), None).await.status, 404);
    assert_eq!(sys.delete(&format!("/api/v1/movies/{id}"), Some(&admin)).await.status, 404);
    assert_eq!(
        sys.patch(&format!("/api/v1/movies/{id}"), json!({"title": "X"}), Some(&admin)).await.status,
        404
    );
    assert_eq!(sys.get("/api/v1/movies", None).await.body["total"], 0);
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM movies WHERE deleted_at IS NOT NULL")
        .fetch_one(&sys.db("catalog").pool)
        .await
        .expect("count");
    assert_eq!(kept, 1, "a deleted movie stays for history");
}

#[tokio::test]
async fn writes_are_for_admins_only() {
    let sys = TestSystem::start().await;
    let (customer, _) = sys.user_token().await;
    assert_eq!(sys.post("/api/v1/movies", movie("Nope", &["drama"]), Some(&customer)).await.status, 403);
    assert_eq!(sys.post("/api/v1/movies", movie("Nope", &["drama"]), None).await.status, 401);
    assert_eq!(
        sys.post("/api/v1/movies/import", json!({"imdb_id": "tt0068646"}), Some(&customer)).await.status,
        403
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let mut bad = movie("", &["space-opera"]);
    bad["runtime_minutes"] = json!(-5);
    let a = sys.post("/api/v1/movies", bad, Some(&admin)).await;
    assert_eq!(a.status, 422, "{}", a.body);
    let fields: Vec<&str> =
        a.body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["title", "genres", "runtime_minutes"]);
    let wrong_type =
        sys.post("/api/v1/movies", json!({"title": "X", "runtime_minutes": "long"}), Some(&admin)).await;
    assert_eq!(
        (wrong_type.status, wrong_type.body["errors"][0]["field"].as_str()),
        (422, Some("runtime_minutes"))
    );
    let unknown = sys.post("/api/v1/movies", json!({"title": "X", "colour": "red"}), Some(&admin)).await;
    assert_eq!((unknown.status, unknown.body["errors"][0]["field"].as_str()), (422, Some("colour")));
    assert_eq!(sys.get("/api/v1/movies?per_page=10000", None).await.status, 422);
    assert_eq!(sys.get("/api/v1/movies?page=0", None).await.status, 422);
    assert_eq!(sys.get("/api/v1/movies?year=abc", None).await.status, 400);
    assert_eq!(sys.get("/api/v1/movies?genre=space-opera", None).await.status, 422);
    assert_eq!(sys.get("/api/v1/movies?sort=price", None).await.status, 422);
    assert_eq!(sys.get("/api/v1/movies/not-a-uuid", None).await.status, 400);
    assert_eq!(sys.get(&format!("/api/v1/movies/{}", uuid::Uuid::new_v4()), None).await.status, 404);
}

#[tokio::test]
async fn lists_filter_sort_and_page() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let mut a = movie("Alpha", &["drama"]);
    a["release_date"] = json!("2001-01-01");
    let mut b = movie("beta", &["comedy", "drama"]);
    b["release_date"] = json!("2010-06-01");
    b["director"] = json!("Greta Gerwig");
    let mut c = movie("Gamma", &["horror"]);
    c["release_date"] = json!("1980-10-10");
    for body in [a, b, c] {
        create(&sys, &admin, body).await;
    }
    let titles = |v: &serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|m| m["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        titles(&sys.get("/api/v1/movies", None).await.body),
        ["Alpha", "beta", "Gamma"],
        "by title, without case"
    );
    assert_eq!(
        titles(&sys.get("/api/v1/movies?sort=-release_date", None).await.body),
        ["beta", "Alpha", "Gamma"]
    );
    assert_eq!(titles(&sys.get("/api/v1/movies?genre=drama", None).await.body), ["Alpha", "beta"]);
    assert_eq!(titles(&sys.get("/api/v1/movies?year=1980", None).await.body), ["Gamma"]);
    assert_eq!(titles(&sys.get("/api/v1/movies?q=gerwig", None).await.body), ["beta"]);
    let page = sys.get("/api/v1/movies?per_page=2&page=2", None).await.body;
    assert_eq!(
        (titles(&page), page["total"].as_i64(), page["page"].as_i64()),
        (vec!["Gamma".to_owned()], Some(3), Some(2))
    );

    let genres = sys.get("/api/v1/genres", None).await;
    assert_eq!(genres.status, 200);
    let all = genres.body.as_array().expect("a list");
    assert_eq!(all.len(), 18);
    let count = |slug: &str| all.iter().find(|g| g["slug"] == slug).and_then(|g| g["movie_count"].as_i64());
    assert_eq!((count("drama"), count("horror"), count("western")), (Some(2), Some(1), Some(0)));
}

#[tokio::test]
async fn writes_emit_events_with_what_other_services_need() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let m = create(&sys, &admin, movie("Evented", &["drama"])).await;
    let id = m["id"].as_str().expect("id");
    sys.delete(&format!("/api/v1/movies/{id}"), Some(&admin)).await;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT event_type, payload FROM outbox ORDER BY id")
        .fetch_all(&sys.db("catalog").pool)
        .await
        .expect("outbox");
    let types: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["movie.created", "movie.deleted"]);
    let created: serde_json::Value = serde_json::from_str(&rows[0].1).expect("json");
    assert_eq!(
        created["data"],
        json!({
            "movie_id": id, "title": "Evented", "runtime_minutes": 120, "genres": ["drama"], "streamable": false,
            "director": "Some Director", "cast": ["Lead Actor", "Second Actor"]
        })
    );
}
