//! Access tokens (JWT, HS256, pinned) and opaque refresh tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::user::{Role, User};

/// Seconds of clock skew tolerated on `exp`.
pub const LEEWAY_SECS: u64 = 5;

/// What an access token says: who, with which role, until when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The user's role when the token was issued.
    pub role: String,
    /// Issued at, in seconds since the epoch.
    pub iat: i64,
    /// Expires at, in seconds since the epoch.
    pub exp: i64,
    /// The token's unique id.
    pub jti: String,
}

/// Why a token could not be issued or was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token could not be signed.
    #[error("cannot sign a token: {0}")]
    Sign(String),
    /// The token is malformed, expired or not signed by us.
    #[error("invalid token")]
    Invalid,
}

/// Signs and verifies access tokens with the server secret.
#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// How long an access token lives.
    pub ttl: chrono::Duration,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessTokens {{ ttl: {:?} }}", self.ttl)
    }
}

impl AccessTokens {
    /// Keys derived from the server secret; tokens live for `ttl`.
    pub fn new(secret: &[u8], ttl: std::time::Duration) -> Result<Self, TokenError> {
        let encoding = EncodingKey::from_secret(secret).map_err(|e| TokenError::Sign(e.to_string()))?;
        let decoding = DecodingKey::from_secret(secret).map_err(|e| TokenError::Sign(e.to_string()))?;
        // Only HS256 is accepted: a token claiming `none`, RS256 or ES256 fails verification.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| TokenError::Sign(e.to_string()))?;
        Ok(AccessTokens {
            encoding,
            decoding,
            validation,
            ttl,
        })
    }

    /// A signed access token for `user`, issued at `now`.
    pub fn issue(&self, user: &User, now: DateTime<Utc>) -> Result<String, TokenError> {
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role.as_str().to_owned(),
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// The user id a valid token speaks for.
    pub fn verify(&self, token: &str) -> Result<(i64, Role), TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let id = data.claims.sub.parse::<i64>().map_err(|_| TokenError::Invalid)?;
        let role = data
            .claims
            .role
            .parse::<Role>()
            .map_err(|_| TokenError::Invalid)?;
        Ok((id, role))
    }
}

/// A new opaque refresh token (256 random bits, base64url) and the hash to store.
pub fn new_refresh_token() -> Result<(String, String), TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Sign(e.to_string()))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    Ok((token, hash))
}

/// What the database keeps of a refresh token: its SHA-256, hex. The token has 256 bits of
/// entropy, so a fast hash is enough (no salt or stretching is needed against guessing).
pub fn hash_refresh_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::Email;

    fn user() -> User {
        User {
            id: 7,
            email: Email::parse("a@example.com").unwrap(),
            role: Role::Staff,
            disabled: false,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_token_round_trips_and_carries_its_claims() {
        let tokens = AccessTokens::new(&[7; 32], std::time::Duration::from_secs(900)).unwrap();
        let token = tokens.issue(&user(), Utc::now()).unwrap();
        assert_eq!(tokens.verify(&token).unwrap(), (7, Role::Staff));
        let other = AccessTokens::new(&[8; 32], std::time::Duration::from_secs(900)).unwrap();
        assert!(other.verify(&token).is_err());
    }

    #[test]
    fn expired_tokens_fail_after_the_leeway() {
        let tokens = AccessTokens::new(&[7; 32], std::time::Duration::from_secs(60)).unwrap();
        let token = tokens
            .issue(
                &user(),
                Utc::now() - chrono::Duration::seconds(60 + LEEWAY_SECS as i64 + 2),
            )
            .unwrap();
        assert!(tokens.verify(&token).is_err());
        let token = tokens
            .issue(&user(), Utc::now() - chrono::Duration::seconds(62))
            .unwrap();
        assert!(tokens.verify(&token).is_ok(), "within the leeway");
    }

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let (a, hash_a) = new_refresh_token().unwrap();
        let (b, _) = new_refresh_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_a, hash_refresh_token(&a));
    }

    /// The stored hash is plain SHA-256 in lower-case hex: the test vectors of FIPS 180-2
    /// (appendix B) and the empty string.
    #[test]
    fn refresh_token_hashes_are_sha256_in_hex() {
        for (input, digest) in [
            (
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                "",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ] {
            assert_eq!(hash_refresh_token(input), digest, "{input:?}");
        }
    }
}
