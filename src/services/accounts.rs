//! Registration, login, token refresh and logout, and resolving a bearer token to a user.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use tracing::instrument;

use crate::auth::password::{HashError, Passwords};
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::{AccessTokens, TokenError, hash_refresh_token, new_refresh_token};
use crate::domain::user::{Email, Password, Role, User};
use crate::metrics;
use crate::store::refresh_tokens::{Lifetime, Logout, Rotation};
use crate::store::{Store, StoreError};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong password, unknown email or disabled account: one answer for all three.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failures; retry after this.
    #[error("too many attempts")]
    Throttled(Duration),
    /// A missing, malformed, expired, revoked or replayed token.
    #[error("invalid token")]
    InvalidToken,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed or was overloaded.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A token could not be issued.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// What a successful login or refresh hands out.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The bearer token.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The token that buys the next pair, once.
    pub refresh_token: String,
}

/// Accounts and sessions: hashing, tokens, throttling and the store behind them.
#[derive(Clone, Debug)]
pub struct AuthService {
    store: Store,
    passwords: Passwords,
    tokens: AccessTokens,
    throttle: LoginThrottle,
    sessions: Lifetime,
}

impl AuthService {
    /// `refresh_ttl` is one refresh token's lifetime; `session_max_age` bounds a whole family of
    /// them from its login, however often it is refreshed.
    pub fn new(
        store: Store,
        passwords: Passwords,
        tokens: AccessTokens,
        throttle: LoginThrottle,
        refresh_ttl: Duration,
        session_max_age: Duration,
    ) -> Self {
        let days = |d: Duration, default: i64| {
            chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(default))
        };
        AuthService {
            store,
            passwords,
            tokens,
            throttle,
            sessions: Lifetime {
                token: days(refresh_ttl, 30),
                family: days(session_max_age, 90),
            },
        }
    }

    /// The password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// The login and registration throttle.
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
        if self.store.find_credentials(email).await?.is_some() {
            return Ok(false);
        }
        match self.create_user(email, password, Role::Admin).await {
            Ok(_) => Ok(true),
            // Another instance created it between our look-up and insert.
            Err(AuthError::Store(StoreError::Conflict(_))) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Registers a customer from `client`: counted per client address before the password is
    /// hashed, so a flood of registrations is refused (429) before it costs anything.
    pub async fn register(
        &self,
        email: &Email,
        password: Password,
        client: IpAddr,
    ) -> Result<User, AuthError> {
        self.throttle
            .reserve_registration(client)
            .await
            .map_err(AuthError::Throttled)?;
        self.create_user(email, password, Role::Customer).await
    }

    /// The email is parsed before anything else: a malformed one (non-ASCII such as `İ` or the
    /// Kelvin sign, NUL, over 254 characters) is the same 401 as a wrong password without
    /// touching the database or a per-email count, and counts as a failure for the client. A
    /// well-formed one reserves an attempt for the email and the client before the password is
    /// checked; only a success (or an attempt that could not be evaluated) gives it back.
    #[instrument(skip_all, fields(client = %client))]
    pub async fn login(
        &self,
        email: &str,
        password: Password,
        client: IpAddr,
    ) -> Result<(User, TokenPair), AuthError> {
        let user = self.verify_login(email, password, client).await?;
        let pair = self.issue_pair(&user).await?;
        Ok((user, pair))
    }

    /// The user `email` and `password` belong to, under the same throttle and with the same
    /// answers as [`Self::login`], without issuing tokens: the staff console keeps its own
    /// session (`store::admin_sessions`).
    #[instrument(skip_all, fields(client = %client))]
    pub async fn verify_login(
        &self,
        email: &str,
        password: Password,
        client: IpAddr,
    ) -> Result<User, AuthError> {
        let email = Email::parse(email.trim()).ok();
        let reservation = match self.throttle.reserve_login(email.as_ref(), client).await {
            Ok(reservation) => reservation,
            Err(wait) => {
                metrics::login("throttled");
                return Err(AuthError::Throttled(wait));
            }
        };
        let Some(email) = email else {
            metrics::login("failure");
            return Err(AuthError::InvalidCredentials);
        };
        match self.check_password(&email, password).await {
            Ok(user) => {
                self.throttle.release(reservation).await;
                metrics::login("success");
                Ok(user)
            }
            Err(AuthError::InvalidCredentials) => {
                metrics::login("failure");
                Err(AuthError::InvalidCredentials)
            }
            Err(other) => {
                // Not evaluated (database down, hashing overloaded): not a failed guess.
                self.throttle.release(reservation).await;
                Err(other)
            }
        }
    }

    async fn check_password(&self, email: &Email, password: Password) -> Result<User, AuthError> {
        let (user, hash) = match self.store.find_credentials(email).await? {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        // Always one argon2 verification, so timing does not reveal whether the email exists.
        let password_ok = self.passwords.verify(password, hash).await?;
        match user {
            Some(user) if password_ok && !user.disabled => Ok(user),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Rotates a refresh token: the presented one is spent, a new pair is issued. A token used
    /// twice revokes its whole family (RFC 9700 §4.14.2).
    #[instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let (new_token, new_hash) = new_refresh_token()?;
        match self
            .store
            .rotate_refresh_token(&hash_refresh_token(refresh_token), &new_hash, self.sessions)
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

    /// Ends the login the token belongs to: its whole family is revoked, so a copy of any of
    /// its tokens (a thief's rotated one included) stops working. A spent token presented here
    /// is reuse, and revokes the family just the same.
    #[instrument(skip_all)]
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        match self
            .store
            .revoke_refresh_family(&hash_refresh_token(refresh_token))
            .await?
        {
            Logout::SpentTokenReused => {
                tracing::warn!("logout with a spent refresh token: reuse, its family is revoked");
            }
            Logout::Revoked | Logout::Unknown => {}
        }
        Ok(())
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

    /// The first pair of a login: a new family starts now.
    async fn issue_pair(&self, user: &User) -> Result<TokenPair, AuthError> {
        let now = Utc::now();
        let access_token = self.tokens.issue(user, now)?;
        let (refresh_token, hash) = new_refresh_token()?;
        let family = uuid::Uuid::new_v4().simple().to_string();
        self.store
            .insert_refresh_token(user.id, &family, &hash, self.sessions)
            .await?;
        Ok(TokenPair {
            access_token,
            expires_in: self.tokens.ttl.num_seconds(),
            refresh_token,
        })
    }
}
