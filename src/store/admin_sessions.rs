//! The staff console's sessions and per-user preferences (`/admin`).
//!
//! A session row is keyed by the SHA-256 hash of the cookie's random id (a database leak gives
//! no usable cookie), carries the session's CSRF token, and is valid only while unexpired,
//! unrevoked and its user enabled: [`Store::find_admin_session`] checks all three and reads the
//! user's current role in one statement, on every request.

use chrono::{DateTime, Utc};
use tracing::instrument;

use super::{Store, StoreError, Timestamp, on_db};
use crate::domain::user::{Email, User};

/// A live console session: who, and the token its forms must echo.
#[derive(Debug, Clone)]
pub struct AdminSession {
    /// The signed-in user, with their role as of this request.
    pub user: User,
    /// The per-session CSRF token.
    pub csrf_token: String,
    /// When the session ends at the latest.
    pub expires_at: DateTime<Utc>,
}

type SessionRow = (i64, String, String, bool, Timestamp, String, Timestamp);

impl Store {
    /// Stores a new session for `user_id`, valid until `expires_at`.
    #[instrument(
        name = "db.create_admin_session",
        skip_all,
        fields(user_id),
        err(level = "debug")
    )]
    pub async fn create_admin_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "INSERT INTO admin_sessions (id_hash, user_id, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(now)
            .bind(Timestamp(expires_at))
            .execute(writer)
            .await?;
            Ok(())
        })
    }

    /// The live session whose id hashes to `id_hash`: unexpired, unrevoked, its user enabled.
    #[instrument(name = "db.find_admin_session", skip_all, err(level = "debug"))]
    pub async fn find_admin_session(&self, id_hash: &str) -> Result<Option<AdminSession>, StoreError> {
        let now = Timestamp::now();
        on_db!(self, |reader, _writer, _dialect| {
            let row: Option<SessionRow> = sqlx::query_as(
                "SELECT u.id, u.email, u.role, u.disabled, u.created_at, s.csrf_token, s.expires_at \
                 FROM admin_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
                 AND u.disabled = FALSE",
            )
            .bind(id_hash)
            .bind(now)
            .fetch_optional(reader)
            .await?;
            let Some((id, email, role, disabled, created_at, csrf_token, expires_at)) = row else {
                return Ok(None);
            };
            let corrupt = |what: &str| StoreError::Corrupt(format!("user {id}: {what}"));
            Ok(Some(AdminSession {
                user: User {
                    id,
                    email: Email::parse(&email).map_err(|_| corrupt("email"))?,
                    role: role.parse().map_err(|_| corrupt("role"))?,
                    disabled,
                    created_at: created_at.0,
                },
                csrf_token,
                expires_at: expires_at.0,
            }))
        })
    }

    /// Ends a session (sign-out); an unknown or already ended one is left alone.
    #[instrument(name = "db.revoke_admin_session", skip_all, err(level = "debug"))]
    pub async fn revoke_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "UPDATE admin_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL",
            )
            .bind(id_hash)
            .bind(now)
            .execute(writer)
            .await?;
            Ok(())
        })
    }

    /// Deletes sessions that expired before `before` (revoked ones go when they expire too);
    /// returns how many.
    #[instrument(name = "db.purge_admin_sessions", skip_all, err(level = "debug"))]
    pub async fn purge_admin_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        on_db!(self, |_reader, writer, _dialect| {
            let done = sqlx::query("DELETE FROM admin_sessions WHERE expires_at < $1")
                .bind(Timestamp(before))
                .execute(writer)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// The product list columns `user_id` chose, if they ever chose.
    #[instrument(name = "db.admin_columns", skip_all, fields(user_id), err(level = "debug"))]
    pub async fn admin_columns(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            Ok(
                sqlx::query_scalar("SELECT columns FROM admin_prefs WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(reader)
                    .await?,
            )
        })
    }

    /// Keeps `user_id`'s choice of product list columns.
    #[instrument(
        name = "db.set_admin_columns",
        skip_all,
        fields(user_id),
        err(level = "debug")
    )]
    pub async fn set_admin_columns(&self, user_id: i64, columns: &str) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "INSERT INTO admin_prefs (user_id, columns, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET columns = excluded.columns, updated_at = excluded.updated_at",
            )
            .bind(user_id)
            .bind(columns)
            .bind(now)
            .execute(writer)
            .await?;
            Ok(())
        })
    }
}
