//! Password hashing with argon2id (m = 19456 KiB, t = 2, p = 1) on a fixed pool of dedicated
//! threads, never on the async executor. Each worker owns argon2's 19 MiB once and reuses it for
//! every verification, so memory is workers × 19 MiB whatever the load, and no time goes to
//! mapping fresh memory per login. Every verification costs the same: when there is no user (or
//! no password yet), a dummy hash with the same parameters is verified instead.

use crate::error::{ServiceError, ServiceResult};
use anyhow::anyhow;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
/// A hashing worker gives its memory back after this long without work.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(30);

pub fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's bounds, so this cannot fail.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (blocking; call through [`Hasher`] from async code).
pub fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// argon2's working memory, allocated once and reused: [`Scratch::verify`] gives the same answer
/// as [`verify_blocking`] without allocating 19 MiB per call.
pub struct Scratch {
    blocks: Vec<argon2::Block>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Self {
        let blocks = argon2().params().block_count();
        Scratch {
            blocks: vec![argon2::Block::new(); blocks],
        }
    }

    /// Verifies a password against a PHC string of any argon2 variant and parameters (the memory
    /// grows if a hash asks for more).
    pub fn verify(&mut self, phc: &str, password: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, argon2::Block::new());
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let expected = expected.as_bytes();
        let mut out = [0u8; 64];
        let Some(out) = out.get_mut(..expected.len()) else {
            return false;
        };
        let hasher = Argon2::new(algorithm, version, params);
        hasher
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut *out,
                &mut self.blocks[..needed],
            )
            .is_ok()
            && bool::from(out.ct_eq(expected))
    }
}

/// Verifies a password against a PHC string (blocking).
pub fn verify_blocking(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

#[derive(Clone)]
pub struct Hasher {
    /// The dedicated worker threads take jobs from here. A permit is a place in it: one per
    /// worker for the job it works on, and up to one more per worker for the job it takes next,
    /// so a worker that finishes starts again at once instead of idling until the async side has
    /// answered the last request and sent the next job.
    jobs: std::sync::mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    workers: usize,
    /// Places for jobs that wait in the channel (they count towards `max_waiting`).
    ready: usize,
    /// Requests waiting for a permit.
    waiting: Arc<AtomicUsize>,
    /// Checks that may wait in all, in the channel or for a permit (`HASH_QUEUE`).
    max_waiting: usize,
    dummy: Arc<str>,
    verifications: Arc<AtomicU64>,
    rejected: Arc<AtomicU64>,
}

/// A snapshot of the pool, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub workers: usize,
    pub busy: usize,
    pub waiting: usize,
    pub max_waiting: usize,
    pub verifications: u64,
    pub rejected: u64,
}

