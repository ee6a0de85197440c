//! Password hashing with argon2id, off the async threads, a bounded number at once.
//!
//! Each hash needs 19 MiB of working memory. Allocating it per hash made glibc raise its mmap
//! threshold after the first free, so later buffers came from the heap arenas and were never
//! given back: 64 concurrent registrations left the process at 1.2 GB. Instead at most
//! `TIENDA_HASH_CONCURRENCY` hashes run at once, each in one of as many buffers that are
//! allocated on first use and then reused for the life of the process, so hashing memory is
//! bounded by `concurrency x 19 MiB` and never grows past it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordVerifier as _, Version};

use crate::domain::user::Password;
use crate::limits::{Gate, Overloaded};

/// argon2id with OWASP's recommended minimum: 19 MiB of memory, 2 passes, 1 lane
/// (about 30 ms per hash on one core of a current server in a release build).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes over memory.
pub const PASSES: u32 = 2;
/// Argon2id lanes: one, since each hash runs on one blocking thread.
pub const LANES: u32 = 1;
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// How long a login or registration waits for a hashing slot before a 503.
pub const HASH_WAIT: Duration = Duration::from_secs(2);

/// Why a hash could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for [`HASH_WAIT`].
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    /// Hashing itself failed (bad parameters or a stored hash that does not parse).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

fn failed(error: impl std::fmt::Display) -> HashError {
    HashError::Failed(error.to_string())
}

fn params() -> Result<Params, HashError> {
    Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(failed)
}

/// Working memory for one hash at a time; kept for reuse instead of freed.
type Buffer = Box<[Block]>;

/// The gate and the buffers behind it. A permit of the gate entitles its holder to one buffer,
/// so there are never more buffers than slots.
struct Pool {
    gate: Gate,
    buffers: Mutex<Vec<Buffer>>,
}

impl Pool {
    fn take(&self) -> Buffer {
        let spare = self.buffers.lock().ok().and_then(|mut buffers| buffers.pop());
        spare.unwrap_or_else(|| vec![Block::new(); MEMORY_KIB as usize].into_boxed_slice())
    }

    fn give_back(&self, buffer: Buffer) {
        if let Ok(mut buffers) = self.buffers.lock() {
            buffers.push(buffer);
        }
    }

    /// Runs `work` on a blocking thread with a buffer, once a slot is free (or fails after
    /// [`HASH_WAIT`]).
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.gate.enter().await?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut buffer = pool.take();
            let result = work(&mut buffer);
            pool.give_back(buffer);
            drop(permit);
            result
        })
        .await
        .map_err(failed)
    }
}

/// Hashes and verifies passwords; holds a dummy hash so a login for an unknown email costs the
/// same as one for a known email.
#[derive(Clone)]
pub struct Passwords {
    pool: Arc<Pool>,
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

impl Passwords {
    /// At most `concurrency` hashes at once; callers wait up to [`HASH_WAIT`] for a slot.
    pub async fn new(concurrency: usize) -> Result<Self, HashError> {
        Self::with_wait(concurrency, HASH_WAIT).await
    }

    /// Like `new`, with how long a caller waits for a hashing slot.
    pub async fn with_wait(concurrency: usize, wait: Duration) -> Result<Self, HashError> {
        let pool = Arc::new(Pool {
            gate: Gate::new(concurrency, wait),
            buffers: Mutex::new(Vec::new()),
        });
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).map_err(failed)?;
        let dummy: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dummy_hash = pool
            .run(move |memory| hash_into(memory, dummy.as_bytes()))
            .await??;
        Ok(Passwords {
            pool,
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    /// The PHC string of `password` under a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.pool
            .run(move |memory| hash_into(memory, password.expose().as_bytes()))
            .await?
    }

    /// Checks `password` against `stored` (a PHC string), or against the dummy hash when there
    /// is no such user; the answer is false then, after the same work. Fails only when no
    /// hashing slot freed in time.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, HashError> {
        let (hash, real) = match stored {
            Some(hash) => (hash, true),
            None => (self.dummy_hash.as_ref().clone(), false),
        };
        let matched = self
            .pool
            .run(move |memory| verify_in(memory, password.expose().as_bytes(), &hash))
            .await?;
        Ok(matched && real)
    }
}

fn hash_into(memory: &mut [Block], password: &[u8]) -> Result<String, HashError> {
    let params = params()?;
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(failed)?;
    let mut output = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut output, memory)
        .map_err(failed)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&output).map_err(failed)?),
    };
    Ok(phc.to_string())
}

/// Recomputes the hash with the stored parameters and salt in `memory`, and compares in
/// constant time. A stored hash needing more memory than a pooled buffer (never written by
/// this server) is verified with memory of its own.
fn verify_in(memory: &mut [Block], password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    if params.block_count() > memory.len() {
        tracing::warn!(
            m_cost = params.m_cost(),
            "a stored password hash needs more memory than the pool's buffers"
        );
        return argon.verify_password(password, &parsed).is_ok();
    }
    let mut output = vec![0u8; expected.len()];
    if argon
        .hash_password_into_with_memory(password, salt.as_ref(), &mut output, memory)
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&output).is_ok_and(|computed| computed == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let passwords = Passwords::new(2).await.unwrap();
        let hash = passwords
            .hash(Password::offered("correct horse".into()))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let verify = |password: &str, stored: Option<String>| {
            let passwords = passwords.clone();
            let password = Password::offered(password.into());
            async move { passwords.verify(password, stored).await.unwrap() }
        };
        assert!(verify("correct horse", Some(hash.clone())).await);
        assert!(!verify("correct horsf", Some(hash.clone())).await);
        assert!(!verify("anything", None).await);
        assert!(!verify("x", Some("not a hash".into())).await);
        // A hash written by the crate's own allocating API verifies too, and ours verifies there.
        use argon2::PasswordHasher as _;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().unwrap());
        let theirs = argon.hash_password(b"correct horse").unwrap().to_string();
        assert!(verify("correct horse", Some(theirs)).await);
        assert!(argon.verify_password(b"correct horse", &hash as &str).is_ok());
        // Smaller parameters than the pool's buffers fit in them.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let small = small.hash_password(b"pw-small-1").unwrap().to_string();
        assert!(verify("pw-small-1", Some(small.clone())).await);
        assert!(!verify("pw-small-2", Some(small)).await);
    }

    #[tokio::test]
    async fn a_busy_pool_turns_callers_away_after_the_wait() {
        let passwords = Passwords::with_wait(1, Duration::from_millis(1)).await.unwrap();
        let busy: Vec<_> = (0..4)
            .map(|n| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.hash(Password::offered(format!("pw-{n}"))).await })
            })
            .collect();
        let mut overloaded = 0;
        for task in busy {
            match task.await.unwrap() {
                Ok(_) => {}
                Err(HashError::Overloaded(_)) => overloaded += 1,
                Err(other) => panic!("{other}"),
            }
        }
        assert!(
            overloaded >= 1,
            "four hashes at once through one slot with no wait"
        );
        assert!(passwords.pool.buffers.lock().unwrap().len() <= 1);
    }
}
