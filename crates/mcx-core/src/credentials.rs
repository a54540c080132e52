//! Password credentials: Argon2id PHC strings (RFC 9106, the PHC string format), verified
//! in constant work whether or not the user exists.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher as _};

/// A password as an Argon2id PHC string with the crate's recommended parameters and a
/// random salt: what `mcx passwd` prints and a configuration holds.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// A password hashed with explicit Argon2id costs (memory in KiB, passes). Cheaper than
/// the default only where many log-ons are the point and the credentials are throwaway
/// (`mcx bench`); a deployment uses [`hash_password`].
pub fn hash_password_with_cost(
    password: &str,
    memory_kib: u32,
    passes: u32,
) -> Result<String, String> {
    let params = argon2::Params::new(memory_kib, passes, 1, None)
        .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `text` is an Argon2 PHC string this build can verify.
pub fn is_password_hash(text: &str) -> bool {
    text.starts_with("$argon2") && PasswordHash::new(text).is_ok()
}

/// Runs password verifications off the async workers, on one thread per CPU. An
/// Argon2id verification holds its memory cost (19 MiB with the default parameters) for
/// its whole run, and verifications beyond the CPUs only wait for a core anyway: run all
/// at once on tokio's blocking pool (up to 512 threads, each keeping its allocator's
/// memory), a log-on storm of 500 users took 7.5 GB and gained no throughput. A few
/// threads of our own, each reusing its memory, bound it; a log-on waits here only as
/// long as it would have waited for a core. (A thread pool crate would do the same;
/// this is the whole of it.)
pub struct PasswordChecks {
    jobs: std::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl PasswordChecks {
    /// `threads` verification threads (at least one); they end when this is dropped.
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("mcx-password-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
                            queue.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the sender is gone
                        }
                    }
                });
            if spawned.is_err() && i > 0 {
                break; // fewer threads than asked is still correct
            }
        }
        Self { jobs }
    }

    /// One verification thread per CPU of this machine.
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs `check` on a verification thread; `None` if it could not run.
    pub async fn run<R: Send + 'static>(
        &self,
        check: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(check());
        });
        self.jobs.send(job).ok()?;
        answered.await.ok()
    }
}

/// Whether `password` matches the PHC string `hash`. A malformed hash matches nothing.
/// The Argon2 memory is this thread's, kept for its next verification: allocating 19 MiB
/// afresh for each one left the allocator holding ten of them per process.
pub fn verify_password(hash: &str, password: &str) -> bool {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    BLOCKS.with(|blocks| verify_with_memory(&parsed, password.as_bytes(), &mut blocks.borrow_mut()))
}

/// What `argon2`'s `verify_password` does (the algorithm, version and costs from the PHC
/// string, the output compared in constant time), with the caller's memory blocks.
fn verify_with_memory(
    hash: &PasswordHash,
    password: &[u8],
    blocks: &mut Vec<argon2::Block>,
) -> bool {
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = argon2::Params::try_from(hash) else {
        return false;
    };
    blocks.resize(params.block_count(), argon2::Block::default());
    let mut buffer = [0u8; 64];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password, salt.as_ref(), out, &mut blocks[..])
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    argon2::password_hash::phc::Output::new(out).is_ok_and(|computed| computed == *expected)
}

/// Spends the work of one verification against a fixed hash: an unknown user costs what
/// a known one does, so the answer's timing does not tell who exists.
pub fn verify_nobody(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    // Hashing a constant with the default parameters cannot fail.
    let hash = DUMMY.get_or_init(|| hash_password("mcx: no such user").unwrap_or_default());
    let _ = verify_password(hash, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_checks_run_at_once_than_allowed() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let checks = std::sync::Arc::new(PasswordChecks::new(2));
        let running = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (checks, running, most) = (checks.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    checks
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(10));
                            running.fetch_sub(1, Ordering::SeqCst);
                            true
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Some(true), "every check ran");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at a time, never more");
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(is_password_hash(&hash));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horse "));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(!is_password_hash("alice"));
        assert_ne!(
            hash,
            hash_password("correct horse").expect("hashes"),
            "salted"
        );
    }

    #[test]
    fn other_costs_and_variants_verify_as_the_argon2_crate_does() {
        use argon2::PasswordVerifier as _;
        // One thread, several costs in turn: the kept memory is resized each time.
        for (memory_kib, passes) in [(8, 1), (1024, 2), (64, 3)] {
            let hash = hash_password_with_cost("pw", memory_kib, passes).expect("hashes");
            assert!(verify_password(&hash, "pw"), "{hash}");
            assert!(!verify_password(&hash, "pW"), "{hash}");
        }
        // Argon2i and Argon2d strings, with the crate's own verifier as the reference.
        for algorithm in [argon2::Algorithm::Argon2i, argon2::Algorithm::Argon2d] {
            let params = argon2::Params::new(64, 1, 1, Some(24)).expect("params");
            let hash = Argon2::new(algorithm, argon2::Version::V0x10, params)
                .hash_password(b"pw")
                .expect("hashes")
                .to_string();
            let parsed = PasswordHash::new(&hash).expect("parses");
            assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
            assert!(verify_password(&hash, "pw"), "{hash}");
            assert!(!verify_password(&hash, "px"), "{hash}");
        }
        // A hash whose output was tampered with matches nothing.
        let hash = hash_password_with_cost("pw", 8, 1).expect("hashes");
        let tampered = format!("{}A", &hash[..hash.len() - 1]);
        if tampered != hash {
            assert!(!verify_password(&tampered, "pw"));
        }
    }
}
