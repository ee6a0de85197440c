//! Idempotency records: the lock a keyed request takes, and the response it leaves to replay.

use std::time::Duration;

use sqlx::FromRow;
use tracing::instrument;

use super::{Store, StoreError, Timestamp, on_db};
use crate::domain::idempotency::{MAX_LIVE_KEYS, RETENTION};

/// An answer as kept for replay: status, the headers that matter, the body's bytes. The store
/// keeps it as it was sent; what it means is the HTTP layer's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body's bytes.
    pub body: Vec<u8>,
}

/// Renders a write's value as the answer to keep; fails only if the value cannot be serialised.
pub type Render<T> = fn(&T) -> Result<StoredResponse, serde_json::Error>;

/// What starting a keyed request found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// No live record: this request now holds the key.
    Started,
    /// The same request was answered before: replay this.
    Replay(StoredResponse),
    /// The key was used for another method, path or body.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
    /// The caller already holds [`MAX_LIVE_KEYS`] live keys; the oldest expires after this long.
    LimitReached(Duration),
}

/// A keyed request's key, to be completed with the answer rendered from the value of the write
/// it guards, inside that write's transaction: the write and its answer commit together or not
/// at all.
pub struct Completion<T> {
    /// The caller the key belongs to.
    pub user_id: i64,
    /// The key as the client sent it.
    pub key: String,
    /// How the write's value becomes the answer.
    pub render: Render<T>,
}

pub(crate) const COMPLETE: &str = "UPDATE idempotency_keys SET state = 'done', status = $3, headers = $4, body = $5, \
     updated_at = $6 WHERE user_id = $1 AND key = $2";

/// The one way a write runs: opens a write transaction `$tx` on the writer of the backend (bound
/// with its [`Dialect`](super::Dialect) to `$dialect`), evaluates `$body` to a
/// `Result<T, StoreError>`, completes `$completion` (an `Option<Completion<T>>`) with the
/// rendered value in the same transaction, then commits. An error or early `return` in `$body`
/// drops the transaction, which rolls it back. A macro, not a method, because the body is
/// compiled once per backend (see `on_db!`).
macro_rules! write_transaction {
    ($store:expr, $completion:expr, |$tx:ident, $dialect:ident| $body:block) => {
        $crate::store::on_db!($store, |_reader, writer, $dialect| {
            let mut $tx = writer.begin_with($dialect.begin_write()).await?;
            let value = {
                let result: Result<_, $crate::store::StoreError> = $body;
                result?
            };
            let completion: Option<$crate::store::idempotency::Completion<_>> = $completion;
            if let Some(completion) = completion {
                let response = (completion.render)(&value).map_err($crate::store::StoreError::Render)?;
                sqlx::query($crate::store::idempotency::COMPLETE)
                    .bind(completion.user_id)
                    .bind(completion.key.as_str())
                    .bind(i32::from(response.status))
                    .bind($crate::store::idempotency::headers_json(&response))
                    .bind(response.body.as_slice())
                    .bind($crate::store::Timestamp::now())
                    .execute(&mut *$tx)
                    .await?;
            }
            $tx.commit().await?;
            Ok(value)
        })
    };
    ($store:expr, |$tx:ident, $dialect:ident| $body:block) => {
        $crate::store::idempotency::write_transaction!($store, None, |$tx, $dialect| $body)
    };
}
pub(crate) use write_transaction;

pub(crate) fn headers_json(response: &StoredResponse) -> String {
    serde_json::to_string(&response.headers).unwrap_or_else(|_| "[]".to_owned())
}