impl Hasher {
    /// `workers` hashes run at once (each holds argon2's 19 MiB while it runs); up to
    /// `max_waiting` further requests wait for a worker, and any beyond that are refused at once
    /// with [`ServiceError::Busy`], so a flood neither queues without bound nor grows memory.
    pub fn new(workers: usize, max_waiting: usize) -> anyhow::Result<Self> {
        let random: [u8; 16] = rand::random();
        let dummy = hash_blocking(&format!("{random:?}")).map_err(|e| anyhow!("argon2: {e}"))?;
        let workers = workers.max(1);
        let ready = workers.min(max_waiting);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..workers {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    // Taken on the first job; given back after a quiet while, so an idle
                    // server holds no argon2 memory.
                    let mut scratch: Option<Scratch> = None;
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv_timeout(IDLE_RELEASE),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(scratch.get_or_insert_with(Scratch::new)),
                            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => scratch = None,
                            // Every Hasher is gone.
                            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .map_err(|e| anyhow!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Hasher {
            jobs,
            permits: Arc::new(Semaphore::new(workers + ready)),
            workers,
            ready,
            waiting: Arc::default(),
            max_waiting,
            dummy: dummy.into(),
            verifications: Arc::default(),
            rejected: Arc::default(),
        })
    }

    pub fn stats(&self) -> PoolStats {
        let places = self.workers + self.ready;
        let in_pool = places - self.permits.available_permits().min(places);
        PoolStats {
            workers: self.workers,
            busy: in_pool.min(self.workers),
            waiting: self.waiting.load(Ordering::Relaxed) + in_pool.saturating_sub(self.workers),
            max_waiting: self.max_waiting,
            verifications: self.verifications(),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// How many verifications (real or dummy) have run: equal work per login attempt is checked
    /// with this, and it is exported as a metric.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
                let _leave = Leave(&self.waiting);
                if queued >= self.max_waiting - self.ready {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(ServiceError::Busy);
                }
                Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| ServiceError::Busy)?
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The place is given back when the job leaves the worker, not when the request does: a
        // client that goes away cannot free a place its job still takes. The work is skipped
        // when nobody waits for its answer any more.
        self.jobs
            .send(Box::new(move |scratch: &mut Scratch| {
                if tx.is_closed() {
                    return; // `permit` is dropped here
                }
                let answer = job(scratch);
                // Free before answering, so that whoever reads the answer sees the place free.
                drop(permit);
                let _ = tx.send(answer);
            }))
            .map_err(|_| ServiceError::Internal(anyhow!("the hashing threads are gone")))?;
        rx.await
            .map_err(|_| ServiceError::Internal(anyhow!("a hashing job failed")))
    }

    pub async fn hash(&self, password: SecretString) -> ServiceResult<String> {
        self.run(move |_| hash_blocking(password.expose_secret()))
            .await?
            .map_err(|e| ServiceError::Internal(anyhow!("argon2: {e}")))
    }

    /// Verifies against `phc`, or against the dummy hash when there is none; `false` then.
    pub async fn verify(&self, phc: Option<String>, password: SecretString) -> ServiceResult<bool> {
        let (phc, real) = match phc {
            Some(phc) => (phc, true),
            None => (self.dummy.to_string(), false),
        };
        let ok = self
            .run(move |scratch| scratch.verify(&phc, password.expose_secret()))
            .await?;
        self.verifications.fetch_add(1, Ordering::Relaxed);
        Ok(ok && real)
    }
}

/// Leaves the waiting count when dropped (also when the request is cancelled while waiting).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_beyond_the_queue_is_refused_at_once() {
        let hasher = Hasher::new(1, 2).unwrap();
        let phc = hasher.dummy.to_string();
        let attempts: Vec<_> = (0..12)
            .map(|_| {
                let hasher = hasher.clone();
                let phc = phc.clone();
                tokio::spawn(async move { hasher.verify(Some(phc), SecretString::from("x")).await })
            })
            .collect();
        let mut busy = 0;
        let mut done = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(_) => done += 1,
                Err(ServiceError::Busy) => busy += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        // One runs, two wait; the rest are refused without hashing.
        assert!(done >= 3, "{done} ran");
        assert!(busy >= 1, "{busy} refused");
        assert_eq!(done + busy, 12);
        assert_eq!(hasher.stats().rejected, busy as u64);
        assert_eq!(hasher.stats().waiting, 0, "nobody is left waiting");
        assert_eq!(hasher.verifications(), done as u64);
    }

    /// Holds the pool's one worker on a job until the returned sender is used (or dropped); the
    /// job is running when this returns, and answers `true` when it was let go.
    async fn hold_the_worker(
        hasher: &Hasher,
    ) -> (
        tokio::task::JoinHandle<ServiceResult<bool>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let job = {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(move |_| {
                        let _ = started.send(());
                        held.recv().is_ok()
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || running.recv())
            .await
            .unwrap()
            .expect("the held job runs");
        (job, release)
    }

    /// Waits (at most 5 s) until exactly `n` places in the pool are free.
    async fn free_places_become(hasher: &Hasher, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while hasher.permits.available_permits() != n {
            assert!(
                std::time::Instant::now() < deadline,
                "{} places free, not {n}",
                hasher.permits.available_permits()
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_has_its_next_job_ready_and_the_queue_limit_counts_it() {
        let hasher = Hasher::new(1, 1).unwrap();
        let (first, release) = hold_the_worker(&hasher).await;
        let second = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(|_| true).await })
        };
        free_places_become(&hasher, 0).await;
        // Both got a place at once: one job runs, the other waits in the channel for the worker.
        let stats = hasher.stats();
        assert_eq!((stats.busy, stats.waiting), (1, 1), "{stats:?}");
        // HASH_QUEUE = 1 is taken by the job in the channel: a third check is refused.
        let phc = hasher.dummy.to_string();
        assert!(matches!(
            hasher.verify(Some(phc), SecretString::from("x")).await,
            Err(ServiceError::Busy)
        ));
        release.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert!(second.await.unwrap().unwrap());
        let stats = hasher.stats();
        assert_eq!((stats.busy, stats.waiting, stats.rejected), (0, 0, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_check_keeps_its_place_until_its_job_leaves_the_worker() {
        let hasher = Hasher::new(1, 1).unwrap();
        let (first, release) = hold_the_worker(&hasher).await;
        let phc = hasher.dummy.to_string();
        let abandoned = {
            let hasher = hasher.clone();
            let phc = phc.clone();
            tokio::spawn(async move { hasher.verify(Some(phc), SecretString::from("x")).await })
        };
        free_places_become(&hasher, 0).await;
        // The client goes away while its job waits in the channel: the place stays taken.
        abandoned.abort();
        let _ = abandoned.await;
        assert_eq!(hasher.permits.available_permits(), 0);
        assert!(matches!(
            hasher.verify(Some(phc), SecretString::from("x")).await,
            Err(ServiceError::Busy)
        ));
        release.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        // The abandoned job left the worker without hashing, and gave its place back.
        free_places_become(&hasher, 2).await;
        assert_eq!(hasher.verifications(), 0);
    }

    #[test]
    fn hashes_are_argon2id_with_the_baseline_parameters_and_salted() {
        let a = hash_blocking("correct horse battery staple").unwrap();
        let b = hash_blocking("correct horse battery staple").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(
            a, b,
            "the same password must hash differently for two users"
        );
        assert!(verify_blocking(&a, "correct horse battery staple"));
        assert!(!verify_blocking(&a, "correct horse battery stapler"));
        assert!(!verify_blocking("not a phc string", "x"));
    }

    #[test]
    fn reused_memory_verifies_exactly_as_the_library_does() {
        let mut scratch = Scratch::new();
        let phc = hash_blocking("correct horse battery staple").unwrap();
        assert!(scratch.verify(&phc, "correct horse battery staple"));
        assert!(!scratch.verify(&phc, "correct horse battery stapler"));
        assert!(
            scratch.verify(&phc, "correct horse battery staple"),
            "the memory is reused"
        );
        assert!(!scratch.verify("not a phc string", "x"));
        // Other parameters and variants (e.g. hashes made before a parameter change).
        let small = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(1024, 3, 1, Some(24)).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let other = small.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_blocking(&other, "pw"));
        assert!(scratch.verify(&other, "pw"));
        assert!(!scratch.verify(&other, "pW"));
        let big = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(MEMORY_KIB * 2, 1, 1, None).unwrap(),
        );
        let bigger = big.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(scratch.verify(&bigger, "pw"));
    }

    #[tokio::test]
    async fn the_dummy_hash_never_verifies() {
        let mut hasher = Hasher::new(1, 8).unwrap();
        let dummy = hasher.dummy.to_string();
        let real = hasher
            .hash(SecretString::from("s3cret-enough"))
            .await
            .unwrap();
        assert!(
            hasher
                .verify(Some(real.clone()), SecretString::from("s3cret-enough"))
                .await
                .unwrap()
        );

        // A well-formed argon2id hash with the parameters, salt and output length of a user's
        // hash, so checking it costs what checking a user's password costs.
        let (parsed, user) = (
            PasswordHash::new(&dummy).unwrap(),
            PasswordHash::new(&real).unwrap(),
        );
        assert!(
            dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy}"
        );
        assert_eq!(
            Algorithm::try_from(parsed.algorithm).unwrap(),
            Algorithm::Argon2id
        );
        assert_eq!(parsed.version, Some(0x13));
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, ITERATIONS, PARALLELISM)
        );
        assert_eq!(params, Params::try_from(&user).unwrap());
        assert_eq!(
            parsed.salt.as_ref().map(|s| s.len()),
            user.salt.as_ref().map(|s| s.len())
        );
        assert_eq!(
            parsed.hash.as_ref().map(|h| h.len()),
            user.hash.as_ref().map(|h| h.len())
        );

        // Its password is random and kept nowhere: nothing a guesser tries matches it, and every
        // hasher has another one.
        let mut scratch = Scratch::new();
        let zeros = format!("{:?}", [0u8; 16]);
        for guess in ["", "password", "dummy", "s3cret-enough", zeros.as_str()] {
            assert!(!scratch.verify(&dummy, guess), "the dummy took {guess:?}");
        }
        assert_ne!(Hasher::new(1, 1).unwrap().dummy, hasher.dummy);

        // A user without a hash is refused even with the password that the dummy hash was made
        // from; the check still runs and counts.
        hasher.dummy = hash_blocking("guessable").unwrap().into();
        let dummy = hasher.dummy.to_string();
        assert!(scratch.verify(&dummy, "guessable"));
        let before = hasher.verifications();
        assert!(
            !hasher
                .verify(None, SecretString::from("guessable"))
                .await
                .unwrap()
        );
        assert_eq!(hasher.verifications(), before + 1);
    }
}
