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

/// The stored value of a user who cannot log in with a password.
pub const UNUSABLE_PASSWORD: &str = "!";

impl Hasher {
    pub fn new(threads: usize) -> Self {
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
        self.submit(Job::Hash(password.to_string(), reply)).await?;
        answer
            .await
            .map_err(|_| Error::Internal("password hashing thread stopped".into()))?
    }

    /// True when `password` matches `stored`. With `stored == None` (no
    /// such user) it verifies against a dummy hash and returns false.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let (stored, real) = match stored {
            Some(s) if s != UNUSABLE_PASSWORD => (s.to_string(), true),
            _ => (self.dummy.as_ref().clone(), false),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Verify(password.to_string(), stored, reply))
            .await?;
        let ok = answer
            .await
            .map_err(|_| Error::Internal("password hashing thread stopped".into()))?;
        Ok(ok && real)
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
/// tripled the p99 of a list request). Linux gives each thread its own nice
/// value; elsewhere this does nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread, no pointers.
        let done = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 10)
        };
        if done != 0 {
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
        let h = Hasher::new(2);
        let stored = h.hash("s3cret-pass").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("s3cret-pass", Some(&stored)).await.unwrap());
        assert!(!h.verify("S3cret-pass", Some(&stored)).await.unwrap());
        assert!(!h.verify("anything", None).await.unwrap());
        assert!(!h.verify("!", Some(UNUSABLE_PASSWORD)).await.unwrap());
    }
}
