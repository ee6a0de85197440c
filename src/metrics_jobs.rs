//! The job system's metrics: queue depth by kind (sampled from the database, so it counts the
//! jobs of every instance), runs ended by kind and status, their duration, and rows imported.

use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::domain::job::{JobStatus, KIND_EXPORT, KIND_IMPORT};
use crate::store::Store;

/// Jobs waiting for a worker, by kind.
pub const JOBS_QUEUED: &str = "tienda_jobs_queued";
/// Jobs a worker holds, by kind.
pub const JOBS_RUNNING: &str = "tienda_jobs_running";
/// Jobs that ended succeeded, by kind.
pub const JOBS_SUCCEEDED: &str = "tienda_jobs_succeeded_total";
/// Jobs that ended failed, by kind.
pub const JOBS_FAILED: &str = "tienda_jobs_failed_total";
/// Jobs that ended cancelled, by kind.
pub const JOBS_CANCELLED: &str = "tienda_jobs_cancelled_total";
/// How long a run took, by kind.
pub const JOB_DURATION: &str = "tienda_job_duration_seconds";
/// Import rows by what became of them.
pub const ROWS_IMPORTED: &str = "tienda_import_rows_total";

const KINDS: [&str; 2] = [KIND_IMPORT, KIND_EXPORT];
const ROW_RESULTS: [&str; 4] = ["created", "updated", "unchanged", "invalid"];

/// Describes the job metrics (called once with the recorder's installation).
pub fn describe() {
    describe_gauge!(JOBS_QUEUED, "Jobs waiting for a worker (all instances), by kind.");
    describe_gauge!(JOBS_RUNNING, "Jobs held by a worker (all instances), by kind.");
    describe_counter!(JOBS_SUCCEEDED, "Job runs that ended succeeded, by kind.");
    describe_counter!(JOBS_FAILED, "Job runs that ended failed for good, by kind.");
    describe_counter!(JOBS_CANCELLED, "Job runs that ended cancelled, by kind.");
    describe_histogram!(JOB_DURATION, Unit::Seconds, "Duration of a job run, by kind.");
    describe_counter!(
        ROWS_IMPORTED,
        "Import rows written or checked, by result (created, updated, unchanged, invalid)."
    );
}

/// Zero values, so alerts see the series before the first job.
pub fn zero() {
    for kind in KINDS {
        counter!(JOBS_SUCCEEDED, "kind" => kind).absolute(0);
        counter!(JOBS_FAILED, "kind" => kind).absolute(0);
        counter!(JOBS_CANCELLED, "kind" => kind).absolute(0);
        gauge!(JOBS_QUEUED, "kind" => kind).set(0.0);
        gauge!(JOBS_RUNNING, "kind" => kind).set(0.0);
        // Registered, so the family is exported (with empty buckets) before the first run.
        let _ = histogram!(JOB_DURATION, "kind" => kind);
    }
    for result in ROW_RESULTS {
        counter!(ROWS_IMPORTED, "result" => result).absolute(0);
    }
}

/// Records a run that left its job in `status`.
pub fn job_ended(kind: &str, status: JobStatus, elapsed: Duration) {
    let kind = kind.to_owned();
    histogram!(JOB_DURATION, "kind" => kind.clone()).record(elapsed.as_secs_f64());
    let name = match status {
        JobStatus::Succeeded => JOBS_SUCCEEDED,
        JobStatus::Failed => JOBS_FAILED,
        JobStatus::Cancelled => JOBS_CANCELLED,
        JobStatus::Queued | JobStatus::Running => return,
    };
    counter!(name, "kind" => kind).increment(1);
}

/// Counts import rows by result.
pub fn rows_imported(result: &'static str, rows: u64) {
    counter!(ROWS_IMPORTED, "result" => result).increment(rows);
}

/// Samples the queue depth from the database.
pub async fn sample_queue(store: &Store) {
    match store.queue_depth().await {
        Ok(depth) => {
            for kind in KINDS {
                for (name, status) in [(JOBS_QUEUED, "queued"), (JOBS_RUNNING, "running")] {
                    let count = depth
                        .rows
                        .iter()
                        .filter(|(k, s, _)| k == kind && s == status)
                        .map(|(_, _, n)| *n)
                        .sum::<i64>();
                    gauge!(name, "kind" => kind).set(count as f64);
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot sample the job queue"),
    }
}
