//! Users: accounts, roles and the last-admin rule.

use sqlx::FromRow;
use tracing::instrument;

use super::error::is_unique_violation;
use super::idempotency::write_transaction;
use super::{Conflict, Store, StoreError, Timestamp, for_update, on_db};
use crate::domain::user::{Email, Role, User, UserChange};

const EMAIL_KEY: &str = "users_email_key";

#[derive(Debug, FromRow)]
struct UserRow {
    id: i64,
    email: String,
    role: String,
    disabled: bool,
    created_at: Timestamp,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: {what}", row.id));
        Ok(User {
            id: row.id,
            email: Email::parse(&row.email).map_err(|_| corrupt("email"))?,
            role: row.role.parse().map_err(|_| corrupt("role"))?,
            disabled: row.disabled,
            created_at: row.created_at.0,
        })
    }
}

fn map_write_error(error: sqlx::Error) -> StoreError {
    if is_unique_violation(&error, EMAIL_KEY, "users") {
        StoreError::Conflict(Conflict::DuplicateEmail)
    } else {
        error.into()
    }
}

impl Store {
    /// Inserts a user; a taken email is a conflict.
    #[instrument(name = "db.create_user", skip_all, err(level = "debug"))]
    pub async fn create_user(
        &self,
        email: &Email,
        password_hash: &str,
        role: Role,
    ) -> Result<User, StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            let row: UserRow = sqlx::query_as(
                "INSERT INTO users (email, password_hash, role, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, FALSE, $4, $4) RETURNING id, email, role, disabled, created_at",
            )
            .bind(email.as_str())
            .bind(password_hash)
            .bind(role.as_str())
            .bind(now)
            .fetch_one(writer)
            .await
            .map_err(map_write_error)?;
            User::try_from(row)
        })
    }

    /// The user with this email (any case) and their password hash. Emails are ASCII, and the
    /// comparison folds ASCII case only: the probe is lowered here, and the stored side by
    /// `lower()`, which on ASCII text is the same on both engines whatever the locale (no `İ`
    /// or Kelvin sign can reach the query to be folded into an ASCII letter).
    #[instrument(name = "db.find_credentials", skip_all, err(level = "debug"))]
    pub async fn find_credentials(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        let email = email.normalized();
        on_db!(self, |reader, _writer, _dialect| {
            let row: Option<(i64, String)> =
                sqlx::query_as("SELECT id, password_hash FROM users WHERE lower(email) = $1")
                    .bind(&email)
                    .fetch_optional(reader)
                    .await?;
            match row {
                None => Ok(None),
                Some((id, hash)) => Ok(Some((self.get_user(id).await?, hash))),
            }
        })
    }

    /// A user by id.
    #[instrument(name = "db.get_user", skip_all, fields(user_id = id), err(level = "debug"))]
    pub async fn get_user(&self, id: i64) -> Result<User, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let row: Option<UserRow> =
                sqlx::query_as("SELECT id, email, role, disabled, created_at FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(reader)
                    .await?;
            row.ok_or(StoreError::NotFound).and_then(User::try_from)
        })
    }

    /// One offset page of users by id, and the number of users.
    #[instrument(name = "db.list_users", skip_all, err(level = "debug"))]
    pub async fn list_users(&self, limit: u64, offset: u64) -> Result<(Vec<User>, u64), StoreError> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let offset = offset.min(i64::MAX as u64) as i64;
        on_db!(self, |reader, _writer, _dialect| {
            let rows: Vec<UserRow> = sqlx::query_as(
                "SELECT id, email, role, disabled, created_at FROM users ORDER BY id LIMIT $1 OFFSET $2",
            )
            .bind(limit)
            .bind(offset)
            .fetch_all(reader)
            .await?;
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
                .fetch_one(reader)
                .await?;
            let users = rows.into_iter().map(User::try_from).collect::<Result<_, _>>()?;
            Ok((users, total.max(0) as u64))
        })
    }

    /// Applies an admin's change. Refuses (409) to leave the shop without an enabled admin; the
    /// admins are locked while counting, so two concurrent demotions cannot both pass.
    #[instrument(name = "db.update_user", skip_all, fields(user_id = id), err(level = "debug"))]
    pub async fn update_user(&self, id: i64, change: &UserChange) -> Result<User, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let current: Option<UserRow> = sqlx::query_as(for_update!(
                dialect,
                "SELECT id, email, role, disabled, created_at FROM users WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let current = User::try_from(current.ok_or(StoreError::NotFound)?)?;
            let role = change.role.unwrap_or(current.role);
            let disabled = change.disabled.unwrap_or(current.disabled);
            let was_active_admin = current.role == Role::Admin && !current.disabled;
            let stays_active_admin = role == Role::Admin && !disabled;
            if was_active_admin && !stays_active_admin {
                let admins: Vec<i64> = sqlx::query_scalar(for_update!(
                    dialect,
                    "SELECT id FROM users WHERE role = 'admin' AND disabled = FALSE"
                ))
                .fetch_all(&mut *tx)
                .await?;
                if admins.iter().all(|admin| *admin == id) {
                    return Err(StoreError::Conflict(Conflict::LastAdmin));
                }
            }
            let row: UserRow = sqlx::query_as(
                "UPDATE users SET role = $2, disabled = $3, updated_at = $4 WHERE id = $1 \
                 RETURNING id, email, role, disabled, created_at",
            )
            .bind(id)
            .bind(role.as_str())
            .bind(disabled)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if disabled && !current.disabled {
                // A disabled account keeps no way back in.
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                // Nor a way to keep using the staff console.
                sqlx::query(
                    "UPDATE admin_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            User::try_from(row)
        })
    }
}
