//! Registration, login, token refresh and logout, and resolving a bearer token to a user.

use std::time::Duration;

use chrono::Utc;
use tracing::instrument;

use crate::auth::password::{HashError, Passwords};
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::{AccessTokens, TokenError, hash_refresh_token, new_refresh_token};
use crate::domain::user::{Email, Password, Role, User};
use crate::observability;
use crate::store::refresh_tokens::Rotation;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong password, unknown email or disabled account: one answer for all three.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins")]
    Throttled(Duration),
    /// A missing, malformed, expired, revoked or replayed token.
    #[error("invalid token")]
    InvalidToken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// What a successful login or refresh hands out.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
}

#[derive(Clone, Debug)]
pub struct AuthService {
    store: Store,
    passwords: Passwords,
    tokens: AccessTokens,
    throttle: LoginThrottle,
    refresh_ttl: chrono::Duration,
}

impl AuthService {
    pub fn new(
        store: Store,
        passwords: Passwords,
        tokens: AccessTokens,
        throttle: LoginThrottle,
        refresh_ttl: Duration,
    ) -> Self {
        AuthService {
            store,
            passwords,
            tokens,
            throttle,
            refresh_ttl: chrono::Duration::from_std(refresh_ttl).unwrap_or(chrono::Duration::days(30)),
        }
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    pub fn throttle(&self) -> &LoginThrottle {
        &self.throttle
    }

    /// Creates an account with `role`.
    pub async fn create_user(
        &self,
        email: &Email,
        password: Password,
        role: Role,
    ) -> Result<User, AuthError> {
        let hash = self.passwords.hash(password).await?;
        Ok(self.store.create_user(email, &hash, role).await?)
    }

    /// Creates the first admin unless an account with that email exists (never overwritten).
    pub async fn ensure_admin(&self, email: &Email, password: Password) -> Result<bool, AuthError> {
        if self.store.find_credentials(email.as_str()).await?.is_some() {
            return Ok(false);
        }
        match self.create_user(email, password, Role::Admin).await {
            Ok(_) => Ok(true),
            // Another instance created it between our look-up and insert.
            Err(AuthError::Store(StoreError::Conflict(_))) => Ok(false),
            Err(other) => Err(other),
        }
    }

    #[instrument(skip_all, fields(client = %client))]
    pub async fn login(
        &self,
        email: &str,
        password: Password,
        client: &str,
    ) -> Result<(User, TokenPair), AuthError> {
        let email_key = email.trim().to_ascii_lowercase();
        if let Some(wait) = self.throttle.blocked_for(&email_key, client).await {
            observability::login("throttled");
            return Err(AuthError::Throttled(wait));
        }
        let found = self.store.find_credentials(email.trim()).await?;
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        // Always one argon2 verification, so timing does not reveal whether the email exists.
        let password_ok = self.passwords.verify(password, hash).await;
        match user {
            Some(user) if password_ok && !user.disabled => {
                self.throttle.clear_email(&email_key).await;
                observability::login("success");
                let pair = self.issue_pair(&user, None).await?;
                Ok((user, pair))
            }
            _ => {
                self.throttle.record_failure(&email_key, client).await;
                observability::login("failure");
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Rotates a refresh token: the presented one is spent, a new pair is issued. A token used
    /// twice revokes its whole family (RFC 9700 §4.14.2).
    #[instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let (new_token, new_hash) = new_refresh_token()?;
        let expires = Utc::now() + self.refresh_ttl;
        match self
            .store
            .rotate_refresh_token(&hash_refresh_token(refresh_token), &new_hash, expires)
            .await?
        {
            Rotation::Rotated { user_id } => {
                let user = self.store.get_user(user_id).await?;
                let access_token = self.tokens.issue(&user, Utc::now())?;
                Ok(TokenPair {
                    access_token,
                    expires_in: self.tokens.ttl.num_seconds(),
                    refresh_token: new_token,
                })
            }
            Rotation::ReuseDetected => {
                tracing::warn!("refresh token reuse detected: its family is revoked");
                Err(AuthError::InvalidToken)
            }
            Rotation::Rejected => Err(AuthError::InvalidToken),
        }
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        Ok(self
            .store
            .revoke_refresh_token(&hash_refresh_token(refresh_token))
            .await?)
    }

    /// The enabled user a bearer token speaks for, with their current role.
    pub async fn authenticate(&self, token: &str) -> Result<User, AuthError> {
        let (id, _role_when_issued) = self.tokens.verify(token).map_err(|_| AuthError::InvalidToken)?;
        match self.store.get_user(id).await {
            Ok(user) if !user.disabled => Ok(user),
            Ok(_) | Err(StoreError::NotFound) => Err(AuthError::InvalidToken),
            Err(other) => Err(other.into()),
        }
    }

    async fn issue_pair(&self, user: &User, family: Option<String>) -> Result<TokenPair, AuthError> {
        let now = Utc::now();
        let access_token = self.tokens.issue(user, now)?;
        let (refresh_token, hash) = new_refresh_token()?;
        let family = family.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        self.store
            .insert_refresh_token(user.id, &family, &hash, now + self.refresh_ttl)
            .await?;
        Ok(TokenPair {
            access_token,
            expires_in: self.tokens.ttl.num_seconds(),
            refresh_token,
        })
    }
}
