//! Argon2id hashing, off the async threads, in bounded memory, with a bounded queue.
//!
//! The queue holds at most `MARQUEE_PASSWORD_QUEUE` jobs (waiting or running); beyond that a
//! hash is refused at once with [`PasswordError::Busy`] (503 with `Retry-After`), so a flood of
//! sign-ins costs memory and latency up to a bound, not without one. A job whose caller has gone
//! (the client hung up, the request timed out) is dropped without hashing.
//!
//! Parameters: OWASP's first recommendation, m = 19 MiB, t = 2, p = 1. Hashes run on a pool of
//! one thread per core, and each thread keeps its 19 MiB work area while it is busy. Measured:
//! letting the crate allocate per hash left the allocator holding ~19 MiB more after each of the
//! first dozen logins (232 MB resident, from 17 MB idle) even on two threads, and on
//! `spawn_blocking` threads 369 MB; with reused work areas memory stays at one area per core. A
//! thread that has had nothing to do for [`IDLE_RELEASE`] gives its area back, so an idle system
//! does not hold 19 MiB per core for sign-ins nobody is making.

use std::{
    cell::RefCell,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// How long a hashing thread waits for work before it frees its work area.
pub const IDLE_RELEASE: Duration = Duration::from_secs(30);

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
    /// Every thread receives from it, each waiting on its own: an idle one times out and frees
    /// its area whatever the others do (behind one lock, a thread waiting for the lock never
    /// timed out).
    jobs: crossbeam_channel::Sender<Job>,
    /// Jobs sent and not yet finished (or dropped).
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// How many threads hold a work area now (also the `identity_password_work_areas` gauge).
    #[cfg(test)]
    areas: Arc<AtomicUsize>,
}

/// Gives a job's place in the queue back however the job ends.
struct QueuePlace(Arc<AtomicUsize>);

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashingThreads {
    fn start(threads: usize, capacity: usize, idle_release: Duration) -> anyhow::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let areas = Arc::new(AtomicUsize::new(0));
        for i in 0..threads {
            let rx = rx.clone();
            let areas = areas.clone();
            std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                let mut holds_area = false;
                loop {
                    match rx.recv_timeout(idle_release) {
                        Ok(job) => {
                            job();
                            if !holds_area && WORK_AREA.with_borrow(|area| !area.is_empty()) {
                                holds_area = true;
                                let held = areas.fetch_add(1, Ordering::AcqRel) + 1;
                                metrics::gauge!("identity_password_work_areas").set(held as f64);
                            }
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) if holds_area => {
                            WORK_AREA.with_borrow_mut(|area| *area = Vec::new());
                            holds_area = false;
                            let held = areas.fetch_sub(1, Ordering::AcqRel) - 1;
                            metrics::gauge!("identity_password_work_areas").set(held as f64);
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return, // every sender is gone
                    }
                }
            })?;
        }
        Ok(Self {
            jobs: tx,
            queued: Arc::new(AtomicUsize::new(0)),
            capacity: capacity.max(1),
            #[cfg(test)]
            areas,
        })
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
        self.jobs.send(job).map_err(|_| anyhow::anyhow!("the hashing threads stopped"))?;
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
    phc_string(&params, &salt, &out)
}

/// A PHC string with today's parameters whose output is random: no password matches it, and
/// checking one against it costs exactly what checking against a real hash costs.
fn unmatchable_hash() -> anyhow::Result<String> {
    let mut random = [0u8; SALT_LEN + OUTPUT_LEN];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| anyhow::anyhow!("no randomness for a dummy hash"))?;
    let (salt, out) = random.split_at(SALT_LEN);
    phc_string(&params()?, salt, out)
}

