//! Argon2id hashing, off the async threads and bounded in parallelism.
//!
//! Parameters: OWASP's first recommendation, m = 19 MiB, t = 2, p = 1. Each hash holds 19 MiB
//! for its duration, so at most one hash per core runs at once: a burst of logins queues
//! instead of growing memory without bound.

use std::sync::Arc;

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use tokio::sync::Semaphore;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verifying against it for unknown emails makes a login
    /// for an unknown email take as long as one with a wrong password.
    dummy_hash: Arc<String>,
}

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl Passwords {
    pub async fn new() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let permits = Arc::new(Semaphore::new(cores));
        let mut this = Self { permits, dummy_hash: Arc::new(String::new()) };
        let dummy = this.hash(uuid::Uuid::new_v4().to_string()).await?;
        this.dummy_hash = Arc::new(dummy);
        Ok(this)
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        tokio::task::spawn_blocking(move || {
            let hash =
                argon2()?.hash_password(password.as_bytes()).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            Ok(hash.to_string())
        })
        .await
        .context("hashing task")?
    }

    /// True when `password` matches `hash`; `None` as the hash verifies against the dummy and
    /// returns false, taking the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let matches = argon2()?.verify_password(password.as_bytes(), &parsed).is_ok();
            Ok(known && matches)
        })
        .await
        .context("verifying task")?
    }
}
