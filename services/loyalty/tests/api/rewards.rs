//! The rewards catalogue, redemptions that never overspend, and codes checked at the counter.

use serde_json::{Value, json};
use testkit::TestSystem;
use uuid::Uuid;

use crate::{account_when, assert_balanced, confirmed, ledger, publish_confirmed};

async fn reward(sys: &TestSystem, admin: &str, body: Value) -> Value {
    let a = sys.post("/api/v1/rewards", body, Some(admin)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body
}

/// A member with `points` points (from one booking).
async fn member_with(sys: &TestSystem, points: i64) -> (String, Uuid) {
    let (token, user) = sys.user_token().await;
    let user: Uuid = user.parse().expect("uuid");
    publish_confirmed(sys, &confirmed(user, points * 100)).await;
    let account = account_when(sys, &token, |a| a["points"] == points).await;
    assert_eq!(account["points"], points, "{account}");
    (token, user)
}

#[tokio::test]
async fn admins_keep_the_catalogue_and_everyone_reads_it() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let (token, _) = sys.user_token().await;
    let body = json!({"name": "Large popcorn", "description": "Salted or sweet", "points_cost": 50});
    assert_eq!(sys.post("/api/v1/rewards", body.clone(), Some(&token)).await.status, 403);
    assert_eq!(sys.post("/api/v1/rewards", body.clone(), None).await.status, 401);
    for bad in [
        json!({"name": "", "points_cost": 50}),
        json!({"name": "X", "points_cost": 0}),
        json!({"name": "X", "points_cost": 50, "stock": -1}),
        json!({"name": "X\u{0007}", "points_cost": 50}),
    ] {
        let a = sys.post("/api/v1/rewards", bad.clone(), Some(&admin)).await;
        assert_eq!(a.status, 422, "{bad}: {}", a.body);
    }
    assert_eq!(sys.post("/api/v1/rewards", json!({"name": 5}), Some(&admin)).await.status, 422);
    let popcorn = reward(&sys, &admin, body).await;
    let ticket = reward(&sys, &admin, json!({"name": "Free ticket", "points_cost": 300, "stock": 2})).await;
    let hidden = reward(&sys, &admin, json!({"name": "Retired", "points_cost": 10, "active": false})).await;

    let public = sys.get("/api/v1/rewards", None).await;
    assert_eq!(public.status, 200, "{}", public.body);
    let names: Vec<&str> =
        public.body["items"].as_array().expect("items").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["Large popcorn", "Free ticket"], "cheapest first, inactive hidden");
    let all = sys.get("/api/v1/rewards", Some(&admin)).await;
    assert_eq!(all.body["total"], 3, "admins see inactive ones: {}", all.body);
    let hidden_path = format!("/api/v1/rewards/{}", hidden["id"].as_str().expect("id"));
    assert_eq!(sys.get(&hidden_path, None).await.status, 404);
    assert_eq!(sys.get(&hidden_path, Some(&admin)).await.status, 200);
    assert_eq!(sys.get(&format!("/api/v1/rewards/{}", Uuid::now_v7()), None).await.status, 404);

    let path = format!("/api/v1/rewards/{}", ticket["id"].as_str().expect("id"));
    let changed = sys.patch(&path, json!({"points_cost": 250, "stock": null}), Some(&admin)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        (changed.body["points_cost"].clone(), changed.body["stock"].clone()),
        (json!(250), Value::Null)
    );
    assert_eq!(sys.patch(&path, json!({"points_cost": -3}), Some(&admin)).await.status, 422);
    assert_eq!(sys.patch(&path, json!({"active": false}), Some(&token)).await.status, 403);
    let same = sys.get(&format!("/api/v1/rewards/{}", popcorn["id"].as_str().expect("id")), None).await;
    assert_eq!(same.body["points_cost"], 50);
}

