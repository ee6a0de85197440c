//! Listing statements end when their request would have. PostgreSQL enforces
//! `statement_timeout` on every pooled connection. SQLite has no such setting, and the sqlx
//! worker thread runs a statement to its end even after the future that asked for it is dropped
//! (the client went away, the request timed out), holding a pooled connection meanwhile: a few
//! expensive requests could starve everyone else. A progress handler interrupts it at its
//! deadline instead.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::query::Query;
use sqlx::{Database, PgPool, Postgres, Sqlite, SqlitePool};

use super::StoreError;

/// SQLite virtual-machine instructions between two looks at the clock: microseconds apart.
const CHECK_EVERY: i32 = 1_000;

/// A pool that runs a statement for at most a given time; past it the statement fails with
/// [`StoreError::Unavailable`].
pub(crate) trait FetchWithin<DB: Database> {
    fn fetch_all_within(
        &self,
        query: Query<'static, DB, DB::Arguments>,
        limit: Duration,
    ) -> impl Future<Output = Result<Vec<DB::Row>, StoreError>> + Send;
}

impl FetchWithin<Postgres> for PgPool {
    /// Every connection of the pool has `statement_timeout` set to the same limit.
    async fn fetch_all_within(
        &self,
        query: Query<'static, Postgres, <Postgres as Database>::Arguments>,
        _limit: Duration,
    ) -> Result<Vec<<Postgres as Database>::Row>, StoreError> {
        Ok(query.fetch_all(self).await?)
    }
}

impl FetchWithin<Sqlite> for SqlitePool {
    async fn fetch_all_within(
        &self,
        query: Query<'static, Sqlite, <Sqlite as Database>::Arguments>,
        limit: Duration,
    ) -> Result<Vec<<Sqlite as Database>::Row>, StoreError> {
        let pool = self.clone();
        let deadline = Instant::now() + limit;
        // A task of its own: when the request is abandoned mid-statement, the task still sees the
        // statement end (at the deadline at the latest) and takes the handler off before the
        // connection goes back to the pool, so no later statement inherits a passed deadline.
        let task = tokio::spawn(async move {
            let mut connection = pool.acquire().await?;
            connection
                .lock_handle()
                .await?
                .set_progress_handler(CHECK_EVERY, move || Instant::now() < deadline);
            let rows = query.fetch_all(&mut *connection).await;
            let removed = match connection.lock_handle().await {
                Ok(mut handle) => {
                    handle.remove_progress_handler();
                    Ok(())
                }
                Err(error) => Err(error),
            };
            if let Err(error) = removed {
                connection.close_on_drop();
                return Err(error.into());
            }
            Ok(rows?)
        });
        task.await
            .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))?
    }
}
