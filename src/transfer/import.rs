//! The import: an upload stored in chunks as it arrives, then a job that reads it row by row.
//!
//! `on_error=abort` validates the whole file first (a pass that writes nothing: rows checked by
//! the API's parser, skus compared with the catalogue and with the file's earlier rows), and
//! writes only when every row is valid. That costs a second read of the file, but keeps the
//! writes in ordinary batches (a single transaction over a million rows would hold SQLite's one
//! writer, and every API write, for the whole import). A row made invalid by a concurrent write
//! between the two passes (another client taking a sku in `create` mode) is reported as invalid
//! and the job ends failed with what it wrote.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::rows::{HeaderError, Parsed, check_head, read_rows};
use super::source::ChunkReader;
use crate::domain::import::{ImportMode, ImportOptions, ImportResult, ImportRow, OnError, Plan, plan};
use crate::domain::job::{Job, KIND_IMPORT};
use crate::domain::product::ProductDraft;
use crate::jobs::runner::{BoxFuture, JobContext, JobHandler, Outcome};
use crate::store::jobs::{NewJob, Progress};
use crate::store::{Store, StoreError};

/// Bytes per stored chunk of an upload.
pub const CHUNK: usize = 1 << 20;
/// How much of a CSV upload is read to find its header row.
const HEAD_MAX: usize = 64 * 1024;

/// What an import job carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportPayload {
    /// As asked for.
    pub options: ImportOptions,
    /// The uploaded file.
    pub file: i64,
}

/// Which pass a run is in, and what the write pass committed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// The validation pass (abort) is over and every row was valid.
    validated: bool,
    /// Rows the write pass has committed (it goes on after them).
    records: u64,
    /// Rows in the file, once known.
    total: Option<u64>,
    /// What the committed rows did.
    result: ImportResult,
}

/// Why an upload is refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The header row is wrong (422).
    #[error("{0}")]
    Header(HeaderError),
    /// Past `TIENDA_IMPORT_MAX_MB` (413).
    #[error("the file is larger than the limit")]
    TooLarge,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An upload in progress: the head is held until the header row is checked, then the bytes go
/// to the database in chunks. Nothing exists for it but its chunks until [`Upload::finish`]
/// queues the job; [`Upload::abandon`] deletes them.
pub struct Upload {
    store: Store,
    options: ImportOptions,
    limit: u64,
    received: u64,
    buffer: Vec<u8>,
    checked: bool,
    file: Option<i64>,
    seq: i64,
}

impl Upload {
    /// An upload of at most `limit` bytes.
    pub fn new(store: Store, options: ImportOptions, limit: u64) -> Self {
        Upload {
            store,
            options,
            limit,
            received: 0,
            buffer: Vec::with_capacity(CHUNK),
            checked: false,
            file: None,
            seq: 0,
        }
    }

    /// Takes the next bytes of the file.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        self.received += bytes.len() as u64;
        if self.received > self.limit {
            return Err(UploadError::TooLarge);
        }
        self.buffer.extend_from_slice(bytes);
        if !self.checked {
            let complete = self.buffer.contains(&b'\n') || self.buffer.len() >= HEAD_MAX;
            if !complete {
                return Ok(());
            }
            self.check()?;
        }
        while self.buffer.len() >= CHUNK {
            let rest = self.buffer.split_off(CHUNK);
            let chunk = std::mem::replace(&mut self.buffer, rest);
            self.flush(&chunk).await?;
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), UploadError> {
        check_head(self.options.format, self.options.mode, &self.buffer).map_err(UploadError::Header)?;
        self.checked = true;
        Ok(())
    }

    async fn flush(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        let file = match self.file {
            Some(file) => file,
            None => {
                let file = self
                    .store
                    .create_file(self.options.format.content_type(), None)
                    .await?;
                self.file = Some(file);
                file
            }
        };
        self.store.append_chunk(file, self.seq, chunk).await?;
        self.seq += 1;
        Ok(())
    }

    /// The file is complete: checks it (an empty file is refused), stores the rest and queues
    /// the job.
    pub async fn finish(mut self, created_by: Option<i64>) -> Result<Job, UploadError> {
        if !self.checked {
            self.check()?;
        }
        let rest = std::mem::take(&mut self.buffer);
        if !rest.is_empty() || self.file.is_none() {
            self.flush(&rest).await?;
        }
        let file = self.file.ok_or(UploadError::TooLarge)?;
        let payload = ImportPayload {
            options: self.options,
            file,
        };
        let payload = serde_json::to_value(&payload).map_err(StoreError::Render)?;
        let new = NewJob {
            file: Some(file),
            ..NewJob::new(KIND_IMPORT, payload, created_by)
        };
        Ok(self.store.enqueue_job(&new).await?)
    }

    /// The upload was refused or cut: deletes what was stored of it.
    pub async fn abandon(self) {
        if let Some(file) = self.file
            && let Err(error) = self.store.delete_file(file).await
        {
            tracing::warn!(%error, file_id = file, "cannot delete an abandoned upload");
        }
    }
}

