//! `/api/v1/imports` and `/api/v1/exports`: queue a bulk import (the file streamed to the
//! database as it arrives) or an export.

use axum::extract::{RawQuery, Request, State};
use axum::http::header;
use axum::response::Response;
use http_body_util::BodyExt;
use tracing::instrument;

use super::jobs::accepted;
use crate::domain::import::{FileFormat, ImportMode, ImportOptions, OnError};
use crate::domain::job::{Job, KIND_EXPORT};
use crate::domain::listing::{Filters, SearchQuery};
use crate::domain::money::Price;
use crate::domain::product::Invalid;
use crate::http::caller::RequireStaff;
use crate::http::error::{ApiError, FieldError, FieldErrors};
use crate::http::json_body::{Fields, JsonObject, decode};
use crate::state::AppState;
use crate::store::jobs::NewJob;
use crate::transfer::import::{Upload, UploadError};

fn bad(field: &str, code: &'static str, message: &str) -> FieldError {
    FieldError::new(field, Invalid::new(code, message))
}

/// The import's query: `format`, `mode`, `on_error`, `dry_run`, each at most once.
pub fn parse_import_query(query: Option<&str>) -> Result<ImportOptions, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).map_err(|_| ApiError::MalformedQuery)?;
    let mut options = ImportOptions {
        format: FileFormat::Csv,
        mode: ImportMode::Upsert,
        on_error: OnError::Abort,
        dry_run: false,
    };
    let mut errors = FieldErrors::default();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &pairs {
        if seen.contains(&key.as_str()) {
            errors.push(bad(key, "repeated", "may be given only once"));
            continue;
        }
        seen.push(key);
        match (key.as_str(), value.as_str()) {
            ("format", v) => match FileFormat::parse(v) {
                Some(format) => options.format = format,
                None => errors.push(bad(key, "invalid_format", "must be csv or jsonl")),
            },
            ("mode", "upsert") => options.mode = ImportMode::Upsert,
            ("mode", "create") => options.mode = ImportMode::Create,
            ("mode", _) => errors.push(bad(key, "invalid_mode", "must be upsert or create")),
            ("on_error", "abort") => options.on_error = OnError::Abort,
            ("on_error", "skip") => options.on_error = OnError::Skip,
            ("on_error", _) => errors.push(bad(key, "invalid_on_error", "must be abort or skip")),
            ("dry_run", "true") => options.dry_run = true,
            ("dry_run", "false") => options.dry_run = false,
            ("dry_run", _) => errors.push(bad(key, "invalid_boolean", "must be true or false")),
            _ => errors.push_with(|| bad(key, "unknown_parameter", "is not a parameter of an import")),
        }
    }
    if errors.is_empty() {
        Ok(options)
    } else {
        Err(ApiError::InvalidQuery(errors))
    }
}

/// The media types an import of `format` may be sent as (none given is taken as the format's).
fn accepts(format: FileFormat, content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return true;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let accepted: &[&str] = match format {
        FileFormat::Csv => &["text/csv", "application/csv", "text/plain"],
        FileFormat::Jsonl => &[
            "application/x-ndjson",
            "application/jsonl",
            "application/jsonlines",
            "text/plain",
        ],
    };
    accepted.contains(&essence.as_str())
}

