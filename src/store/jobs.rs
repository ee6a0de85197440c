//! The job queue: a table claimed under a lease. PostgreSQL workers claim with
//! `FOR UPDATE SKIP LOCKED`, so two never take the same job; SQLite has one writer at a time,
//! which serialises claims by itself. Every write a running job makes is fenced by its lease
//! (`lease_owner`): a worker whose lease expired and was taken over cannot commit anything.

use std::time::Duration;

use serde_json::Value;
use sqlx::FromRow;
use tracing::instrument;

use super::idempotency::write_transaction;
use super::outbox::record_some;
use super::{Conflict, Store, StoreError, Timestamp, for_update, on_db};
use crate::domain::job::{Job, JobStatus};
use crate::domain::webhook::EventType;

/// The columns of a job, in the order [`JobRow`] reads them.
macro_rules! job_columns {
    () => {
        "id, kind, status, payload, checkpoint, progress_done, progress_total, attempts, max_attempts, \
         CAST(CASE WHEN cancel_requested THEN 1 ELSE 0 END AS BIGINT) AS cancel_requested, \
         created_by, created_at, started_at, finished_at, result, error"
    };
}

#[derive(Debug, FromRow)]
pub(crate) struct JobRow {
    id: i64,
    kind: String,
    status: String,
    payload: String,
    checkpoint: Option<String>,
    progress_done: i64,
    progress_total: Option<i64>,
    attempts: i64,
    max_attempts: i64,
    cancel_requested: i64,
    created_by: Option<i64>,
    created_at: Timestamp,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    result: Option<String>,
    error: Option<String>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Self, Self::Error> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("job {}: {what}", row.id));
        let json = |text: &Option<String>, what: &str| {
            text.as_deref()
                .map(serde_json::from_str::<Value>)
                .transpose()
                .map_err(|_| corrupt(what))
        };
        Ok(Job {
            id: row.id,
            status: JobStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            payload: serde_json::from_str(&row.payload).map_err(|_| corrupt("payload"))?,
            checkpoint: json(&row.checkpoint, "checkpoint")?,
            result: json(&row.result, "result")?,
            error: json(&row.error, "error")?,
            kind: row.kind,
            progress_done: row.progress_done,
            progress_total: row.progress_total,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            cancel_requested: row.cancel_requested != 0,
            created_by: row.created_by,
            created_at: row.created_at.0,
            started_at: row.started_at.map(|t| t.0),
            finished_at: row.finished_at.map(|t| t.0),
        })
    }
}

/// A job to put on the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Which handler runs it.
    pub kind: &'static str,
    /// What the handler needs (JSON).
    pub payload: Value,
    /// Who asked for it.
    pub created_by: Option<i64>,
    /// Runs allowed before it fails for good.
    pub max_attempts: i64,
    /// A file already stored (an upload) that becomes the job's.
    pub file: Option<i64>,
}

/// The default number of runs a job gets.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;

impl NewJob {
    /// A job of `kind` with `payload`, the default attempts and no file.
    pub fn new(kind: &'static str, payload: Value, created_by: Option<i64>) -> Self {
        NewJob {
            kind,
            payload,
            created_by,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            file: None,
        }
    }
}

pub(crate) const INSERT_JOB: &str = concat!(
    "INSERT INTO jobs (kind, status, payload, max_attempts, run_at, created_by, created_at) \
     VALUES ($1, 'queued', $2, $3, $4, $5, $4) RETURNING ",
    job_columns!()
);

/// Queues a job inside the write transaction `$tx` (so it commits with the change that asked for
/// it, or not at all) and yields it: a future of `Result<JobRow, sqlx::Error>`. Convert with
/// `Job::try_from`.
macro_rules! insert_job {
    ($tx:expr, $new:expr, at: $now:expr) => {
        sqlx::query_as::<_, $crate::store::jobs::JobRow>($crate::store::jobs::INSERT_JOB)
            .bind($new.kind)
            .bind($new.payload.to_string())
            .bind($new.max_attempts)
            .bind($now)
            .bind($new.created_by)
            .fetch_one(&mut *$tx)
    };
}
// For writes that queue a job in their own transaction (webhook deliveries, #17).
#[allow(unused_imports)]
pub(crate) use insert_job;

