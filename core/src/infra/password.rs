//! Password hashing with argon2id (m = 19456 KiB, t = 2, p = 1) on a fixed pool of dedicated
//! threads, never on the async executor. Each worker owns argon2's 19 MiB once and reuses it for
//! every hash and verification, so memory is workers × 19 MiB whatever the load, and no time goes
//! to mapping fresh memory per login. Every verification costs the same: when there is no user
//! (or no password yet), a dummy hash with the same parameters is verified instead, and a stored
//! hash that is not argon2id v=19 with exactly these parameters is refused after the same work.
//!
//! The hashing is `argon2-rust` (a port of the reference C implementation that picks its SIMD at
//! run time), which wipes argon2's memory after every hash. Before, it was RustCrypto's
//! `argon2`, which never wipes its memory blocks; both read and write the same PHC strings, so
//! the hashes stored before the switch verify unchanged (the fixtures in the tests). `make bench`
//! measures both on the same PHC strings, each as the pool runs it ([`Implementation`]).

use crate::infra::error::{ServiceError, ServiceResult};
use anyhow::anyhow;
use argon2_rust::params::{Memory, TagLen};
use argon2_rust::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::Semaphore;

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
/// The tag and salt of every hash the server makes (RFC 9106's recommendation for both).
const TAG_BYTES: usize = 32;
const SALT_BYTES: usize = 16;
/// Longer PHC strings are not decoded: ours have 97 characters, and the decoder sizes its buffers
/// from the string.
const MAX_PHC_LEN: usize = 128;
/// A hashing worker gives its memory back after this long without work.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(30);

// Checked when compiling: a `const` that panics does not build.
const PARAMS: Params = Params::builder()
    .memory(Memory::kib(MEMORY_KIB as u64))
    .passes(ITERATIONS)
    .lanes(PARALLELISM)
    .tag_len(TagLen::bytes(TAG_BYTES as u64))
    .build_or_panic();

/// What every hash is made with, and the only thing a stored hash may be.
const ARGON2ID: Argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS);

/// Hashes a password into a PHC string with a fresh salt from the operating system (blocking;
/// call through [`Hasher`] from async code).
pub fn hash_blocking(password: &str) -> Result<String, argon2_rust::Error> {
    ARGON2ID.hash_password_with_random_salt(password.as_bytes())
}

/// A hashing worker's argon2 memory: taken by its first hash and reused by every one after,
/// wiped after each (`argon2-rust`'s `zeroize-memory`), given back wiped when dropped.
pub struct Scratch {
    hasher: argon2_rust::Hasher,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            hasher: ARGON2ID.hasher(),
        }
    }

    /// Hashes a password as [`hash_blocking`] does, in this worker's memory.
    pub fn hash(&mut self, password: &str) -> Result<String, argon2_rust::Error> {
        self.hasher
            .hash_password_with_random_salt(password.as_bytes())
    }

    /// Verifies a password against a PHC string. Only argon2id, version 0x13, the baseline
    /// parameters, a 16-byte salt and a 32-byte tag are accepted: anything else is refused after
    /// the work of a verification, so that a weakened (or absurdly costly) stored hash neither
    /// passes with less work nor takes another time or more memory.
    pub fn verify(&mut self, phc: &str, password: &str) -> bool {
        match baseline_hash(phc) {
            Some(stored) => self
                .hasher
                .verify(password.as_bytes(), &stored.salt, &stored.hash)
                .is_ok(),
            None => {
                tracing::warn!(
                    "a stored password hash is not argon2id v=19 with this server's parameters; \
                     refused"
                );
                let mut tag = [0u8; TAG_BYTES];
                let _ = self
                    .hasher
                    .hash_into(password.as_bytes(), &[0; SALT_BYTES], &mut tag);
                false
            }
        }
    }

    /// Blocks of 1 KiB this worker holds for its next hash (none before its first).
    pub fn reserved_blocks(&self) -> usize {
        self.hasher.reserved_blocks()
    }
}

/// The salt and tag of `phc` when it is one of the server's hashes: argon2id, version 0x13, the
/// baseline parameters and sizes.
fn baseline_hash(phc: &str) -> Option<argon2_rust::Decoded> {
    if phc.len() > MAX_PHC_LEN {
        return None;
    }
    // Fails unless the string names argon2id.
    let decoded = argon2_rust::decode_string(phc, Algorithm::Argon2id).ok()?;
    // `params` holds m, t, p and the tag's length.
    let ours = decoded.version == Version::V0x13
        && decoded.params == PARAMS
        && decoded.salt.len() == SALT_BYTES;
    ours.then_some(decoded)
}

/// Verifies a password against a PHC string (blocking; allocates argon2's memory for this call).
pub fn verify_blocking(phc: &str, password: &str) -> bool {
    Scratch::new().verify(phc, password)
}

