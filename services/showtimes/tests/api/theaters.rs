use serde_json::json;
use testkit::TestSystem;

use crate::theater_with_room;

#[tokio::test]
async fn theaters_and_rooms_with_their_layouts() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let (theater, room) = theater_with_room(&sys, &admin).await;
    let t = sys.get(&format!("/api/v1/theaters/{theater}"), None).await;
    assert_eq!((t.status, t.body["timezone"].as_str()), (200, Some("Europe/Paris")));
    assert_eq!(sys.get("/api/v1/theaters?city=lyon", None).await.body["total"], 1);
    assert_eq!(sys.get("/api/v1/theaters?city=Paris", None).await.body["total"], 0);

    let r = sys.get(&format!("/api/v1/rooms/{room}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["capacity"], 40);
    assert_eq!(r.body["theater_id"], theater.as_str());
    let rows = r.body["layout"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["seats"][0], json!({"seat": "A1", "kind": "accessible"}));
    assert_eq!(rows[0]["seats"][2], json!({"seat": "A3", "kind": "standard"}));
    assert_eq!(rows[4]["seats"][7], json!({"seat": "E8", "kind": "premium"}));
    let listed = sys.get(&format!("/api/v1/theaters/{theater}/rooms"), None).await;
    assert_eq!(listed.body["items"][0]["id"], room.as_str());

    let again = sys
        .post(
            &format!("/api/v1/theaters/{theater}/rooms"),
            json!({"name": "Salle 1", "rows": ["A"], "seats_per_row": 5}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        (again.status, again.body["type"].as_str()),
        (409, Some("urn:marquee:problem:room-name-taken"))
    );
}

#[tokio::test]
async fn only_admins_write_and_bad_input_is_named() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let (customer, _) = sys.user_token().await;
    let body = json!({"name": "X", "city": "Y", "address": "Z", "timezone": "UTC"});
    assert_eq!(sys.post("/api/v1/theaters", body.clone(), Some(&customer)).await.status, 403);
    assert_eq!(sys.post("/api/v1/theaters", body, None).await.status, 401);
    let bad = sys
        .post(
            "/api/v1/theaters",
            json!({"name": " ", "city": "Y", "address": "Z", "timezone": "Mars"}),
            Some(&admin),
        )
        .await;
    let fields: Vec<&str> =
        bad.body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!((bad.status, fields), (422, vec!["name", "timezone"]));

    let (theater, _) = crate::theater_with_room(&sys, &admin).await;
    let room = sys
        .post(
            &format!("/api/v1/theaters/{theater}/rooms"),
            json!({"name": "R", "rows": ["A"], "seats_per_row": 100}),
            Some(&admin),
        )
        .await;
    assert_eq!((room.status, room.body["errors"][0]["field"].as_str()), (422, Some("seats_per_row")));
    let unknown = uuid::Uuid::new_v4();
    let missing = sys
        .post(
            &format!("/api/v1/theaters/{unknown}/rooms"),
            json!({"name": "R", "rows": ["A"], "seats_per_row": 5}),
            Some(&admin),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(sys.get(&format!("/api/v1/theaters/{unknown}"), None).await.status, 404);
    assert_eq!(sys.get(&format!("/api/v1/rooms/{unknown}"), None).await.status, 404);
    assert_eq!(sys.get("/api/v1/rooms/not-an-id", None).await.status, 400);
}