#[tokio::test]
async fn a_redemption_spends_points_once_and_gives_a_code_the_counter_can_check() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let popcorn = reward(&sys, &admin, json!({"name": "Large popcorn", "points_cost": 40, "stock": 1})).await;
    let path = format!("/api/v1/rewards/{}/redeem", popcorn["id"].as_str().expect("id"));
    let (token, _) = member_with(&sys, 100).await;

    let redeemed = sys.post(&path, json!({}), Some(&token)).await;
    assert_eq!(redeemed.status, 201, "{}", redeemed.body);
    assert_eq!(redeemed.body["points_spent"], 40);
    assert_eq!(redeemed.body["reward_id"], popcorn["id"]);
    let code = redeemed.body["code"].as_str().expect("code").to_owned();
    let account = sys.get("/api/v1/loyalty/me", Some(&token)).await;
    assert_eq!(
        (account.body["points"].clone(), account.body["lifetime_points"].clone()),
        (json!(60), json!(100))
    );
    assert_eq!(ledger(&sys, &token).await[0]["points"], -40);

    let sold_out = sys.post(&path, json!({}), Some(&token)).await;
    assert_eq!(sold_out.status, 409, "{}", sold_out.body);
    assert!(sold_out.body["type"].as_str().is_some_and(|t| t.ends_with("out-of-stock")), "{}", sold_out.body);
    assert_eq!(sys.post(&path, json!({}), None).await.status, 401);
    let unknown = format!("/api/v1/rewards/{}/redeem", Uuid::now_v7());
    assert_eq!(sys.post(&unknown, json!({}), Some(&token)).await.status, 404);

    let mine = sys.get("/api/v1/loyalty/me/redemptions", Some(&token)).await;
    assert_eq!(mine.body["items"][0]["code"], code.as_str(), "{}", mine.body);

    let check = format!("/api/v1/loyalty/redemptions/{code}");
    assert_eq!(sys.get(&check, Some(&token)).await.status, 403, "the counter is staff only");
    let checked = sys.get(&check, Some(&admin)).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert_eq!(
        (checked.body["valid"].clone(), checked.body["reward"]["name"].clone()),
        (json!(true), json!("Large popcorn"))
    );
    let lower = sys.get(&format!("/api/v1/loyalty/redemptions/{}", code.to_lowercase()), Some(&admin)).await;
    assert_eq!(lower.status, 200, "a code typed in lower case is the same code");
    let used = sys.post(&format!("{check}/use"), json!({}), Some(&admin)).await;
    assert_eq!(used.status, 200, "{}", used.body);
    assert_eq!(used.body["valid"], false, "used now: {}", used.body);
    let again = sys.post(&format!("{check}/use"), json!({}), Some(&admin)).await;
    assert_eq!(again.status, 409, "{}", again.body);

    // One symbol off: the check symbol catches it (422), unlike a well-formed unknown code (404).
    let mut typo: Vec<char> = code.chars().collect();
    typo[4] = if typo[4] == '7' { '8' } else { '7' };
    let typo: String = typo.into_iter().collect();
    let a = sys.get(&format!("/api/v1/loyalty/redemptions/{typo}"), Some(&admin)).await;
    assert_eq!(a.status, 422, "{typo}: {}", a.body);
    let other = loyalty::domain::new_code();
    assert_eq!(sys.get(&format!("/api/v1/loyalty/redemptions/{other}"), Some(&admin)).await.status, 404);
    let hostile = sys.get("/api/v1/loyalty/redemptions/%2e%2e%2f", Some(&admin)).await;
    assert_eq!(hostile.status, 400, "{}", hostile.body);
}

#[tokio::test]
async fn concurrent_redemptions_never_spend_more_than_the_balance() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let snack = reward(&sys, &admin, json!({"name": "Soda", "points_cost": 30})).await;
    let path = format!("/api/v1/rewards/{}/redeem", snack["id"].as_str().expect("id"));
    let (token, user) = member_with(&sys, 100).await;

    let tries = (0..12).map(|_| sys.post(&path, json!({}), Some(&token)));
    let answers = futures_util::future::join_all(tries).await;
    let won = answers.iter().filter(|a| a.status == 201).count();
    let refused = answers.iter().filter(|a| a.status == 409).count();
    assert_eq!(
        (won, refused),
        (3, 9),
        "{:?}",
        answers.iter().map(|a| (a.status, a.body.clone())).collect::<Vec<_>>()
    );
    let account = sys.get("/api/v1/loyalty/me", Some(&token)).await;
    assert_eq!(account.body["points"], 10, "{}", account.body);
    let codes: std::collections::HashSet<&str> =
        answers.iter().filter_map(|a| a.body["code"].as_str()).collect();
    assert_eq!(codes.len(), 3, "each code is unique");
    let admin_view = sys.get(&format!("/api/v1/loyalty/users/{user}"), Some(&admin)).await;
    assert_eq!(admin_view.body["points"], 10, "{}", admin_view.body);
    assert_eq!(sys.get(&format!("/api/v1/loyalty/users/{user}"), Some(&token)).await.status, 403);
    assert_balanced(&sys).await;
}

/// An admin's edit read the stock before a redemption took one: its write misses (and the edit
/// is applied again over the new row), so the redemption is never undone.
#[tokio::test]
async fn an_edit_never_puts_back_stock_a_redemption_took() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let ticket = reward(&sys, &admin, json!({"name": "Free ticket", "points_cost": 30, "stock": 2})).await;
    let id: Uuid = ticket["id"].as_str().expect("id").parse().expect("uuid");
    let db = sys.db("loyalty");
    let mut conn = db.pool.acquire().await.expect("conn");
    let read = loyalty::store::reward(&mut conn, id).await.expect("query").expect("the reward");
    drop(conn);
    let (token, _) = member_with(&sys, 100).await;
    let path = format!("/api/v1/rewards/{id}/redeem");
    assert_eq!(sys.post(&path, json!({}), Some(&token)).await.status, 201);
    let stale = loyalty::domain::Reward { name: "Renamed".into(), ..read.clone() };
    let wrote = loyalty::store::update_reward(&db, &stale, read.stock, platform::time::now_ms())
        .await
        .expect("update");
    assert!(!wrote, "the stock changed since it was read");
    let renamed = sys.patch(&format!("/api/v1/rewards/{id}"), json!({"name": "Renamed"}), Some(&admin)).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!((renamed.body["name"].clone(), renamed.body["stock"].clone()), (json!("Renamed"), json!(1)));
}
