//! The export: the products a listing's filters select, read from one snapshot in keyset pages
//! and written to a file in the database, chunk by chunk, that any instance can serve.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use super::encode::Encoder;
use super::import::CHUNK;
use crate::domain::import::FileFormat;
use crate::domain::job::KIND_EXPORT;
use crate::domain::listing::Filters;
use crate::domain::product::Product;
use crate::jobs::runner::{BoxFuture, JobContext, JobHandler, Outcome};
use crate::store::StoreError;
use crate::store::jobs::Progress;

/// Products per snapshot page.
const PAGE: i64 = 1000;

/// What an export job carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportPayload {
    /// CSV or JSON Lines.
    pub format: FileFormat,
    /// Which products (as a listing's filters).
    pub filters: Filters,
}

/// Where a finished export's file is served.
pub fn download_path(job_id: i64) -> String {
    format!("/api/v1/jobs/{job_id}/file")
}

/// Runs export jobs.
pub struct ExportHandler;

impl JobHandler for ExportHandler {
    fn kind(&self) -> &'static str {
        KIND_EXPORT
    }

    fn run<'a>(&'a self, context: &'a mut JobContext) -> BoxFuture<'a, Outcome> {
        Box::pin(run_export(context))
    }
}

async fn run_export(context: &mut JobContext) -> Outcome {
    let payload: ExportPayload = match context.payload() {
        Ok(payload) => payload,
        Err(outcome) => return outcome,
    };
    match export(context, &payload).await {
        Ok(outcome) => outcome,
        Err(error) => error.into(),
    }
}

async fn export(context: &JobContext, payload: &ExportPayload) -> Result<Outcome, StoreError> {
    let store = &context.store;
    let job_id = context.job.id;
    // A run starts over: what an interrupted one wrote goes.
    store.delete_job_files(job_id).await?;
    let file = store
        .create_file(payload.format.content_type(), Some(job_id))
        .await?;
    let (pages, mut received) = mpsc::channel::<Vec<Product>>(2);
    let snapshot = {
        let (store, filters) = (store.clone(), payload.filters.clone());
        tokio::spawn(async move {
            if filters.q.as_ref().is_some_and(|q| q.matches_nothing()) {
                return Ok(0);
            }
            store
                .export_snapshot(&filters, PAGE, move |page| {
                    let pages = pages.clone();
                    Box::pin(async move { pages.send(page).await.map_err(|_| StoreError::LeaseLost) })
                })
                .await
        })
    };
    let mut encoder = Encoder::new(payload.format);
    let (mut rows, mut bytes, mut seq) = (0i64, 0i64, 0i64);
    while let Some(page) = received.recv().await {
        for product in &page {
            encoder.push(product);
        }
        rows += page.len() as i64;
        if encoder.pending() >= CHUNK {
            let chunk = encoder.take();
            store.append_chunk(file, seq, &chunk).await?;
            seq += 1;
            bytes += chunk.len() as i64;
            let progress = Progress {
                done: rows,
                total: None,
            };
            context.note_cancel(store.save_progress(&context.lease, progress, None).await?);
            if context.cancel_requested() {
                snapshot.abort();
                return Ok(Outcome::Cancelled(json!({"rows": rows, "bytes": bytes})));
            }
            if context.stopping() {
                snapshot.abort();
                return Ok(Outcome::Interrupted);
            }
        }
    }
    match snapshot.await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => return Err(error),
        Err(error) => return Ok(Outcome::Retry(error.to_string())),
    }
    let chunk = encoder.take();
    if !chunk.is_empty() {
        store.append_chunk(file, seq, &chunk).await?;
        bytes += chunk.len() as i64;
    }
    let progress = Progress {
        done: rows,
        total: Some(rows),
    };
    store.save_progress(&context.lease, progress, None).await?;
    Ok(Outcome::Succeeded(json!({
        "rows": rows,
        "bytes": bytes,
        "download": download_path(job_id),
    })))
}
