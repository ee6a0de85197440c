//! Rendering pages, and every failure as a page: the status (and `Retry-After`) still come from
//! `ApiError`, which keeps its cause for the failure log; only the body becomes HTML.

use askama::Template;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::views::{Chrome, ErrorPage};
use crate::http::error::ApiError;
use crate::services::accounts::AuthError;
use crate::store::StoreError;

/// Why a console request did not get the page it asked for.
#[derive(Debug)]
pub enum AdminError {
    /// No live session: to the sign-in page.
    SignIn,
    /// A state-changing request without this session's CSRF token (403).
    Csrf,
    /// Anything the API would answer with a problem; shown as a page with the same status.
    Api(ApiError),
}

impl From<ApiError> for AdminError {
    fn from(error: ApiError) -> Self {
        AdminError::Api(error)
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        AdminError::Api(error.into())
    }
}

impl From<AuthError> for AdminError {
    fn from(error: AuthError) -> Self {
        AdminError::Api(error.into())
    }
}

impl From<askama::Error> for AdminError {
    fn from(error: askama::Error) -> Self {
        AdminError::Api(ApiError::Internal(error.into()))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        match self {
            AdminError::SignIn => Redirect::to("/admin/sign-in").into_response(),
            AdminError::Csrf => {
                let page = ErrorPage {
                    chrome: Chrome::anonymous(),
                    status: 403,
                    title: "This form cannot be accepted".into(),
                    detail: "It did not carry this session's security token (it may be from an \
                             old page or another site). Reload the page and try again."
                        .into(),
                    errors: Vec::new(),
                };
                html(StatusCode::FORBIDDEN, &page).unwrap_or_else(|e| e.into_response())
            }
            AdminError::Api(error) => {
                let problem = error.problem();
                let page = ErrorPage {
                    chrome: Chrome::anonymous(),
                    status: problem.status,
                    title: problem.title.to_owned(),
                    detail: problem.detail.clone().unwrap_or_default(),
                    errors: field_lines(&problem),
                };
                // The status, its headers and the cause for the log, from the API's own answer.
                let (mut parts, _) = error.into_response().into_parts();
                match page.render() {
                    Ok(body) => {
                        parts.headers.remove(header::CONTENT_LENGTH);
                        set_html_headers(&mut parts.headers);
                        Response::from_parts(parts, Body::from(body))
                    }
                    Err(_) => Response::from_parts(parts, Body::empty()),
                }
            }
        }
    }
}

fn set_html_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Pages show one user's view of live data: never kept by a cache or the back button.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A rendered page with `status`.
pub fn html(status: StatusCode, template: &impl Template) -> Result<Response, AdminError> {
    let body = template.render()?;
    let mut response = (status, body).into_response();
    set_html_headers(response.headers_mut());
    Ok(response)
}

/// A 303 to `location` (after a form post).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A problem's field errors as the pages list them, `field: message`.
pub fn field_lines(problem: &crate::http::problem::Problem) -> Vec<String> {
    problem
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect()
}
