//! Password rules (Django's four validators) and argon2id hashing kept off
//! the async workers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::{Error, Result};
use crate::config::Config;

/// Django's list of 20,000 common passwords (BSD licence), lower-cased.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .collect()
});

/// What a new password must satisfy; all of it is configurable.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    pub check_common: bool,
    pub check_similarity: bool,
}

impl PasswordPolicy {
    pub fn from_config(cfg: &Config) -> Self {
        PasswordPolicy {
            min_length: cfg.password_min_length,
            max_length: cfg.password_max_length,
            check_common: cfg.password_check_common,
            check_similarity: cfg.password_check_similarity,
        }
    }

    /// `Ok` when the password keeps every rule; otherwise the broken rules
    /// as a validation error on `field`.
    pub fn check(&self, field: &str, password: &str, attributes: &[(&str, &str)]) -> Result<()> {
        let problems = self.problems(password, attributes);
        if problems.is_empty() {
            return Ok(());
        }
        let mut errors = super::FieldErrors::new();
        errors.extend(field, problems);
        Err(Error::Validation(errors))
    }

    /// Every rule the password breaks, in Django's order and wording.
    /// `attributes` are the user's (verbose name, value) pairs that the
    /// password must not resemble.
    pub fn problems(&self, password: &str, attributes: &[(&str, &str)]) -> Vec<String> {
        let mut problems = Vec::new();
        let length = password.chars().count();
        if self.check_similarity
            && let Some(name) = too_similar(password, attributes)
        {
            problems.push(format!("The password is too similar to the {name}."));
        }
        if length < self.min_length {
            problems.push(format!(
                "This password is too short. It must contain at least {} character{}.",
                self.min_length,
                if self.min_length == 1 { "" } else { "s" }
            ));
        }
        if length > self.max_length {
            problems.push(format!(
                "This password is too long. It must contain at most {} characters.",
                self.max_length
            ));
        }
        if self.check_common && COMMON_PASSWORDS.contains(password.trim().to_lowercase().as_str()) {
            problems.push("This password is too common.".into());
        }
        if !password.is_empty() && password.chars().all(|c| c.is_numeric()) {
            problems.push("This password is entirely numeric.".into());
        }
        problems
    }
}

/// Django's `UserAttributeSimilarityValidator` (max similarity 0.7): the
/// verbose name of the first attribute the password resembles.
fn too_similar<'a>(password: &str, attributes: &[(&'a str, &str)]) -> Option<&'a str> {
    const MAX_SIMILARITY: f64 = 0.7;
    let password = password.to_lowercase();
    let pwd_len = password.chars().count();
    for (name, value) in attributes {
        if value.is_empty() {
            continue;
        }
        let value = value.to_lowercase();
        let mut parts: Vec<&str> = value
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .collect();
        parts.push(&value);
        for part in parts {
            let part_len = part.chars().count();
            // Django skips parts far shorter than the password: they cannot
            // reach the threshold and the comparison would be wasted.
            if pwd_len >= 10 * part_len && (part_len as f64) < MAX_SIMILARITY / 2.0 * pwd_len as f64
            {
                continue;
            }
            if quick_ratio(&password, part) >= MAX_SIMILARITY {
                return Some(name);
            }
        }
    }
    None
}

/// Python's `SequenceMatcher.quick_ratio`: 2 * (shared characters, as
/// multisets) / (total length).
fn quick_ratio(a: &str, b: &str) -> f64 {
    let total = a.chars().count() + b.chars().count();
    if total == 0 {
        return 1.0;
    }
    let mut counts = std::collections::HashMap::new();
    for c in b.chars() {
        *counts.entry(c).or_insert(0i32) += 1;
    }
    let mut matches = 0;
    for c in a.chars() {
        if let Some(n) = counts.get_mut(&c)
            && *n > 0
        {
            *n -= 1;
            matches += 1;
        }
    }
    2.0 * matches as f64 / total as f64
}

/// Hashes and verifies passwords on a few dedicated threads (one per
/// core by default): each argon2id hash holds 19 MiB and ~40 ms of a core,
/// so a login flood queues here instead of starving the async workers, and
/// only these threads ever hold hashing memory (tokio's blocking pool would
/// spread it over many threads' allocator arenas).
#[derive(Clone)]
pub struct Hasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// A real hash of a random password, verified against when the email is
    /// unknown so that a miss costs the same time as a wrong password.
    dummy: Arc<String>,
    counters: Arc<HashCounters>,
    /// How long a request waits for its hash, queue included, before it is
    /// answered 503: past that the server is saturated, and a client told to
    /// come back is better off than one left hanging.
    wait_limit: std::time::Duration,
}

/// What the hashing threads have done (for `/metrics`): the thread pool
/// bounds how many hashes run at once, and `max_in_flight` shows it held.
#[derive(Default)]
struct HashCounters {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    total: AtomicU64,
}

impl HashCounters {
    fn run<T>(&self, work: impl FnOnce() -> T) -> T {
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Ordering::Relaxed);
        let out = work();
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        out
    }
}

