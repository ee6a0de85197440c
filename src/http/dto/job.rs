//! A job as JSON.

use serde::Serialize;
use serde_json::Value;

use super::product::rfc3339;
use crate::domain::job::Job;

/// Units of work done and in all (`total` null while unknown).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobProgress {
    /// Units done (rows, for imports and exports).
    pub done: i64,
    /// Units in all, once known.
    pub total: Option<i64>,
}

/// A background job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "kind": "import", "status": "succeeded", "progress": {"done": 2, "total": 2}, "attempts": 1, "created_by": 1, "created_at": "2026-11-29T10:00:00Z", "started_at": "2026-11-29T10:00:01Z", "finished_at": "2026-11-29T10:00:02Z", "result": {"rows": 2, "created": 1, "updated": 1, "unchanged": 0, "invalid": 0, "errors": []}, "error": null}))]
pub struct JobResponse {
    /// The job's id.
    pub id: i64,
    /// `import` or `export`.
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    #[schema(pattern = "^(queued|running|succeeded|failed|cancelled)$")]
    pub status: String,
    /// Rows done and in all.
    pub progress: JobProgress,
    /// Runs started so far (a retry after a crash or a transient failure counts).
    pub attempts: i64,
    /// The user who asked for it (null when the command line did).
    pub created_by: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// An import: `{rows, created, updated, unchanged, invalid, errors}`; an export:
    /// `{rows, bytes, download}`. Null until finished (or cancelled).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// A problem object when the job failed.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

impl crate::http::pagination::PageItem for JobResponse {
    const PAGE_NAME: &'static str = "JobPage";
}

impl From<Job> for JobResponse {
    fn from(job: Job) -> Self {
        JobResponse {
            id: job.id,
            kind: job.kind,
            status: job.status.as_str().to_owned(),
            progress: JobProgress {
                done: job.progress_done,
                total: job.progress_total,
            },
            attempts: job.attempts,
            created_by: job.created_by,
            created_at: rfc3339(job.created_at),
            started_at: job.started_at.map(rfc3339),
            finished_at: job.finished_at.map(rfc3339),
            result: job.result,
            error: job.error,
        }
    }
}
