//! The route table: every documented operation named once. The router and the OpenAPI
//! document are both built from it, so a handler cannot be served undocumented or documented
//! unserved.

pub mod accounts;
pub mod health;
pub mod imports;
pub mod inventory;
pub mod jobs;
pub mod products;
pub mod users;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The operations, grouped by the layers they need. `keyed` wraps the routes whose POST creates
/// something, so they honour `Idempotency-Key` (its middleware needs the state, which the
/// document is built without). Paths are written out in full in each handler's
/// `#[utoipa::path]`, so routing strips no prefix. `/metrics` is not here: the API's port serves
/// it only in some configurations (see `metrics_on_api_port`).
pub(crate) fn table(
    keyed: impl FnOnce(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let creating = OpenApiRouter::new()
        .routes(routes!(products::list_products, products::create_product))
        .routes(routes!(
            inventory::list_stock_adjustments,
            inventory::adjust_stock
        ));
    OpenApiRouter::new()
        .merge(keyed(creating))
        .routes(routes!(
            products::get_product,
            products::replace_product,
            products::patch_product,
            products::delete_product
        ))
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::refresh))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me))
        .routes(routes!(users::list_users))
        .routes(routes!(users::update_user))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::download_job_file))
        .routes(routes!(imports::create_import))
        .routes(routes!(imports::create_export))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::retry_delivery))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
}