/// Import products.
///
/// The body is the file (`text/csv` or `application/x-ndjson`), streamed to the database as it
/// arrives, up to `TIENDA_IMPORT_MAX_MB` (413 past it). A malformed header or an unknown column
/// is 422 at once, before any job exists. Answers 202 with the queued job and its `Location`;
/// the job's `result` counts the rows and lists the first 100 row errors with their line.
/// Staff or admin.
#[utoipa::path(post, path = "/api/v1/imports", tag = "jobs",
    extensions(("x-problems" = json!([400,401,403,413,415,422]))),
    params(
        ("format" = Option<String>, Query, description = "csv (default) or jsonl"),
        ("mode" = Option<String>, Query, description = "upsert (default: match by sku) or create"),
        ("on_error" = Option<String>, Query, description = "abort (default: any invalid row writes nothing) or skip"),
        ("dry_run" = Option<bool>, Query, description = "validate and count only (default false)")),
    request_body(content((String = "text/csv"), (String = "application/x-ndjson")),
        description = "The file: a CSV with a header row (sku, name, description, price, stock) or JSON Lines with those keys"),
    responses((status = 202, description = "Queued", body = crate::http::dto::job::JobResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn create_import(
    RequireStaff(user): RequireStaff,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let options = parse_import_query(query.as_deref())?;
    let job = receive_import(&state, options, request, user.id).await?;
    Ok(accepted(job))
}

/// Streams an import's file (the request's body) to the database and queues its job: the API's
/// `POST /api/v1/imports` and the console's upload both come here.
pub async fn receive_import(
    state: &AppState,
    options: ImportOptions,
    request: Request,
    user_id: i64,
) -> Result<Job, ApiError> {
    let headers = request.headers();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if !accepts(options.format, content_type) {
        return Err(ApiError::UnsupportedMediaType(match options.format {
            FileFormat::Csv => "text/csv",
            FileFormat::Jsonl => "application/x-ndjson",
        }));
    }
    let limit = state.config.jobs.import_max_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = request.into_body();
    let mut upload = Upload::new(state.store.clone(), options, limit);
    let stored = loop {
        let frame = match body.frame().await {
            None => break upload.finish(Some(user_id)).await,
            Some(Ok(frame)) => frame,
            Some(Err(_)) => {
                upload.abandon().await;
                return Err(ApiError::MalformedJson("the body could not be read".into()));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if let Err(error) = upload.push(&data).await {
            upload.abandon().await;
            break Err(error);
        }
    };
    match stored {
        Ok(job) => Ok(job),
        Err(UploadError::TooLarge) => Err(ApiError::PayloadTooLarge),
        Err(UploadError::Header(header)) => {
            let (field, code) = header.field_and_code();
            Err(ApiError::ImportRefused(
                vec![FieldError::new(field, Invalid::new(code, header.to_string()))].into(),
            ))
        }
        Err(UploadError::Store(error)) => Err(error.into()),
    }
}

fn price(raw: &serde_json::value::RawValue) -> Result<i64, Invalid> {
    let parsed = match decode::decimal_text(raw)? {
        decode::Decimal::String(text) => Price::parse_plain(&text),
        decode::Decimal::Number(text) => Price::parse(&text),
    };
    parsed
        .map(Price::cents)
        .map_err(|e| Invalid::new(e.code(), e.to_string()))
}

/// Export products.
///
/// Body: `format` (`csv` or `jsonl`, default csv) and the listing's filters (`q`, `min_price`,
/// `max_price`, `in_stock`), all optional. The export reads one consistent snapshot. Answers
/// 202 with the queued job; once it has succeeded its `result.download` serves the file.
/// Staff or admin.
#[utoipa::path(post, path = "/api/v1/exports", tag = "jobs",
    extensions(("x-problems" = json!([400,401,403,413,415,422]))),
    request_body = crate::http::openapi::schemas::ExportRequest,
    responses((status = 202, description = "Queued", body = crate::http::dto::job::JobResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn create_export(
    RequireStaff(user): RequireStaff,
    State(state): State<AppState>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    Ok(accepted(queue_export(&state, body, user.id).await?))
}

/// Queues an export from a request body (the API's `POST /api/v1/exports` and the console's
/// export form both come here).
pub async fn queue_export(state: &AppState, body: JsonObject, user_id: i64) -> Result<Job, ApiError> {
    let mut fields = Fields::new(body);
    // The document's shape: `format`, `q` and `in_stock` may be null (as absent); a price may not.
    let format = fields.nullable("format", |raw| {
        FileFormat::parse(&decode::string(raw)?)
            .ok_or_else(|| Invalid::new("invalid_format", "must be csv or jsonl"))
    });
    let q = fields.nullable("q", |raw| SearchQuery::parse(&decode::string(raw)?));
    let min_price = fields.optional("min_price", price);
    let max_price = fields.optional("max_price", price);
    let in_stock = fields.nullable("in_stock", decode::boolean);
    fields.finish(&[])?;
    let filters = Filters {
        q: q.flatten(),
        min_price,
        max_price,
        in_stock: in_stock.flatten(),
    };
    if let (Some(min), Some(max)) = (filters.min_price, filters.max_price)
        && min > max
    {
        return Err(ApiError::Validation(
            vec![bad("min_price", "greater_than_max", "must not exceed max_price")].into(),
        ));
    }
    let payload = crate::transfer::export::ExportPayload {
        format: format.flatten().unwrap_or(FileFormat::Csv),
        filters,
    };
    let payload = serde_json::to_value(&payload).map_err(|e| ApiError::Internal(e.into()))?;
    let job = state
        .store
        .enqueue_job(&NewJob::new(KIND_EXPORT, payload, Some(user_id)))
        .await?;
    Ok(job)
}
