//! `/admin`: the staff console, server-rendered HTML for staff and admins.
//!
//! Not part of the API: its routes are HTML pages, kept out of the route table (and so out of
//! the OpenAPI document). They reuse what the API uses: the accounts service for sign-in (and its
//! throttle), the listing's query parser and keyset cursors, the products' and stock
//! adjustments' body parsers (a form becomes the JSON object the API would get), the store calls,
//! and `ApiError` for choosing a status. Templates are compiled in (askama, `templates/admin/`);
//! the scripts and styles are vendored (`assets/`) and served from `/admin/static/`. Every page
//! carries a strict Content-Security-Policy (set in `http/envelope.rs`): no inline script or
//! style, nothing from elsewhere.
//!
//! Sessions: `session.rs`; pages: `products.rs`, `users.rs`, `jobs.rs` (imports, exports, jobs), `webhooks.rs`; what each page shows: `views.rs`;
//! errors as pages: `page.rs`.

mod assets;
mod form;
mod jobs;
mod page;
mod products;
mod session;
mod users;
mod views;
mod webhooks;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::state::AppState;

/// Whether a path belongs to the console (its pages get the console's security headers).
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// The console's routes, merged beside the API's (not into its route table).
pub fn router() -> Router<AppState> {
    let home = || async { Redirect::to("/admin/products") };
    Router::new()
        .route("/admin", get(home))
        .route("/admin/", get(home))
        .route("/admin/static/{file}", get(assets::serve))
        .route(
            "/admin/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/admin/sign-out", post(session::sign_out))
        .route("/admin/products", get(products::list).post(products::create))
        .route("/admin/products/new", get(products::new_form))
        .route("/admin/products/columns", post(products::save_columns))
        .route("/admin/products/{id}", get(products::edit).post(products::save))
        .route("/admin/products/{id}/stock", post(products::adjust_stock))
        .route("/admin/imports", get(jobs::imports).post(jobs::upload))
        .route("/admin/exports", post(jobs::export))
        .route("/admin/jobs", get(jobs::list))
        .route("/admin/jobs/{id}", get(jobs::show))
        .route("/admin/jobs/{id}/status", get(jobs::status))
        .route("/admin/jobs/{id}/cancel", post(jobs::cancel))
        .route("/admin/jobs/{id}/file", get(jobs::file))
        .route("/admin/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/admin/webhooks/{id}", get(webhooks::show).post(webhooks::change))
        .route("/admin/webhooks/{id}/rotate", post(webhooks::rotate))
        .route(
            "/admin/webhooks/{id}/deliveries/{delivery}/retry",
            post(webhooks::retry),
        )
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}", post(users::change))
}