/// A worker's hold on a running job: its id and the token that fences every write it makes.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The job.
    pub job_id: i64,
    /// Who holds it (unique per run).
    pub owner: String,
    /// How long a renewal holds.
    pub duration: Duration,
}

impl Lease {
    fn until(&self) -> Timestamp {
        let now = Timestamp::now();
        Timestamp(now.0 + chrono::Duration::from_std(self.duration).unwrap_or_default())
    }
}

/// What a batch's progress update found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Units done.
    pub done: i64,
    /// Units in all, when known.
    pub total: Option<i64>,
}

/// Records a running job's progress and checkpoint inside the write transaction `$tx`, renewing
/// its lease; fails with `StoreError::LeaseLost` (rolling the transaction back) when the lease
/// is no longer `$lease`'s. Yields whether a cancel was asked for.
macro_rules! record_progress {
    ($tx:expr, $lease:expr, $progress:expr, $checkpoint:expr) => {
        async {
            let cancel: Option<i64> = sqlx::query_scalar(
                "UPDATE jobs SET progress_done = $1, progress_total = $2, checkpoint = $3, lease_until = $4 \
                 WHERE id = $5 AND lease_owner = $6 AND status = 'running' \
                 RETURNING CAST(CASE WHEN cancel_requested THEN 1 ELSE 0 END AS BIGINT)",
            )
            .bind($progress.done)
            .bind($progress.total)
            .bind($checkpoint.map(|c: &serde_json::Value| c.to_string()))
            .bind($lease.until_pub())
            .bind($lease.job_id)
            .bind($lease.owner.as_str())
            .fetch_optional(&mut *$tx)
            .await?;
            match cancel {
                Some(flag) => Ok::<bool, $crate::store::StoreError>(flag != 0),
                None => Err($crate::store::StoreError::LeaseLost),
            }
        }
    };
}
pub(crate) use record_progress;

impl Lease {
    /// When a renewal made now expires (for `record_progress!`).
    pub(crate) fn until_pub(&self) -> Timestamp {
        self.until()
    }
}

/// Jobs waiting and running, by kind, for the gauges.
#[derive(Debug, Clone, Default)]
pub struct QueueDepth {
    /// (kind, status, count) for `queued` and `running`.
    pub rows: Vec<(String, String, i64)>,
}

/// How a run ends, as the queue records it.
#[derive(Debug, Clone)]
pub enum Finish {
    /// Done, with its result.
    Succeeded(Value),
    /// Failed for good, with the problem and what it did.
    Failed {
        /// The problem object.
        error: Value,
        /// What it did or found.
        result: Option<Value>,
    },
    /// Stopped on request, with what it did.
    Cancelled(Value),
    /// Failed this time: queued again after `after`, or failed for good when out of attempts.
    Retry {
        /// The problem object kept while it waits.
        error: Value,
        /// The backoff.
        after: Duration,
    },
    /// Interrupted by a shutdown: queued again at once, the attempt not counted.
    Release,
}

fn problem(detail: &str) -> Value {
    serde_json::json!({
        "type": "/problems/job-failed",
        "title": "The job failed",
        "status": 500,
        "detail": detail,
    })
}

