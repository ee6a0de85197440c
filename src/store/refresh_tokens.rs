//! Refresh tokens, stored as hashes, rotated on every use, with reuse detection per family.

use chrono::{DateTime, Utc};
use tracing::instrument;

use super::{Store, StoreError, Timestamp, on_db};

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and `new_hash` replaces it in the same family.
    Rotated { user_id: i64 },
    /// The token had already been used: the whole family is revoked now.
    ReuseDetected,
    /// Unknown, revoked, expired, or its user is disabled.
    Rejected,
}

/// A stored token and what rotation needs to know of it and its user.
#[derive(Debug, sqlx::FromRow)]
struct TokenRow {
    id: i64,
    user_id: i64,
    family: String,
    expires_at: Timestamp,
    used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    disabled: bool,
}

impl Store {
    #[instrument(
        name = "db.insert_refresh_token",
        skip_all,
        fields(user_id),
        err(level = "debug")
    )]
    pub async fn insert_refresh_token(
        &self,
        user_id: i64,
        family: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "INSERT INTO refresh_tokens (user_id, family, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(family)
            .bind(token_hash)
            .bind(Timestamp(expires_at))
            .bind(now)
            .execute(writer)
            .await?;
            Ok(())
        })
    }

    /// Spends the token with `old_hash` and stores `new_hash` in its family, atomically.
    #[instrument(name = "db.rotate_refresh_token", skip_all, err(level = "debug"))]
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, dialect| {
            let mut tx = writer.begin_with(dialect.begin_write()).await?;
            let found: Option<TokenRow> =
                sqlx::query_as(dialect.pick(
                    "SELECT t.id, t.user_id, t.family, t.expires_at, t.used_at, t.revoked_at, u.disabled \
                     FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
                    "SELECT t.id, t.user_id, t.family, t.expires_at, t.used_at, t.revoked_at, u.disabled \
                     FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 FOR UPDATE OF t",
                ))
                .bind(old_hash)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(TokenRow {
                id,
                user_id,
                family,
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
            if expires_at <= now || disabled {
                return Ok(Rotation::Rejected);
            }
            sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (user_id, family, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(&family)
            .bind(new_hash)
            .bind(Timestamp(new_expires_at))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Rotation::Rotated { user_id })
        })
    }

    /// Revokes one token (logout). Unknown tokens are ignored.
    #[instrument(name = "db.revoke_refresh_token", skip_all, err(level = "debug"))]
    pub async fn revoke_refresh_token(&self, token_hash: &str) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .bind(now)
            .execute(writer)
            .await?;
            Ok(())
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