/// The argon2id implementations `make bench` measures on the same PHC strings, each as the pool
/// runs it (one worker's memory taken once and reused). The server hashes with
/// [`Implementation::SERVER`]; the others are here to be measured against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// `argon2-rust` 1.1.0 ([`Scratch`]).
    Argon2Rust,
    /// RustCrypto's `argon2` 0.5, the server's before argon2-rust.
    RustCrypto,
}

impl Implementation {
    pub const ALL: [Implementation; 2] = [Implementation::Argon2Rust, Implementation::RustCrypto];
    pub const SERVER: Implementation = Implementation::Argon2Rust;

    pub fn name(self) -> &'static str {
        match self {
            Implementation::Argon2Rust => "argon2-rust 1.1",
            Implementation::RustCrypto => "RustCrypto argon2 0.5",
        }
    }

    /// Whether argon2's memory is wiped after each use: a condition for hashing with it.
    /// RustCrypto's `argon2` leaves its memory blocks as they are (its `zeroize` feature wipes
    /// only its initial hash and final block), so it is measured as it ran here: without a wipe,
    /// its best case.
    pub fn wipes_memory(self) -> bool {
        match self {
            Implementation::Argon2Rust => true,
            Implementation::RustCrypto => false,
        }
    }

    /// One worker's memory, taken by its first hash or verification.
    pub fn worker(self) -> Worker {
        Worker(match self {
            Implementation::Argon2Rust => WorkerMemory::Argon2Rust(Scratch::new()),
            Implementation::RustCrypto => WorkerMemory::RustCrypto(rust_crypto::Scratch::default()),
        })
    }
}

/// A worker of one [`Implementation`]: hashes and verifies with the same checks as the server.
pub struct Worker(WorkerMemory);

enum WorkerMemory {
    Argon2Rust(Scratch),
    RustCrypto(rust_crypto::Scratch),
}

impl Worker {
    /// A PHC string for `password` with a fresh salt and the baseline parameters.
    pub fn hash(&mut self, password: &str) -> anyhow::Result<String> {
        match &mut self.0 {
            WorkerMemory::Argon2Rust(scratch) => scratch
                .hash(password)
                .map_err(|e| anyhow!("argon2-rust: {e}")),
            WorkerMemory::RustCrypto(scratch) => scratch
                .hash(password)
                .map_err(|e| anyhow!("RustCrypto argon2: {e}")),
        }
    }

    /// Whether `password` matches `phc`, which must be a baseline hash.
    pub fn verify(&mut self, phc: &str, password: &str) -> bool {
        match &mut self.0 {
            WorkerMemory::Argon2Rust(scratch) => scratch.verify(phc, password),
            WorkerMemory::RustCrypto(scratch) => scratch.verify(phc, password),
        }
    }
}

/// RustCrypto's `argon2` 0.5 as the pool ran it before argon2-rust (its memory blocks allocated once
/// per worker and reused, never wiped), with the parameter checks of [`Scratch::verify`]. The
/// bench measures it, and the tests check that its hashes and ours verify both ways.
mod rust_crypto {
    use super::{ITERATIONS, MEMORY_KIB, PARALLELISM, SALT_BYTES, TAG_BYTES};
    use argon2::password_hash::rand_core::OsRng;
    use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    use subtle::ConstantTimeEq;

