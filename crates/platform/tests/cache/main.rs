//! The Redis cache against a real server (MARQUEE_TEST_REDIS_URL); without one, these tests
//! check only the in-process cache, which has no replicas to share with.

use std::time::Duration;

use platform::cache::{Cache, MemoryCache, RedisCache, get_json, set_json};

fn redis_url() -> Option<String> {
    std::env::var("MARQUEE_TEST_REDIS_URL").ok().filter(|u| !u.trim().is_empty())
}

fn prefix() -> String {
    format!("marquee-test-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn replicas_share_entries_and_see_each_others_invalidations() {
    let Some(url) = redis_url() else {
        return; // the in-process cache is one per process by design
    };
    let prefix = prefix();
    let (a, b) = (RedisCache::new(&url, &prefix).expect("a"), RedisCache::new(&url, &prefix).expect("b"));
    set_json(&a, "movie:1", &"Alien", Duration::from_secs(30)).await;
    assert_eq!(get_json::<String>(&b, "movie:1").await.as_deref(), Some("Alien"));
    b.delete("movie:1").await.expect("delete");
    assert_eq!(
        get_json::<String>(&a, "movie:1").await,
        None,
        "an invalidation on one replica is seen by the other"
    );
    a.clear().await.expect("clear");
}

#[tokio::test]
async fn entries_expire_and_prefixes_keep_caches_apart() {
    let caches: Vec<Box<dyn Cache>> = match redis_url() {
        Some(url) => vec![
            Box::new(RedisCache::new(&url, &prefix()).expect("one")),
            Box::new(RedisCache::new(&url, &prefix()).expect("two")),
        ],
        None => vec![Box::new(MemoryCache::new(10)), Box::new(MemoryCache::new(10))],
    };
    caches[0].set("k", b"v", Duration::from_millis(100)).await.expect("set");
    assert_eq!(caches[0].get("k").await.expect("get"), Some(b"v".to_vec()));
    assert_eq!(caches[1].get("k").await.expect("get"), None, "another prefix does not see it");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(caches[0].get("k").await.expect("get"), None, "expired");
    caches[0].ping().await.expect("ping");
}
