//! The OpenAPI 3.1 document, generated from the route table (the handlers' annotations, each
//! naming the problems it can answer in `x-problems`) and the DTO types, then completed with the
//! problem responses and the headers every response carries. Served at `/openapi.json`,
//! rendered by Swagger UI at `/docs`.

mod params;
mod problems;
pub mod schemas;

pub use params::{IdempotencyParams, IfMatchParams, ListParams, PageParams, SortParam};

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};

use crate::http::dto::inventory::AdjustmentResponse;
use crate::http::dto::product::ProductResponse;
use crate::http::dto::user::{TokenResponse, UserResponse};
use crate::http::dto::webhook::{DeliveryResponse, SecretResponse, WebhookCreatedResponse, WebhookResponse};
use crate::http::error::{FieldError, Problem};
use crate::http::routes::inventory::LedgerPage;
use crate::http::routes::products::{ProductCursorPage, ProductPage};
use crate::http::routes::users::UserPage;
use crate::http::routes::webhooks::{DeliveryPage, WebhookPage};
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
        schemas::RoleName, WebhookResponse, WebhookCreatedResponse, SecretResponse, DeliveryResponse,
        WebhookPage, DeliveryPage, schemas::WebhookCreateRequest, schemas::WebhookPatchRequest,
        schemas::WebhookEventName, schemas::DeliveryStatusName,
    )),
    tags(
        (name = "products", description = "The catalogue"),
        (name = "inventory", description = "Stock adjustments and the ledger"),
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "User management (admin)"),
        (name = "webhooks", description = "Webhook endpoints and their deliveries (admin)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// Either page shape of `GET /api/v1/products`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ProductListing {
    /// With `page`/`per_page` (or neither and no `cursor`/`limit`).
    Offset(ProductPage),
    /// With `limit` or `cursor`.
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
    /// `up` or `down` per configured dependency (`database`, `redis`, and `cache`: the cache's
    /// Redis invalidation channel).
    #[schema(value_type = Object, example = json!({"database": "up"}))]
    checks: Value,
}