/// The problem of an import refused for invalid rows.
fn rejected(result: &ImportResult) -> Value {
    json!({
        "type": "/problems/import-rejected",
        "title": "The import was rejected",
        "status": 422,
        "detail": format!("{} of {} rows are invalid; nothing was written", result.invalid, result.rows),
    })
}

/// Runs import jobs.
pub struct ImportHandler;

impl JobHandler for ImportHandler {
    fn kind(&self) -> &'static str {
        KIND_IMPORT
    }

    fn run<'a>(&'a self, context: &'a mut JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(run_import(context))
    }
}

/// Reads the file on a blocking thread from row `skip` on, in batches of `batch` parsed rows coming back
/// through a channel (two in flight: memory stays flat). The receiver, and the join handle of
/// the reader (the rows in the file, or why it could not be read).
fn spawn_reader(
    store: &Store,
    payload: &ImportPayload,
    skip: u64,
    batch: usize,
) -> (
    mpsc::Receiver<Vec<Parsed>>,
    tokio::task::JoinHandle<Result<u64, String>>,
) {
    let (sender, receiver) = mpsc::channel::<Vec<Parsed>>(2);
    let reader = ChunkReader::new(store.clone(), payload.file);
    let failure = reader.failure.clone();
    let options = payload.options;
    let handle = tokio::task::spawn_blocking(move || {
        let rows = read_rows(reader, options.format, options.mode, skip, batch, |rows| {
            sender.blocking_send(rows).is_ok()
        });
        let failed = failure.lock().ok().and_then(|mut f| f.take());
        match (failed, rows) {
            (Some(error), _) => Err(error.to_string()),
            (None, Ok(rows)) => Ok(rows),
            (None, Err(error)) => Err(error.to_string()),
        }
    });
    (receiver, handle)
}

async fn run_import(context: &mut JobContext) -> Outcome {
    let payload: ImportPayload = match context.payload() {
        Ok(payload) => payload,
        Err(outcome) => return outcome,
    };
    let options = payload.options;
    let mut checkpoint: Checkpoint = context
        .job
        .checkpoint
        .clone()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    let validate_first = options.dry_run || options.on_error == OnError::Abort;
    if validate_first && !checkpoint.validated {
        let result = match validate(context, &payload).await {
            Ok(result) => result,
            Err(outcome) => return outcome,
        };
        crate::metrics::jobs::rows_imported("invalid", result.invalid);
        if options.dry_run {
            return Outcome::Succeeded(json!(result));
        }
        if !result.all_accepted() {
            return Outcome::Rejected {
                error: rejected(&result),
                result: json!(result),
            };
        }
        checkpoint = Checkpoint {
            validated: true,
            records: 0,
            total: Some(result.rows),
            result: ImportResult::default(),
        };
        let progress = Progress {
            done: 0,
            total: Some(result.rows as i64),
        };
        if let Err(error) = context
            .store
            .save_progress(&context.lease, progress, Some(&json!(checkpoint)))
            .await
        {
            return error.into();
        }
    }
    write(context, &payload, checkpoint).await
}

fn draft_hash(draft: &ProductDraft) -> u64 {
    let mut hasher = DefaultHasher::new();
    draft.name.as_str().hash(&mut hasher);
    draft.description.as_ref().map(|d| d.as_str()).hash(&mut hasher);
    draft.sku.as_ref().map(|s| s.as_str()).hash(&mut hasher);
    draft.price.cents().hash(&mut hasher);
    draft.stock.units().hash(&mut hasher);
    hasher.finish()
}

/// The skus of the file's earlier rows, each with its row's [`draft_hash`]: what the
/// validation pass compares a row with when its sku appeared before. A sku is kept as a 128-bit
/// hash under two random SipHash keys, not as a string: 24 bytes a row where the string cost
/// about 60 (a million skus took ~100 MiB), and no file can be built to make two skus collide
/// when the keys are drawn anew for every pass (by chance: about 10^-27 for a million skus).
struct SeenSkus {
    keys: [RandomState; 2],
    rows: HashMap<[u64; 2], u64>,
}

impl SeenSkus {
    fn new() -> Self {
        SeenSkus {
            keys: [RandomState::new(), RandomState::new()],
            rows: HashMap::new(),
        }
    }

    fn key(&self, lower_sku: &str) -> [u64; 2] {
        self.keys.each_ref().map(|keys| keys.hash_one(lower_sku))
    }

    fn get(&self, lower_sku: &str) -> Option<u64> {
        self.rows.get(&self.key(lower_sku)).copied()
    }

    fn insert(&mut self, lower_sku: &str, row_hash: u64) {
        self.rows.insert(self.key(lower_sku), row_hash);
    }
}

