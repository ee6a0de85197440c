//! The workers: each claims a job under a lease, runs the handler of its kind, renews the lease
//! while it runs, and records how it ended. Generic over kinds: a kind is a [`JobHandler`]
//! registered in a [`Registry`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::job::{Job, backoff};
use crate::store::jobs::{Finish, Lease, job_failed};
use crate::store::{Store, StoreError};

/// A boxed future, as handlers return them (the registry holds handlers of every kind).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a handler's run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Done; the kind's result.
    Succeeded(Value),
    /// Stopped on a cancel request; what it did.
    Cancelled(Value),
    /// Failed for good (rejected input): never retried.
    Rejected {
        /// A problem object.
        error: Value,
        /// What it found.
        result: Value,
    },
    /// A transient failure: retried after a backoff while attempts remain.
    Retry(String),
    /// The worker is stopping: its progress is recorded; another run goes on from there.
    Interrupted,
    /// Another worker holds the job now: this run wrote nothing more and stops.
    LeaseLost,
}

impl From<StoreError> for Outcome {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::LeaseLost => Outcome::LeaseLost,
            other => Outcome::Retry(other.to_string()),
        }
    }
}

/// What a handler gets for one run.
pub struct JobContext {
    /// The database.
    pub store: Store,
    /// The job as claimed (its checkpoint is where a resumed run goes on from).
    pub job: Job,
    /// The lease that fences every write of this run.
    pub lease: Lease,
    stopping: watch::Receiver<bool>,
    cancelled: Arc<AtomicBool>,
    shares_sqlite_writer: bool,
    /// Rows an import writes per transaction.
    pub import_batch: usize,
}

impl JobContext {
    /// Whether the worker is shutting down: finish the current batch, record progress, return
    /// [`Outcome::Interrupted`].
    pub fn stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Whether a cancel was asked for (seen by the lease renewal or by a batch's commit).
    pub fn cancel_requested(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed) || self.job.cancel_requested
    }

    /// The job's payload as the kind's type; a payload that does not read is a rejected job
    /// (retrying cannot help).
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, Outcome> {
        serde_json::from_value(self.job.payload.clone()).map_err(|error| Outcome::Rejected {
            error: job_failed(&format!("the job's payload is unreadable: {error}")),
            result: Value::Null,
        })
    }

    /// Called after a batch that held the write lock for `held`: in a process that shares a
    /// SQLite file with others, leaves the lock free for a fifth of the time. SQLite's busy
    /// handler is not fair: a waiter polls (every 100 ms once it has waited a while) and gets the
    /// lock only if a poll falls between two batches, so without a pause a long import held it
    /// nearly all the time and the API's writes (a cancel among them) ran out their busy timeout.
    pub async fn after_batch(&self, held: Duration) {
        if self.shares_sqlite_writer {
            tokio::time::sleep(held / 4).await;
        }
    }