fn problem_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed JSON, a bad query parameter or header",
        401 => "Missing, invalid or expired credentials",
        403 => "Authenticated but not allowed",
        404 => "No such resource",
        409 => "Conflict with the current state; nothing changed",
        410 => "Expired: no longer served",
        412 => "If-Match does not match the current ETag; nothing changed",
        413 => "Body over the limit",
        415 => "Wrong content type",
        422 => "Invalid body, every bad field named in `errors`",
        429 => "Too many requests; see Retry-After",
        500 => "Internal error; no internals are disclosed",
        503 => "Unavailable or busy; see Retry-After",
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
    // The SPDX id, which tools read instead of the display name.
    doc["info"]["license"]["identifier"] = json!("MIT");
    // Relative: the document is served by the API itself, so "/" is wherever it was fetched
    // from (Swagger UI's "Try it out" and generated clients' base URL alike).
    doc["servers"] = json!([{"url": "/", "description": "The server that serves this document"}]);
    complete_schemas(&mut doc["components"]["schemas"]);
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "An access token from POST /api/v1/auth/login, pasted"},
        // The same token, fetched by the viewer: Swagger UI's Authorize dialog asks for the email
        // (as username) and password and posts the password grant to the login endpoint, which
        // accepts it besides its JSON body. Relative, like `servers`. The form is documented
        // here only, not as a second media type of the login body: openapi-python-client 0.29
        // generates code that does not import for a body with two media types.
        "login": {"type": "oauth2",
                  "description": "Log in with an email (as username) and password: the OAuth 2.0 password grant sent to POST /api/v1/auth/login, which answers the same tokens as its JSON form",
                  "flows": {"password": {"tokenUrl": "/api/v1/auth/login", "scopes": {}}}}
    });
    // The ready probe's failure is a problem document with a `checks` member.
    doc["components"]["schemas"]["ReadyProblem"] = json!({
        "allOf": [{"$ref": "#/components/schemas/Problem"},
                  {"type": "object", "required": ["checks"],
                   "properties": {"checks": {"$ref": "#/components/schemas/Checks"}}}]
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
    name_enum_values(&mut doc);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            public_security(operation);
            if requires_bearer(operation) {
                operation["security"] = json!([{"bearer": []}, {"login": []}]);
            }
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
            let parameters = operation.get("parameters").and_then(Value::as_array);
            let op = problems::Operation {
                path,
                method,
                has_body: operation.get("requestBody").is_some(),
                keyed: parameters
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == "Idempotency-Key"),
            };
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
                let examples = problems::examples(status, &op);
                let kinds: Vec<String> = examples
                    .iter()
                    .filter_map(|e| e["type"].as_str())
                    .map(|kind| format!("`{kind}`"))
                    .collect();
                let description = if kinds.is_empty() {
                    problem_description(status).to_owned()
                } else {
                    format!("{} ({})", problem_description(status), kinds.join(", "))
                };
                let mut media = json!({"schema": {"$ref": "#/components/schemas/Problem"}});
                if !examples.is_empty() {
                    media["examples"] = problems::media_examples(&examples);
                }
                let mut response = json!({
                    "description": description,
                    "content": {"application/problem+json": media}
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
                // The cached routes (see `crate::cache`): the product by id and the listing.
                let cached =
                    method == "get" && (path == "/api/v1/products/{id}" || path == "/api/v1/products");
                if cached && (status == "200" || status == "304") {
                    response["headers"]["Cache-Status"] = header(
                        "RFC 9211, when the response cache is on: `tienda; hit`, `tienda; fwd=miss`, or \
                         `tienda; fwd=bypass` while the cache cannot be trusted (its Redis channel is down)",
                        json!({"type": "string"}),
                    );
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

/// Whether an operation needs a bearer token in every configuration.
fn requires_bearer(operation: &Value) -> bool {
    operation["security"]
        .as_array()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|r| r.get("bearer").is_some()))
}

/// An operation that needs no token says so with `security: []`, not by omission (which a reader
/// cannot tell from an oversight) nor as `[{}, {bearer}]` (which makes generators such as
/// openapi-python-client demand an authenticated client for public reads). Reads made private
/// by `TIENDA_PROTECT_READS=true` say so in their description.
fn public_security(operation: &mut Value) {
    if !requires_bearer(operation) && operation.is_object() {
        operation["security"] = json!([]);
    }
}

/// Completes the component schemas where the derived ones say too little.
fn complete_schemas(schemas: &mut Value) {
    let problem_type = &mut schemas["Problem"]["properties"]["type"];
    problem_type["description"] = json!(problems::type_description());
    problem_type["examples"] = problems::type_values();

    // What `/health/ready` reports per dependency.
    schemas["CheckState"] = json!({
        "type": "string", "enum": ["up", "down"],
        "description": "`down`: the dependency did not answer within a second"
    });
    schemas["Checks"] = json!({
        "type": "object",
        "description": "One entry per configured dependency: `database` always, `redis` when `REDIS_URL` is set (Redis down is reported but does not fail the probe).",
        "properties": {
            "database": {"$ref": "#/components/schemas/CheckState"},
            "redis": {"$ref": "#/components/schemas/CheckState"}
        },
        "required": ["database"],
        "additionalProperties": false,
        "examples": [{"database": "up", "redis": "up"}]
    });
    schemas["Ready"]["properties"]["checks"] = json!({"$ref": "#/components/schemas/Checks"});

    // Real pages instead of the zeros a viewer derives from the bare schema.
    let product = schemas["ProductResponse"]["example"].clone();
    let user = schemas["UserResponse"]["example"].clone();
    let adjustment = schemas["AdjustmentResponse"]["example"].clone();
    schemas["ProductPage"]["example"] =
        json!({"items": [product], "page": 2, "per_page": 20, "total": 21, "total_pages": 2});
    schemas["UserPage"]["example"] =
        json!({"items": [user], "page": 1, "per_page": 20, "total": 1, "total_pages": 1});
    schemas["LedgerPage"]["example"] =
        json!({"items": [adjustment], "page": 1, "per_page": 20, "total": 2, "total_pages": 1});
    schemas["ProductCursorPage"]["example"] = json!({
        "items": [product],
        "next_cursor": "eyJzIjoiLXByaWNlIiwiYSI6WzE5OTksNDJdfQ"
    });
    for name in ["ProductPage", "UserPage", "LedgerPage"] {
        for field in ["page", "per_page"] {
            schemas[name]["properties"][field]["minimum"] = json!(1);
        }
    }
}

/// Gives enums whose values are not identifiers (`-price`) names for generated code, which
/// otherwise makes up `VALUE_1 .. VALUE_11`: `-price` is `PRICE_DESC`.
fn name_enum_values(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let names = map.get("enum").and_then(Value::as_array).and_then(|values| {
                let texts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                let plain = |t: &str| {
                    t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && t.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                };
                (texts.len() == values.len() && !texts.iter().all(|t| plain(t))).then(|| {
                    texts
                        .iter()
                        .map(|t| match t.strip_prefix('-') {
                            Some(key) => format!("{}_DESC", key.to_uppercase()),
                            None => t.to_uppercase(),
                        })
                        .collect::<Vec<_>>()
                })
            });
            if let Some(names) = names {
                map.insert("x-enum-varnames".into(), json!(names));
            }
            map.values_mut().for_each(name_enum_values);
        }
        Value::Array(items) => items.iter_mut().for_each(name_enum_values),
        _ => {}
    }
}
