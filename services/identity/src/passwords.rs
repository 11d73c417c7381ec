//! Argon2id hashing, off the async threads, in bounded memory, with a bounded queue.
//!
//! The queue holds at most `MARQUEE_PASSWORD_QUEUE` jobs (waiting or running); beyond that a
//! hash is refused at once with [`PasswordError::Busy`] (503 with `Retry-After`), so a flood of
//! sign-ins costs memory and latency up to a bound, not without one. A job whose caller has gone
//! (the client hung up, the request timed out) is dropped without hashing.
//!
//! Parameters: OWASP's first recommendation, m = 19 MiB, t = 2, p = 1. Hashes run on a pool of
//! one thread per core, and each thread keeps its 19 MiB work area for good. Measured: letting
//! the crate allocate per hash left the allocator holding ~19 MiB more after each of the first
//! dozen logins (232 MB resident, from 17 MB idle) even on two threads, and on `spawn_blocking`
//! threads 369 MB; with reused work areas memory stays at one area per core.

use std::{
    cell::RefCell,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
};

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

type Job = Box<dyn FnOnce() + Send>;

/// Why a hash or a check did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The queue is full: try again in a moment.
    #[error("too many password checks waiting")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A fixed set of threads that run hashing jobs in turn; they end when the last sender goes.
struct HashingThreads {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Jobs sent and not yet finished (or dropped).
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

/// Gives a job's place in the queue back however the job ends.
struct QueuePlace(Arc<AtomicUsize>);

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashingThreads {
    fn start(threads: usize, capacity: usize) -> anyhow::Result<Self> {
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
        Ok(Self { jobs: Mutex::new(tx), queued: Arc::new(AtomicUsize::new(0)), capacity: capacity.max(1) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("identity_password_checks_refused_total").increment(1);
            return Err(PasswordError::Busy);
        }
        let place = QueuePlace(self.queued.clone());
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Nobody waits for the answer any more: spare the 19 MiB and the core.
            if done.is_closed() {
                return;
            }
            let answer = f();
            drop(place); // before the answer: a caller that sees it may queue again at once
            let _ = done.send(answer);
        });
        self.jobs
            .lock()
            .map_err(|_| anyhow::anyhow!("hashing pool poisoned"))?
            .send(job)
            .map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
        result.await.map_err(|_| anyhow::anyhow!("the hashing thread stopped").into())
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
    /// One hashing thread per core, and at most `queue` jobs waiting or running.
    pub async fn new(queue: usize) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = Arc::new(HashingThreads::start(cores, queue)?);
        let mut this = Self { threads, dummy_hash: Arc::new(String::new()) };
        let dummy = this.hash(uuid::Uuid::new_v4().to_string()).await?;
        this.dummy_hash = Arc::new(dummy);
        Ok(this)
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        Ok(self.threads.run(move || hash_blocking(password.as_bytes())).await??)
    }

    /// True when `password` matches `hash`; `None` as the hash verifies against the dummy and
    /// returns false, taking the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, PasswordError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        Ok(self
            .threads
            .run(move || verify_blocking(password.as_bytes(), &hash).map(|ok| ok && known))
            .await??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_an_unknown_hash_never_matches() {
        let passwords = Passwords::new(8).await.expect("pool");
        let hash = passwords.hash("correct horse".into()).await.expect("hashed");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(passwords.verify("correct horse".into(), Some(hash.clone())).await.expect("verified"));
        assert!(!passwords.verify("wrong horse".into(), Some(hash)).await.expect("verified"));
        assert!(!passwords.verify("anything".into(), None).await.expect("verified"));
    }

    /// Issue 10, item 4: the queue was unbounded, and finished jobs whose caller had gone.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_abandoned_jobs_are_dropped() {
        let passwords = Passwords::new(2).await.expect("pool");
        let hash = passwords.hash("correct horse".into()).await.expect("hashed");
        let checks: Vec<_> = (0..12).map(|_| passwords.verify("guess".into(), Some(hash.clone()))).collect();
        let results = futures_util::future::join_all(checks).await;
        let busy = results.iter().filter(|r| matches!(r, Err(PasswordError::Busy))).count();
        assert_eq!(busy, 10, "two places in the queue, twelve checks at once");
        assert!(results.iter().filter_map(|r| r.as_ref().ok()).all(|ok| !ok));

        // Callers that give up leave their places: the queue is usable again straight away.
        for _ in 0..8 {
            let abandoned = passwords.verify("guess".into(), Some(hash.clone()));
            let _ = tokio::time::timeout(std::time::Duration::from_micros(1), abandoned).await;
        }
        let started = std::time::Instant::now();
        while passwords.threads.queued.load(Ordering::Acquire) > 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "abandoned jobs finish or drop");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(passwords.verify("correct horse".into(), Some(hash)).await.expect("checked"));
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
