//! `tienda import` and `tienda export`: the same upload, job and handlers as the HTTP API, run
//! in this process against `DATABASE_URL`, with a progress bar on a terminal and plain lines
//! otherwise.

use std::future::Future;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::CommandError;
use crate::config::Config;
use crate::domain::import::{FileFormat, ImportOptions};
use crate::domain::job::{Job, JobStatus, KIND_EXPORT};
use crate::domain::listing::Filters;
use crate::jobs::runner::{WorkerSettings, run_next};
use crate::startup::{open_store, with_cache, worker_settings};
use crate::store::Store;
use crate::store::jobs::NewJob;
use crate::transfer::export::ExportPayload;
use crate::transfer::import::{CHUNK, Upload, UploadError};

fn io_error(what: &'static str) -> impl Fn(std::io::Error) -> CommandError {
    move |error| CommandError::InvalidArgument {
        argument: what,
        message: error.to_string(),
    }
}

fn failed(message: impl Into<String>) -> CommandError {
    CommandError::InvalidArgument {
        argument: "job",
        message: message.into(),
    }
}

/// `config` for a bulk command: SQLite read without the memory map, so that the command's
/// resident memory is its own (a mapped file's pages count in it: an import of 1,000,000
/// products peaked at 204 MiB resident, 143 MiB of it its own).
fn bulk(config: &Config) -> Config {
    let mut config = config.clone();
    config.pool.sqlite_mmap = false;
    config
}

/// Shows a job's progress until it ends: a bar on a terminal, a line every two seconds
/// otherwise.
fn spawn_progress(store: Store, job_id: i64, label: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            None,
            if terminal {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg} {pos}/{len} rows [{elapsed}] {per_sec}")
        {
            bar.set_style(style);
        }
        bar.set_message(label);
        let mut last_line = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(job) = store.get_job(job_id).await else {
                continue;
            };
            if let Some(total) = job.progress_total {
                bar.set_length(total.max(0) as u64);
            }
            bar.set_position(job.progress_done.max(0) as u64);
            if !terminal && last_line.elapsed() >= Duration::from_secs(2) {
                last_line = std::time::Instant::now();
                let total = job.progress_total.map_or("?".to_owned(), |t| t.to_string());
                eprintln!("{label}: {} of {total} rows", job.progress_done);
            }
            if job.status.is_finished() {
                bar.finish_and_clear();
                return;
            }
        }
    })
}

/// Runs job `job_id` in this process until it ends or `shutdown` comes (then it is left queued,
/// its progress kept, for any worker to finish).
async fn run_here(
    store: &Store,
    settings: &WorkerSettings,
    job_id: i64,
    shutdown: impl Future<Output = ()>,
) -> Result<Job, CommandError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let registry = crate::transfer::registry();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let run = run_next(store, &registry, settings, &stopped, Some(job_id));
        let ran = tokio::select! {
            ran = run => ran,
            _ = &mut shutdown => {
                let _ = stop.send(true);
                return Err(failed(format!("interrupted: job {job_id} stays queued; `tienda worker` finishes it")));
            }
        };
        ran.map_err(|e| failed(e.to_string()))?;
        let job = store.get_job(job_id).await.map_err(|e| failed(e.to_string()))?;
        if job.status.is_finished() {
            return Ok(job);
        }
        // Queued again after a failed attempt: wait for its backoff.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs a queued job here, its progress shown, and returns it as it ended.
async fn run_shown(
    config: &Config,
    store: &Store,
    job: Job,
    label: &'static str,
    shutdown: impl Future<Output = ()>,
) -> Result<Job, CommandError> {
    eprintln!("{} job {} queued", job.kind, job.id);
    let progress = spawn_progress(store.clone(), job.id, label);
    let settings = WorkerSettings {
        concurrency: 1,
        shares_sqlite_writer: store.is_sqlite(),
        ..worker_settings(&config.jobs)
    };
    let ended = run_here(store, &settings, job.id, shutdown).await;
    progress.abort();
    ended
}

/// `tienda import FILE`: true when the job succeeded with every row accepted.
pub async fn import(
    config: &Config,
    path: &Path,
    options: ImportOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<bool, CommandError> {
    let mut file = std::fs::File::open(path).map_err(io_error("FILE"))?;
    // Serving instances hear of the imported products over Redis (`TIENDA_CACHE=redis`).
    let (store, _cache) = with_cache(config, open_store(&bulk(config)).await?)?;
    let mut upload = Upload::new(store.clone(), options, u64::MAX);
    let mut buffer = vec![0u8; CHUNK];
    let stored = loop {
        let n = file.read(&mut buffer).map_err(io_error("FILE"))?;
        if n == 0 {
            break upload.finish(None).await;
        }
        if let Err(error) = upload.push(&buffer[..n]).await {
            upload.abandon().await;
            break Err(error);
        }
    };
    let job = stored.map_err(|error| match error {
        UploadError::Header(header) => CommandError::InvalidArgument {
            argument: "FILE",
            message: header.to_string(),
        },
        other => failed(other.to_string()),
    })?;
    let job = run_shown(config, &store, job, "importing", shutdown).await?;
    let result = job.result.clone().unwrap_or_default();
    println!(
        "{}",
        serde_json::json!({"job": job.id, "status": job.status.as_str(), "result": result, "error": job.error})
    );
    store.close().await;
    let invalid = result
        .get("invalid")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    Ok(job.status == JobStatus::Succeeded && invalid == 0)
}

/// `tienda export`: true when the file was written whole.
pub async fn export(
    config: &Config,
    format: &str,
    output: Option<&Path>,
    shutdown: impl Future<Output = ()>,
) -> Result<bool, CommandError> {
    let format = FileFormat::parse(format).ok_or_else(|| CommandError::InvalidArgument {
        argument: "--format",
        message: "must be csv or jsonl".into(),
    })?;
    let store = open_store(&bulk(config)).await?;
    let payload = ExportPayload {
        format,
        filters: Filters::default(),
    };
    let payload = serde_json::to_value(&payload).map_err(|e| failed(e.to_string()))?;
    let job = store
        .enqueue_job(&NewJob::new(KIND_EXPORT, payload, None))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let job = run_shown(config, &store, job, "exporting", shutdown).await?;
    if job.status != JobStatus::Succeeded {
        eprintln!(
            "export job {} ended {}: {:?}",
            job.id,
            job.status.as_str(),
            job.error
        );
        return Ok(false);
    }
    let file = store
        .job_file(job.id)
        .await
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed("the export's file is missing"))?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(io_error("--output"))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut seq = 0;
    while let Some(chunk) = store
        .read_chunk(file.id, seq)
        .await
        .map_err(|e| failed(e.to_string()))?
    {
        out.write_all(&chunk).map_err(io_error("--output"))?;
        seq += 1;
    }
    out.flush().map_err(io_error("--output"))?;
    store.close().await;
    eprintln!("exported {} rows", job.progress_done);
    Ok(true)
}