    pub fn argon2() -> Argon2<'static> {
        // The parameters are constants within argon2's bounds, so this cannot fail.
        let params =
            Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(TAG_BYTES)).unwrap_or_default();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    pub struct Scratch {
        blocks: Vec<Block>,
    }

    impl Default for Scratch {
        fn default() -> Self {
            Scratch {
                blocks: vec![Block::new(); argon2().params().block_count()],
            }
        }
    }

    impl Scratch {
        pub fn hash(&mut self, password: &str) -> Result<String, argon2::password_hash::Error> {
            let salt = SaltString::generate(&mut OsRng);
            Ok(argon2()
                .hash_password(password.as_bytes(), &salt)?
                .to_string())
        }

        pub fn verify(&mut self, phc: &str, password: &str) -> bool {
            if phc.len() > super::MAX_PHC_LEN {
                return false;
            }
            let Ok(parsed) = PasswordHash::new(phc) else {
                return false;
            };
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return false;
            };
            let baseline = matches!(
                Algorithm::try_from(parsed.algorithm),
                Ok(Algorithm::Argon2id)
            ) && parsed.version == Some(0x13)
                && Params::try_from(&parsed).is_ok_and(|p| {
                    (p.m_cost(), p.t_cost(), p.p_cost()) == (MEMORY_KIB, ITERATIONS, PARALLELISM)
                })
                && expected.len() == TAG_BYTES;
            if !baseline {
                return false;
            }
            let mut salt_buf = [0u8; 64];
            let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
                return false;
            };
            if salt.len() != SALT_BYTES {
                return false;
            }
            let mut out = [0u8; TAG_BYTES];
            argon2()
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt,
                    &mut out,
                    &mut self.blocks[..],
                )
                .is_ok()
                && bool::from(out.ct_eq(expected.as_bytes()))
        }
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
        self.run(move |scratch| scratch.hash(password.expose_secret()))
            .await?
            .map_err(|e| ServiceError::Internal(anyhow!("argon2: {e}")))
    }

    /// Verifies against `phc`, or against the dummy hash when there is none; `false` then.
    pub async fn verify(&self, phc: Option<String>, password: SecretString) -> ServiceResult<bool> {
        self.check_beside(move |checker| checker.verify(phc.as_deref(), password.expose_secret()))
            .await
    }

    /// Runs `job` on a hashing worker, with what it needs to check a password there
    /// ([`Checker::verify`]). For the blocking work that must come right before or after a
    /// check (a password login's statements on SQLite), so that it runs where the hash runs,
    /// without handing off to another thread and back. `job` may block; it holds a place in
    /// the pool, as a check does, until it returns.
    pub async fn check_beside<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Checker<'_>) -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let dummy = Arc::clone(&self.dummy);
        let verifications = Arc::clone(&self.verifications);
        self.run(move |scratch| {
            job(&mut Checker {
                scratch,
                dummy: &dummy,
                verifications: &verifications,
            })
        })
        .await
    }
}

/// A password check on a hashing worker (see [`Hasher::check_beside`]).
pub struct Checker<'a> {
    scratch: &'a mut Scratch,
    dummy: &'a str,
    verifications: &'a AtomicU64,
}