/// A snapshot of the hashing counters.
pub struct HashStats {
    pub in_flight: usize,
    pub max_in_flight: usize,
    pub total: u64,
}

enum Job {
    Hash(String, tokio::sync::oneshot::Sender<Result<String>>),
    Verify(String, String, tokio::sync::oneshot::Sender<bool>),
}

impl Job {
    /// Its request stopped waiting for the answer.
    fn abandoned(&self) -> bool {
        match self {
            Job::Hash(_, reply) => reply.is_closed(),
            Job::Verify(_, _, reply) => reply.is_closed(),
        }
    }
}

/// The stored value of a user who cannot log in with a password.
pub const UNUSABLE_PASSWORD: &str = "!";

impl Hasher {
    pub fn new(threads: usize, wait_limit: std::time::Duration) -> Self {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(1024);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        let counters = Arc::new(HashCounters::default());
        for n in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let counters = Arc::clone(&counters);
            let spawned = std::thread::Builder::new()
                .name(format!("roster-hash-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut memory = Memory::new();
                    loop {
                        // The lock is held only while taking a job, not while hashing.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // Given up on by its request (past the wait limit):
                            // hashing it now would only delay the next one.
                            Ok(job) if job.abandoned() => {}
                            Ok(Job::Hash(pw, reply)) => {
                                let _ = reply.send(counters.run(|| hash_now(&pw, &mut memory)));
                            }
                            Ok(Job::Verify(pw, stored, reply)) => {
                                let _ = reply
                                    .send(counters.run(|| verify_now(&pw, &stored, &mut memory)));
                            }
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        let random = uuid::Uuid::new_v4().to_string();
        let dummy = hash_now(&random, &mut Memory::new()).unwrap_or_default();
        Hasher {
            jobs,
            dummy: Arc::new(dummy),
            counters,
            wait_limit,
        }
    }

    pub fn stats(&self) -> HashStats {
        HashStats {
            in_flight: self.counters.in_flight.load(Ordering::Relaxed),
            max_in_flight: self.counters.max_in_flight.load(Ordering::Relaxed),
            total: self.counters.total.load(Ordering::Relaxed),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.run(Job::Hash(password.to_string(), reply), answer)
            .await?
    }

    /// True when `password` matches `stored`. With `stored == None` (no
    /// such user) it verifies against a dummy hash and returns false.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let (stored, real) = match stored {
            Some(s) if s != UNUSABLE_PASSWORD => (s.to_string(), true),
            _ => (self.dummy.as_ref().clone(), false),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let ok = self
            .run(Job::Verify(password.to_string(), stored, reply), answer)
            .await?;
        Ok(ok && real)
    }

    /// Queues `job` and waits for its answer, both within the wait limit.
    async fn run<T>(&self, job: Job, answer: tokio::sync::oneshot::Receiver<T>) -> Result<T> {
        let queued_and_answered = async {
            self.submit(job).await?;
            answer
                .await
                .map_err(|_| Error::Internal("password hashing thread stopped".into()))
        };
        tokio::time::timeout(self.wait_limit, queued_and_answered)
            .await
            .unwrap_or_else(|_| Err(Error::Unavailable("password hashing is saturated".into())))
    }

    /// Queues a job; when the queue is full, waits for room without
    /// blocking an async worker.
    async fn submit(&self, mut job: Job) -> Result<()> {
        loop {
            match self.jobs.try_send(job) {
                Ok(()) => return Ok(()),
                Err(std::sync::mpsc::TrySendError::Full(back)) => {
                    job = back;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    return Err(Error::Internal("password hashing threads stopped".into()));
                }
            }
        }
    }
}

/// Makes the calling thread yield the CPU to request handling: under a
/// login flood the hashing threads may occupy every core, and at the same
/// priority they would slow every other request (a flood on a 2-core machine
/// tripled the p99 of a list request).
///
/// On Linux the thread runs under `SCHED_IDLE`: it gets the CPU only when
/// nothing else wants it, and a request that wakes up takes the core at
/// once. A nice value is not enough under the kernel's EEVDF scheduler: at
/// nice 10 the two hashing threads still held about a sixth of the core and
/// a flood tripled `me`'s p99 (0.8 to 4.7 ms); under `SCHED_IDLE` it went to
/// 1.4 ms. The price, chosen: while other requests keep the server saturated,
/// a login waits for a gap (about 1.5 s per login with `me` at full load, 0.1
/// s at nice 10). Where the policy is refused, nice 10; elsewhere nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread; `param` outlives
        // the call that reads it.
        let done = unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 || {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 10) == 0
            }
        };
        if !done {
            tracing::debug!("could not lower the priority of a hashing thread");
        }
    }
}

/// The working memory of one hashing thread (19 MiB at the default cost),
/// kept for its next hash. Allocating and freeing it for every hash made
/// glibc keep the freed blocks: thirty logins grew the process by 200 MiB.
struct Memory(Vec<Block>);