/// The pass that writes nothing: every row checked, compared with the catalogue and with the
/// file's earlier rows (by a hash of each, so memory stays small), counted as a real run would
/// count it. Starts from the top on every run (it keeps no state worth resuming).
async fn validate(context: &JobContext, payload: &ImportPayload) -> Result<ImportResult, Outcome> {
    let mode = payload.options.mode;
    let (mut batches, reader) = spawn_reader(&context.store, payload, 0, context.import_batch);
    let mut result = ImportResult::default();
    let mut seen = SeenSkus::new();
    while let Some(batch) = batches.recv().await {
        let valid: Vec<ImportRow> = batch
            .iter()
            .filter_map(|p| match p {
                Parsed::Valid(row) => Some(row.clone()),
                Parsed::Invalid(_) => None,
            })
            .collect();
        let existing = context
            .store
            .products_by_sku(&valid)
            .await
            .map_err(Outcome::from)?;
        for parsed in batch {
            let row = match parsed {
                Parsed::Valid(row) => row,
                Parsed::Invalid(errors) => {
                    result.reject(errors);
                    continue;
                }
            };
            let hash = draft_hash(&row.draft);
            let Some(key) = row.draft.sku.as_ref().map(|s| s.as_str().to_ascii_lowercase()) else {
                result.count(row.line, Plan::Create);
                continue;
            };
            let planned = match (seen.get(&key), mode) {
                (Some(_), ImportMode::Create) => Plan::Taken,
                (Some(earlier), ImportMode::Upsert) if earlier == hash => Plan::Unchanged,
                (Some(_), ImportMode::Upsert) => Plan::Update,
                (None, _) => plan(mode, &row.draft, existing.get(&key).map(|p| &p.draft)),
            };
            if matches!(planned, Plan::Create | Plan::Update | Plan::Unchanged) {
                seen.insert(&key, hash);
            }
            result.count(row.line, planned);
        }
        let progress = Progress {
            done: result.rows as i64,
            total: None,
        };
        let cancel = context
            .store
            .save_progress(&context.lease, progress, None)
            .await
            .map_err(Outcome::from)?;
        context.note_cancel(cancel);
        if context.cancel_requested() {
            return Err(Outcome::Cancelled(json!(ImportResult::default())));
        }
        if context.stopping() {
            return Err(Outcome::Interrupted);
        }
    }
    match reader.await {
        Ok(Ok(_)) => Ok(result),
        Ok(Err(reason)) => Err(Outcome::Retry(reason)),
        Err(error) => Err(Outcome::Retry(error.to_string())),
    }
}

/// The pass that writes, batch by batch, each batch with the progress that says it was done.
async fn write(context: &JobContext, payload: &ImportPayload, mut checkpoint: Checkpoint) -> Outcome {
    let options = payload.options;
    let (mut batches, reader) =
        spawn_reader(&context.store, payload, checkpoint.records, context.import_batch);
    while let Some(batch) = batches.recv().await {
        let read = batch.len() as u64;
        let mut next = checkpoint.clone();
        next.records += read;
        let mut valid = Vec::with_capacity(batch.len());
        for parsed in batch {
            match parsed {
                Parsed::Valid(row) => valid.push(row),
                Parsed::Invalid(errors) => next.result.reject(errors),
            }
        }
        let progress = |c: &Checkpoint| Progress {
            done: c.records as i64,
            total: c.total.map(|t| t as i64),
        };
        let counted = |plans: &[Plan]| {
            let mut after = next.clone();
            for (row, planned) in valid.iter().zip(plans) {
                after.result.count(row.line, *planned);
            }
            after
        };
        let writing = std::time::Instant::now();
        let written = if valid.is_empty() {
            context
                .store
                .save_progress(&context.lease, progress(&next), Some(&json!(next)))
                .await
                .map(|cancel| (Vec::new(), cancel))
        } else {
            context
                .store
                .import_batch(&context.lease, options.mode, &valid, |plans| {
                    let after = counted(plans);
                    (progress(&after), json!(after))
                })
                .await
        };
        let (plans, cancel) = match written {
            Ok(written) => written,
            Err(error) => return error.into(),
        };
        let before = checkpoint.result.clone();
        checkpoint = counted(&plans);
        record_rows(&before, &checkpoint.result);
        context.note_cancel(cancel);
        if context.cancel_requested() {
            return Outcome::Cancelled(json!(checkpoint.result));
        }
        if context.stopping() {
            return Outcome::Interrupted;
        }
        context.after_batch(writing.elapsed()).await;
    }
    match reader.await {
        Ok(Ok(_)) => {}
        Ok(Err(reason)) => return Outcome::Retry(reason),
        Err(error) => return Outcome::Retry(error.to_string()),
    }
    let result = checkpoint.result;
    if options.on_error == OnError::Abort && !result.all_accepted() {
        return Outcome::Rejected {
            error: rejected(&result),
            result: json!(result),
        };
    }
    Outcome::Succeeded(json!(result))
}

fn record_rows(before: &ImportResult, after: &ImportResult) {
    use crate::metrics::jobs::rows_imported;
    rows_imported("created", after.created - before.created);
    rows_imported("updated", after.updated - before.updated);
    rows_imported("unchanged", after.unchanged - before.unchanged);
    rows_imported("invalid", after.invalid - before.invalid);
}