impl Checker<'_> {
    /// Verifies against `phc`, or against the dummy hash when there is none (the same work);
    /// `false` then.
    pub fn verify(&mut self, phc: Option<&str>, password: &str) -> bool {
        let ok = self.scratch.verify(phc.unwrap_or(self.dummy), password);
        self.verifications.fetch_add(1, Ordering::Relaxed);
        ok && phc.is_some()
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

    /// Hashes as RustCrypto's `argon2` 0.5 (the server's before argon2-rust) made them, as they are
    /// stored now: (password, PHC string). The reference C implementation makes the same strings
    /// from these salts.
    const STORED: [(&str, &str); 3] = [
        (
            "correct horse battery staple",
            "$argon2id$v=19$m=19456,t=2,p=1$AAECAwQFBgcICQoLDA0ODw$\
             gYJZtjEAJqjg26xdLmknq8/bB7MiWPrE9hsYuA+SkIU",
        ),
        (
            "Grüße, Jürgen! 🔑",
            "$argon2id$v=19$m=19456,t=2,p=1$cHJvbWlvLWZpeHR1cmUtMg$\
             6YmxtxK27KA23llUagJFRMdjZIXuZwOCCY+XMUqggf0",
        ),
        (
            "sixty-four characters: the length any new password may have.....",
            "$argon2id$v=19$m=19456,t=2,p=1$/////////////////////w$\
             rhUkbpg/tvMqks50P45x1tNvc7Pu8G76ujHVsXGZORI",
        ),
    ];

    #[test]
    fn hashes_stored_before_the_switch_verify_and_both_implementations_make_them() {
        use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier};
        let mut scratch = Scratch::new();
        let mut old = Implementation::RustCrypto.worker();
        for (password, stored) in STORED {
            let salt_b64 = stored.split('$').nth(4).unwrap();
            let salt = argon2_rust::decode_string(stored, Algorithm::Argon2id)
                .unwrap()
                .salt;
            // The old implementation made this string from this salt, and the new one makes it
            // too: the same PHC string both ways.
            let made_before = rust_crypto::argon2()
                .hash_password(
                    password.as_bytes(),
                    &argon2::password_hash::SaltString::from_b64(salt_b64).unwrap(),
                )
                .unwrap()
                .to_string();
            assert_eq!(made_before, stored);
            assert_eq!(
                ARGON2ID.hash_encoded(password.as_bytes(), &salt).unwrap(),
                stored
            );
            // The new implementation verifies it, and so does the old one.
            let wrong = format!("{password} ");
            assert!(scratch.verify(stored, password), "{stored}");
            assert!(!scratch.verify(stored, &wrong));
            assert!(old.verify(stored, password));
            assert!(!old.verify(stored, &wrong));
            let parsed = PasswordHash::new(stored).unwrap();
            assert!(
                rust_crypto::argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            );
        }
    }

    #[test]
    fn fresh_hashes_of_either_implementation_verify_with_the_other() {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let password = "correct horse battery staple";
        for maker in Implementation::ALL {
            let phc = maker.worker().hash(password).unwrap();
            assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
            for checker in Implementation::ALL {
                let mut worker = checker.worker();
                let (made, checked) = (maker.name(), checker.name());
                assert!(worker.verify(&phc, password), "{made} → {checked}");
                assert!(!worker.verify(&phc, "correct horse battery stapler"));
            }
        }
        // And a hash of the server's goes through RustCrypto's own verifier.
        let phc = hash_blocking(password).unwrap();
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            rust_crypto::argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        );
    }

    fn hash_with(
        algorithm: Algorithm,
        version: Version,
        params: argon2_rust::params::ParamsBuilder,
        salt: &[u8],
    ) -> String {
        Argon2::new(algorithm, version, params.build().unwrap())
            .hash_encoded(b"pw", salt)
            .unwrap()
    }

    #[test]
    fn hashes_of_another_variant_version_cost_or_size_are_refused() {
        let salt = [7u8; SALT_BYTES];
        let baseline = || PARAMS.to_builder();
        let (id, v13) = (Algorithm::Argon2id, Version::V0x13);
        let v16 = hash_with(id, Version::V0x10, baseline(), &salt);
        let others = [
            hash_with(Algorithm::Argon2i, v13, baseline(), &salt),
            hash_with(Algorithm::Argon2d, v13, baseline(), &salt),
            // Without `$v=`, a hash is of version 0x10.
            v16.replace("$v=16", ""),
            v16,
            hash_with(id, v13, baseline().passes(1), &salt),
            hash_with(id, v13, baseline().memory(Memory::kib(8192)), &salt),
            hash_with(id, v13, baseline().memory(Memory::kib(2 * 19_456)), &salt),
            hash_with(id, v13, baseline().lanes(2), &salt),
            hash_with(id, v13, baseline().tag_len(TagLen::bytes(16)), &salt),
            hash_with(id, v13, baseline(), &salt[..8]),
        ];
        let mut scratch = Scratch::new();
        assert!(scratch.verify(&hash_with(id, v13, baseline(), &salt), "pw"));
        let taken = scratch.reserved_blocks();
        for phc in &others {
            // A well-formed hash of the right password, and still refused.
            let d = argon2_rust::decode_phc(phc).unwrap();
            let reference = Argon2::new(d.algorithm, d.version, d.params);
            assert_eq!(reference.verify(b"pw", &d.salt, &d.hash), Ok(()), "{phc}");
            assert!(!scratch.verify(phc, "pw"), "{phc} was accepted");
            assert!(!verify_blocking(phc, "pw"), "{phc} was accepted");
            assert!(
                !Implementation::RustCrypto.worker().verify(phc, "pw"),
                "{phc}"
            );
        }
        assert_eq!(
            scratch.reserved_blocks(),
            taken,
            "no stored hash grows the memory"
        );
        assert!(!scratch.verify(&"$argon2id$".repeat(100), "pw"));
    }

    #[test]
    fn a_worker_takes_its_memory_once_and_reuses_it() {
        let mut scratch = Scratch::new();
        assert_eq!(
            scratch.reserved_blocks(),
            0,
            "nothing before the first hash"
        );
        let phc = scratch.hash("correct horse battery staple").unwrap();
        let taken = scratch.reserved_blocks();
        assert!(taken >= MEMORY_KIB as usize, "{taken} blocks of 1 KiB");
        assert!(scratch.verify(&phc, "correct horse battery staple"));
        assert!(!scratch.verify(&phc, "correct horse battery stapler"));
        assert!(scratch.verify(&phc, "correct horse battery staple"));
        assert_eq!(scratch.reserved_blocks(), taken, "the memory is reused");
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
        // hash (and of the hashes stored before the switch), so checking it costs what checking a
        // user's password costs.
        assert!(
            dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy}"
        );
        let decode = |phc: &str| argon2_rust::decode_string(phc, Algorithm::Argon2id).unwrap();
        let (parsed, user, stored) = (
            decode(dummy.as_str()),
            decode(real.as_str()),
            decode(STORED[0].1),
        );
        assert_eq!((parsed.version, parsed.params), (Version::V0x13, PARAMS));
        assert_eq!(
            (
                parsed.params.memory_kib(),
                parsed.params.passes(),
                parsed.params.lanes()
            ),
            (MEMORY_KIB, ITERATIONS, PARALLELISM)
        );
        assert_eq!(parsed.params, user.params);
        assert_eq!(parsed.params, stored.params);
        assert_eq!(parsed.salt.len(), user.salt.len());
        assert_eq!(parsed.salt.len(), stored.salt.len());
        assert_eq!(parsed.hash.len(), user.hash.len());

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
