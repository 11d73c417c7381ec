//! Argon2id hashing, off the async threads and bounded in parallelism.
//!
//! Parameters: OWASP's first recommendation, m = 19 MiB, t = 2, p = 1. Each hash holds 19 MiB
//! for its duration. Hashes run on a pool of one thread per core, not on `spawn_blocking`:
//! the blocking pool spreads work over many threads and the allocator keeps a 19 MiB arena for
//! each of them (a burst of 200 logins left 369 MB resident); with a fixed pool a burst queues
//! and memory stays at about one hash per core.

use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that run hashing jobs in turn; they end when the last sender goes.
struct HashingThreads {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl HashingThreads {
    fn start(threads: usize) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // every sender is gone
                    }
                }
            })?;
        }
        Ok(Self { jobs: Mutex::new(tx) })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.jobs
            .lock()
            .map_err(|_| anyhow::anyhow!("hashing pool poisoned"))?
            .send(job)
            .map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
        result.await.context("the hashing thread stopped")
    }
}

#[derive(Clone)]
pub struct Passwords {
    threads: Arc<HashingThreads>,
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
        let threads = Arc::new(HashingThreads::start(cores)?);
        let mut this = Self { threads, dummy_hash: Arc::new(String::new()) };
        let dummy = this.hash(uuid::Uuid::new_v4().to_string()).await?;
        this.dummy_hash = Arc::new(dummy);
        Ok(this)
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        self.threads
            .run(move || {
                let hash = argon2()?
                    .hash_password(password.as_bytes())
                    .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
                Ok(hash.to_string())
            })
            .await?
    }

    /// True when `password` matches `hash`; `None` as the hash verifies against the dummy and
    /// returns false, taking the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        self.threads
            .run(move || {
                let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
                let matches = argon2()?.verify_password(password.as_bytes(), &parsed).is_ok();
                Ok(known && matches)
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_an_unknown_hash_never_matches() {
        let passwords = Passwords::new().await.expect("pool");
        let hash = passwords.hash("correct horse".into()).await.expect("hashed");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(passwords.verify("correct horse".into(), Some(hash.clone())).await.expect("verified"));
        assert!(!passwords.verify("wrong horse".into(), Some(hash)).await.expect("verified"));
        assert!(!passwords.verify("anything".into(), None).await.expect("verified"));
    }
}
