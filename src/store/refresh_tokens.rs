//! Refresh tokens, stored as hashes, rotated on every use, with reuse detection per family.
//! A family is one login's chain of rotations; it lives at most [`Lifetime::family`] from the
//! login, however often it is refreshed.

use chrono::{DateTime, Duration, Utc};
use tracing::instrument;

use super::idempotency::write_transaction;
use super::{Store, StoreError, Timestamp, for_update, on_db};

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and `new_hash` replaces it in the same family.
    Rotated {
        /// Whose token it was.
        user_id: i64,
    },
    /// The token had already been used: the whole family is revoked now.
    ReuseDetected,
    /// Unknown, revoked, expired, or its user is disabled.
    Rejected,
}

/// What presenting a refresh token at logout led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logout {
    /// The token's family is revoked.
    Revoked,
    /// The token had already been used: reuse, and its family is revoked all the same.
    SpentTokenReused,
    /// No such token.
    Unknown,
}

/// How long refresh tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// One token, from its issue.
    pub token: Duration,
    /// A whole family, from its login (`TIENDA_SESSION_MAX_DAYS`).
    pub family: Duration,
}

impl Lifetime {
    /// When a token issued `now` in a family started at `family_started` expires: never past the
    /// family's end.
    fn expiry(&self, now: Timestamp, family_started: Timestamp) -> Timestamp {
        Timestamp((now.0 + self.token).min(family_started.0 + self.family))
    }
}

/// A stored token and what rotation needs to know of it and its user.
#[derive(Debug, sqlx::FromRow)]
struct TokenRow {
    id: i64,
    user_id: i64,
    family: String,
    family_started_at: Timestamp,
    expires_at: Timestamp,
    used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    disabled: bool,
}

/// The [`TokenRow`] of a token hash, then `$suffix`. The family's start falls back to the
/// token's own creation for a row that somehow lacks it.
macro_rules! select_token {
    ($suffix:literal) => {
        concat!(
            "SELECT t.id, t.user_id, t.family, COALESCE(t.family_started_at, t.created_at) AS family_started_at, ",
            "t.expires_at, t.used_at, t.revoked_at, u.disabled ",
            "FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
            $suffix
        )
    };
}

impl Store {
    #[instrument(
        name = "db.insert_refresh_token",
        skip_all,
        fields(user_id),
        err(level = "debug")
    )]
    /// Stores the first token of a new family (a login), which starts now.
    pub async fn insert_refresh_token(
        &self,
        user_id: i64,
        family: &str,
        token_hash: &str,
        lifetime: Lifetime,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "INSERT INTO refresh_tokens (user_id, family, token_hash, expires_at, created_at, family_started_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(user_id)
            .bind(family)
            .bind(token_hash)
            .bind(lifetime.expiry(now, now))
            .bind(now)
            .execute(writer)
            .await?;
            Ok(())
        })
    }

    /// Spends the token with `old_hash` and stores `new_hash` in its family, atomically. The
    /// new token expires with the family at the latest.
    #[instrument(name = "db.rotate_refresh_token", skip_all, err(level = "debug"))]
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        lifetime: Lifetime,
    ) -> Result<Rotation, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let found: Option<TokenRow> = sqlx::query_as(for_update!(dialect, select_token!(""), of "t"))
                .bind(old_hash)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(TokenRow {
                id,
                user_id,
                family,
                family_started_at,
                expires_at,
                used_at,
                revoked_at,
                disabled,
            }) = found
            else {
                return Ok(Rotation::Rejected);
            };
            if revoked_at.is_some() {
                return Ok(Rotation::Rejected);
            }
            if used_at.is_some() {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
                )
                .bind(&family)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(Rotation::ReuseDetected);
            }
            let family_ends = Timestamp(family_started_at.0 + lifetime.family);
            if expires_at <= now || family_ends <= now || disabled {
                return Ok(Rotation::Rejected);
            }
            sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (user_id, family, token_hash, expires_at, created_at, family_started_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user_id)
            .bind(&family)
            .bind(new_hash)
            .bind(lifetime.expiry(now, family_started_at))
            .bind(now)
            .bind(family_started_at)
            .execute(&mut *tx)
            .await?;
            Ok(Rotation::Rotated { user_id })
        })
    }

    /// Revokes the whole family of the token with `token_hash` (logout).
    #[instrument(name = "db.revoke_refresh_family", skip_all, err(level = "debug"))]
    pub async fn revoke_refresh_family(&self, token_hash: &str) -> Result<Logout, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let found: Option<(String, Option<Timestamp>)> = sqlx::query_as(for_update!(
                dialect,
                "SELECT family, used_at FROM refresh_tokens WHERE token_hash = $1"
            ))
            .bind(token_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((family, used_at)) = found else {
                return Ok(Logout::Unknown);
            };
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL")
                .bind(&family)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            Ok(if used_at.is_some() {
                Logout::SpentTokenReused
            } else {
                Logout::Revoked
            })
        })
    }

    /// Deletes tokens that expired before `before`; returns how many.
    #[instrument(name = "db.purge_refresh_tokens", skip_all, err(level = "debug"))]
    pub async fn purge_refresh_tokens(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        on_db!(self, |_reader, writer, _dialect| {
            let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                .bind(Timestamp(before))
                .execute(writer)
                .await?;
            Ok(done.rows_affected())
        })
    }
}
