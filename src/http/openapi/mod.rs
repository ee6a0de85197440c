//! The OpenAPI 3.1 document, generated from the route table (the handlers' annotations, each
//! naming the problems it can answer in `x-problems`) and the DTO types, then completed with the
//! problem responses and the headers every response carries. Served at `/openapi.json`,
//! rendered by Swagger UI at `/docs`.

mod params;
pub mod schemas;

pub use params::{IdempotencyParams, IfMatchParams, ListParams, PageParams, SortParam};

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};

use crate::http::dto::inventory::AdjustmentResponse;
use crate::http::dto::product::ProductResponse;
use crate::http::dto::user::{TokenResponse, UserResponse};
use crate::http::error::{FieldError, Problem};
use crate::http::routes::inventory::LedgerPage;
use crate::http::routes::products::{ProductCursorPage, ProductPage};
use crate::http::routes::users::UserPage;
use crate::http::routes::{self, health};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tienda",
        description = "Product catalogue and inventory API. Errors are RFC 9457 problem documents whose `type` is stable.",
        license(name = "MIT")
    ),
    // Every other path comes from the route table; `/metrics` is routed only in some
    // configurations.
    paths(health::metrics),
    components(schemas(
        ProductResponse, ProductPage, ProductCursorPage, ProductListing, AdjustmentResponse, LedgerPage,
        UserResponse, UserPage, TokenResponse, Problem, FieldError, Live, Ready,
        schemas::ProductWriteRequest, schemas::ProductPatchRequest, schemas::StockAdjustmentRequest,
        schemas::RegisterRequest, schemas::LoginRequest, schemas::RefreshRequest, schemas::UserPatchRequest,
        schemas::RoleName,
    )),
    tags(
        (name = "products", description = "The catalogue"),
        (name = "inventory", description = "Stock adjustments and the ledger"),
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "User management (admin)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// Either page shape of `GET /api/v1/products`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ProductListing {
    Offset(ProductPage),
    Keyset(ProductCursorPage),
}

/// The body of `/health/live`.
#[derive(Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    status: String,
}

/// The body of `/health/ready` when the instance can serve.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: String,
    /// `up` per configured dependency (`database`, `redis`).
    #[schema(value_type = Object, example = json!({"database": "up"}))]
    checks: Value,
}

fn problem_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Malformed JSON, a bad query parameter or header (`/problems/malformed-json`, `/problems/invalid-parameter`, `/problems/invalid-header`)"
        }
        401 => {
            "Missing, invalid or expired credentials (`/problems/unauthorized`, `/problems/invalid-token`, `/problems/invalid-credentials`)"
        }
        403 => "Authenticated but not allowed (`/problems/forbidden`)",
        404 => "No such resource (`/problems/not-found`)",
        409 => {
            "Conflict: duplicate sku or email, insufficient stock, stock limit, last admin, idempotency key in use"
        }
        412 => "If-Match does not match the current ETag; nothing changed (`/problems/precondition-failed`)",
        413 => "Body over the limit (`/problems/payload-too-large`)",
        415 => "Wrong content type (`/problems/unsupported-media-type`)",
        422 => {
            "Invalid body, every bad field named in `errors` (`/problems/validation`, `/problems/idempotency-key-reused`)"
        }
        429 => {
            "Too many failed logins or registrations, or too many live Idempotency-Keys; see Retry-After (`/problems/too-many-requests`, `/problems/idempotency-key-limit`)"
        }
        500 => "Internal error; no internals are disclosed (`/problems/internal`)",
        503 => {
            "A dependency is unavailable, or too much work of this kind is running; see Retry-After (`/problems/unavailable`, `/problems/overloaded`)"
        }
        _ => "Problem",
    }
}

fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let (_, api) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::table(|routes| routes))
        .split_for_parts();
    let mut doc = serde_json::to_value(api).unwrap_or_else(|_| json!({}));
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "An access token from POST /api/v1/auth/login"}
    });
    // The ready probe's failure is a problem document with a `checks` member.
    doc["components"]["schemas"]["ReadyProblem"] = json!({
        "allOf": [{"$ref": "#/components/schemas/Problem"},
                  {"type": "object", "required": ["checks"], "properties": {"checks": {"type": "object"}}}]
    });
    // A delta is never zero.
    doc["components"]["schemas"]["StockAdjustmentRequest"]["properties"]["delta"]["not"] =
        json!({"const": 0});

    // Query and header parameters are never null: an absent parameter is just absent.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for operation in item.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
                let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
                for parameter in parameters.into_iter().flatten() {
                    let schema = &mut parameter["schema"];
                    if let Some(types) = schema["type"].as_array() {
                        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                        if kept.len() == 1 {
                            schema["type"] = kept[0].clone();
                        }
                    }
                }
            }
        }
    }

    let request_id = header(
        "The request's id, echoed from the request when sane",
        json!({"type": "string"}),
    );
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            // Each handler's `#[utoipa::path]` names the problems it can answer, besides 500
            // (and 503 when the database is down).
            let problems = operation
                .as_object_mut()
                .and_then(|o| o.remove("x-problems"))
                .unwrap_or_default();
            let problems = problems
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64);
            let mut statuses: Vec<u16> = problems.filter_map(|s| u16::try_from(s).ok()).collect();
            let responses = &mut operation["responses"];
            let api = path.starts_with("/api/");
            if api {
                statuses.extend([500, 503]);
            }
            if path == "/health/ready" {
                responses["503"] = json!({
                    "description": "A dependency is down; `checks` names it",
                    "headers": {"Retry-After": header("Seconds to wait", json!({"type": "integer"}))},
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ReadyProblem"}}}
                });
            }
            for status in statuses {
                let mut response = json!({
                    "description": problem_description(status),
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                });
                match status {
                    401 => {
                        response["headers"]["WWW-Authenticate"] = header(
                            "`Bearer`, with `error=\"invalid_token\"` for a bad token",
                            json!({"type": "string"}),
                        )
                    }
                    429 | 503 => {
                        response["headers"]["Retry-After"] =
                            header("Seconds to wait", json!({"type": "integer"}))
                    }
                    _ => {}
                }
                responses[status.to_string()] = response;
            }
            let Some(responses) = responses.as_object_mut() else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                response["headers"]["X-Request-Id"] = request_id.clone();
                let product = path.starts_with("/api/v1/products/{id}")
                    && !path.ends_with("stock-adjustments")
                    || (path == "/api/v1/products" && method == "post");
                if product && (status == "200" || status == "201" || status == "304") {
                    response["headers"]["ETag"] =
                        header("The product's version, e.g. `\"v3\"`", json!({"type": "string"}));
                }
                if status == "201" && path == "/api/v1/products" {
                    response["headers"]["Location"] =
                        header("The new product's URL", json!({"type": "string"}));
                }
                if status == "201" && method == "post" && path.starts_with("/api/v1/products") {
                    response["headers"]["Idempotent-Replayed"] = header(
                        "`true` when this is a replay of an earlier answer",
                        json!({"type": "string"}),
                    );
                }
                // Every listing answers a page (a `…Page` schema, or `ProductListing`, either page
                // shape) and links its neighbours.
                let body = response["content"]["application/json"]["schema"]["$ref"].as_str();
                let paged = body.is_some_and(|r| r.ends_with("Page") || r.ends_with("Listing"));
                if status == "200" && method == "get" && paged {
                    response["headers"]["Link"] = header(
                        "RFC 8288 links: first, prev, next, last (next for keyset pages)",
                        json!({"type": "string"}),
                    );
                }
            }
        }
    }
    doc
}