#[derive(Debug, FromRow)]
struct KeyRow {
    fingerprint: String,
    state: String,
    status: Option<i32>,
    headers: Option<String>,
    body: Option<Vec<u8>>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl Store {
    /// Takes the key for a request with `fingerprint`, or says why not. A record past its
    /// retention is replaced; an in-flight one older than `stale_after` (its request died without
    /// finishing) is taken over.
    #[instrument(name = "db.begin_idempotent", skip_all, fields(user_id), err(level = "debug"))]
    pub async fn begin_idempotent(
        &self,
        user_id: i64,
        key: &str,
        fingerprint: &str,
        stale_after: Duration,
    ) -> Result<Begin, StoreError> {
        let now = Timestamp::now();
        let expired_before = Timestamp(now.0 - RETENTION);
        let stale_before = Timestamp(now.0 - chrono::Duration::from_std(stale_after).unwrap_or(RETENTION));
        on_db!(self, |_reader, writer, dialect| {
            let mut tx = writer.begin_with(dialect.begin_write()).await?;
            // Clear a record that no longer counts, then try to take the key.
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 \
                 AND (created_at < $3 OR (state = 'in_flight' AND updated_at < $4))",
            )
            .bind(user_id)
            .bind(key)
            .bind(expired_before)
            .bind(stale_before)
            .execute(&mut *tx)
            .await?;
            let existing: i64 =
                sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE user_id = $1 AND key = $2")
                    .bind(user_id)
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
            if existing == 0 {
                // A new key: the caller's count is checked under a lock on the caller, so
                // concurrent requests cannot each see room for one more. (SQLite's write
                // transaction already excludes every other writer.)
                if dialect == super::Dialect::Postgres {
                    sqlx::query("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                }
                // Rows past retention still count until the hourly purge; a caller at the limit
                // clears its own, when it has any, before the count that decides.
                let count = "SELECT count(*) FROM (SELECT 1 FROM idempotency_keys WHERE user_id = $1 LIMIT $2) AS held";
                let oldest = "SELECT min(created_at) FROM idempotency_keys WHERE user_id = $1";
                let limit = i64::try_from(MAX_LIVE_KEYS).unwrap_or(i64::MAX);
                let mut held: i64 = sqlx::query_scalar(count)
                    .bind(user_id)
                    .bind(limit)
                    .fetch_one(&mut *tx)
                    .await?;
                if held >= limit {
                    let mut first: Option<Timestamp> = sqlx::query_scalar(oldest)
                        .bind(user_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    if first.is_some_and(|t| t < expired_before) {
                        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at < $2")
                            .bind(user_id)
                            .bind(expired_before)
                            .execute(&mut *tx)
                            .await?;
                        held = sqlx::query_scalar(count)
                            .bind(user_id)
                            .bind(limit)
                            .fetch_one(&mut *tx)
                            .await?;
                        first = sqlx::query_scalar(oldest)
                            .bind(user_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    }
                    if held >= limit {
                        tx.commit().await?;
                        let expires = first.map_or(now.0, |t| t.0) + RETENTION;
                        let wait = (expires - now.0).to_std().unwrap_or_default();
                        return Ok(Begin::LimitReached(wait));
                    }
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'in_flight', $4, $4) ON CONFLICT (user_id, key) DO NOTHING",
            )
            .bind(user_id)
            .bind(key)
            .bind(fingerprint)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                tx.commit().await?;
                return Ok(Begin::Started);
            }
            let row: KeyRow = sqlx::query_as(
                "SELECT fingerprint, state, status, headers, body, created_at, updated_at \
                 FROM idempotency_keys WHERE user_id = $1 AND key = $2",
            )
            .bind(user_id)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            let _ = (row.created_at, row.updated_at);
            if row.fingerprint != fingerprint {
                return Ok(Begin::Mismatch);
            }
            if row.state != "done" {
                return Ok(Begin::InFlight);
            }
            let headers: Vec<(String, String)> =
                serde_json::from_str(row.headers.as_deref().unwrap_or("[]")).unwrap_or_default();
            Ok(Begin::Replay(StoredResponse {
                status: row.status.and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
                headers,
                body: row.body.unwrap_or_default(),
            }))
        })
    }

    /// Stores the answer of a keyed request that wrote nothing (a 4xx).
    #[instrument(
        name = "db.complete_idempotent",
        skip_all,
        fields(user_id),
        err(level = "debug")
    )]
    pub async fn complete_idempotent(
        &self,
        user_id: i64,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "UPDATE idempotency_keys SET state = 'done', status = $3, headers = $4, body = $5, updated_at = $6 \
                 WHERE user_id = $1 AND key = $2 AND state = 'in_flight'",
            )
            .bind(user_id)
            .bind(key)
            .bind(i32::from(response.status))
            .bind(headers_json(response))
            .bind(response.body.as_slice())
            .bind(now)
            .execute(writer)
            .await?;
            Ok(())
        })
    }

    /// Releases a key whose request failed on our side (5xx), so a retry can succeed.
    #[instrument(
        name = "db.abandon_idempotent",
        skip_all,
        fields(user_id),
        err(level = "debug")
    )]
    pub async fn abandon_idempotent(&self, user_id: i64, key: &str) -> Result<(), StoreError> {
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_flight'",
            )
            .bind(user_id)
            .bind(key)
            .execute(writer)
            .await?;
            Ok(())
        })
    }

    /// Deletes records past their retention; returns how many.
    #[instrument(name = "db.purge_idempotency_keys", skip_all, err(level = "debug"))]
    pub async fn purge_idempotency_keys(&self) -> Result<u64, StoreError> {
        let before = Timestamp(Timestamp::now().0 - RETENTION);
        on_db!(self, |_reader, writer, _dialect| {
            let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                .bind(before)
                .execute(writer)
                .await?;
            Ok(done.rows_affected())
        })
    }
}