    /// Marks the job as asked to cancel (a batch's commit saw the flag).
    pub fn note_cancel(&self, cancel: bool) {
        if cancel {
            self.cancelled.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    /// The kind this handler runs (`import`, `export`, ...).
    fn kind(&self) -> &'static str;
    /// One run. Effects must be idempotent or fenced by the lease: a run may be cut at any
    /// point and the job run again from its last checkpoint.
    fn run<'a>(&'a self, context: &'a mut JobContext) -> BoxFuture<'a, Outcome>;
}

/// The handlers a worker runs, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
}

impl Registry {
    /// Adds a handler for its kind.
    pub fn with(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    /// The kinds handled.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }
}

/// How workers run.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs run at once (`TIENDA_WORKERS`).
    pub concurrency: usize,
    /// How long a lease holds without renewal (`TIENDA_JOB_LEASE_SECS`).
    pub lease: Duration,
    /// How long an idle worker waits before looking for work again.
    pub poll: Duration,
    /// This process writes to a SQLite file that API processes write to as well (`tienda worker`,
    /// `tienda import`): jobs pause between batches ([`JobContext::after_batch`]). An embedded
    /// worker shares the API's one-connection writer pool, whose queue is first come first served.
    pub shares_sqlite_writer: bool,
    /// Rows an import writes per transaction (`TIENDA_IMPORT_BATCH_ROWS`); `None` for
    /// [`default_import_batch`].
    pub import_batch: Option<usize>,
}

/// Rows an import writes per transaction unless `TIENDA_IMPORT_BATCH_ROWS` says otherwise. On
/// SQLite a batch holds the one writer, and so every API write (a checkout's stock adjustment),
/// for as long as it takes: 500 rows, about 25 ms. PostgreSQL locks only the rows a batch
/// writes, and 2,000 rows a transaction import 16% faster than 500 (docs/PERFORMANCE.md).
pub fn default_import_batch(store: &Store) -> usize {
    if store.is_sqlite() { 500 } else { 2000 }
}

/// Starts `settings.concurrency` workers; they stop taking jobs once `stop` says true, and
/// their running job ends at its next batch.
pub fn spawn_workers(
    store: Store,
    registry: Registry,
    settings: WorkerSettings,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    (0..settings.concurrency)
        .map(|_| {
            let (store, registry, settings, mut stop) =
                (store.clone(), registry.clone(), settings.clone(), stop.clone());
            tokio::spawn(async move {
                while !*stop.borrow() {
                    match run_next(&store, &registry, &settings, &stop, None).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => {}
                        Err(error) => tracing::warn!(%error, "cannot claim a job"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(settings.poll) => {}
                        _ = stop.changed() => {}
                    }
                }
            })
        })
        .collect()
}

/// Waits for workers to stop, at most `grace`; those still running then are aborted (their
/// jobs go to another worker when their leases expire).
pub async fn join_workers(workers: Vec<JoinHandle<()>>, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    for worker in workers {
        let abort = worker.abort_handle();
        if tokio::time::timeout_at(deadline, worker).await.is_err() {
            abort.abort();
        }
    }
}

/// Claims one job (of the registry's kinds, or job `only`) and runs it to the end of this run.
/// The job as it was left, or `None` when nothing was due.
pub async fn run_next(
    store: &Store,
    registry: &Registry,
    settings: &WorkerSettings,
    stop: &watch::Receiver<bool>,
    only: Option<i64>,
) -> Result<Option<Job>, StoreError> {
    let owner = uuid::Uuid::new_v4().to_string();
    let kinds = registry.kinds();
    let lease_for = |job_id| Lease {
        job_id,
        owner: owner.clone(),
        duration: settings.lease,
    };
    let probe = lease_for(0);
    let Some(job) = store.claim_job(&kinds, only, &probe).await? else {
        return Ok(None);
    };
    let Some(handler) = registry.handlers.get(job.kind.as_str()).cloned() else {
        return Ok(None);
    };
    let lease = lease_for(job.id);
    let (attempts, max_attempts, kind) = (job.attempts, job.max_attempts, job.kind.clone());
    tracing::info!(job_id = job.id, kind = %kind, attempt = attempts, "job started");
    let cancelled = Arc::new(AtomicBool::new(false));
    let heartbeat = spawn_heartbeat(store.clone(), lease.clone(), cancelled.clone());
    let started = Instant::now();
    let mut context = JobContext {
        store: store.clone(),
        job,
        lease: lease.clone(),
        stopping: stop.clone(),
        cancelled,
        shares_sqlite_writer: settings.shares_sqlite_writer,
        import_batch: settings
            .import_batch
            .unwrap_or_else(|| default_import_batch(store)),
    };
    let outcome = handler.run(&mut context).await;
    heartbeat.abort();
    let finish = match outcome {
        Outcome::Succeeded(result) => Finish::Succeeded(result),
        Outcome::Cancelled(result) => Finish::Cancelled(result),
        Outcome::Rejected { error, result } => Finish::Failed {
            error,
            result: Some(result),
        },
        Outcome::Retry(reason) => {
            tracing::warn!(job_id = lease.job_id, kind = %kind, attempt = attempts, reason = %reason, "job attempt failed");
            Finish::Retry {
                error: job_failed(&format!("attempt {attempts} failed; see the server log")),
                after: backoff(attempts),
            }
        }
        Outcome::Interrupted => Finish::Release,
        Outcome::LeaseLost => {
            tracing::warn!(job_id = lease.job_id, kind = %kind, "job lease lost: another worker runs it now");
            return Ok(None);
        }
    };
    let left = store.finish_job(&lease, attempts, max_attempts, finish).await;
    match left {
        Ok(job) => {
            crate::metrics::jobs::job_ended(&kind, job.status, started.elapsed());
            tracing::info!(job_id = job.id, kind = %kind, status = job.status.as_str(), "job run ended");
            Ok(Some(job))
        }
        Err(StoreError::LeaseLost) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Renews the lease every third of its length until aborted; notes a cancel request.
fn spawn_heartbeat(store: Store, lease: Lease, cancelled: Arc<AtomicBool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let every = (lease.duration / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match store.renew_lease(&lease).await {
                Ok(Some(cancel)) => {
                    if cancel {
                        cancelled.store(true, Ordering::Relaxed);
                    }
                }
                Ok(None) => return,
                Err(error) => tracing::warn!(job_id = lease.job_id, %error, "cannot renew a job lease"),
            }
        }
    })
}
