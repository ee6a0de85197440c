//! The console's imports, exports and jobs pages. The upload goes through the API's own import
//! path (`routes::imports::receive_import`: the same query parser, media types, size limit,
//! header check and streaming to the database); an export is queued by the API's
//! `queue_export` from the form turned into its JSON body; the file is served by the API's
//! `export_file`. A job's page polls a small status fragment every second (htmx) until the job
//! ends.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::form::{json_object, optional_text};
use super::page::{AdminError, field_lines, html, see_other};
use super::session::{Staff, StaffForm, StaffUpload};
use super::views::{
    Chrome, ImportsPage, JobLine, JobPage, JobStatusFragment, JobView, JobsPage, RowErrorLine, UploadError,
};
use crate::domain::job::{Job, JobStatus, KIND_EXPORT, KIND_IMPORT};
use crate::http::error::ApiError;
use crate::http::routes::imports::{parse_import_query, queue_export, receive_import};
use crate::http::routes::jobs::export_file;
use crate::state::AppState;

/// Jobs shown on the list.
const SHOWN: u64 = 50;

fn job_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AdminError::Api(ApiError::NotFound))
}

/// `GET /admin/imports`.
pub async fn imports(Staff(session): Staff) -> Result<Response, AdminError> {
    html(
        StatusCode::OK,
        &ImportsPage {
            chrome: Chrome::for_session(&session, "imports"),
        },
    )
}

/// `POST /admin/imports?format=&mode=&on_error=&dry_run=`: the file is the body, as the API
/// takes it. Queued: 303 to the job's page. Refused: the API's status with a fragment saying why
/// (the query's or the header row's errors by field, a wrong media type, too large).
pub async fn upload(
    StaffUpload(session): StaffUpload,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response, AdminError> {
    let received = match parse_import_query(query.as_deref()) {
        Ok(options) => receive_import(&state, options, request, session.user.id).await,
        Err(error) => Err(error),
    };
    match received {
        Ok(job) => {
            tracing::info!(
                user_id = session.user.id,
                job_id = job.id,
                "import uploaded in the console"
            );
            Ok(see_other(&format!("/admin/jobs/{}", job.id)))
        }
        Err(error) => {
            let problem = error.problem();
            let fragment = UploadError {
                title: problem.title.to_owned(),
                detail: problem.detail.clone().unwrap_or_default(),
                errors: field_lines(&problem),
            };
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            html(status, &fragment)
        }
    }
}

/// `GET /admin/jobs?kind=&status=`: newest first.
pub async fn list(
    Staff(session): Staff,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|_| ApiError::MalformedQuery)?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let kind = [KIND_IMPORT, KIND_EXPORT].into_iter().find(|k| *k == get("kind"));
    let status = JobStatus::parse(get("status"));
    let (jobs, total) = state.store.list_jobs(kind, status, SHOWN, 0).await?;
    let page = JobsPage {
        chrome: Chrome::for_session(&session, "jobs"),
        jobs: jobs
            .into_iter()
            .map(|job| JobLine {
                id: job.id,
                kind: job.kind.clone(),
                status: job.status.as_str(),
                progress: match job.progress_total {
                    Some(total) => format!("{} of {total}", job.progress_done),
                    None => job.progress_done.to_string(),
                },
                created: job.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            })
            .collect(),
        kind: kind.unwrap_or_default().to_owned(),
        status: status.map(|s| s.as_str()).unwrap_or_default().to_owned(),
        statuses: JobStatus::ALL.iter().map(|s| s.as_str()).collect(),
        total,
    };
    html(StatusCode::OK, &page)
}

fn count(result: &Value, key: &str) -> Option<u64> {
    result.get(key).and_then(Value::as_u64)
}

fn view(job: Job) -> JobView {
    let result = job.result.clone().unwrap_or(Value::Null);
    let mut counts = Vec::new();
    for (key, label) in [
        ("rows", "Rows"),
        ("created", "Created"),
        ("updated", "Updated"),
        ("unchanged", "Unchanged"),
        ("invalid", "Invalid"),
        ("bytes", "Bytes"),
    ] {
        if let Some(n) = count(&result, key) {
            counts.push((label, n));
        }
    }
    let row_errors = result
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| RowErrorLine {
                    line: count(e, "line").unwrap_or_default(),
                    field: e
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let error = job
        .error
        .as_ref()
        .map(|e| {
            let title = e.get("title").and_then(Value::as_str).unwrap_or("Failed");
            match e.get("detail").and_then(Value::as_str) {
                Some(detail) => format!("{title}: {detail}"),
                None => title.to_owned(),
            }
        })
        .unwrap_or_default();
    let succeeded_export = job.kind == KIND_EXPORT && job.status == JobStatus::Succeeded;
    JobView {
        id: job.id,
        kind: job.kind.clone(),
        status: job.status.as_str(),
        finished: job.status.is_finished(),
        dry_run: job.payload.pointer("/options/dry_run").and_then(Value::as_bool) == Some(true),
        done: job.progress_done,
        total: job.progress_total,
        created: job.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        counts,
        row_errors,
        invalid: count(&result, "invalid").unwrap_or_default(),
        error,
        download: if succeeded_export {
            format!("/admin/jobs/{}/file", job.id)
        } else {
            String::new()
        },
        can_cancel: !job.status.is_finished() && !job.cancel_requested,
    }
}

/// `GET /admin/jobs/{id}`.
pub async fn show(
    Staff(session): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let job = state.store.get_job(job_id(&id)?).await?;
    html(
        StatusCode::OK,
        &JobPage {
            chrome: Chrome::for_session(&session, "jobs"),
            job: view(job),
        },
    )
}

/// `GET /admin/jobs/{id}/status`: the fragment the job's page polls.
pub async fn status(
    Staff(session): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let job = state.store.get_job(job_id(&id)?).await?;
    html(
        StatusCode::OK,
        &JobStatusFragment {
            chrome: Chrome::for_session(&session, "jobs"),
            job: view(job),
        },
    )
}

/// `POST /admin/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm,
) -> Result<Response, AdminError> {
    let job = state.store.cancel_job(job_id(&id)?).await?;
    tracing::info!(
        user_id = form.session.user.id,
        job_id = job.id,
        "job cancelled in the console"
    );
    Ok(see_other(&format!("/admin/jobs/{}", job.id)))
}

/// `GET /admin/jobs/{id}/file`: an export's file, streamed as the API serves it.
pub async fn file(
    Staff(_session): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    Ok(export_file(&state, job_id(&id)?).await?.into_response())
}

/// `POST /admin/exports`: the listing's filters and a format, as the API's export body.
pub async fn export(State(state): State<AppState>, form: StaffForm) -> Result<Response, AdminError> {
    let in_stock = match form.get("in_stock") {
        "" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        other => Value::String(other.to_owned()),
    };
    // An empty filter is left out: the API refuses `null` for a filter (absent means "any").
    let members = vec![
        ("format", optional_text(form.get("format"))),
        ("q", optional_text(form.get("q"))),
        ("min_price", optional_text(form.get("min_price"))),
        ("max_price", optional_text(form.get("max_price"))),
        ("in_stock", in_stock),
    ];
    let body = json_object(
        members
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .collect(),
    )?;
    let job = queue_export(&state, body, form.session.user.id).await?;
    tracing::info!(
        user_id = form.session.user.id,
        job_id = job.id,
        "export queued in the console"
    );
    Ok(see_other(&format!("/admin/jobs/{}", job.id)))
}