impl Memory {
    fn new() -> Self {
        Memory(Vec::new())
    }

    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

/// A new argon2id hash of `password` (a PHC string) with a random salt.
fn hash_now(password: &str, memory: &mut Memory) -> Result<String> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Internal(format!("password hashing failed: {e}"));
    let params = Params::default();
    let salt_bytes: [u8; 16] = rand::random();
    let salt = Salt::new(&salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.blocks(&params),
        )
        .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// True when `password` matches the PHC string `stored` (compared in
/// constant time), with the algorithm, version and cost `stored` names.
fn verify_now(password: &str, stored: &str, memory: &mut Memory) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        &salt,
        &mut out,
        memory.blocks(&params),
    );
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes made with reused memory are ordinary argon2id PHC strings:
    /// the argon2 crate's own API verifies them, and hashes it made (all
    /// hashes stored before the memory was reused) verify here.
    #[test]
    fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = Memory::new();
        let ours = hash_now("correct horse", &mut memory).unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        assert!(verify_now("correct horse", &ours, &mut memory));
        assert!(!verify_now("correct horsE", &ours, &mut memory));
        let theirs = Argon2::default()
            .hash_password(b"battery staple")
            .unwrap()
            .to_string();
        assert!(verify_now("battery staple", &theirs, &mut memory));
        assert!(!verify_now("battery stapler", &theirs, &mut memory));
        assert!(!verify_now("x", "not a hash", &mut memory));
        assert!(!verify_now("x", UNUSABLE_PASSWORD, &mut memory));
    }

    fn policy() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            max_length: 128,
            check_common: true,
            check_similarity: true,
        }
    }

    #[test]
    fn django_rules_in_django_order() {
        let p = policy();
        assert_eq!(
            p.problems("1234", &[]),
            vec![
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ]
        );
        assert!(
            p.problems("password", &[])
                .contains(&"This password is too common.".to_string())
        );
        assert!(p.problems("correct horse battery", &[]).is_empty());
        assert_eq!(p.problems(&"x".repeat(129), &[]).len(), 1);
    }

    #[test]
    fn similar_to_email_is_refused() {
        let p = policy();
        let problems = p.problems("janedoe1984", &[("email", "janedoe1984@example.com")]);
        assert_eq!(problems, vec!["The password is too similar to the email."]);
        assert!(
            p.problems("Tr0ub4dor&3-zebra", &[("email", "jane@example.com")])
                .is_empty()
        );
    }

    #[test]
    fn quick_ratio_matches_python() {
        // SequenceMatcher(a="abcd", b="bcde").quick_ratio() == 0.75
        assert!((quick_ratio("abcd", "bcde") - 0.75).abs() < 1e-9);
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let h = Hasher::new(2, std::time::Duration::from_secs(30));
        let stored = h.hash("s3cret-pass").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("s3cret-pass", Some(&stored)).await.unwrap());
        assert!(!h.verify("S3cret-pass", Some(&stored)).await.unwrap());
        assert!(!h.verify("anything", None).await.unwrap());
        assert!(!h.verify("!", Some(UNUSABLE_PASSWORD)).await.unwrap());
    }

    /// Past the wait limit a request gets 503 (Unavailable) instead of
    /// waiting on, and the jobs it gave up are dropped, not hashed.
    #[tokio::test]
    async fn a_saturated_hasher_answers_unavailable_and_drops_abandoned_jobs() {
        let h = Hasher::new(1, std::time::Duration::from_millis(1));
        let stored = h.dummy.as_ref().clone();
        let attempt = || h.verify("s3cret-pass", Some(&stored));
        let outcomes = tokio::join!(attempt(), attempt(), attempt(), attempt());
        for outcome in [outcomes.0, outcomes.1, outcomes.2, outcomes.3] {
            assert!(matches!(outcome, Err(Error::Unavailable(_))), "{outcome:?}");
        }
        // The first job may have started before its request gave up (one
        // hash takes milliseconds); the three queued behind it must not run.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for _ in 0..50 {
            if h.stats().in_flight == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(h.stats().in_flight, 0);
        assert!(
            h.stats().total <= 1,
            "hashed {} abandoned jobs",
            h.stats().total
        );
    }

    /// The hashing threads run under SCHED_IDLE (policy 5 in field 41 of
    /// /proc's stat), so that a login flood leaves the core to requests.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_give_way_to_requests() {
        let h = Hasher::new(2, std::time::Duration::from_secs(30));
        h.hash("s3cret-pass").await.unwrap();
        let mut policies = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap().path();
            let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            if !name.starts_with("roster-hash-") {
                continue;
            }
            let stat = std::fs::read_to_string(task.join("stat")).unwrap();
            // Fields after the command's closing parenthesis start at field 3.
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            policies.push(after_name.split(' ').nth(41 - 3).unwrap().to_string());
        }
        assert!(
            policies.len() >= 2,
            "hashing threads not found: {policies:?}"
        );
        assert!(policies.iter().all(|p| p == "5"), "policies: {policies:?}");
    }
}