fn phc_string(params: &Params, salt: &[u8], out: &[u8]) -> anyhow::Result<String> {
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("{e}"))?,
        salt: Some(Salt::new(salt).map_err(|e| anyhow::anyhow!("{e}"))?),
        hash: Some(Output::new(out).map_err(|e| anyhow::anyhow!("{e}"))?),
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
    pub fn new(queue: usize) -> anyhow::Result<Self> {
        Self::with_idle_release(queue, IDLE_RELEASE)
    }

    fn with_idle_release(queue: usize, idle_release: Duration) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = Arc::new(HashingThreads::start(cores, queue, idle_release)?);
        // Not hashed at start: that would cost a start 19 MiB and the time of a hash.
        Ok(Self { threads, dummy_hash: Arc::new(unmatchable_hash()?) })
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
        let passwords = Passwords::new(8).expect("pool");
        let hash = passwords.hash("correct horse".into()).await.expect("hashed");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(passwords.verify("correct horse".into(), Some(hash.clone())).await.expect("verified"));
        assert!(!passwords.verify("wrong horse".into(), Some(hash)).await.expect("verified"));
        assert!(!passwords.verify("anything".into(), None).await.expect("verified"));
    }

    /// Issue 10, item 4: the queue was unbounded, and finished jobs whose caller had gone.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_abandoned_jobs_are_dropped() {
        let passwords = Passwords::new(2).expect("pool");
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

    #[tokio::test]
    async fn an_idle_hashing_thread_gives_its_work_area_back() {
        let passwords = Passwords::with_idle_release(8, Duration::from_secs(1)).expect("pool");
        assert_eq!(passwords.threads.areas.load(Ordering::Acquire), 0, "nothing hashed at start");
        let hash = passwords.hash("correct horse".into()).await.expect("hashed");
        // The thread counts its area just after it answered.
        let started = std::time::Instant::now();
        while passwords.threads.areas.load(Ordering::Acquire) == 0 {
            assert!(started.elapsed() < Duration::from_millis(900), "the hash kept no area");
            std::thread::sleep(Duration::from_millis(1));
        }
        while passwords.threads.areas.load(Ordering::Acquire) > 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "the idle thread kept its area");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // And the next check makes a new one.
        assert!(passwords.verify("correct horse".into(), Some(hash)).await.expect("checked"));
    }

    /// Every thread gives its area back, not only the one that waits on the queue: idle threads
    /// also wait for their turn at the queue, and a turn that never comes must not keep an area.
    #[tokio::test]
    async fn every_idle_hashing_thread_gives_its_work_area_back() {
        let passwords = Passwords::with_idle_release(8, Duration::from_millis(300)).expect("pool");
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        // As many hashes at once as there are threads, each waiting for the others before it
        // hashes: every thread runs one, and so holds an area.
        let all_in = Arc::new(std::sync::Barrier::new(threads));
        let jobs: Vec<_> = (0..threads)
            .map(|_| {
                let all_in = all_in.clone();
                passwords.threads.run(move || {
                    all_in.wait();
                    hash_blocking(b"correct horse")
                })
            })
            .collect();
        for hashed in futures_util::future::join_all(jobs).await {
            hashed.expect("ran").expect("hashed");
        }
        let started = std::time::Instant::now();
        while passwords.threads.areas.load(Ordering::Acquire) < threads {
            assert!(started.elapsed() < Duration::from_millis(250), "each thread kept its area");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        while passwords.threads.areas.load(Ordering::Acquire) > 0 {
            let held = passwords.threads.areas.load(Ordering::Acquire);
            assert!(started.elapsed() < Duration::from_secs(10), "{held} idle threads kept their areas");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn the_dummy_hash_has_todays_parameters_and_matches_nothing() {
        let dummy = unmatchable_hash().expect("dummy");
        let real = hash_blocking(b"anything").expect("hashed");
        // Same parameters, so a check against it costs what a check against a real one does.
        let params_of = |h: &str| h.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(params_of(&dummy), params_of(&real), "{dummy} / {real}");
        assert!(!verify_blocking(b"anything", &dummy).expect("verified"));
        assert!(!verify_blocking(b"", &dummy).expect("verified"));
        assert_ne!(dummy, unmatchable_hash().expect("dummy"), "each start draws its own");
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
