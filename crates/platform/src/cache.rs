//! The cache: Redis in the distributed mode, so replicas share entries and an invalidation on
//! one is seen by all; an in-process cache (moka) in the embedded mode. A cache is never the only
//! copy of anything: a failed read is a miss, and callers go to the database.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Serialize, de::DeserializeOwned};

#[async_trait::async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> anyhow::Result<()>;
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
    /// Drop every entry of this service (after a restore replaced what they were read from).
    async fn clear(&self) -> anyhow::Result<()>;
    /// For `/health/ready`.
    async fn ping(&self) -> anyhow::Result<()>;
}

/// JSON on top of any cache; errors are logged and read as misses.
pub async fn get_json<T: DeserializeOwned>(cache: &dyn Cache, key: &str) -> Option<T> {
    match cache.get(key).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(key, error = format!("{e:#}"), "cache read failed; treating as a miss");
            None
        }
    }
}

pub async fn set_json<T: Serialize>(cache: &dyn Cache, key: &str, value: &T, ttl: Duration) {
    let stored = match serde_json::to_vec(value) {
        Ok(bytes) => cache.set(key, &bytes, ttl).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = stored {
        tracing::warn!(key, error = format!("{e:#}"), "cache write failed");
    }
}

/// The embedded mode's cache: bounded in entries, each with its own expiry.
pub struct MemoryCache {
    entries: moka::future::Cache<String, (Vec<u8>, Instant)>,
}

impl MemoryCache {
    pub fn new(max_entries: u64) -> Self {
        // No entry outlives an hour whatever its TTL, so a forgotten key cannot pin memory.
        let entries = moka::future::Cache::builder()
            .max_capacity(max_entries)
            .time_to_live(Duration::from_secs(3600))
            .build();
        Self { entries }
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self.entries.get(key).await {
            Some((value, expires)) if Instant::now() < expires => Ok(Some(value)),
            Some(_) => {
                self.entries.invalidate(key).await;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> anyhow::Result<()> {
        self.entries.insert(key.to_owned(), (value.to_vec(), Instant::now() + ttl)).await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.entries.invalidate(key).await;
        Ok(())
    }

    async fn clear(&self) -> anyhow::Result<()> {
        self.entries.invalidate_all();
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Redis, with every key under `<prefix>:` so deployments (and test runs) sharing a server stay
/// apart. The connection is made lazily and remade when it drops; a Redis that is down makes
/// reads miss and `/health/ready` say `degraded`, never fail a request.
pub struct RedisCache {
    connection: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisCache {
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).with_context(|| format!("Redis URL {}", crate::db::redact(url)))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(2);
        let connection = redis::aio::ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection, prefix: prefix.to_owned() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// Remove every key under this cache's prefix.
    async fn clear_prefix(&self) -> anyhow::Result<()> {
        let mut conn = self.connection.clone();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut conn = self.connection.clone();
        Ok(redis::cmd("GET").arg(self.key(key)).query_async(&mut conn).await?)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> anyhow::Result<()> {
        let mut conn = self.connection.clone();
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ms)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let mut conn = self.connection.clone();
        redis::cmd("DEL").arg(self.key(key)).query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn clear(&self) -> anyhow::Result<()> {
        self.clear_prefix().await
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.connection.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.context("Redis ping")?;
        Ok(())
    }
}

/// `/health/ready` reports the cache as "cache".
pub struct CacheReadiness(pub std::sync::Arc<dyn Cache>);

#[async_trait::async_trait]
impl crate::server::ReadinessCheck for CacheReadiness {
    fn name(&self) -> &'static str {
        "cache"
    }
    // Without Redis every read misses and goes to the database: slower, not wrong.
    fn essential(&self) -> bool {
        false
    }
    async fn check(&self) -> anyhow::Result<()> {
        self.0.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_cache_expires_entries_and_deletes() {
        let cache = MemoryCache::new(100);
        cache.set("a", b"1", Duration::from_millis(30)).await.expect("set");
        assert_eq!(cache.get("a").await.expect("get"), Some(b"1".to_vec()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(cache.get("a").await.expect("get"), None);
        set_json(&cache, "b", &vec![1, 2], Duration::from_secs(5)).await;
        assert_eq!(get_json::<Vec<i32>>(&cache, "b").await, Some(vec![1, 2]));
        cache.delete("b").await.expect("delete");
        assert_eq!(get_json::<Vec<i32>>(&cache, "b").await, None);
    }

    #[tokio::test]
    async fn a_redis_that_is_down_is_a_miss_not_an_error_for_callers() {
        let cache = RedisCache::new("redis://127.0.0.1:1", "t").expect("lazy");
        assert_eq!(get_json::<i32>(&cache, "x").await, None);
        set_json(&cache, "x", &1, Duration::from_secs(1)).await;
        assert!(cache.ping().await.is_err());
    }
}