impl Store {
    /// Queues a job (and makes `new.file` its file) in one transaction.
    #[instrument(name = "db.enqueue_job", skip_all, fields(kind = new.kind), err(level = "debug"))]
    pub async fn enqueue_job(&self, new: &NewJob) -> Result<Job, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let row = insert_job!(tx, new, at: now).await?;
            if let Some(file) = new.file {
                sqlx::query("UPDATE job_files SET job_id = $1 WHERE id = $2")
                    .bind(row.id)
                    .bind(file)
                    .execute(&mut *tx)
                    .await?;
            }
            Job::try_from(row)
        })
    }

    /// A job by id.
    #[instrument(name = "db.get_job", skip_all, fields(job_id = id), err(level = "debug"))]
    pub async fn get_job(&self, id: i64) -> Result<Job, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let row: Option<JobRow> =
                sqlx::query_as(concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(reader)
                    .await?;
            row.ok_or(StoreError::NotFound).and_then(Job::try_from)
        })
    }

    /// One offset page of jobs, newest first, with the number of matches.
    #[instrument(name = "db.list_jobs", skip_all, err(level = "debug"))]
    pub async fn list_jobs(
        &self,
        kind: Option<&str>,
        status: Option<JobStatus>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<Job>, u64), StoreError> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let offset = offset.min(i64::MAX as u64) as i64;
        let status = status.map(JobStatus::as_str);
        on_db!(self, |reader, _writer, _dialect| {
            let rows: Vec<JobRow> = sqlx::query_as(concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR status = $2) \
                 ORDER BY id DESC LIMIT $3 OFFSET $4"
            ))
            .bind(kind)
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(reader)
            .await?;
            let total: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE ($1 IS NULL OR kind = $1) AND ($2 IS NULL OR status = $2)",
            )
            .bind(kind)
            .bind(status)
            .fetch_one(reader)
            .await?;
            let jobs = rows
                .into_iter()
                .map(Job::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((jobs, total.max(0) as u64))
        })
    }

    /// Cancels a job: a queued one at once (it never starts), a running one at its next batch
    /// (its worker sees the flag). A finished job is a conflict.
    #[instrument(name = "db.cancel_job", skip_all, fields(job_id = id), err(level = "debug"))]
    pub async fn cancel_job(&self, id: i64) -> Result<Job, StoreError> {
        let now = Timestamp::now();
        write_transaction!(self, |tx, dialect| {
            let status: Option<String> =
                sqlx::query_scalar(for_update!(dialect, "SELECT status FROM jobs WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let status = status.ok_or(StoreError::NotFound)?;
            let row: JobRow = match JobStatus::parse(&status) {
                Some(JobStatus::Queued) => {
                    sqlx::query_as(concat!(
                        "UPDATE jobs SET status = 'cancelled', finished_at = $2, cancel_requested = TRUE \
                         WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(id)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?
                }
                Some(JobStatus::Running) => {
                    sqlx::query_as(concat!(
                        "UPDATE jobs SET cancel_requested = TRUE WHERE id = $1 RETURNING ",
                        job_columns!()
                    ))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
                }
                _ => return Err(StoreError::Conflict(Conflict::JobFinished)),
            };
            Job::try_from(row)
        })
    }

    /// Takes the next job due of one of `kinds` (or only job `only`) under a new lease: a queued
    /// job whose time has come, or a running one whose worker's lease expired. Jobs whose
    /// worker died on their last allowed attempt are failed first.
    #[instrument(name = "db.claim_job", skip_all, err(level = "debug"))]
    pub async fn claim_job(
        &self,
        kinds: &[&str],
        only: Option<i64>,
        lease: &Lease,
    ) -> Result<Option<Job>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let now = Timestamp::now();
        let error = problem("its worker stopped responding on the last allowed attempt").to_string();
        let placeholders = (0..kinds.len())
            .map(|i| format!("${}", i + 5))
            .collect::<Vec<_>>()
            .join(", ");
        on_db!(self, |_reader, writer, dialect| {
            sqlx::query(
                "UPDATE jobs SET status = 'failed', finished_at = $1, error = $2, lease_owner = NULL, \
                 lease_until = NULL WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts",
            )
            .bind(now)
            .bind(error.as_str())
            .execute(writer)
            .await?;
            let sql = format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2, \
                 started_at = COALESCE(started_at, $3) \
                 WHERE id = (SELECT id FROM jobs WHERE ((status = 'queued' AND run_at <= $3) \
                 OR (status = 'running' AND lease_until < $3)) AND attempts < max_attempts \
                 AND ($4 IS NULL OR id = $4) AND kind IN ({placeholders}) ORDER BY run_at, id LIMIT 1{}) \
                 RETURNING {}",
                dialect.pick("", " FOR UPDATE SKIP LOCKED"),
                job_columns!()
            );
            let mut query = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
                .bind(lease.owner.as_str())
                .bind(lease.until())
                .bind(now)
                .bind(only);
            for kind in kinds {
                query = query.bind(*kind);
            }
            let row = query.fetch_optional(writer).await?;
            row.map(Job::try_from).transpose()
        })
    }

    /// Renews a lease. `Ok(None)` when it is no longer held (another worker took the job over,
    /// or it finished); else whether a cancel was asked for.
    #[instrument(name = "db.renew_lease", skip_all, fields(job_id = lease.job_id), err(level = "debug"))]
    pub async fn renew_lease(&self, lease: &Lease) -> Result<Option<bool>, StoreError> {
        on_db!(self, |_reader, writer, _dialect| {
            let cancel: Option<i64> = sqlx::query_scalar(
                "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running' \
                 RETURNING CAST(CASE WHEN cancel_requested THEN 1 ELSE 0 END AS BIGINT)",
            )
            .bind(lease.until())
            .bind(lease.job_id)
            .bind(lease.owner.as_str())
            .fetch_optional(writer)
            .await?;
            Ok(cancel.map(|flag| flag != 0))
        })
    }

    /// Records progress (and a checkpoint) outside any other write. Whether a cancel was asked
    /// for; `LeaseLost` when the lease is gone.
    pub async fn save_progress(
        &self,
        lease: &Lease,
        progress: Progress,
        checkpoint: Option<&Value>,
    ) -> Result<bool, StoreError> {
        write_transaction!(self, |tx, dialect| {
            record_progress!(tx, lease, progress, checkpoint).await
        })
    }

    /// Ends a run as `finish` says, if the lease is still held; the job as it now is.
    #[instrument(name = "db.finish_job", skip_all, fields(job_id = lease.job_id), err(level = "debug"))]
    pub async fn finish_job(
        &self,
        lease: &Lease,
        attempts: i64,
        max_attempts: i64,
        finish: Finish,
    ) -> Result<Job, StoreError> {
        let now = Timestamp::now();
        let (status, run_at, result, error, attempts_delta) = match finish {
            Finish::Succeeded(result) => ("succeeded", None, Some(result), None, 0),
            Finish::Failed { error, result } => ("failed", None, result, Some(error), 0),
            Finish::Cancelled(result) => ("cancelled", None, Some(result), None, 0),
            Finish::Retry { error, after } if attempts < max_attempts => {
                let at = Timestamp(now.0 + chrono::Duration::from_std(after).unwrap_or_default());
                ("queued", Some(at), None, Some(error), 0)
            }
            Finish::Retry { error, .. } => ("failed", None, None, Some(error), 0),
            Finish::Release => ("queued", Some(now), None, None, 1),
        };
        let finished_at = JobStatus::parse(status).filter(|s| s.is_finished()).map(|_| now);
        // The job's end and its `*.finished` event commit together (the transactional outbox).
        write_transaction!(self, |tx, dialect| {
            let _ = dialect;
            let row: Option<JobRow> = sqlx::query_as(concat!(
                "UPDATE jobs SET status = $1, run_at = COALESCE($2, run_at), result = COALESCE($3, result), \
                 error = $4, finished_at = $5, attempts = attempts - $6, lease_owner = NULL, lease_until = NULL \
                 WHERE id = $7 AND lease_owner = $8 RETURNING ",
                job_columns!()
            ))
            .bind(status)
            .bind(run_at)
            .bind(result.map(|r| r.to_string()))
            .bind(error.map(|e| e.to_string()))
            .bind(finished_at)
            .bind(attempts_delta)
            .bind(lease.job_id)
            .bind(lease.owner.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let job = row.ok_or(StoreError::LeaseLost).and_then(Job::try_from)?;
            if job.status.is_finished() {
                let event = match job.kind.as_str() {
                    "import" => Some(EventType::ImportFinished),
                    "export" => Some(EventType::ExportFinished),
                    _ => None,
                };
                if let Some(event) = event {
                    record_some(&mut *tx, event, self.job_event(&job)).await?;
                }
            }
            Ok(job)
        })
    }

    /// Queued and running jobs by kind, for the gauges.
    pub async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        on_db!(self, |reader, _writer, _dialect| {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT kind, status, CAST(count(*) AS BIGINT) FROM jobs \
                 WHERE status IN ('queued', 'running') GROUP BY kind, status",
            )
            .fetch_all(reader)
            .await?;
            Ok(QueueDepth { rows })
        })
    }
}

/// The problem a job that failed without a more precise one carries.
pub fn job_failed(detail: &str) -> Value {
    problem(detail)
}
