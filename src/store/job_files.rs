//! Files kept in the database, in chunks, so that any instance can read them: an import's
//! upload (written as the request streams in) and an export's output (written by a worker).

use std::time::Duration;

use tracing::instrument;

use super::{Store, StoreError, Timestamp, on_db};

/// A stored file's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// The file's id.
    pub id: i64,
    /// Its media type.
    pub content_type: String,
    /// Its size once complete.
    pub bytes: i64,
}

impl Store {
    /// A new, empty file, owned by `job` (or by none yet: an upload in progress).
    pub async fn create_file(&self, content_type: &str, job: Option<i64>) -> Result<i64, StoreError> {
        on_db!(self, |_reader, writer, _dialect| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO job_files (job_id, content_type, bytes, created_at) VALUES ($1, $2, 0, $3) RETURNING id",
            )
            .bind(job)
            .bind(content_type)
            .bind(Timestamp::now())
            .fetch_one(writer)
            .await?;
            Ok(id)
        })
    }

    /// Appends chunk `seq` (0, 1, ...) to a file and adds its length to the file's size.
    #[instrument(
        name = "db.append_chunk",
        skip_all,
        fields(file_id, seq),
        err(level = "debug")
    )]
    pub async fn append_chunk(&self, file_id: i64, seq: i64, data: &[u8]) -> Result<(), StoreError> {
        on_db!(self, |_reader, writer, dialect| {
            let mut tx = writer.begin_with(dialect.begin_write()).await?;
            sqlx::query("INSERT INTO job_file_chunks (file_id, seq, data) VALUES ($1, $2, $3)")
                .bind(file_id)
                .bind(seq)
                .bind(data)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE job_files SET bytes = bytes + $1 WHERE id = $2")
                .bind(data.len() as i64)
                .bind(file_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Chunk `seq` of a file; `None` past its end.
    pub async fn read_chunk(&self, file_id: i64, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let data: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT data FROM job_file_chunks WHERE file_id = $1 AND seq = $2")
                    .bind(file_id)
                    .bind(seq)
                    .fetch_optional(reader)
                    .await?;
            Ok(data)
        })
    }

    /// Deletes a file and its chunks.
    pub async fn delete_file(&self, file_id: i64) -> Result<(), StoreError> {
        self.delete_files("SELECT $1", file_id).await
    }

    /// Deletes the files `select` (a statement of one parameter, `key`) names, chunks first.
    async fn delete_files(&self, select: &'static str, key: i64) -> Result<(), StoreError> {
        on_db!(self, |_reader, writer, _dialect| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM job_file_chunks WHERE file_id IN ({select})"
            )))
            .bind(key)
            .execute(writer)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM job_files WHERE id IN ({select})"
            )))
            .bind(key)
            .execute(writer)
            .await?;
            Ok(())
        })
    }

    /// The newest file a job owns.
    pub async fn job_file(&self, job_id: i64) -> Result<Option<StoredFile>, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let row: Option<(i64, String, i64)> = sqlx::query_as(
                "SELECT id, content_type, bytes FROM job_files WHERE job_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(job_id)
            .fetch_optional(reader)
            .await?;
            Ok(row.map(|(id, content_type, bytes)| StoredFile {
                id,
                content_type,
                bytes,
            }))
        })
    }

    /// Deletes every file a job owns (an export starting over).
    pub async fn delete_job_files(&self, job_id: i64) -> Result<(), StoreError> {
        self.delete_files("SELECT id FROM job_files WHERE job_id = $1", job_id)
            .await
    }

    /// Deletes uploads no job took within a day (their request died) and the files of export
    /// jobs finished longer than `export_ttl` ago. How many files went.
    pub async fn purge_job_files(&self, export_ttl: Duration) -> Result<u64, StoreError> {
        let now = Timestamp::now().0;
        let orphan_before = Timestamp(now - chrono::Duration::days(1));
        let export_before = Timestamp(now - chrono::Duration::from_std(export_ttl).unwrap_or_default());
        on_db!(self, |_reader, writer, _dialect| {
            let doomed = "SELECT f.id FROM job_files f LEFT JOIN jobs j ON j.id = f.job_id \
                 WHERE (f.job_id IS NULL AND f.created_at < $1) \
                 OR (j.kind = 'export' AND j.finished_at < $2)";
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM job_file_chunks WHERE file_id IN ({doomed})"
            )))
            .bind(orphan_before)
            .bind(export_before)
            .execute(writer)
            .await?;
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM job_files WHERE id IN ({doomed})"
            )))
            .bind(orphan_before)
            .bind(export_before)
            .execute(writer)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
