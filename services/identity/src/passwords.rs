//! Argon2id hashing, off the async threads, in bounded memory.
//!
//! Parameters: OWASP's first recommendation, m = 19 MiB, t = 2, p = 1. Hashes run on a pool of
//! one thread per core, and each thread keeps its 19 MiB work area for good. Measured: letting
//! the crate allocate per hash left the allocator holding ~19 MiB more after each of the first
//! dozen logins (232 MB resident, from 17 MB idle) even on two threads, and on `spawn_blocking`
//! threads 369 MB; with reused work areas memory stays at one area per core.

use std::{
    cell::RefCell,
    sync::{Arc, Mutex, mpsc},
};

use anyhow::Context;
use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
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

const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

thread_local! {
    /// This hashing thread's work area, reused by every hash it runs.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn params() -> anyhow::Result<Params> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN)).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Run Argon2id v19 with `params` in this thread's work area.
fn compute(params: Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
    let blocks = params.block_count();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    WORK_AREA
        .with_borrow_mut(|area| {
            if area.len() != blocks {
                *area = vec![Block::new(); blocks];
            }
            argon2.hash_password_into_with_memory(password, salt, out, area.as_mut_slice())
        })
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// A new PHC string: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness for a salt"))?;
    let params = params()?;
    let mut out = [0u8; OUTPUT_LEN];
    compute(params.clone(), password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("{e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("{e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    Ok(phc.to_string())
}

/// Check `password` against a stored PHC string, with the parameters it names.
fn verify_blocking(password: &[u8], stored: &str) -> anyhow::Result<bool> {
    let phc = PasswordHash::new(stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    anyhow::ensure!(phc.algorithm == ARGON2ID_IDENT, "stored hash is not argon2id");
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        anyhow::bail!("stored hash has no salt or output");
    };
    let params = Params::try_from(&phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let mut out = vec![0u8; expected.len()];
    compute(params, password, salt.as_ref(), &mut out)?;
    Ok(aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected.as_bytes()).is_ok())
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
        self.threads.run(move || hash_blocking(password.as_bytes())).await?
    }

    /// True when `password` matches `hash`; `None` as the hash verifies against the dummy and
    /// returns false, taking the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        self.threads.run(move || Ok(verify_blocking(password.as_bytes(), &hash)? && known)).await?
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

    #[test]
    fn hashes_made_by_the_argon2_crate_itself_verify() {
        use argon2::password_hash::PasswordHasher;
        let made = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().expect("params"))
            .hash_password(b"interop")
            .expect("hashed")
            .to_string();
        assert!(verify_blocking(b"interop", &made).expect("verified"));
        assert!(!verify_blocking(b"other", &made).expect("verified"));
        // And ours parse as standard PHC strings.
        let ours = hash_blocking(b"interop").expect("hashed");
        assert!(PasswordHash::new(&ours).is_ok(), "{ours}");
    }
}
