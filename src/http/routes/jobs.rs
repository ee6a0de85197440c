//! `/api/v1/jobs`: background jobs, their progress, cancel, and an export's file.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::instrument;

use crate::domain::job::{JobStatus, KIND_EXPORT};
use crate::domain::product::Invalid;
use crate::http::caller::RequireStaff;
use crate::http::dto::job::JobResponse;
use crate::http::error::{ApiError, FieldError, FieldErrors};
use crate::http::extract::ResourceId;
use crate::http::pagination::{PageBody, parse_offset_query_with};
use crate::state::AppState;
use crate::store::Conflict;

/// An offset page of jobs.
pub type JobPage = PageBody<JobResponse>;

/// A job's answer with `Location`, as `202 Accepted` (a job just queued or asked to cancel).
pub fn accepted(job: crate::domain::job::Job) -> Response {
    let location = HeaderValue::from_str(&format!("/api/v1/jobs/{}", job.id));
    let mut response = (StatusCode::ACCEPTED, Json(JobResponse::from(job))).into_response();
    if let Ok(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Read a job.
///
/// Its status, progress (`done` of `total` rows), attempts, and once finished its `result`
/// (or `error`, a problem object). Staff or admin.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    extensions(("x-problems" = json!([401,403,404]))),
    params(("id" = i64, Path, description = "The job id", minimum = 1)),
    responses((status = 200, description = "The job", body = JobResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(job_id = id.0))]
pub async fn get_job(
    _staff: RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
) -> Result<Json<JobResponse>, ApiError> {
    Ok(Json(JobResponse::from(state.store.get_job(id.0).await?)))
}

/// List jobs.
///
/// Offset pages, newest first; filter by `kind` (`import`, `export`) and `status`. Staff or
/// admin.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    extensions(("x-problems" = json!([400,401,403]))),
    params(crate::http::openapi::PageParams,
        ("kind" = Option<String>, Query, description = "Only jobs of this kind: import or export"),
        ("status" = Option<String>, Query, description = "Only jobs in this status: queued, running, succeeded, failed or cancelled")),
    responses((status = 200, description = "Jobs, newest first", body = JobPage)),
    security(("bearer" = [])))]
#[instrument(skip_all)]
pub async fn list_jobs(
    _staff: RequireStaff,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (page, filters) = parse_offset_query_with(query.as_deref(), &["kind", "status"])?;
    let mut errors = FieldErrors::default();
    let (mut kind, mut status) = (None, None);
    let mut links: Vec<(&'static str, String)> = Vec::new();
    for (key, value) in &filters {
        if key == "kind" {
            match [crate::domain::job::KIND_IMPORT, KIND_EXPORT]
                .into_iter()
                .find(|k| k == value)
            {
                Some(known) => {
                    kind = Some(known);
                    links.push(("kind", known.to_owned()));
                }
                None => errors.push(FieldError::new(
                    "kind",
                    Invalid::new("invalid_kind", "must be import or export"),
                )),
            }
        } else {
            match JobStatus::parse(value) {
                Some(known) => {
                    status = Some(known);
                    links.push(("status", known.as_str().to_owned()));
                }
                None => errors.push(FieldError::new(
                    "status",
                    Invalid::new(
                        "invalid_status",
                        "must be queued, running, succeeded, failed or cancelled",
                    ),
                )),
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    let (jobs, total) = state
        .store
        .list_jobs(kind, status, page.per_page, page.offset())
        .await?;
    let body = JobPage::new(jobs.into_iter().map(JobResponse::from).collect(), page, total);
    Ok(body.answer_with("/api/v1/jobs", &links))
}

/// Cancel a job.
///
/// A queued job never starts; a running one stops at its next batch and ends `cancelled`, its
/// `result` counting what it did. Answers 202 with the job. A finished job is 409. Staff or
/// admin.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    extensions(("x-problems" = json!([401,403,404,409]))),
    params(("id" = i64, Path, description = "The job id", minimum = 1)),
    responses((status = 202, description = "Cancelled, or asked to stop at its next batch", body = JobResponse)),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(job_id = id.0))]
pub async fn cancel_job(
    _staff: RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
) -> Result<Response, ApiError> {
    let job = state.store.cancel_job(id.0).await?;
    Ok(accepted(job))
}

/// Download an export's file.
///
/// The CSV or JSON Lines file of a succeeded export, streamed from the database (any instance
/// serves it) until `TIENDA_EXPORT_TTL_HOURS` after the job finished; 410 after that. 409 while
/// the export has not succeeded; 404 for a job that is not an export. Staff or admin.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/file", tag = "jobs",
    extensions(("x-problems" = json!([401,403,404,409,410]))),
    params(("id" = i64, Path, description = "The export job's id", minimum = 1)),
    responses((status = 200, description = "The file", content(
        (String = "text/csv"), (String = "application/x-ndjson")))),
    security(("bearer" = [])))]
#[instrument(skip_all, fields(job_id = id.0))]
pub async fn download_job_file(
    _staff: RequireStaff,
    State(state): State<AppState>,
    id: ResourceId,
) -> Result<Response, ApiError> {
    export_file(&state, id.0).await
}

/// A succeeded export's file as a streamed response (the API's download and the console's).
pub async fn export_file(state: &AppState, id: i64) -> Result<Response, ApiError> {
    let job = state.store.get_job(id).await?;
    if job.kind != KIND_EXPORT {
        return Err(ApiError::NotFound);
    }
    if job.status != JobStatus::Succeeded {
        return Err(ApiError::Conflict(Conflict::JobNotFinished));
    }
    let ttl = chrono::Duration::from_std(state.config.jobs.export_ttl).unwrap_or_default();
    let expired = job.finished_at.is_none_or(|at| at + ttl < chrono::Utc::now());
    let file = match state.store.job_file(job.id).await? {
        Some(file) if !expired => file,
        _ => return Err(ApiError::Gone("the export's file has expired; export again")),
    };
    let store = state.store.clone();
    let chunks = futures_util::stream::unfold(Some(0i64), move |next| {
        let store = store.clone();
        async move {
            let seq = next?;
            match store.read_chunk(file.id, seq).await {
                Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), Some(seq + 1))),
                Ok(None) => None,
                Err(error) => {
                    tracing::error!(%error, file_id = file.id, seq, "cannot read an export file's chunk");
                    Some((Err(std::io::Error::other(error.to_string())), None))
                }
            }
        }
    });
    // Fused: a body layer (compression) may poll once more after the end, which `unfold`
    // forbids (it panics).
    let mut response = Body::from_stream(futures_util::StreamExt::fuse(chunks)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&file.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(file.bytes.max(0) as u64),
    );
    let extension = if file.content_type.starts_with("text/csv") {
        "csv"
    } else {
        "jsonl"
    };
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"export-{}.{extension}\"", job.id))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
