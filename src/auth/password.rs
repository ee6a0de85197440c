//! Password hashing with argon2id, off the async threads.

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};

use crate::domain::user::Password;

/// argon2id with OWASP's recommended minimum: 19 MiB of memory, 2 passes, 1 lane
/// (about 30 ms per hash on one core of a current server in a release build).
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn hasher() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| HashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes and verifies passwords; holds a dummy hash so a login for an unknown email costs the
/// same as one for a known email.
#[derive(Clone)]
pub struct Passwords {
    dummy_hash: std::sync::Arc<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords")
    }
}

impl Passwords {
    pub async fn new() -> Result<Self, HashError> {
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).map_err(|e| HashError(e.to_string()))?;
        let dummy = Password::offered(random.iter().map(|b| format!("{b:02x}")).collect());
        Ok(Passwords {
            dummy_hash: std::sync::Arc::new(hash(dummy).await?),
        })
    }

    /// The PHC string of `password` under a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        hash(password).await
    }

    /// Checks `password` against `stored` (a PHC string), or against the dummy hash when there
    /// is no such user; the answer is false then, after the same work.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> bool {
        let (hash, real) = match stored {
            Some(hash) => (hash, true),
            None => (self.dummy_hash.as_ref().clone(), false),
        };
        let matched = tokio::task::spawn_blocking(move || {
            hasher().is_ok_and(|argon| {
                argon
                    .verify_password(password.expose().as_bytes(), hash.as_str())
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        matched && real
    }
}

async fn hash(password: Password) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || {
        hasher()?
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .await
    .map_err(|e| HashError(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let passwords = Passwords::new().await.unwrap();
        let hash = passwords
            .hash(Password::offered("correct horse".into()))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(
            passwords
                .verify(Password::offered("correct horse".into()), Some(hash.clone()))
                .await
        );
        assert!(
            !passwords
                .verify(Password::offered("correct horsf".into()), Some(hash))
                .await
        );
        assert!(!passwords.verify(Password::offered("anything".into()), None).await);
        assert!(
            !passwords
                .verify(Password::offered("x".into()), Some("not a hash".into()))
                .await
        );
    }
}
