//! Background jobs: their life cycle and the shape every kind shares.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for a worker (again, after a failed attempt).
    Queued,
    /// A worker holds its lease.
    Running,
    /// Done.
    Succeeded,
    /// Given up: rejected input, or out of attempts.
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl JobStatus {
    /// Every status, in the order of a job's life.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The status as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the job will never run again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// The kinds of job the API exposes (workers may run more kinds than these).
pub const KIND_IMPORT: &str = "import";
/// See [`KIND_IMPORT`].
pub const KIND_EXPORT: &str = "export";

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job's id.
    pub id: i64,
    /// What runs it (`import`, `export`, ...).
    pub kind: String,
    /// Where it is.
    pub status: JobStatus,
    /// What the kind needs to run it (JSON).
    pub payload: Value,
    /// What its last batch committed, for a resumed run.
    pub checkpoint: Option<Value>,
    /// Units of work done.
    pub progress_done: i64,
    /// Units of work in all, once known.
    pub progress_total: Option<i64>,
    /// Runs started so far.
    pub attempts: i64,
    /// Runs allowed before it fails for good.
    pub max_attempts: i64,
    /// A cancel was asked for while it ran.
    pub cancel_requested: bool,
    /// Who asked for it (none from the command line).
    pub created_by: Option<i64>,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When its first run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The kind's result (JSON), when finished or cancelled.
    pub result: Option<Value>,
    /// A problem object (JSON) when it failed.
    pub error: Option<Value>,
}

/// The backoff before attempt `attempts + 1`: 2 s, 4 s, 8 s ... capped at 10 minutes.
pub fn backoff(attempts: i64) -> std::time::Duration {
    let exponent = attempts.clamp(1, 20) as u32;
    std::time::Duration::from_secs((1u64 << exponent).min(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_finished_ones_are_final() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(JobStatus::parse("done"), None);
        assert!(!JobStatus::Running.is_finished());
        assert!(JobStatus::Cancelled.is_finished());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1).as_secs(), 2);
        assert_eq!(backoff(2).as_secs(), 4);
        assert_eq!(backoff(50).as_secs(), 600);
    }
}
