//! A viewer of crime films gets the films people like them watched, then other crime films, and
//! never one they saw; a newcomer gets what is popular; a film nobody has seen is like the films
//! it shares a director and genres with.

use serde_json::json;
use testkit::TestSystem;
use uuid::Uuid;

use crate::{ids, movie, watched, when};

#[tokio::test]
async fn a_crime_viewer_gets_co_watched_then_crime_films_and_never_what_they_watched() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let heat = movie(&sys, &admin, "Heat", &["crime", "drama"], "Michael Mann").await;
    let ronin = movie(&sys, &admin, "Ronin", &["action", "thriller"], "John Frankenheimer").await;
    let thief = movie(&sys, &admin, "Thief", &["crime", "drama"], "Michael Mann").await;
    let fargo = movie(&sys, &admin, "Fargo", &["crime", "comedy"], "Joel Coen").await;
    let up = movie(&sys, &admin, "Up", &["animation", "family"], "Pete Docter").await;
    let coco = movie(&sys, &admin, "Coco", &["animation", "family"], "Lee Unkrich").await;
    // Six people watched Heat and Ronin; four others watched Up and Coco (the most watched).
    for _ in 0..6 {
        let someone = Uuid::now_v7();
        watched(&sys, someone, heat).await;
        watched(&sys, someone, ronin).await;
    }
    for _ in 0..8 {
        let someone = Uuid::now_v7();
        watched(&sys, someone, up).await;
        watched(&sys, someone, coco).await;
    }
    let (token, me) = sys.user_token().await;
    let me: Uuid = me.parse().expect("uuid");
    watched(&sys, me, heat).await;

    let path = "/api/v1/recommendations/me?limit=4";
    let recs = when(&sys, path, Some(&token), |r| ids(r).first() == Some(&ronin)).await;
    let got = ids(&recs);
    assert_eq!(got[0], ronin, "co-watched first: {recs}");
    assert_eq!(recs[0]["reason"], "because you watched Heat", "{recs}");
    assert_eq!(recs[0]["title"], "Ronin");
    // Then the crime films nobody has watched yet, the one by Heat's director first.
    assert_eq!(got[1..3], [thief, fargo], "{recs}");
    assert_eq!(recs[1]["reason"], "from the director of Heat", "{recs}");
    assert!(!got.contains(&heat), "never what they watched: {recs}");

    // Watching Ronin takes it out of the next answer, and Thief comes first.
    watched(&sys, me, ronin).await;
    let recs = when(&sys, path, Some(&token), |r| !ids(r).contains(&ronin)).await;
    assert!(!ids(&recs).contains(&ronin) && !ids(&recs).contains(&heat), "{recs}");
    assert_eq!(ids(&recs)[0], thief, "{recs}");

    // A replica started now loads what is stored and answers the same.
    let replica = sys.start_replica("recommendations").await;
    let (mut theirs, mut ours) = (serde_json::Value::Null, recs);
    for _ in 0..100 {
        theirs =
            sys.request(reqwest::Method::GET, &format!("{replica}{path}"), None, Some(&token)).await.body;
        ours = sys.get(path, Some(&token)).await.body;
        if theirs == ours {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(theirs, ours, "the new replica's answer");
    assert_eq!(ids(&theirs)[..2], [thief, fargo], "{theirs}");
}

#[tokio::test]
async fn a_newcomer_gets_popular_films_and_a_film_without_history_is_like_its_kin() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let heat = movie(&sys, &admin, "Heat", &["crime", "drama"], "Michael Mann").await;
    let up = movie(&sys, &admin, "Up", &["animation", "family"], "Pete Docter").await;
    let collateral = movie(&sys, &admin, "Collateral", &["crime", "thriller"], "Michael Mann").await;
    let fargo = movie(&sys, &admin, "Fargo", &["crime", "comedy"], "Joel Coen").await;
    for n in 0..9 {
        watched(&sys, Uuid::now_v7(), up).await;
        if n < 3 {
            watched(&sys, Uuid::now_v7(), heat).await;
        }
    }
    let (token, _) = sys.user_token().await;
    let recs = when(&sys, "/api/v1/recommendations/me", Some(&token), |r| {
        ids(r).first() == Some(&up) && ids(r).get(1) == Some(&heat)
    })
    .await;
    assert_eq!(ids(&recs)[..2], [up, heat], "the most watched first: {recs}");
    assert_eq!(recs[0]["reason"], "popular this week", "{recs}");
    // Anyone may ask what is similar; Collateral has no history: its director, then its genre.
    let similar = when(&sys, &format!("/api/v1/recommendations/similar/{collateral}"), None, |r| {
        ids(r).first() == Some(&heat)
    })
    .await;
    assert_eq!(ids(&similar)[..2], [heat, fargo], "{similar}");
    assert_eq!(similar[0]["reason"], "same director as Collateral", "{similar}");
    assert_eq!(similar[1]["reason"], "also crime, like Collateral", "{similar}");
    assert!(!ids(&similar).contains(&up), "nothing in common with Up: {similar}");

    // The gateway's movie page shows them too.
    let details = sys.get(&format!("/api/v1/movie-details/{collateral}"), None).await;
    assert_eq!(details.status, 200, "{}", details.body);
    assert_eq!(details.body["similar"][0]["movie_id"], heat.to_string(), "{}", details.body);
    assert_eq!(details.body["partial"], json!([]), "{}", details.body);
}

#[tokio::test]
async fn what_recommendations_refuses() {
    let sys = TestSystem::start().await;
    let (token, _) = sys.user_token().await;
    assert_eq!(sys.get("/api/v1/recommendations/me", None).await.status, 401);
    let bad = sys.get("/api/v1/recommendations/me?limit=0", Some(&token)).await;
    assert_eq!((bad.status, bad.body["errors"][0]["field"].as_str()), (422, Some("limit")), "{}", bad.body);
    assert_eq!(sys.get("/api/v1/recommendations/me?for=theatre", Some(&token)).await.status, 400);
    let unknown = sys.get(&format!("/api/v1/recommendations/similar/{}", Uuid::now_v7()), None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(sys.get("/api/v1/recommendations/similar/not-a-uuid", None).await.status, 400);
}
